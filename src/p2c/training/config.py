"""The training configuration: one frozen dataclass that the command line maps onto.

The resolved configuration is written as ``config.json`` into the run folder, and a resumed run
checks that the options which shape the networks have not changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from p2c.models.architectures import ARCHITECTURES, DEFAULT_ARCH
from p2c.training.schedule import SizeSchedule, format_size_schedule, parse_size_schedule

__all__ = ["AMP_MODES", "MIN_IMG_SIZE", "SWITCHES", "LossWeights", "TrainConfig", "cli", "shape_changes"]

AMP_MODES = ("auto", "bf16", "fp16", "none")
SWITCHES = ("auto", "on", "off")
# The global discriminator halves the image five times, then needs 3x3 left for its last two
# 4x4 convolutions with reflection padding: 96 is the smallest size (a multiple of 16) that fits.
MIN_IMG_SIZE = 96
# Options that change the networks' shapes: a resumed run must keep them.
SHAPE_FIELDS = ("arch", "img_size", "ch", "light")
# What a run recorded before an option existed had: a config.json without "arch" trained photo2cartoon's.
_RECORDED_DEFAULTS: dict[str, object] = {"arch": DEFAULT_ARCH}
# Discriminator-only steps after --init-from; measured on the CPU (docs/default-model.md).
DEFAULT_D_WARMUP_STEPS = 200


def cli(help: str, **argparse: Any) -> dict[str, Any]:
    """Field metadata that puts a field on ``p2c-train``'s command line (see commands/train.py).

    ``help`` is argparse's text; the option is ``--field-name`` unless ``flag`` names another.
    ``negate=True``: a boolean that defaults to True, turned off by ``flag``. ``path=True``: the
    value is resolved to an absolute path. ``parse``: a function text -> value (argparse ``type``).
    Other keys (``choices``, ``metavar``) go to ``add_argument`` as they are.
    """
    return {"cli": {"help": help, **argparse}}


@dataclass(frozen=True)
class LossWeights:
    """photo2cartoon's loss weights (``adv``, ``cycle``, ``identity``, ``cam``, ``faceid``)."""

    adv: float = field(default=1.0, metadata=cli("adv loss weight (default %(default)s)"))
    cycle: float = field(default=50.0, metadata=cli("cycle loss weight (default %(default)s)"))
    identity: float = field(default=10.0, metadata=cli("identity loss weight (default %(default)s)"))
    cam: float = field(default=1000.0, metadata=cli("cam loss weight (default %(default)s)"))
    faceid: float = field(
        default=1.0,
        metadata=cli("faceid loss weight (default %(default)s); 0 skips loading the Face ID network"),
    )

    def __post_init__(self) -> None:
        for weight in fields(self):
            value = getattr(self, weight.name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"loss weight {weight.name} must be >= 0, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Paths are strings so the JSON round-trips.

    Fields with :func:`cli` metadata are ``p2c-train`` options; the loss weights are
    ``--{name}-weight``. ``light``, ``betas`` and ``weight_decay`` are photo2cartoon's and only
    settable from Python.
    """

    data_dir: str = field(
        metadata=cli(
            "dataset folder with trainA (photos) and trainB (cartoons)",
            flag="--data",
            metavar="DATA",
            path=True,
        )
    )
    out_dir: str = field(
        metadata=cli(
            "run folder: config.json, metrics.csv, samples/, checkpoints/, export/",
            flag="--out",
            metavar="OUT",
            path=True,
        )
    )
    iterations: int = field(default=100_000, metadata=cli("total training steps (default %(default)s)"))
    batch_size: int = field(default=1, metadata=cli("per process (default %(default)s)"))
    img_size: int = field(default=256, metadata=cli("crop size, >= 96 (default %(default)s)"))
    ch: int = field(
        default=32,
        metadata=cli(
            "base channel width of the discriminators and of photo2cartoon's generators (its ngf; the "
            "compact generator has its own widths) (default %(default)s)"
        ),
    )
    arch: str = field(
        default=DEFAULT_ARCH,
        metadata=cli(
            "generator architecture, trained with photo2cartoon's objective: photo2cartoon's U-GAT-IT "
            "generator, or p2c's compact one (its default config at --img-size) (default %(default)s)",
            choices=tuple(ARCHITECTURES),
        ),
    )
    light: bool = True
    lr: float = field(default=1e-4, metadata=cli("Adam learning rate (default %(default)s)"))
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    # Linear decay to 0 over the second half, as photo2cartoon.
    lr_decay: bool = field(
        default=True,
        metadata=cli(
            "keep the learning rate constant (default: linear decay to 0 over the second half)",
            flag="--no-lr-decay",
            negate=True,
        ),
    )
    weights: LossWeights = LossWeights()
    faceid_weights: str | None = field(
        default=None, metadata=cli("Face ID network weights (default: the shipped one)")
    )
    pretrained: str | None = field(
        default=None, metadata=cli("start from photo2cartoon_weights.pt or a p2c-train checkpoint", path=True)
    )
    resume: bool = field(default=False, metadata=cli("continue from the latest checkpoint in --out"))
    # A slice state (p2c.training.slice_state) to continue from on a fresh machine: networks, step
    # and RNGs; both Adams restart, with the learning rate ramped up over warmup_steps.
    resume_from: str | None = field(
        default=None,
        metadata=cli(
            "continue from a --slice-state file (fresh Adam, lr warmed up over --warmup-steps)",
            metavar="STATE",
            path=True,
        ),
    )
    slice_state: str | None = field(
        default=None,
        metadata=cli(
            "when training stops, also write a compact resume state (<= 60 MB) to PATH",
            metavar="PATH",
            path=True,
        ),
    )
    slice_generators: str = field(
        default="fp32",
        metadata=cli(
            "generators' precision in the slice state: fp32 (59 MB at full size) or fp16 (44 MB)",
            choices=("fp32", "fp16"),
        ),
    )
    warmup_steps: int = field(
        default=200,
        metadata=cli("learning-rate warm-up after --resume-from or --init-from (default %(default)s)"),
    )
    # A generator state (p2c.training.generator_state): both generators and the step, nothing else.
    # The discriminators start fresh and train alone first; then the generators' rate is warmed up.
    init_from: str | None = field(
        default=None,
        metadata=cli(
            "continue from a --generator-state folder: its generators and step, fresh discriminators "
            "trained alone for --d-warmup-steps first, the generators' rate warmed up over --warmup-steps",
            metavar="STATE",
            path=True,
        ),
    )
    d_warmup_steps: int = field(
        default=DEFAULT_D_WARMUP_STEPS,
        metadata=cli("discriminator-only steps (generators frozen) after --init-from (default %(default)s)"),
    )
    generator_state: str | None = field(
        default=None,
        metadata=cli(
            "when training stops, also write both generators (FP16) and the step to the folder DIR, "
            "for --init-from",
            metavar="DIR",
            path=True,
        ),
    )
    device: str = field(default="auto", metadata=cli("auto, cpu, cuda, cuda:N (default %(default)s)"))
    amp: str = field(
        default="auto", metadata=cli("mixed precision (auto: bf16 on CUDA, none on CPU)", choices=AMP_MODES)
    )
    compile: bool = field(default=False, metadata=cli("torch.compile the generators"))
    # The speed options (p2c.training.step): none of them changes what is computed.
    channels_last: str = field(
        default="auto",
        metadata=cli(
            "channels-last memory format for the six networks and their inputs (auto: on CUDA)",
            choices=SWITCHES,
        ),
    )
    cuda_graph: str = field(
        default="auto",
        metadata=cli(
            "replay the whole D+G step as one CUDA graph (auto: on one CUDA GPU, without --compile "
            "or --amp fp16)",
            choices=SWITCHES,
        ),
    )
    fused_adam: bool = field(
        default=True,
        metadata=cli(
            "use torch's multi-tensor Adam instead of the fused one", flag="--no-fused-adam", negate=True
        ),
    )
    checkpoint_hourglasses: bool = field(
        default=False,
        metadata=cli(
            "recompute the generators' hourglasses in the backward pass instead of keeping their "
            "activations (less memory, slower steps)"
        ),
    )
    size_schedule: SizeSchedule = field(
        default=(),
        metadata=cli(
            "progressive resolution: SIZE:STEPS pairs, e.g. 128:2000,256:8000 (the last size is "
            "--img-size and also runs the steps after the schedule)",
            metavar="SIZE:STEPS,...",
            parse=parse_size_schedule,
        ),
    )
    seed: int = field(
        default=0, metadata=cli("seed of weights, data order and augmentation (default %(default)s)")
    )
    num_workers: int = field(default=2, metadata=cli("data-loading processes per domain"))
    log_every: int = field(default=10, metadata=cli("log losses every N steps (default %(default)s)"))
    sample_every: int = field(
        default=1000, metadata=cli("write a sample grid every N steps (default %(default)s)")
    )
    save_every: int = field(
        default=1000, metadata=cli("write a checkpoint every N steps (default %(default)s)")
    )
    export_every: int = field(default=0, metadata=cli("0: export only when training ends"))
    keep_checkpoints: int = field(
        default=3, metadata=cli("how many of the latest checkpoints to keep (default %(default)s)")
    )
    compact_checkpoints: bool = field(
        default=False,
        metadata=cli("discriminators in FP16 in checkpoints (smaller; resume close but not bit-exact)"),
    )
    sample_rows: int = field(default=4, metadata=cli("photos per sample grid (default %(default)s)"))

    def __post_init__(self) -> None:
        positive = ("iterations", "batch_size", "log_every", "sample_every", "save_every", "keep_checkpoints")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("num_workers", "export_every", "seed", "sample_rows", "warmup_steps", "d_warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.img_size < MIN_IMG_SIZE or self.img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16 and >= {MIN_IMG_SIZE}, got {self.img_size}")
        if self.ch < 4 or self.ch % 4:
            raise ValueError(f"ch must be a positive multiple of 4, got {self.ch}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {self.arch!r}")
        if not 0.0 < self.lr < 1.0:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.slice_generators not in ("fp32", "fp16"):
            raise ValueError(f"slice_generators must be fp32 or fp16, got {self.slice_generators!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        for name in ("channels_last", "cuda_graph"):
            if getattr(self, name) not in SWITCHES:
                raise ValueError(f"{name} must be one of {', '.join(SWITCHES)}, got {getattr(self, name)!r}")
        self._check_size_schedule()
        if self.resume and self.resume_from:
            raise ValueError(
                "resume and resume_from exclude each other: continue from a checkpoint or a slice state"
            )
        others = [name for name in ("resume", "resume_from", "pretrained") if getattr(self, name)]
        if self.init_from and others:
            raise ValueError(f"init_from and {others[0]} exclude each other: start from one of them")
        if not self.data_dir or not self.out_dir:
            raise ValueError("data_dir and out_dir must be non-empty paths")

    def _check_size_schedule(self) -> None:
        if not self.size_schedule:
            return
        text = format_size_schedule(self.size_schedule)
        for size, steps in self.size_schedule:
            if size < MIN_IMG_SIZE or size % 16 or steps < 1:
                raise ValueError(
                    f"size schedule {text}: each size must be a multiple of 16 and >= {MIN_IMG_SIZE}, "
                    "each step count >= 1"
                )
        if self.size_schedule[-1][0] != self.img_size:
            raise ValueError(
                f"size schedule {text} must end at the networks' size --img-size {self.img_size}"
            )
        if self.arch == DEFAULT_ARCH and not self.light:
            raise ValueError(
                "a size schedule needs the light generator (its layers do not depend on the size)"
            )

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        data["size_schedule"] = [list(entry) for entry in self.size_schedule]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(unknown)}")
        values = dict(data)
        if "weights" in values and isinstance(values["weights"], dict):
            values["weights"] = LossWeights(**values["weights"])
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        if "size_schedule" in values:
            values["size_schedule"] = tuple((int(a), int(b)) for a, b in values["size_schedule"])
        return cls(**values)


def shape_changes(
    recorded: Mapping[str, Any], config: TrainConfig, names: tuple[str, ...] = SHAPE_FIELDS
) -> list[str]:
    """The shape options among ``names`` in which ``config`` differs from a recorded run's config
    (``config.json``, a checkpoint's or a state's); an option the record predates counts as its
    default then (no ``arch``: photo2cartoon)."""
    return [
        name for name in names if recorded.get(name, _RECORDED_DEFAULTS.get(name)) != getattr(config, name)
    ]
