"""A one-sided photo -> cartoon objective that a CPU can afford: FastCUT with DiffAugment.

photo2cartoon's U-GAT-IT objective runs six generator passes and four discriminators per sample
(two generators, cycles, identities). This one trains the photo -> cartoon generator alone:

- adversarial (LSGAN) against two patch discriminators, one on the image and one on the image at
  half size (local texture and the face's overall look), both seeing DiffAugment's transforms of
  real and generated images (:mod:`p2c.training.diffaugment`): 193 cartoons are few;
- the patchwise contrastive loss on the generator's own encoder features
  (:mod:`p2c.training.patchnce`), which keeps the face where it was;
- optionally the Face ID loss (the dlib descriptor port), for identity;
- optionally the foreign-colour loss (:mod:`p2c.training.colour_loss`): no green or blue the photo
  had not, the blotches of video light;
- optionally more discriminators for what makes a drawing: the eye and mouth windows
  (:mod:`p2c.training.parts`), and white-box cartoonisation's surface and texture representations
  (:mod:`p2c.training.whitebox`);
- an exponential moving average of the generator's weights: what ships.

A step is a pure function of the networks, the optimisers and ``(seed, step)``: all its random
draws come from a ``torch.Generator`` seeded from them, so a resumed run repeats it exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.training.colour_loss import foreign_colour_loss
from p2c.training.diffaugment import diff_augment
from p2c.training.faceid import faceid_loss
from p2c.training.identity_contrast import IdentityContrast
from p2c.training.parts import PART_WINDOWS, part_windows
from p2c.training.patchnce import PatchSampler, patch_nce_loss
from p2c.training.whitebox import draw_texture_mix, surface, texture

__all__ = [
    "NETWORK_NAMES",
    "OneSidedConfig",
    "OneSidedNetworks",
    "OneSidedWeights",
    "PatchDiscriminator",
    "StepLosses",
    "generator_step",
    "identity_step",
    "step_generator",
]

NETWORK_NAMES = ("generator", "generator_ema", "disc_local", "disc_global", "patch_sampler", "disc_extra")
ENCODER_LAYERS = 5  # CompactGenerator.encode: three strided convolutions, the body's middle and its end
# The part discriminators' inputs are small windows: shifted, never cut out (that would hide the eye).
PART_POLICY = "translation"


@dataclass(frozen=True)
class OneSidedWeights:
    """Loss weights: adversarial, patchwise contrastive, Face ID (0: off).

    FastCUT uses 10 for the contrastive loss; at equal CPU time (30 min, docs/default-model.md) 10
    kept the photos' look (P(cartoon) 0.29) and 2 made cartoons (0.72) with every face still its own
    nearest match, so 2 it is. The Face ID loss added nothing there (identity rank-1 was 100 %
    without it) and cost a fifth of the samples.
    """

    adv: float = 1.0
    nce: float = 2.0
    faceid: float = 0.0
    stability: float = 0.0
    parts: float = 0.0  # each part discriminator (eyes, mouth); 0: none
    surface: float = 0.0  # white-box surface discriminator; 0: none
    texture: float = 0.0  # white-box texture discriminator; 0: none
    colour: float = 0.0  # the foreign-colour loss (p2c.training.colour_loss); 0: off
    identity: float = 0.0  # the contrastive identity loss (p2c.training.identity_contrast); 0: off

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value >= 0.0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")


@dataclass(frozen=True)
class OneSidedConfig:
    """What shapes the networks and the objective; saved with every state."""

    generator: CompactConfig = field(default_factory=CompactConfig)
    disc_width: int = 32
    weights: OneSidedWeights = field(default_factory=OneSidedWeights)
    # DiffAugment's colour transform is left out: it hides colour from the discriminators, and the
    # palette (pale skin, pink cheeks and lips, brown hair) is part of this style. Measured from the
    # same state, 20 CPU-minutes each: 95 % judged cartoons without it, 85 % with it, KID 2.18 vs 4.88.
    augment_policy: str = "translation,cutout"
    nce_temperature: float = 0.07
    nce_patches: int = 256
    nce_layers: tuple[int, ...] = ()  # the encoder layers the contrastive loss keeps (finest is 0); (): all
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999
    # Pixels at 256 px: the stability loss compares both cartoons blurred by this Gaussian, so that a
    # sharp line resampled by the jitter's warp is not asked to be soft (0: as they are).
    stability_blur: float = 0.0

    def __post_init__(self) -> None:
        if self.disc_width < 4:
            raise ValueError(f"disc_width must be >= 4, got {self.disc_width}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.stability_blur >= 0:
            raise ValueError(f"stability_blur must be >= 0, got {self.stability_blur}")
        object.__setattr__(self, "nce_layers", tuple(int(i) for i in self.nce_layers))
        if any(not 0 <= i < ENCODER_LAYERS for i in self.nce_layers) or len(set(self.nce_layers)) != len(
            self.nce_layers
        ):
            raise ValueError(
                f"nce_layers must be distinct encoder layers 0-{ENCODER_LAYERS - 1}, got {self.nce_layers}"
            )

    def extra_discriminators(self) -> dict[str, int]:
        """The discriminators beyond the two, by name, with their input channels."""
        w = self.weights
        names = {name: 3 for name in PART_WINDOWS} if w.parts > 0 else {}
        if w.surface > 0:
            names["surface"] = 3
        if w.texture > 0:
            names["texture"] = 1
        return names

    def extra_weight(self, name: str) -> float:
        return self.weights.parts if name in PART_WINDOWS else float(getattr(self.weights, name))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["generator"] = self.generator.to_dict()
        out["betas"] = list(self.betas)
        out["nce_layers"] = list(self.nce_layers)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OneSidedConfig:
        values = dict(values)
        generator_values = dict(values.pop("generator"))
        generator_values["widths"] = tuple(generator_values["widths"])
        weights = OneSidedWeights(**values.pop("weights"))
        values["betas"] = tuple(values["betas"])
        values["nce_layers"] = tuple(values.get("nce_layers", ()))
        return cls(generator=CompactConfig(**generator_values), weights=weights, **values)


class PatchDiscriminator(nn.Module):
    """pix2pix's 70x70 PatchGAN, spectrally normalised instead of instance-normalised, thinner at the end."""

    def __init__(self, width: int = 32, channels: int = 3) -> None:
        super().__init__()
        w = width

        def conv(c_in: int, c_out: int, stride: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(c_in, c_out, kernel_size=4, stride=stride, padding=1))

        self.layers = nn.Sequential(
            conv(channels, w, 2),
            nn.LeakyReLU(0.2),
            conv(w, 2 * w, 2),
            nn.LeakyReLU(0.2),
            conv(2 * w, 4 * w, 2),
            nn.LeakyReLU(0.2),
            conv(4 * w, 4 * w, 1),
            nn.LeakyReLU(0.2),
            conv(4 * w, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OneSidedNetworks(nn.Module):
    """The generator, its moving average, the two discriminators and the patch MLPs."""

    def __init__(self, config: OneSidedConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = CompactGenerator(config.generator)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.disc_local = PatchDiscriminator(config.disc_width)
        self.disc_global = PatchDiscriminator(config.disc_width)
        self.disc_extra = nn.ModuleDict(
            {
                name: PatchDiscriminator(config.disc_width, channels)
                for name, channels in config.extra_discriminators().items()
            }
        )
        channels = [f.shape[1] for f in self.generator.encode(torch.zeros(1, 3, 32, 32))]
        self.patch_sampler = PatchSampler(channels, patches=config.nce_patches)

    def discriminators(self) -> tuple[PatchDiscriminator, PatchDiscriminator]:
        return self.disc_local, self.disc_global

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.generator.parameters(), *self.patch_sampler.parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.disc_local.parameters(), *self.disc_global.parameters(), *self.disc_extra.parameters()]

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        for average, current in zip(
            self.generator_ema.parameters(), self.generator.parameters(), strict=True
        ):
            average.lerp_(current, 1.0 - decay)
        for kept, buffer in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            kept.copy_(buffer)


@dataclass
class StepLosses:
    d: float
    g_adv: float
    nce: float
    faceid: float
    stability: float = 0.0
    style: float = 0.0  # the extra discriminators' adversarial terms, weighted
    colour: float = 0.0  # the foreign-colour loss, unweighted
    identity: float = 0.0  # the contrastive identity loss, unweighted

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _lsgan(logit: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(logit, torch.full_like(logit, target))


def _judge(disc: PatchDiscriminator, images: torch.Tensor, index: int) -> torch.Tensor:
    """The local discriminator sees the image, the global one the image at half size."""
    return disc(images if index == 0 else F.avg_pool2d(images, 2))


def _view(
    name: str, images: torch.Tensor, policy: str, mix: torch.Tensor, rng: torch.Generator
) -> torch.Tensor:
    """What the extra discriminator ``name`` sees of ``images``, augmented."""
    if name in PART_WINDOWS:
        return diff_augment(part_windows(images, name), PART_POLICY, rng)
    if name == "surface":
        return diff_augment(surface(images), policy, rng)
    return diff_augment(texture(images, mix), policy, rng)


# How far the aligned crop of a face moves between two video frames of a still head: landmark
# noise of a pixel or two, a degree of roll, a percent of scale; and a little sensor noise.
JITTER_SHIFT_PX = 2.0  # at 256 px, scaled with the crop
JITTER_DEGREES = 1.5
JITTER_SCALE = 0.02
JITTER_NOISE = 0.02


def jitter(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Per image, a random affine map of the size above, as N x 2 x 3 ``affine_grid`` matrices."""
    n = images.shape[0]
    draw = torch.rand(n, 4, generator=rng) * 2 - 1
    angle = draw[:, 0] * JITTER_DEGREES * torch.pi / 180
    scale = 1 + draw[:, 1] * JITTER_SCALE
    shift = draw[:, 2:] * JITTER_SHIFT_PX * 2 / 256  # affine_grid's [-1, 1] coordinates
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(images)


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` blurred by a Gaussian of ``sigma`` pixels (separable, reflected at the borders)."""
    radius = max(int(3 * sigma + 0.5), 1)
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def stability_loss(
    generator: nn.Module,
    photos: torch.Tensor,
    fakes: torch.Tensor,
    rng: torch.Generator,
    blur: float = 0.0,
) -> torch.Tensor:
    """L1 between the cartoon of a jittered, noisier photo and the jittered cartoon of the photo.

    A video's face crops move by a pixel or two from frame to frame; a generator that redraws its
    strokes for each such move flickers. This asks it to move its drawing with the face instead
    (equivariance to the aligner's jitter) and to ignore sensor noise. The warp resamples, which
    softens a sharp line; ``blur`` (pixels at 256 px) compares both sides blurred, so that softness
    is not what the generator is taught.
    """
    theta = jitter(photos, rng)
    noise = torch.randn(photos.shape, generator=rng).to(photos) * JITTER_NOISE
    moved = generator(warp(photos, theta) + noise).image
    target = warp(fakes, theta)
    sigma = blur * photos.shape[-1] / 256
    if sigma > 0:
        moved, target = gaussian_blur(moved, sigma), gaussian_blur(target, sigma)
    return F.l1_loss(moved, target)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The random stream of one training step on one rank (DiffAugment draws, NCE patch positions)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step + rank * 7_919_000_003) % (2**63))


Average = Callable[[Sequence[nn.Parameter]], None]


def _alone(_parameters: Sequence[nn.Parameter]) -> None:
    """One process: the gradients are already the batch's mean."""


def generator_step(
    nets: OneSidedNetworks,
    photos: torch.Tensor,
    cartoons: torch.Tensor,
    g_optimizer: torch.optim.Optimizer,
    d_optimizer: torch.optim.Optimizer,
    rng: torch.Generator,
    faceid: nn.Module | None = None,
    train_generator: bool = True,
    identity: IdentityContrast | None = None,
    average: Average = _alone,
) -> StepLosses:
    """One discriminator update then (unless ``train_generator`` is False) one generator update."""
    config = nets.config
    policy = config.augment_policy
    features = nets.generator.encode(photos)
    fakes = nets.generator.decode(features)

    # Discriminators: real cartoons against the (detached) translations, each batch augmented anew.
    for parameter in nets.discriminator_parameters():
        parameter.requires_grad_(True)
    d_loss = photos.new_zeros(())
    for index, disc in enumerate(nets.discriminators()):
        real = _judge(disc, diff_augment(cartoons, policy, rng), index)
        fake = _judge(disc, diff_augment(fakes.detach(), policy, rng), index)
        d_loss = d_loss + 0.5 * (_lsgan(real, 1.0) + _lsgan(fake, 0.0))
    mix = draw_texture_mix(rng) if "texture" in nets.disc_extra else photos.new_ones(3) / 3
    for name, extra in nets.disc_extra.items():
        real = extra(_view(name, cartoons, policy, mix, rng))
        fake = extra(_view(name, fakes.detach(), policy, mix, rng))
        d_loss = d_loss + 0.5 * (_lsgan(real, 1.0) + _lsgan(fake, 0.0))
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    average(nets.discriminator_parameters())
    d_optimizer.step()
    if not train_generator:
        return StepLosses(float(d_loss.detach()), 0.0, 0.0, 0.0)

    # Generator: fool both discriminators, keep the patches, keep the person.
    for parameter in nets.discriminator_parameters():
        parameter.requires_grad_(False)
    weights = config.weights
    adv = photos.new_zeros(())
    for index, disc in enumerate(nets.discriminators()):
        adv = adv + _lsgan(_judge(disc, diff_augment(fakes, policy, rng), index), 1.0)
    style = photos.new_zeros(())
    for name, extra in nets.disc_extra.items():
        style = style + config.extra_weight(name) * _lsgan(extra(_view(name, fakes, policy, mix, rng)), 1.0)
    layers = config.nce_layers or tuple(range(len(features)))
    kept = [features[i] for i in layers]
    fake_kept = [f for i, f in enumerate(nets.generator.encode(fakes)) if i in layers]
    positions = nets.patch_sampler.positions(kept, rng)
    queries = nets.patch_sampler(fake_kept, positions, layers)
    keys = nets.patch_sampler(kept, positions, layers)
    nce = torch.stack(
        [patch_nce_loss(q, k, config.nce_temperature) for q, k in zip(queries, keys, strict=True)]
    ).mean()
    loss = weights.adv * adv + style + weights.nce * nce
    stability_value = photos.new_zeros(())
    if weights.stability > 0:
        stability_value = stability_loss(nets.generator, photos, fakes, rng, config.stability_blur)
        loss = loss + weights.stability * stability_value
    faceid_value = photos.new_zeros(())
    identity_value = photos.new_zeros(())
    contrast = identity is not None and weights.identity > 0
    if faceid is not None and (weights.faceid > 0 or contrast):
        with torch.no_grad():
            photo_embedding = faceid(photos)
        fake_embedding = faceid(fakes)
        faceid_value = faceid_loss(fake_embedding, photo_embedding)
        loss = loss + weights.faceid * faceid_value
        if identity is not None and contrast:
            identity_value = identity(fake_embedding, photo_embedding)
            loss = loss + weights.identity * identity_value
    colour_value = photos.new_zeros(())
    if weights.colour > 0:
        colour_value = foreign_colour_loss(photos, fakes)
        loss = loss + weights.colour * colour_value
    g_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average(nets.generator_parameters())
    g_optimizer.step()
    nets.update_ema(config.ema_decay)
    values = (d_loss, adv, nce, faceid_value, stability_value, style, colour_value, identity_value)
    return StepLosses(*(float(v.detach()) for v in values))


def identity_step(
    nets: OneSidedNetworks,
    photos: torch.Tensor,
    g_optimizer: torch.optim.Optimizer,
    average: Average = _alone,
) -> StepLosses:
    """A warm-up step: the generator learns to return its input (L1), a start near the identity.

    From there the adversarial loss only has to move a face toward the cartoons, not to learn to
    draw one from noise; the contrastive loss is not needed while the output is the input.
    """
    loss = F.l1_loss(nets.generator(photos).image, photos)
    g_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average(nets.generator_parameters())
    g_optimizer.step()
    nets.update_ema(0.0)
    return StepLosses(0.0, 0.0, float(loss.detach()), 0.0)
