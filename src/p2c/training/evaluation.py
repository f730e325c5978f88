"""Evaluate generators on held-out photos: identity kept, cartoon-ness, closeness to the cartoon set.

``evaluate_generator`` cartoonises every photo (aligned crops, or raw photos aligned on the fly
with the inference aligner), then reports, per photo and on average:

- identity: the Face ID cosine similarity between each photo and its cartoon; rank-1 (is each
  photo's own cartoon the nearest of all the cartoons to it?); with the dlib network, the
  Euclidean distance of dlib's raw descriptors, and the fraction under dlib's 0.6 (same person);
- cartoon-ness: P(cartoon) of each output by the fitted gauge (:mod:`p2c.training.gauge`), its
  mean and the fraction >= 0.5;
- the KID between the cartoons and the reference cartoons (testB) on
  :class:`~p2c.training.metrics.StyleFeatures`;
- the style distance (:mod:`p2c.training.style_distance`): KID to the cartoon set on features of
  lines, flat regions and face layout, which a bleached photo cannot pass;
- blotches (:mod:`p2c.training.blotches`): per cartoon, the share of the head turned green to blue
  where the photo was not, and the fraction of cartoons with more than 1 % of it.

``evaluate_checkpoints`` does it for every checkpoint of a run and names the best.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from p2c.errors import InvalidInputError, MissingDependencyError, WeightsError
from p2c.files import atomic_write
from p2c.models.architectures import Generator
from p2c.training.blotches import BLOTCH_SHARE_LIMIT, blotch_shares
from p2c.training.dataset import list_images, read_rgb, to_tensor
from p2c.training.metrics import (
    DLIB_SAME_PERSON,
    StyleFeatures,
    descriptor_distance,
    identity_rank1,
    kernel_inception_distance,
)
from p2c.training.samples import grid_image, tensor_to_rgb, write_png
from p2c.training.style_distance import StyleReference

__all__ = ["EvalReport", "evaluate_checkpoints", "evaluate_generator", "load_crops", "pick_best"]

logger = logging.getLogger(__name__)

CROP_SIZE = 256


@dataclass
class EvalReport:
    weights: str
    photos: int
    cartoons: int
    kid: float
    identity_mean: float | None = None
    identity_std: float | None = None
    identity_rank1: float | None = None  # fraction of photos whose own cartoon is the nearest
    identity_note: str | None = None
    dlib_distance_mean: float | None = None
    dlib_same_fraction: float | None = None  # fraction of pairs with distance < 0.6
    dlib_note: str | None = None
    cartoon_mean: float | None = None  # the gauge's mean P(cartoon) of the outputs
    cartoon_fraction: float | None = None  # fraction of outputs with P(cartoon) >= 0.5
    reference_cartoon_mean: float | None = None  # the same gauge on the reference cartoons
    style_distance: float | None = None  # KID to the style reference on line/flat/layout features
    style_blocks: dict[str, float] = field(default_factory=dict)  # each feature block's own KID
    style_cartoons: int | None = None  # cartoons in the style reference
    blotch_fraction: float | None = None  # fraction of cartoons with blotches over 1 % of the head
    blotch_share_mean: float | None = None  # mean share of the head in blotches
    skipped_photos: list[str] = field(default_factory=list)
    per_photo_identity: dict[str, float] = field(default_factory=dict)
    per_photo_dlib_distance: dict[str, float] = field(default_factory=dict)
    per_photo_cartoon: dict[str, float] = field(default_factory=dict)
    per_photo_blotch: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def load_crops(
    folder: Path, align: str = "auto", limit: int | None = None
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Crops of every image in ``folder``: used as they are if 256x256 (or ``align="no"``), else aligned.

    Returns (names, crops, skipped names).
    """
    paths = list_images(folder)
    if not paths:
        raise InvalidInputError(f"{folder} holds no images (.png, .jpg, .webp)")
    if limit:
        paths = paths[:limit]
    names, crops, skipped = [], [], []
    aligner: Any = None
    try:
        for path in paths:
            image = read_rgb(path)
            if image is None:
                skipped.append(path.name)
                continue
            is_crop = image.shape[:2] == (CROP_SIZE, CROP_SIZE)
            if align == "yes" or (align == "auto" and not is_crop):
                if aligner is None:
                    from p2c.stream.faces import FaceAligner

                    aligner = FaceAligner()
                faces = aligner.align(image, max_faces=1)
                if not faces:
                    skipped.append(path.name)
                    continue
                image = faces[0].crop
            names.append(path.name)
            crops.append(image)
    finally:
        if aligner is not None:
            aligner.close()
    return names, crops, skipped


def _batches(images: list[np.ndarray], size: int, batch: int) -> list[torch.Tensor]:
    tensors = [to_tensor(_resize(image, size)) for image in images]
    return [torch.stack(tensors[i : i + batch]) for i in range(0, len(tensors), batch)]


@torch.no_grad()
def _cartoonise(generator: Generator, photos: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    return torch.cat([generator(batch.to(device))[0].float().cpu() for batch in photos])


def evaluate_generator(
    generator: Generator,
    photo_names: list[str],
    photos: list[np.ndarray],
    references: list[np.ndarray],
    faceid: nn.Module | None,
    device: torch.device,
    label: str,
    batch_size: int = 8,
    grid_path: Path | None = None,
    grid_rows: int = 8,
    gauge: nn.Module | None = None,
    style_reference: StyleReference | None = None,
) -> EvalReport:
    """Cartoonise ``photos`` and measure them; ``gauge`` None: the fitted one in p2c;
    ``style_reference`` None: the style distance to ``references``."""
    if len(photos) < 2 or len(references) < 2:
        raise InvalidInputError(
            f"evaluation needs at least 2 usable photos and 2 cartoons, got {len(photos)} and "
            f"{len(references)}"
        )
    generator = generator.to(device).eval()
    size = generator.config.img_size
    photo_batches = _batches(photos, size, batch_size)
    cartoons = _cartoonise(generator, photo_batches, device)
    photo_tensor = torch.cat(photo_batches)
    reference_tensor = torch.cat(_batches(references, size, batch_size))
    features = StyleFeatures()
    kid = kernel_inception_distance(features(cartoons), features(reference_tensor))
    report = EvalReport(weights=label, photos=len(photos), cartoons=len(references), kid=kid)
    _measure_cartoon_ness(report, gauge, photo_names, cartoons, reference_tensor, device, batch_size)
    _measure_style(report, style_reference or StyleReference(references), photo_names, photos, cartoons)
    if faceid is not None:
        _measure_identity(report, faceid, photo_names, photo_tensor.to(device), cartoons.to(device))
    else:
        report.identity_note = "Face ID network unavailable: identity similarity not measured"
    if grid_path is not None:
        rows = min(grid_rows, len(photos))
        write_png(grid_path, grid_image([photo_tensor[:rows], cartoons[:rows]]))
    return report


def _per_photo(names: list[str], values: torch.Tensor) -> dict[str, float]:
    return {n: round(float(v), 5) for n, v in zip(names, values, strict=True)}


@torch.no_grad()
def _measure_cartoon_ness(
    report: EvalReport,
    gauge: nn.Module | None,
    names: list[str],
    cartoons: torch.Tensor,
    references: torch.Tensor,
    device: torch.device,
    batch_size: int,
) -> None:
    if gauge is None:
        from p2c.training.gauge import load_gauge

        gauge = load_gauge(device=device)

    def judged(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([gauge(part.to(device)).float().cpu() for part in images.split(batch_size)])

    p_cartoon = judged(cartoons)
    report.cartoon_mean = float(p_cartoon.mean())
    report.cartoon_fraction = float((p_cartoon >= 0.5).float().mean())
    report.reference_cartoon_mean = float(judged(references).mean())
    report.per_photo_cartoon = _per_photo(names, p_cartoon)


def _measure_style(
    report: EvalReport,
    reference: StyleReference,
    names: list[str],
    photos: list[np.ndarray],
    cartoons: torch.Tensor,
) -> None:
    images = list(tensor_to_rgb(cartoons))
    style = reference.measure(images)
    report.style_distance, report.style_blocks = style.distance, style.blocks
    report.style_cartoons = reference.cartoons
    shares = blotch_shares(photos, images)
    report.blotch_fraction = float(np.mean(shares > BLOTCH_SHARE_LIMIT))
    report.blotch_share_mean = float(shares.mean())
    report.per_photo_blotch = _per_photo(names, torch.from_numpy(shares))


@torch.no_grad()
def _measure_identity(
    report: EvalReport, faceid: nn.Module, names: list[str], photos: torch.Tensor, cartoons: torch.Tensor
) -> None:
    from p2c.training.faceid import FaceIdNetwork

    photo_embeddings, cartoon_embeddings = faceid(photos).float(), faceid(cartoons).float()
    similarities = F.cosine_similarity(photo_embeddings, cartoon_embeddings, dim=1).cpu()
    report.identity_mean = float(similarities.mean())
    report.identity_std = float(similarities.std()) if len(similarities) > 1 else 0.0
    report.identity_rank1 = float(identity_rank1(photo_embeddings, cartoon_embeddings).float().mean())
    report.per_photo_identity = _per_photo(names, similarities)
    if isinstance(faceid, FaceIdNetwork) and faceid.name == "dlib":
        distances = descriptor_distance(faceid, photos, cartoons).cpu()
        report.dlib_distance_mean = float(distances.mean())
        report.dlib_same_fraction = float((distances < DLIB_SAME_PERSON).float().mean())
        report.per_photo_dlib_distance = _per_photo(names, distances)
    else:
        report.dlib_note = "the Face ID network is not dlib's: the dlib descriptor distance is not measured"


def pick_best(reports: list[EvalReport]) -> EvalReport:
    """Lowest mean rank over the metrics measured: KID, the style distance and the blotch fraction
    (lower is better); identity and the mean P(cartoon) (higher is better); each where every report
    has it."""
    count = len(reports)
    orders = [sorted(range(count), key=lambda i: reports[i].kid)]
    for values, sign in (
        ([r.style_distance for r in reports], 1.0),
        ([r.blotch_fraction for r in reports], 1.0),
        ([r.identity_mean for r in reports], -1.0),
        ([r.cartoon_mean for r in reports], -1.0),
    ):
        if all(v is not None for v in values):
            orders.append(sorted(range(count), key=lambda i: sign * (values[i] or 0.0)))
    ranks = {i: sum(order.index(i) for order in orders) / len(orders) for i in range(count)}
    best = min(ranks, key=lambda i: (ranks[i], reports[i].kid))
    return reports[best]


def load_faceid_or_none(path: str | None, device: torch.device) -> tuple[nn.Module | None, str | None]:
    """The Face ID network, or (None, why) when none can be loaded: KID still works without it."""
    try:
        from p2c.training.faceid import load_faceid
    except ImportError:
        return None, "the Face ID network (p2c.training.faceid) is not available in this install"
    try:
        return load_faceid(path, device), None
    except (MissingDependencyError, WeightsError) as error:
        if path is not None:
            raise
        return None, str(error)


def write_json(path: Path, content: dict[str, Any]) -> None:
    with atomic_write(path) as stream:
        json.dump(content, stream, indent=2)
        stream.write("\n")


def evaluate_checkpoints(
    weights: list[Path],
    photo_names: list[str],
    photos: list[np.ndarray],
    references: list[np.ndarray],
    faceid: nn.Module | None,
    device: torch.device,
    out_dir: Path,
    batch_size: int = 8,
    style_reference: StyleReference | None = None,
) -> tuple[list[EvalReport], EvalReport]:
    """Evaluate each weights file (grid per file), name the best; WeightsError if none load.
    ``style_reference`` None: the style distance to ``references``."""
    from p2c.models.weights import load_generator
    from p2c.training.gauge import load_gauge

    gauge = load_gauge(device=device)
    style_reference = style_reference or StyleReference(references)
    reports = []
    for path in weights:
        try:
            generator = load_generator(path)
        except WeightsError as error:
            logger.warning("skipping %s: %s", path, error)
            continue
        grid = out_dir / f"grid_{path.stem}.png"
        report = evaluate_generator(
            generator,
            photo_names,
            photos,
            references,
            faceid,
            device,
            str(path),
            batch_size,
            grid,
            gauge=gauge,
            style_reference=style_reference,
        )
        logger.info(
            "%s: KID %.4f, style distance %.3f, blotches %.0f %%, identity %s, P(cartoon) %s",
            path.name,
            report.kid,
            report.style_distance,
            100 * (report.blotch_fraction or 0.0),
            report.identity_mean,
            report.cartoon_mean,
        )
        reports.append(report)
    if not reports:
        raise WeightsError("none of the weights files could be loaded as a generator; check the folder")
    return reports, pick_best(reports)
