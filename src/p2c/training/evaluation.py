"""Evaluate generators on held-out photos: identity kept, and closeness to the cartoon set.

``evaluate_generator`` cartoonises every photo (aligned crops, or raw photos aligned on the fly
with the inference aligner), then reports the Face ID similarity between each photo and its
cartoon and the KID between the cartoons and the reference cartoons (testB) on
:class:`~p2c.training.metrics.StyleFeatures`. ``evaluate_checkpoints`` does it for every
checkpoint of a run and names the best.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from p2c.errors import InvalidInputError, MissingDependencyError, WeightsError
from p2c.files import atomic_write
from p2c.models.architectures import Generator
from p2c.training.dataset import list_images, read_rgb, to_tensor
from p2c.training.metrics import StyleFeatures, identity_similarity, kernel_inception_distance
from p2c.training.samples import grid_image, write_png

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
    identity_note: str | None = None
    skipped_photos: list[str] = field(default_factory=list)
    per_photo_identity: dict[str, float] = field(default_factory=dict)

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
) -> EvalReport:
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
    if faceid is not None:
        similarities = identity_similarity(faceid, photo_tensor.to(device), cartoons.to(device)).cpu()
        report.identity_mean = float(similarities.mean())
        report.identity_std = float(similarities.std()) if len(similarities) > 1 else 0.0
        report.per_photo_identity = {
            n: round(float(s), 5) for n, s in zip(photo_names, similarities, strict=True)
        }
    else:
        report.identity_note = "Face ID network unavailable: identity similarity not measured"
    if grid_path is not None:
        rows = min(grid_rows, len(photos))
        write_png(grid_path, grid_image([photo_tensor[:rows], cartoons[:rows]]))
    return report


def pick_best(reports: list[EvalReport]) -> EvalReport:
    """Lowest mean rank over the metrics measured: KID (lower is better), identity (higher is better)."""
    order_kid = sorted(range(len(reports)), key=lambda i: reports[i].kid)
    ranks = {i: float(order_kid.index(i)) for i in range(len(reports))}
    if all(r.identity_mean is not None for r in reports):
        order_id = sorted(range(len(reports)), key=lambda i: -(reports[i].identity_mean or 0.0))
        ranks = {i: (ranks[i] + order_id.index(i)) / 2.0 for i in ranks}
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
) -> tuple[list[EvalReport], EvalReport]:
    """Evaluate each weights file (grid per file), name the best; WeightsError if none load."""
    from p2c.models.weights import load_generator

    reports = []
    for path in weights:
        try:
            generator = load_generator(path)
        except WeightsError as error:
            logger.warning("skipping %s: %s", path, error)
            continue
        grid = out_dir / f"grid_{path.stem}.png"
        report = evaluate_generator(
            generator, photo_names, photos, references, faceid, device, str(path), batch_size, grid
        )
        logger.info("%s: KID %.4f, identity %s", path.name, report.kid, report.identity_mean)
        reports.append(report)
    if not reports:
        raise WeightsError("none of the weights files could be loaded as a generator; check the folder")
    return reports, pick_best(reports)
