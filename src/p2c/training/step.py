"""One training step of photo2cartoon's GAN, and the options that make it fast without changing it.

The step updates the four discriminators on (real, translated) pairs, then both generators, then
clips the generators' rho and w into [0, 1], as photo2cartoon does (a generator without them, such
as the compact one, has nothing to clip). The side being optimised runs
through its DistributedDataParallel wrapper (``wrap``); the side held fixed runs bare.

It never waits for the GPU: the losses come back as device tensors, and nothing in it reads a
tensor's value on the host (``.item()``, ``float()``, a bool test), so the CPU can queue the next
kernels while the GPU runs; the trainer reads losses only at log steps. (With ``--amp fp16`` the
GradScalers still check for infinities on the host unless Adam is fused.)

:class:`StepOptions` switches the speed-ups, each on the same arithmetic as the reference step
(all off: the step as it was written first, kept for the equivalence tests and the benchmark):

- ``share_translations``: the D step judges the G step's translations (detached) instead of running
  both generators a second time without gradients; the generators' weights are the same for both
  (only the discriminators have been updated in between), so the images are the same. The cycles
  and identity mappings are computed after the D step, as before, so that their activations are
  not held during it.
- ``freeze_discriminators``: no weight gradients for the discriminators in the G step; the reference
  computes them and the next D step discards them.
- ``fused_optimizer``: fused Adam (:mod:`p2c.training.optimizers`) and one multi-tensor clamp.
- ``channels_last``, ``out_of_place_activations``, ``checkpoint_hourglasses``: see
  :mod:`p2c.training.network_setup`.
- ``graph``: ``cuda`` replays the whole step as one CUDA graph, ``compile`` compiles the
  generators (:mod:`p2c.training.graphs`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from p2c.training.config import LossWeights, TrainConfig
from p2c.training.discriminator import clip_mixing_
from p2c.training.gan import GENERATOR_KEYS, NETWORK_KEYS, CartoonGan
from p2c.training.losses import (
    GanNetworks,
    discriminator_loss,
    translate,
    translate_fakes,
    translation_loss,
)
from p2c.training.network_setup import (
    checkpoint_hourglasses,
    to_channels_last,
    use_out_of_place_activations,
)
from p2c.training.optimizers import Optimizers, build_optimizers

__all__ = [
    "GRAPH_MODES",
    "GanStep",
    "Losses",
    "StepOptions",
    "build_networks",
    "prepare_faceid",
    "prepare_networks",
    "resolve_amp",
]

logger = logging.getLogger(__name__)

Losses = dict[str, torch.Tensor]
GRAPH_MODES = ("off", "cuda", "compile")


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """``--amp`` as an autocast dtype; ``auto``: bf16 on CUDA GPUs that have it, none elsewhere."""
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "none"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[mode]


@dataclass(frozen=True)
class StepOptions:
    """Which speed-ups the step uses; the defaults (all off) are the reference step."""

    share_translations: bool = False
    freeze_discriminators: bool = False
    fused_optimizer: bool = False
    channels_last: bool = False
    out_of_place_activations: bool = False
    checkpoint_hourglasses: bool = False
    graph: str = "off"

    def __post_init__(self) -> None:
        if self.graph not in GRAPH_MODES:
            raise ValueError(f"graph must be one of {', '.join(GRAPH_MODES)}, got {self.graph!r}")

    @classmethod
    def for_run(
        cls, config: TrainConfig, device: torch.device, amp: torch.dtype | None, distributed: bool
    ) -> StepOptions:
        """The options a training run uses: every exact speed-up, the rest as ``config`` asks."""
        return cls(
            share_translations=True,
            freeze_discriminators=True,
            fused_optimizer=config.fused_adam,
            channels_last=config.channels_last == "on"
            or (config.channels_last == "auto" and device.type == "cuda"),
            out_of_place_activations=True,
            checkpoint_hourglasses=config.checkpoint_hourglasses,
            graph=_graph_mode(config, device, amp, distributed),
        )


def _graph_mode(config: TrainConfig, device: torch.device, amp: torch.dtype | None, distributed: bool) -> str:
    if config.compile:
        return "compile"
    if config.cuda_graph == "off":
        return "off"
    # A captured graph replays fixed kernels: no host decisions (GradScaler's fp16 inf checks), no
    # collectives that DDP issues as gradients become ready.
    reasons = {
        "the device is not a CUDA GPU": device.type != "cuda",
        "several processes train together (DDP)": distributed,
        "--amp fp16 needs GradScalers": amp == torch.float16,
    }
    blocking = [reason for reason, applies in reasons.items() if applies]
    if blocking:
        if config.cuda_graph == "on":
            logger.warning("--cuda-graph on is not possible here (%s): the step runs eagerly", blocking[0])
        return "off"
    return "cuda"


def build_networks(
    config: TrainConfig,
    device: torch.device,
    options: StepOptions,
    amp: torch.dtype | None,
    faceid: nn.Module | None = None,
) -> tuple[CartoonGan, Optimizers]:
    """The six networks (from the current torch seed), set up for ``options``, and their optimisers."""
    gan = CartoonGan(config.ch, config.img_size, config.light, arch=config.arch).to(device)
    prepare_networks(gan, options)
    prepare_faceid(faceid, device, options)
    optimizers = build_optimizers(
        gan.generator_parameters(),
        gan.discriminator_parameters(),
        config,
        device,
        use_scaler=amp == torch.float16,
        fused=options.fused_optimizer,
        capturable=options.graph == "cuda",
    )
    return gan, optimizers


def prepare_networks(gan: CartoonGan, options: StepOptions) -> None:
    """Set the six networks up for ``options`` (before the optimisers are built: layouts change)."""
    for key in GENERATOR_KEYS:
        generator = gan.network(key)
        if options.out_of_place_activations:
            use_out_of_place_activations(generator)
        if options.checkpoint_hourglasses:
            checkpoint_hourglasses(generator)
    if options.channels_last:
        to_channels_last(gan)


def prepare_faceid(faceid: nn.Module | None, device: torch.device, options: StepOptions) -> None:
    """The frozen Face ID network on ``device``, in the layout the step feeds it."""
    if faceid is None:
        return
    faceid.to(device).eval().requires_grad_(False)
    if options.channels_last:
        to_channels_last(faceid)


@contextlib.contextmanager
def _no_gradients(parameters: list[nn.Parameter]) -> Iterator[None]:
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def _bare(module: nn.Module, train_side: bool) -> Any:
    return module


class GanStep:
    """``step(real_a, real_b) -> losses``: one D and one G update; losses stay on the device.

    ``wrap(module, train_side)`` returns what to call for a network on the side being optimised
    (``train_side=True``: DistributedDataParallel, compiled) or held fixed.
    """

    def __init__(
        self,
        gan: CartoonGan,
        faceid: nn.Module | None,
        weights: LossWeights,
        optimizers: Optimizers,
        amp: torch.dtype | None,
        device: torch.device,
        options: StepOptions,
        wrap: Callable[[nn.Module, bool], Any] = _bare,
    ) -> None:
        self.gan, self.faceid, self.weights = gan, faceid, weights
        self.optimizers, self.amp, self.device, self.options = optimizers, amp, device, options
        gens = set(GENERATOR_KEYS)
        self.d_nets = GanNetworks(**{k: wrap(gan.network(k), k not in gens) for k in NETWORK_KEYS})
        self.g_nets = GanNetworks(**{k: wrap(gan.network(k), k in gens) for k in NETWORK_KEYS})
        self._mixing: list[torch.Tensor] = list(gan.mixing_parameters())
        self._discriminator_parameters = gan.discriminator_parameters()

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.amp is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def _frozen_discriminators(self) -> AbstractContextManager[Any]:
        if not self.options.freeze_discriminators:
            return nullcontext()
        return _no_gradients(self._discriminator_parameters)

    @staticmethod
    def _update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def _clip(self) -> None:
        if self.options.fused_optimizer:
            clip_mixing_(self._mixing)
        else:
            self.gan.clip_()

    def _inputs(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.options.channels_last:
            real_a = real_a.contiguous(memory_format=torch.channels_last)
            real_b = real_b.contiguous(memory_format=torch.channels_last)
        return real_a, real_b

    def discriminator_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> Losses:
        """Only the D update, the generators frozen (no gradients, no clip): the D warm-up of a run
        continued from its generators alone (``--init-from``). Returns the D losses."""
        real_a, real_b = self._inputs(real_a, real_b)
        with torch.no_grad(), self._autocast():
            fake_a2b = self.d_nets.genA2B(real_a)[0]
            fake_b2a = self.d_nets.genB2A(real_b)[0]
        with self._autocast():
            d_loss, d_parts = discriminator_loss(
                self.d_nets, real_a, real_b, fake_a2b, fake_b2a, self.weights
            )
        self._update(self.optimizers.d, self.optimizers.d_scaler, d_loss)
        return d_parts

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> Losses:
        real_a, real_b = self._inputs(real_a, real_b)
        optimizers, fakes = self.optimizers, None
        if self.options.share_translations:
            # Only the two translations: the cycles' and identities' activations need not be alive
            # during the D step (its peak memory stays the reference's).
            with self._autocast():
                fakes = translate_fakes(self.g_nets, real_a, real_b)
            fake_a2b, fake_b2a = fakes[0][0].detach(), fakes[1][0].detach()
        else:
            with torch.no_grad(), self._autocast():
                fake_a2b = self.d_nets.genA2B(real_a)[0]
                fake_b2a = self.d_nets.genB2A(real_b)[0]
        with self._autocast():
            d_loss, d_parts = discriminator_loss(
                self.d_nets, real_a, real_b, fake_a2b, fake_b2a, self.weights
            )
        self._update(optimizers.d, optimizers.d_scaler, d_loss)

        with self._frozen_discriminators():
            with self._autocast():
                translations = translate(self.g_nets, real_a, real_b, fakes)
                g_loss, g_parts = translation_loss(
                    self.g_nets, translations, real_a, real_b, self.weights, self.faceid
                )
            self._update(optimizers.g, optimizers.g_scaler, g_loss)
        self._clip()
        return {**d_parts, **g_parts}
