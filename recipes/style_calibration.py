"""Calibrate the style distance and the blotch measure: where cartoons, photos, crude stylisations
and the models land.

    python recipes/style_calibration.py DATA [--weights LABEL=PATH ...] [--clips CLIP ...]

DATA: the crops of ``p2c-prepare-data`` (trainA, testA, trainB, testB). The style distance's
cartoon set is trainB + testB. Measured on it (:mod:`p2c.training.style_distance`):

- real cartoons against real cartoons: half the set against the other half, and 40 against the
  rest (as many as testA), over ``SPLITS`` random splits (mean and spread): about 0;
- the 40 testA photos themselves;
- crude OpenCV stylisations of them: ``cv2.stylization``; ``identity_baseline.stylise`` (bilateral
  smoothing, 8 colours, dark edges); and :func:`bleach` (bilateral-flattened, halfway to white,
  pencil lines: a bleached photo with pencil lines, the look issue 24 describes);
- each model's cartoons of testA (the shipped model by default; ``--weights LABEL=PATH`` more);
- the aligned frames of the clips (``CLIP_FRAMES`` each) and each model's cartoons of them.

And for the blotch measure (:mod:`p2c.training.blotches`): how many real cartoons and photos
(trainA + testA) have over 1 % of the face-and-hair zone (the head above the crop's lowest
quarter, where clothes are) in the blotch colours at all, which is what the thresholds must keep
near 0; and the share of each set's cartoons with blotches over 1 % (crude stylisations keep the
photo's colours, so they must have none).

Writes ``OUT/style_calibration.json`` (every figure, each block's, the machine and its load),
``OUT/style_calibration.md`` (the tables) and the summary p2c-eval and the gate report beside their
style distance, ``--package`` (``src/p2c/training/style_calibration.json``). One torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
SHIPPED = REPO / "src" / "p2c" / "models" / "default" / "p2c_default.safetensors"
SPLITS = 10
CLIP_FRAMES = 30
SEED = 0
ZONE_ROWS = 0.75  # the face-and-hair zone: the crop's rows above its lowest quarter


def bleach(photo: np.ndarray) -> np.ndarray:
    """A bleached photo with pencil lines: flattened (bilateral twice), halfway to white, darkened
    by OpenCV's pencil sketch of it; the whitened background stays white."""
    flat = photo
    for _ in range(2):
        flat = cv2.bilateralFilter(flat, 9, 40, 7)
    pale = 0.5 * flat.astype(np.float32) + 0.5 * 255.0
    sketch, _ = cv2.pencilSketch(
        cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.15, shade_factor=0.05
    )
    pale *= sketch[..., None] / 255.0
    pale[photo.min(axis=2) >= 240] = 255.0
    return np.clip(pale, 0, 255).astype(np.uint8)


def stylization(photo: np.ndarray) -> np.ndarray:
    """OpenCV's edge-preserving stylisation, its default strength."""
    bgr = cv2.stylization(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.45)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def crude_sets() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from identity_baseline import stylise  # recipes/identity_baseline.py

    return {
        "cv2.stylization of the photos": stylization,
        "bilateral, 8 colours, dark edges (identity_baseline.stylise)": stylise,
        "bleached with pencil lines (bilateral, halfway to white, pencil sketch)": bleach,
    }


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _row(name: str, measured: Any, blotches: np.ndarray | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "set": name,
        "images": measured.images,
        "style_distance": round(measured.distance, 4),
        "blocks": {block: round(value, 4) for block, value in measured.blocks.items()},
    }
    if blotches is not None:
        from p2c.training.blotches import BLOTCH_SHARE_LIMIT

        row["blotch_fraction"] = float(np.mean(blotches > BLOTCH_SHARE_LIMIT))
        row["blotch_share_mean"] = float(blotches.mean())
    return row


def real_splits(features: dict[str, np.ndarray], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Real cartoons against real cartoons: half against half, and 40 against the rest."""
    from p2c.training.style_distance import StyleReference

    count = len(next(iter(features.values())))
    rows = []
    for name, size in (
        ("real cartoons, half against the other half", count // 2),
        ("40 real cartoons against the rest", 40),
    ):
        values, blocks = [], []
        for _ in range(SPLITS):
            order = rng.permutation(count)
            mine = {block: f[order[:size]] for block, f in features.items()}
            rest = {block: f[order[size:]] for block, f in features.items()}
            measured = StyleReference.from_features(rest).measure_features(mine)
            values.append(measured.distance)
            blocks.append(measured.blocks)
        rows.append(
            {
                "set": name,
                "images": size,
                "against": count - size,
                "splits": SPLITS,
                "style_distance": round(float(np.mean(values)), 4),
                "style_distance_std": round(float(np.std(values)), 4),
                "blocks": {b: round(float(np.mean([x[b] for x in blocks])), 4) for b in blocks[0]},
            }
        )
    return rows


def zone_shares(images: Sequence[np.ndarray]) -> np.ndarray:
    """Per image, the share of its face-and-hair zone in the blotch colours (no photo to excuse them)."""
    from p2c.training.blotches import blotch_colour, head_mask

    shares = np.zeros(len(images))
    for index, image in enumerate(images):
        zone = head_mask(image)
        zone[int(ZONE_ROWS * image.shape[0]) :] = False
        if zone.any():
            shares[index] = (blotch_colour(image) & zone).sum() / zone.sum()
    return shares


def threshold_check(cartoons: list[np.ndarray], photos: list[np.ndarray]) -> list[dict[str, Any]]:
    from p2c.training.blotches import BLOTCH_SHARE_LIMIT, blotch_colour, head_mask

    rows = []
    for name, images in (("real cartoons (trainB + testB)", cartoons), ("photos (trainA + testA)", photos)):
        zone = zone_shares(images)
        head = np.array(
            [(blotch_colour(i) & head_mask(i)).sum() / max(head_mask(i).sum(), 1) for i in images]
        )
        rows.append(
            {
                "set": name,
                "images": len(images),
                "zone_over_limit": float(np.mean(zone > BLOTCH_SHARE_LIMIT)),
                "zone_share_mean": float(zone.mean()),
                "head_over_limit": float(np.mean(head > BLOTCH_SHARE_LIMIT)),
                "head_share_mean": float(head.mean()),
            }
        )
    return rows


@torch.no_grad()
def cartoons_of(weights: str, crops: list[np.ndarray]) -> list[np.ndarray]:
    from p2c.models.weights import load_generator
    from p2c.training.dataset import to_tensor
    from p2c.training.samples import tensor_to_rgb

    generator = load_generator(weights).eval()
    batch = torch.stack([to_tensor(crop) for crop in crops])
    return list(tensor_to_rgb(torch.cat([generator(part)[0].float() for part in batch.split(8)])))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import gate  # recipes/gate.py: the clip frames, aligned as the gate aligns them

    from p2c.training.blotches import blotch_shares
    from p2c.training.evaluation import load_crops
    from p2c.training.style_distance import StyleReference, style_features

    started, load_before = time.perf_counter(), _load()
    cartoons = [c for name in ("trainB", "testB") for c in load_crops(args.data / name, align="no")[1]]
    photos = load_crops(args.data / "testA", align="no")[1]
    features_started = time.perf_counter()
    features = style_features(cartoons)
    feature_seconds = time.perf_counter() - features_started
    reference = StyleReference.from_features(features)
    rows = real_splits(features, np.random.default_rng(SEED))
    rows.append(_row("testA photos themselves", reference.measure(photos)))
    for name, transform in crude_sets().items():
        made = [transform(photo) for photo in photos]
        rows.append(_row(name, reference.measure(made), blotch_shares(photos, made)))
    for label, weights in args.weights:
        made = cartoons_of(weights, photos)
        rows.append(_row(f"{label}: cartoons of testA", reference.measure(made), blotch_shares(photos, made)))
    clip_rows = []
    if args.clips:
        frames = [crop for clip in args.clips for crop in gate.clip_frames(clip, args.clip_frames)]
        clip_rows.append(_row("clip frames themselves (photos)", reference.measure(frames)))
        for label, weights in args.weights:
            made = cartoons_of(weights, frames)
            clip_rows.append(
                _row(
                    f"{label}: cartoons of the clip frames",
                    reference.measure(made),
                    blotch_shares(frames, made),
                )
            )
    train_photos = load_crops(args.data / "trainA", align="no")[1] if (args.data / "trainA").is_dir() else []
    return {
        "reference": f"photo2cartoon's cartoons, trainB + testB crops ({len(cartoons)})",
        "data": str(args.data),
        "testA_photos": len(photos),
        "clips": [str(clip) for clip in args.clips],
        "clip_frames_per_clip": args.clip_frames,
        "weights": {label: weights for label, weights in args.weights},
        "sets": rows,
        "clip_sets": clip_rows,
        "blotch_thresholds": threshold_check(cartoons, photos + train_photos),
        "feature_seconds_per_image": round(feature_seconds / len(cartoons), 4),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": _machine(),
        "load_average": {"before": load_before, "after": _load()},
        "measured": time.strftime("%Y-%m-%d"),
    }


def _blocks(row: dict[str, Any]) -> str:
    return " | ".join(f"{row['blocks'][b]:.2f}" for b in row["blocks"])


def _blotch_cell(row: dict[str, Any]) -> str:
    if "blotch_fraction" not in row:
        return "n/a"
    return f"{row['blotch_fraction']:.0%} ({row['blotch_share_mean']:.2%})"


def markdown(report: dict[str, Any]) -> str:
    blocks = list(report["sets"][0]["blocks"])
    header = [
        f"| set | images | style distance | {' | '.join(blocks)} | blotches > 1 % (mean share) |",
        "| --- | ---: | ---: | " + "---: | " * len(blocks) + "---: |",
    ]
    lines = [
        f"Style distance calibration, against {report['reference']}; measured {report['measured']} on "
        f"{report['machine']['cpu']} ({report['machine']['cores']} cores, one torch thread), load average "
        f"{report['load_average']['before']} before and {report['load_average']['after']} after "
        f"(a training run at nice 19 shares the machine); {report['seconds']} s in all, the features "
        f"{1000 * report['feature_seconds_per_image']:.0f} ms a crop. Each block's column is that block's "
        "own KID.",
        "",
        "On the 40 testA photos and what is made of them:",
        "",
        *header,
    ]
    for row in report["sets"]:
        distance = f"{row['style_distance']:.3f}"
        if "style_distance_std" in row:
            distance += f" ± {row['style_distance_std']:.3f} ({row['splits']} splits)"
        lines.append(
            f"| {row['set']} | {row['images']} | {distance} | {_blocks(row)} | {_blotch_cell(row)} |"
        )
    if report["clip_sets"]:
        clips = ", ".join(f"`{Path(c).name}`" for c in report["clips"])
        lines += [
            "",
            f"On {report['clip_frames_per_clip']} aligned frames of each clip ({clips}):",
            "",
            *header,
        ]
        for row in report["clip_sets"]:
            lines.append(
                f"| {row['set']} | {row['images']} | {row['style_distance']:.3f} | {_blocks(row)} "
                f"| {_blotch_cell(row)} |"
            )
    lines += [
        "",
        "The blotch colours in real images (no photo to excuse them): the share of images with over 1 % "
        "of the face-and-hair zone (the head above the crop's lowest quarter) or of the whole head "
        "(clothes too) in them.",
        "",
        "| set | images | zone over 1 % | zone mean share | head over 1 % | head mean share |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["blotch_thresholds"]:
        lines.append(
            f"| {row['set']} | {row['images']} | {row['zone_over_limit']:.1%} | {row['zone_share_mean']:.2%} "
            f"| {row['head_over_limit']:.1%} | {row['head_share_mean']:.2%} |"
        )
    return "\n".join(lines) + "\n"


SHORT = {
    "real cartoons, half against the other half": "real cartoons, half against half",
    "40 real cartoons against the rest": "40 real cartoons against the rest",
    "testA photos themselves": "testA photos",
    "cv2.stylization of the photos": "cv2.stylization",
    "bilateral, 8 colours, dark edges (identity_baseline.stylise)": "bilateral, 8 colours, edges",
    "bleached with pencil lines (bilateral, halfway to white, pencil sketch)": "bleached with pencil lines",
}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """What p2c-eval and the gate print beside a style distance: where each set lands."""
    rows = report["sets"]
    return {
        "format": "p2c-style-calibration/1",
        "reference": report["reference"],
        "measured": f"{report['measured']}, {report['machine']['cpu']}; details in docs/default_model",
        "style_distance": {
            SHORT.get(row["set"], row["set"].replace(": cartoons of testA", "")): row["style_distance"]
            for row in rows
        },
        "blotch_fraction": {
            SHORT.get(row["set"], row["set"].replace(": cartoons of testA", "")): row["blotch_fraction"]
            for row in rows
            if "blotch_fraction" in row
        },
    }


def _weights(text: str) -> tuple[str, str]:
    label, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="crops: trainA, testA, trainB, testB")
    parser.add_argument(
        "--weights",
        type=_weights,
        nargs="*",
        default=[("shipped model", str(SHIPPED))],
        help="LABEL=PATH generators to place (default: the shipped model)",
    )
    parser.add_argument("--clips", type=Path, nargs="*", default=sorted(MEDIA.glob("*.mp4")))
    parser.add_argument("--clip-frames", type=int, default=CLIP_FRAMES)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "default_model")
    parser.add_argument(
        "--package",
        default=str(REPO / "src" / "p2c" / "training" / "style_calibration.json"),
        help="the summary p2c-eval and the gate report ('' : do not write it)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    report = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "style_calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "style_calibration.md").write_text(markdown(report))
    if args.package:
        Path(args.package).write_text(json.dumps(summary(report), indent=2) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
