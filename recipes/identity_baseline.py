"""Where to put the identity threshold: Face ID cosine similarity of a photo against other faces and itself.

    python recipes/identity_baseline.py DATA [--out baseline.json]

DATA is a p2c-prepare-data folder (testA photos, trainB/testB cartoons, 256x256 crops). Measured
with the default Face ID network (the dlib port), as p2c-eval's ``identity``:

- unrelated: each testA photo against every other testA photo (other people) and against every
  cartoon (photo2cartoon's set: other people, drawn);
- same person, slightly changed: shifted 4 px, scaled 1.05, 10 % brighter, blurred (sigma 1);
- same person, crudely stylised: bilateral smoothing, 8-colour quantisation and dark edges (a
  hand-made "cartoon" of the photo that keeps its geometry, no learning involved).

A shipped generator's cartoon should score like the stylised class and clearly above the unrelated
class; the threshold goes between the two. Prints percentiles; writes them as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from p2c.training.dataset import list_images, read_rgb, to_tensor
from p2c.training.faceid import load_faceid

PERCENTILES = (0, 1, 5, 50, 95, 99, 100)


def _shift(image: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(
        image, np.array([[1, 0, 4], [0, 1, 4]], dtype=np.float32), (256, 256), borderValue=(255, 255, 255)
    )


def _scale(image: np.ndarray) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((128, 128), 0, 1.05)
    return cv2.warpAffine(image, matrix, (256, 256), borderValue=(255, 255, 255))


def _brighter(image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)


def _blur(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def stylise(image: np.ndarray) -> np.ndarray:
    """A crude cartoon: smoothed flat colours (8 levels by k-means) with dark edges."""
    smooth = image
    for _ in range(3):
        smooth = cv2.bilateralFilter(smooth, 9, 40, 7)
    pixels = smooth.reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(  # type: ignore[call-overload]  # OpenCV's stubs reject None labels
        pixels, 8, None, criteria, 2, cv2.KMEANS_PP_CENTERS
    )
    flat = centres.astype(np.uint8)[labels.ravel()].reshape(image.shape)
    grey = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return np.where(edges[..., None] == 0, (flat * 0.3).astype(np.uint8), flat)


CHANGES = {"shift_4px": _shift, "scale_1.05": _scale, "brighter_10pc": _brighter, "blur_1": _blur}


@torch.no_grad()
def embed(faceid: torch.nn.Module, images: list[np.ndarray], batch: int = 16) -> torch.Tensor:
    tensors = torch.stack([to_tensor(image) for image in images])
    return torch.cat([faceid(tensors[i : i + batch]) for i in range(0, len(tensors), batch)]).float()


def _crops(folder: Path) -> list[np.ndarray]:
    images = [read_rgb(path) for path in list_images(folder)] if folder.is_dir() else []
    return [image for image in images if image is not None and image.shape[:2] == (256, 256)]


def _summary(values: torch.Tensor) -> dict[str, float]:
    array = values.numpy()
    stats = {f"p{p}": round(float(np.percentile(array, p)), 4) for p in PERCENTILES}
    return {"count": int(array.size), "mean": round(float(array.mean()), 4), **stats}


def measure(data: Path) -> dict[str, dict[str, float]]:
    photos = _crops(data / "testA")
    cartoons = _crops(data / "trainB") + _crops(data / "testB")
    if len(photos) < 2 or not cartoons:
        raise SystemExit(f"{data} needs testA photos and trainB/testB cartoons (run p2c-prepare-data)")
    faceid = load_faceid(None, "cpu")
    photo_emb = embed(faceid, photos)
    results: dict[str, dict[str, float]] = {}
    others = photo_emb @ photo_emb.T
    mask = ~torch.eye(len(photos), dtype=torch.bool)
    results["photo_vs_other_photo"] = _summary(others[mask])
    results["photo_vs_cartoon"] = _summary((photo_emb @ embed(faceid, cartoons).T).flatten())
    same = []
    for name, change in CHANGES.items():
        similarity = F.cosine_similarity(photo_emb, embed(faceid, [change(p) for p in photos]), dim=1)
        results[f"photo_vs_self_{name}"] = _summary(similarity)
        same.append(similarity)
    results["photo_vs_self_slightly_changed"] = _summary(torch.cat(same))
    stylised = embed(faceid, [stylise(p) for p in photos])
    stylised_self = F.cosine_similarity(photo_emb, stylised, dim=1)
    results["photo_vs_self_stylised"] = _summary(stylised_self)
    # Per photo: the stylised self against the closest unrelated face (other photos and cartoons).
    cartoon_emb = embed(faceid, cartoons)
    closest = torch.maximum(
        others.masked_fill(~mask, -1.0).amax(dim=1), (photo_emb @ cartoon_emb.T).amax(dim=1)
    )
    results["stylised_self_minus_closest_unrelated"] = _summary(stylised_self - closest)
    results["astronaut"] = _astronaut(faceid, photo_emb, cartoon_emb)
    return results


def _astronaut(
    faceid: torch.nn.Module, photo_emb: torch.Tensor, cartoon_emb: torch.Tensor
) -> dict[str, float]:
    """The test photo (skimage's astronaut) against the unrelated faces and its own variants."""
    from p2c.stream.faces import FaceAligner
    from p2c.stream.image_io import read_image

    with FaceAligner() as aligner:
        crop = aligner.align(read_image("builtin:astronaut"), max_faces=1)[0].crop
    own = embed(faceid, [crop])
    variants = embed(faceid, [change(crop) for change in CHANGES.values()])
    return {
        "max_vs_testA_photo": round(float((own @ photo_emb.T).max()), 4),
        "max_vs_cartoon": round(float((own @ cartoon_emb.T).max()), 4),
        "p99_vs_cartoon": round(float(np.percentile((own @ cartoon_emb.T).numpy(), 99)), 4),
        "min_vs_self_slightly_changed": round(float((own @ variants.T).min()), 4),
        "vs_self_stylised": round(float((own @ embed(faceid, [stylise(crop)]).T).item()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a p2c-prepare-data folder")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = measure(args.data)
    for name, stats in results.items():
        print(f"{name:38s} " + "  ".join(f"{k} {v}" for k, v in stats.items()))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
