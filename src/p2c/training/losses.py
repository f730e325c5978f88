"""photo2cartoon's objective: LSGAN on patch and CAM logits, cycle, identity, CAM and Face ID terms.

The functions take the networks as arguments so the trainer can pass DistributedDataParallel
wrappers for the side being optimised and the bare modules for the side held fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from p2c.training.config import LossWeights

__all__ = [
    "GanNetworks",
    "Translations",
    "discriminator_loss",
    "faceid_distance",
    "generator_loss",
    "translate",
    "translate_fakes",
    "translation_loss",
]

Losses = dict[str, torch.Tensor]


@dataclass(frozen=True)
class GanNetworks:
    """Callables for the six networks (bare, DDP-wrapped or compiled)."""

    genA2B: Callable[..., tuple[torch.Tensor, ...]]  # noqa: N815
    genB2A: Callable[..., tuple[torch.Tensor, ...]]  # noqa: N815
    disGA: Callable[..., tuple[torch.Tensor, ...]]  # noqa: N815
    disGB: Callable[..., tuple[torch.Tensor, ...]]  # noqa: N815
    disLA: Callable[..., tuple[torch.Tensor, ...]]  # noqa: N815
    disLB: Callable[..., tuple[torch.Tensor, ...]]  # noqa: N815


def _lsgan(logit: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(logit.float(), torch.full_like(logit, target, dtype=torch.float32))


def _bce(logit: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(
        logit.float(), torch.full_like(logit, target, dtype=torch.float32)
    )


def faceid_distance(faceid: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cosine similarity between the embeddings of ``a`` and ``b``, sample by sample."""
    return (1.0 - F.cosine_similarity(faceid(a).float(), faceid(b).float(), dim=1)).mean()


def discriminator_loss(
    nets: GanNetworks,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    fake_a2b: torch.Tensor,
    fake_b2a: torch.Tensor,
    weights: LossWeights,
) -> tuple[torch.Tensor, Losses]:
    """Real -> 1, fake -> 0 on patch logits and CAM logits of all four discriminators."""
    parts: Losses = {}
    for domain, real, fake in (("A", real_a, fake_b2a), ("B", real_b, fake_a2b)):
        total = real.new_zeros((), dtype=torch.float32)
        for scale in ("G", "L"):
            dis = getattr(nets, f"dis{scale}{domain}")
            real_logit, real_cam, _ = dis(real)
            fake_logit, fake_cam, _ = dis(fake)
            total = total + _lsgan(real_logit, 1.0) + _lsgan(fake_logit, 0.0)
            total = total + _lsgan(real_cam, 1.0) + _lsgan(fake_cam, 0.0)
        parts[f"D_{domain}"] = weights.adv * total
    loss = parts["D_A"] + parts["D_B"]
    return loss, {"D": loss, **parts}


class Translations(NamedTuple):
    """The six generator passes of one G step (``cam_*`` are the generators' CAM logits)."""

    fake_a2b: torch.Tensor
    cam_a2b: torch.Tensor
    fake_b2a: torch.Tensor
    cam_b2a: torch.Tensor
    cycle_a: torch.Tensor  # A -> B -> A
    cycle_b: torch.Tensor
    same_a: torch.Tensor  # B->A generator on an A image: should change nothing
    cam_a2a: torch.Tensor
    same_b: torch.Tensor
    cam_b2b: torch.Tensor


Fakes = tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]


def translate_fakes(nets: GanNetworks, real_a: torch.Tensor, real_b: torch.Tensor) -> Fakes:
    """The generators' outputs on the real images: (A->B, B->A), each (image, CAM logit, heatmap)."""
    return nets.genA2B(real_a), nets.genB2A(real_b)


def translate(
    nets: GanNetworks, real_a: torch.Tensor, real_b: torch.Tensor, fakes: Fakes | None = None
) -> Translations:
    """Translations, cycles and identity mappings of both domains (the G step's generator work).

    ``fakes``: :func:`translate_fakes`'s result when it is already there (then not recomputed).
    """
    (fake_a2b, cam_a2b, _), (fake_b2a, cam_b2a, _) = fakes or translate_fakes(nets, real_a, real_b)
    cycle_a = nets.genB2A(fake_a2b)[0]
    cycle_b = nets.genA2B(fake_b2a)[0]
    same_a, cam_a2a, _ = nets.genB2A(real_a)
    same_b, cam_b2b, _ = nets.genA2B(real_b)
    return Translations(
        fake_a2b, cam_a2b, fake_b2a, cam_b2a, cycle_a, cycle_b, same_a, cam_a2a, same_b, cam_b2b
    )


def translation_loss(
    nets: GanNetworks,
    t: Translations,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    weights: LossWeights,
    faceid: nn.Module | None,
) -> tuple[torch.Tensor, Losses]:
    """Both directions' generator loss on ``t``: the discriminators judge the translations.

    Domain A's terms judge B->A images (photos made from cartoons), domain B's judge A->B.
    """
    directions = {
        "A": (t.fake_b2a, t.cycle_a, real_a, t.same_a, t.cam_b2a, t.cam_a2a, real_b),
        "B": (t.fake_a2b, t.cycle_b, real_b, t.same_b, t.cam_a2b, t.cam_b2b, real_a),
    }
    parts: Losses = {}
    for domain, (fake, cycled, real, same, cam_fake, cam_same, source) in directions.items():
        adv = real.new_zeros((), dtype=torch.float32)
        for scale in ("G", "L"):
            logit, cam_logit, _ = getattr(nets, f"dis{scale}{domain}")(fake)
            adv = adv + _lsgan(logit, 1.0) + _lsgan(cam_logit, 1.0)
        parts[f"G_adv_{domain}"] = weights.adv * adv
        parts[f"G_cycle_{domain}"] = weights.cycle * F.l1_loss(cycled.float(), real.float())
        parts[f"G_identity_{domain}"] = weights.identity * F.l1_loss(same.float(), real.float())
        # The generator's own CAM must tell "translate this" (1) from "already my domain" (0).
        parts[f"G_cam_{domain}"] = weights.cam * (_bce(cam_fake, 1.0) + _bce(cam_same, 0.0))
        if faceid is not None and weights.faceid > 0:
            # photo2cartoon: the source and its translation should be the same person.
            parts[f"G_faceid_{domain}"] = weights.faceid * faceid_distance(faceid, source, fake)
    loss = torch.stack(list(parts.values())).sum()
    return loss, {"G": loss, **parts}


def generator_loss(
    nets: GanNetworks,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    weights: LossWeights,
    faceid: nn.Module | None,
) -> tuple[torch.Tensor, Losses, torch.Tensor]:
    """Both directions' generator loss; also returns the A->B cartoons (for sample grids)."""
    translations = translate(nets, real_a, real_b)
    loss, parts = translation_loss(nets, translations, real_a, real_b, weights, faceid)
    return loss, parts, translations.fake_a2b
