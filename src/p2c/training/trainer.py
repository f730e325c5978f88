"""The training loop: one process per device, AMP, a fast step, progressive resolution, exact resume.

The step itself is :class:`p2c.training.step.GanStep` (replayed as a CUDA graph where it can be,
see :mod:`p2c.training.graphs`). The side being optimised runs through its DistributedDataParallel
wrapper; the side held fixed runs bare, so only the optimised networks' gradients are all-reduced.
With ``--size-schedule`` the crop size follows the step (:mod:`p2c.training.schedule`): at each
switch the loaders and the graph are rebuilt for the new size. A run continued from a generator
state (``--init-from``, :mod:`p2c.training.generator_state`) first trains its fresh discriminators
alone for ``--d-warmup-steps``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from p2c.devices import resolve_device
from p2c.errors import InputNotFoundError, InvalidInputError, MissingDependencyError
from p2c.files import atomic_write
from p2c.models.architectures import DEFAULT_ARCH, is_generator
from p2c.models.generator import ResnetGenerator
from p2c.training import checkpoint as ckpt
from p2c.training.config import TrainConfig, shape_changes
from p2c.training.dataset import AugmentedFolder, DomainBatchSampler, list_images, make_loader
from p2c.training.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    init_distributed,
    local_rank_from_env,
    shutdown,
    use_device,
)
from p2c.training.export import export_generator
from p2c.training.gan import GENERATOR_KEYS
from p2c.training.generator_state import read_generator_state, write_generator_state
from p2c.training.graphs import CompiledOrEager, CudaGraphStep
from p2c.training.run_log import RunLog
from p2c.training.samples import grid_image, write_png
from p2c.training.schedule import size_at
from p2c.training.slice_state import read_slice_state, write_slice_state
from p2c.training.step import GanStep, Losses, StepOptions, build_networks, prepare_faceid, resolve_amp

__all__ = ["TrainResult", "Trainer", "learning_rate", "load_faceid_network", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    step: int
    run_dir: Path
    checkpoint: Path | None = None
    exported: Path | None = None
    slice_state: Path | None = None
    generator_state: Path | None = None
    losses: dict[str, float] = field(default_factory=dict)


def learning_rate(config: TrainConfig, step: int, warmup_start: int | None = None) -> float:
    """Constant, then (with ``lr_decay``) linear to 0 over the second half of ``iterations``.

    ``warmup_start``: the step a run restarted its optimisers at (resumed from a slice state or a
    generator state); the rate then ramps linearly from ``lr / warmup_steps`` to the schedule's
    over ``warmup_steps``.
    """
    half = config.iterations // 2
    if not config.lr_decay or half == 0 or step <= half:
        rate = config.lr
    else:
        rate = max(0.0, config.lr * (1.0 - (step - half) / half))
    if warmup_start is not None and config.warmup_steps > 0:
        rate *= min(1.0, (step - warmup_start) / config.warmup_steps)
    return rate


def load_faceid_network(config: TrainConfig, device: torch.device) -> nn.Module | None:
    """The frozen Face ID network, or None when its loss weight is 0 (then nothing is loaded)."""
    if config.weights.faceid == 0:
        return None
    try:
        from p2c.training.faceid import load_faceid
    except ImportError as error:
        raise MissingDependencyError(
            "the Face ID network (p2c.training.faceid) is not available in this install; "
            "pass --faceid-weight 0 to train without the Face ID loss"
        ) from error
    return load_faceid(config.faceid_weights, device)


def check_data(data_dir: Path) -> None:
    """Fail early, in one sentence, when the dataset folder is not laid out as training needs."""
    if not data_dir.is_dir():
        raise InputNotFoundError(f"data folder {data_dir} does not exist; run p2c-prepare-data to create it")
    for domain in ("trainA", "trainB"):
        if not list_images(data_dir / domain):
            raise InvalidInputError(
                f"{data_dir / domain} holds no images; prepare photos with p2c-prepare-data --domain A "
                "and cartoons with --domain B"
            )


class Trainer:
    """Builds everything from a :class:`TrainConfig`; :meth:`run` trains (resumable) and exports."""

    def __init__(self, config: TrainConfig, faceid: nn.Module | None = None) -> None:
        self.config = config
        self.run_dir = config.run_dir
        check_data(Path(config.data_dir))
        self.device = resolve_device(config.device, local_rank_from_env())
        use_device(self.device)
        self.context: DistContext = init_distributed(self.device)
        self.amp_dtype = resolve_amp(config.amp, self.device)
        self.options = StepOptions.for_run(config, self.device, self.amp_dtype, self.context.distributed)
        self._seed_everything()
        self.gan, self.optimizers = build_networks(config, self.device, self.options, self.amp_dtype)
        self.faceid = faceid if faceid is not None else load_faceid_network(config, self.device)
        prepare_faceid(self.faceid, self.device, self.options)
        self.step = 0
        self.warmup_start: int | None = None
        # Whether the ramp also holds the discriminators back: not after --init-from, where they
        # start fresh (as in a new run) and their Adam has warmed up during the D-only steps.
        self.ramp_discriminators = True
        self.d_warmup_due = 0  # discriminator-only steps still to run (after --init-from)
        self.samples_before = 0  # samples the generators had seen when this run started
        self.start_step = 0
        self.log: RunLog | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def _seed_everything(self) -> None:
        # Same torch seed on every rank: identical initial weights (DDP also broadcasts them).
        torch.manual_seed(self.config.seed)
        np.random.seed(self.config.seed + self.context.rank)
        random.seed(self.config.seed + self.context.rank)

    def _prepare_run_dir(self) -> None:
        if not self.context.is_main:
            return
        try:
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
        except OSError as error:
            raise InvalidInputError(
                f"cannot create run folder {self.run_dir}: {error.strerror or error}"
            ) from error
        config_path = self.run_dir / "config.json"
        if self.config.resume and config_path.is_file():
            previous = json.loads(config_path.read_text())
            changed = shape_changes(previous, self.config)
            if changed:
                raise InvalidInputError(
                    f"--resume with different {', '.join(changed)} than the run in {self.run_dir}; "
                    "use the same options or a new --out folder"
                )
        with atomic_write(config_path) as stream:
            stream.write(self.config.to_json() + "\n")

    def _load_start_state(self) -> None:
        folder = self.run_dir / "checkpoints"
        latest = ckpt.latest_checkpoint(folder) if self.config.resume else None
        if latest is not None:
            self._restore(ckpt.read_checkpoint(latest))
            logger.info("resumed from %s at step %d", latest, self.step)
            return
        if self.config.resume:
            logger.info("--resume: no checkpoint in %s yet, starting from step 0", folder)
        if self.config.resume_from:
            self._restore_slice(Path(self.config.resume_from))
            return
        if self.config.init_from:
            self._init_from(Path(self.config.init_from))
            return
        if self.config.pretrained:
            path = Path(self.config.pretrained)
            payload = ckpt.read_checkpoint(path)
            self.gan.load_network_state_dicts(
                ckpt.expand(payload) if "optimizers" in payload else payload, str(path)
            )
            logger.info("initialised all six networks from %s", path)

    def _restore(self, payload: dict[str, Any]) -> None:
        payload = ckpt.expand(payload)
        self.gan.load_network_state_dicts(payload, "checkpoint")
        self.optimizers.load_state_dicts(payload["optimizers"], payload["scalers"])
        self.step = int(payload["step"])
        warmup_start = payload.get("warmup_start")
        self.warmup_start = int(warmup_start) if warmup_start is not None else None
        self.samples_before = int(payload.get("samples_seen", 0))
        self.ramp_discriminators = bool(payload.get("ramp_discriminators", True))
        self._restore_rng(payload.get("rng", []))

    def _restore_slice(self, path: Path) -> None:
        """Networks, step and RNGs from a slice state; fresh optimisers, warmed up from this step."""
        state = read_slice_state(path)
        changed = shape_changes(state.get("config", {}), self.config)
        if changed:
            raise InvalidInputError(
                f"--resume-from {path} was trained with different {', '.join(changed)}; "
                "use the same --arch/--img-size/--ch options"
            )
        self.gan.load_network_state_dicts(state, str(path))
        self.step = int(state["step"])
        self.warmup_start = self.step
        self._restore_rng(state.get("rng", []))
        logger.info(
            "resumed from slice state %s at step %d: Adam restarts, lr warmed up over %d steps",
            path,
            self.step,
            self.config.warmup_steps,
        )

    def _init_from(self, folder: Path) -> None:
        """Both generators and the step from a generator state; the discriminators stay fresh."""
        state = read_generator_state(folder)
        # Only the generators come from the state: the discriminators' width (--ch) matters only
        # where it is also the generators' (photo2cartoon's ngf).
        names = ("arch", "ch", "light") if self.config.arch == DEFAULT_ARCH else ("arch",)
        changed = shape_changes(state.info, self.config, names)
        if changed:
            raise InvalidInputError(
                f"--init-from {folder} holds generators with different {', '.join(changed)}; "
                "use the same --arch/--ch options"
            )
        self.gan.load_network_state_dicts(state.networks, str(folder), generators_only=True)
        self.step = state.step
        self.samples_before = int(state.info.get("samples_seen", 0))
        self.d_warmup_due = self.config.d_warmup_steps
        self.warmup_start = self.step
        self.ramp_discriminators = False
        logger.info(
            "initialised both generators from %s at step %d; fresh discriminators train alone for %d "
            "steps, then the generators' rate is warmed up over %d steps",
            folder,
            self.step,
            self.d_warmup_due,
            self.config.warmup_steps,
        )

    def _restore_rng(self, rng_states: list[Any]) -> None:
        if len(rng_states) == self.context.world_size:
            ckpt.restore_rng(rng_states[self.context.rank])
        else:
            logger.warning(
                "checkpoint was written by %d process(es), this run has %d: RNG states re-seeded, "
                "so the run continues but is not bit-identical to an uninterrupted one",
                len(rng_states),
                self.context.world_size,
            )
            self._seed_everything()

    def _wrap(self, module: nn.Module, train_side: bool) -> Any:
        wrapped: Any = module
        if train_side and self.context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # photo2cartoon's generators hold layers their forward never uses (the released
            # checkpoint has them, see p2c.models.generator), which DDP must be told about.
            unused = isinstance(module, ResnetGenerator)
            wrapped = DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused)
        # Only the generators are compiled: the discriminators' spectral norm updates its power-
        # iteration vectors in place on every call, which compiled autograd graphs reject when a
        # discriminator runs twice (real, fake) before one backward. The generators dominate anyway.
        if self.options.graph == "compile" and is_generator(module):
            wrapped = CompiledOrEager(torch.compile(wrapped), wrapped, "the generators")
        return wrapped

    def _step_runner(self, step: Callable[[torch.Tensor, torch.Tensor], Losses]) -> Any:
        """The step as it runs: a CUDA graph replay, or the step itself."""
        if self.options.graph != "cuda":
            return step

        def drop_gradients() -> None:
            self.optimizers.g.zero_grad(set_to_none=True)
            self.optimizers.d.zero_grad(set_to_none=True)

        return CudaGraphStep(step, on_failure=drop_gradients)

    def _loaders(self, size: int) -> tuple[Any, Any]:
        data = Path(self.config.data_dir)
        iterators = []
        for domain_id, domain in enumerate(("trainA", "trainB")):
            dataset = AugmentedFolder(data / domain, size)
            sampler = DomainBatchSampler(
                len(dataset),
                self.config.batch_size,
                seed=self.config.seed,
                domain=domain_id,
                rank=self.context.rank,
                world_size=self.context.world_size,
                start_step=self.step,
            )
            pin = self.device.type == "cuda"
            iterators.append(make_loader(dataset, sampler, self.config.num_workers, pin))
        return iterators[0], iterators[1]

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # -- outputs --------------------------------------------------------------------------------

    def _payload(self) -> dict[str, Any]:
        rng_states = all_gather_objects(self.context, ckpt.capture_rng())
        optimizers, scalers = self.optimizers.state_dicts()
        payload: dict[str, Any] = {
            "format": ckpt.CHECKPOINT_FORMAT,
            "step": self.step,
            "config": self.config.to_dict(),
            "world_size": self.context.world_size,
            **self.gan.network_state_dicts(),
            "optimizers": optimizers,
            "scalers": scalers,
            "rng": rng_states,
            "warmup_start": self.warmup_start,
            "samples_seen": self.samples_seen(),
            "ramp_discriminators": self.ramp_discriminators,
        }
        return ckpt.compact(payload) if self.config.compact_checkpoints else payload

    def save_checkpoint(self) -> Path:
        """Collective (every rank contributes its RNG state); rank 0 writes."""
        payload = self._payload()
        folder = self.run_dir / "checkpoints"
        path = ckpt.checkpoint_path(folder, self.step)
        if self.context.is_main:
            ckpt.write_checkpoint(path, payload)
            ckpt.prune_checkpoints(folder, self.config.keep_checkpoints)
            logger.info("saved %s", path)
        barrier(self.context)
        return path

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        if not self.context.is_main or self.config.sample_rows == 0:
            return None
        data = Path(self.config.data_dir)
        folder = data / "testA" if list_images_safe(data / "testA") else data / "trainA"
        dataset = AugmentedFolder(folder, self.config.img_size)
        count = min(self.config.sample_rows, len(dataset))
        photos = torch.stack([dataset.plain(i) for i in range(count)]).to(self.device)
        with self._autocast():
            cartoons = self.gan.genA2B(photos)[0]
            cycles = self.gan.genB2A(cartoons)[0]
        path = self.run_dir / "samples" / f"A2B_{self.step:08d}.png"
        write_png(path, grid_image([photos, cartoons, cycles]))
        return path

    def export(self) -> Path | None:
        if not self.context.is_main:
            return None
        target = self.run_dir / "export" / f"p2c_genA2B_{self.step:08d}.safetensors"
        return export_generator(self.gan.genA2B, target)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop_after: int | None = None, time_limit: float | None = None) -> TrainResult:
        """Train up to ``iterations`` (or ``stop_after``, to split a run across jobs); then checkpoint.

        ``time_limit`` (minutes): stop after the first step that ends past it, with a checkpoint
        (and a slice state with ``slice_state``), so a job fits a fixed time slot.
        """
        config = self.config
        self._prepare_run_dir()
        barrier(self.context)
        self._load_start_state()
        self.start_step = self.step
        if not self.samples_before:
            self.samples_before = self._samples(self.step)
        self.log = RunLog(self.run_dir) if self.context.is_main else None
        last = min(config.iterations, stop_after) if stop_after is not None else config.iterations
        result = TrainResult(step=self.step, run_dir=self.run_dir)
        if self.step >= last:
            logger.info("nothing to do: the run is at step %d of %d", self.step, last)
            return result
        gan_step = GanStep(
            self.gan,
            self.faceid,
            config.weights,
            self.optimizers,
            self.amp_dtype,
            self.device,
            self.options,
            wrap=self._wrap,
        )
        for module in self.gan.children():
            module.train()
        deadline = time.monotonic() + 60.0 * time_limit if time_limit is not None else None
        if self.d_warmup_due:
            self._warm_up_discriminators(gan_step, self.d_warmup_due)
        window_start, window_steps = time.perf_counter(), 0
        saved_at, size = -1, 0
        parts: Losses = {}
        logger.info("training %s from step %d to %d on %s", self.run_dir, self.step, last, self.device)
        while self.step < last:
            if size_at(config.size_schedule, config.img_size, self.step + 1) != size:
                size = size_at(config.size_schedule, config.img_size, self.step + 1)
                loader_a, loader_b = self._loaders(size)
                run_step = self._step_runner(gan_step)  # a graph is captured for one input shape
                logger.info("step %d on: %dx%d crops", self.step + 1, size, size)
            self.step += 1
            self._set_lr()
            real_a = next(loader_a).to(self.device, non_blocking=True)
            real_b = next(loader_b).to(self.device, non_blocking=True)
            parts = run_step(real_a, real_b)
            window_steps += 1
            if self.step % config.log_every == 0 or self.step == last:
                elapsed = time.perf_counter() - window_start
                lr = learning_rate(config, self.step, self.warmup_start)
                self._log(parts, lr, window_steps / max(elapsed, 1e-9), size)
                window_start, window_steps = time.perf_counter(), 0
            if self.step % config.sample_every == 0:
                self.write_samples()
            if self.step % config.save_every == 0:
                result.checkpoint = self.save_checkpoint()
                saved_at = self.step
            if config.export_every and self.step % config.export_every == 0 and self.step < config.iterations:
                self.export()
            # In a process group the ranks agree on stopping through a collective: only at log steps.
            check = not self.context.distributed or self.step % config.log_every == 0
            if deadline is not None and check and self._past(deadline):
                logger.info("time limit of %.1f min reached at step %d", time_limit, self.step)
                break
        if saved_at != self.step:
            result.checkpoint = self.save_checkpoint()
        if config.slice_state:
            result.slice_state = self.save_slice_state(Path(config.slice_state))
        if config.generator_state:
            result.generator_state = self.save_generator_state(Path(config.generator_state))
        if self.step >= config.iterations:
            self.write_samples()
            result.exported = self.export()
        result.step = self.step
        result.losses = {name: float(value.detach()) for name, value in parts.items()}
        if self.log is not None:
            self.log.close()
        return result

    def _past(self, deadline: float) -> bool:
        """Whether the time is up; in a process group every rank stops at the same step (rank 0 decides)."""
        late = time.monotonic() >= deadline
        if self.context.distributed:
            return bool(all_gather_objects(self.context, late)[0])
        return late

    def save_slice_state(self, path: Path) -> Path:
        """Collective like :meth:`save_checkpoint`; rank 0 writes the compact state (<= 60 MB)."""
        payload = self._payload()
        if self.context.is_main:
            write_slice_state(path, payload, generators=self.config.slice_generators)
        barrier(self.context)
        return path

    def _warm_up_discriminators(self, gan_step: GanStep, steps: int) -> None:
        """``steps`` D updates with the generators frozen, logged to ``d_warmup.csv``.

        Fresh discriminators first learn to tell the generators' current cartoons from real ones;
        otherwise the generators' first updates would follow a random discriminator's verdicts.
        The batches are those of the steps that follow; the step counter does not move.
        """
        size = size_at(self.config.size_schedule, self.config.img_size, self.step + 1)
        loader_a, loader_b = self._loaders(size)
        run_step = self._step_runner(gan_step.discriminator_step)
        self.optimizers.set_lr(learning_rate(self.config, self.step + 1))  # no ramp: D starts fresh
        log = RunLog(self.run_dir, "d_warmup.csv", tensorboard=False) if self.context.is_main else None
        parts: Losses = {}
        for number in range(1, steps + 1):
            real_a = next(loader_a).to(self.device, non_blocking=True)
            real_b = next(loader_b).to(self.device, non_blocking=True)
            parts = run_step(real_a, real_b)
            if log is not None and (number % self.config.log_every == 0 or number == steps):
                log.write(number, {name: float(value.detach()) for name, value in parts.items()})
        del run_step  # a captured graph's memory goes with it
        self.d_warmup_due = 0
        if log is not None:
            log.close()
            logger.info("discriminators warmed up over %d steps: D %.4f", steps, float(parts["D"].detach()))

    def _set_lr(self) -> None:
        rate = learning_rate(self.config, self.step, self.warmup_start)
        d_rate = None if self.ramp_discriminators else learning_rate(self.config, self.step)
        self.optimizers.set_lr(rate, d_rate)

    def _samples(self, steps: int) -> int:
        return steps * self.config.batch_size * self.context.world_size

    def samples_seen(self) -> int:
        """Training samples behind the generators: earlier runs' (as recorded) plus this run's."""
        return self.samples_before + self._samples(self.step - self.start_step)

    def save_generator_state(self, folder: Path) -> Path:
        """Rank 0 writes both generators (FP16) and the step, for ``--init-from``."""
        if self.context.is_main:
            extra = {"samples_seen": self.samples_seen(), "batch_size": self.config.batch_size}
            generators = {key: self.gan.network(key) for key in GENERATOR_KEYS}
            write_generator_state(folder, generators, self.step, self.config.to_dict(), extra)
        barrier(self.context)
        return folder

    def _log(self, parts: Losses, lr: float, rate: float, size: int) -> None:
        """The one place the losses reach the host (and so the CPU waits for the GPU)."""
        values = {name: float(value.detach()) for name, value in parts.items()}
        if self.log is None:
            return
        self.log.write(self.step, {"lr": lr, "it_per_s": rate, **values, "crop_size": size})
        logger.info(
            "step %d/%d  D %.4f  G %.4f  lr %.2e  %.2f it/s",
            self.step,
            self.config.iterations,
            values["D"],
            values["G"],
            lr,
            rate,
        )

    def close(self) -> None:
        shutdown(self.context)


def list_images_safe(folder: Path) -> list[Path]:
    return list_images(folder) if folder.is_dir() else []


def train(
    config: TrainConfig,
    faceid: nn.Module | None = None,
    stop_after: int | None = None,
    time_limit: float | None = None,
) -> TrainResult:
    """Build a :class:`Trainer`, run it, and leave the process group however it ends."""
    trainer = Trainer(config, faceid=faceid)
    try:
        return trainer.run(stop_after=stop_after, time_limit=time_limit)
    finally:
        trainer.close()
