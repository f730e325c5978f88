"""The default model's gate: identity kept, cartoons in the style, no blotches, no flicker. One report.

    python recipes/gate.py WEIGHTS --data DATA --out DIR            # here: every check
    python recipes/gate.py WEIGHTS --data CARRY/data --astronaut-crop CARRY/gate/astronaut.png \\
        --no-flicker --no-clips --out DIR --device cuda            # on the GPU machine: a preview

DATA: the crops of ``p2c-prepare-data`` (testA, testB and, if there, trainB). The checks (issue
24's raised gate), on the cartoons of the testA photos (40) and the astronaut, and of
``CLIP_MEASURE_FRAMES`` aligned frames of each clip, with the thresholds of docs/default-model.md:

1. identity rank-1 (the dlib Face ID port's embeddings): for each testA photo, is its own cartoon
   the nearest of the 40 cartoons? For >= 80 % of them;
2. dlib distance (Euclidean, dlib's raw descriptors; < 0.6 is dlib's "same person"): under 0.6 for
   >= 80 % of the 41 photo-cartoon pairs, and of the clip frames' pairs;
3. cartoon-ness (p2c's fitted gauge, :mod:`p2c.training.gauge`): P(cartoon) >= 0.5 for >= 90 % of
   the 41 cartoons, and of the clip frames' cartoons. A generator that returns its input passes 1
   and 2 and fails this one;
4. style distance (:mod:`p2c.training.style_distance`: KID to the cartoons of trainB and testB on
   line, flatness and face-layout features) of the testA cartoons <= ``STYLE_DISTANCE_MAX``. A
   bleached photo passes 3 and fails this one (docs/default_model/style_calibration.md);
5. blotches (:mod:`p2c.training.blotches`): at most 5 % of the testA cartoons, and of the clip
   frames' cartoons, have over 1 % of the head turned green to blue where the photo was not;
6. flicker: ``benchmarks/pipeline_fps.py`` on each clip (``../shared/media``); the temporal warping
   error ratio (output over input, Lai et al. 2018) must be <= 2. Above it, tune the smoothing
   (``VideoConfig.cartoon_weight``, the mask EMA) rather than the model;
7. a grid (photo | cartoon) of the astronaut, testA photos and frames of the clips, for a person to
   look at (``grid_review.png``: third-party faces, never commit it) and the astronaut alone
   (``grid_public.png``, public domain: the model card's sample).

Also reported, not checked: the mean cosine identity (testA, astronaut), KID to testB and trainB,
the style distance of the clip frames' cartoons (two people only: a set that narrow is far from
the varied cartoon set whatever its style), and the style distance's calibration.
Writes ``gate.json`` (every figure, each check's verdict, the weights' SHA-256) and ``gate.md``.
``passed`` is true only when every automatic check (1-6) ran and passed; the grid needs a person
(``default_model.sh ship`` asks for ``P2C_GRID_OK=1``). Exit status 0 when it passed, 1 when not.
MediaPipe is needed only to align the astronaut (without ``--astronaut-crop``) and the clip frames;
PyAV only for the flicker check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from p2c.training.blotches import BLOTCH_SHARE_LIMIT

if TYPE_CHECKING:
    from p2c.models.architectures import Generator
    from p2c.training.faceid import FaceIdNetwork
    from p2c.training.gauge import CartoonGauge
    from p2c.training.style_distance import StyleReference

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
# docs/default-model.md: why these thresholds (issue 24 raised the gate).
RANK1_TESTA = 0.8  # at least this fraction of testA photos pick out their own cartoon
DLIB_SAME_PERSON = 0.6  # dlib's convention: descriptors closer than this are the same person
DLIB_SAME_FRACTION = 0.8  # of the 41 pairs (testA and the astronaut), and of the clip frames
CARTOON_P = 0.5
CARTOON_FRACTION = 0.9  # of the 41 cartoons (and of the clip frames') with P(cartoon) >= CARTOON_P
# Set from issue 24's pilots (docs/default-model.md, 2026-12-07): the first raised it to 2.2 (the
# part discriminators reached 2.13 from 2.57; every crude stylisation is over 26, real cartoons about
# 0); the lines, amount and identity pilots then reached 1.15-1.54 as trained, the same state swinging
# by about 0.2 between gates, so 1.6 holds every later model to them. Issue 24's end target is a
# quarter of the model shipped before it (4.19): 1.05.
STYLE_DISTANCE_MAX = 1.6
BLOTCH_FRACTION_MAX = 0.05  # of the cartoons with blotches over BLOTCH_SHARE_LIMIT of the head
WARPING_ERROR_RATIO = 2.0
GRID_PHOTOS = 6  # testA rows in the review grid
CLIP_FRAMES = 3  # frames per clip in the review grid
CLIP_MEASURE_FRAMES = 30  # frames per clip, spread over it, for the measures


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _at_least(value: float | None, threshold: float) -> bool | None:
    return None if value is None else value >= threshold


def _at_most(value: float | None, threshold: float) -> bool | None:
    return None if value is None else value <= threshold


def decide(figures: dict[str, Any]) -> dict[str, Any]:
    """Each automatic check's verdict (None: not run) and ``passed`` (all ran and passed)."""
    ratios = figures.get("warping_error_ratio") or {}
    checks = {
        "identity_rank1": _at_least(figures.get("identity_rank1_testA"), RANK1_TESTA),
        "dlib_distance": _at_least(figures.get("dlib_same_fraction"), DLIB_SAME_FRACTION),
        "dlib_distance_clips": _at_least(figures.get("dlib_same_fraction_clips"), DLIB_SAME_FRACTION),
        "cartoon": _at_least(figures.get("cartoon_fraction"), CARTOON_FRACTION),
        "cartoon_clips": _at_least(figures.get("cartoon_fraction_clips"), CARTOON_FRACTION),
        "style_distance": _at_most(figures.get("style_distance_testA"), STYLE_DISTANCE_MAX),
        "blotches": _at_most(figures.get("blotch_fraction_testA"), BLOTCH_FRACTION_MAX),
        "blotches_clips": _at_most(figures.get("blotch_fraction_clips"), BLOTCH_FRACTION_MAX),
        "flicker": None if not ratios else all(r <= WARPING_ERROR_RATIO for r in ratios.values()),
    }
    return {"checks": checks, "passed": all(v is True for v in checks.values())}


# -- the pictures ----------------------------------------------------------------------------------


def aligned(image: np.ndarray, aligner: Any) -> np.ndarray | None:
    faces = aligner.align(image, max_faces=1)
    return faces[0].crop if faces else None


def astronaut_crop(path: Path | None) -> np.ndarray:
    """The astronaut's 256x256 crop: read from ``path``, or aligned here (MediaPipe)."""
    if path is not None:
        return _read(path)
    from skimage import data

    from p2c.stream.faces import FaceAligner

    with FaceAligner() as aligner:
        crop = aligned(data.astronaut(), aligner)
    if crop is None:
        raise SystemExit("gate: no face found in the astronaut photo (MediaPipe)")
    return crop


def _read(path: Path) -> np.ndarray:
    from p2c.training.dataset import read_rgb

    image = read_rgb(path)
    if image is None:
        raise SystemExit(f"gate: cannot read {path}")
    return image


def clip_frames(clip: Path, count: int = CLIP_FRAMES) -> list[np.ndarray]:
    """Aligned crops of ``count`` frames spread over ``clip`` (OpenCV decodes, MediaPipe aligns)."""
    import cv2

    from p2c.stream.faces import FaceAligner

    capture = cv2.VideoCapture(str(clip))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    crops = []
    with FaceAligner() as aligner:
        for index in np.linspace(0, max(total - 1, 0), count).astype(int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            crop = aligned(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), aligner) if ok else None
            if crop is not None:
                crops.append(crop)
    capture.release()
    return crops


def to_batch(crops: list[np.ndarray], device: torch.device) -> torch.Tensor:
    from p2c.training.dataset import to_tensor

    return torch.stack([to_tensor(c) for c in crops]).to(device)


@torch.no_grad()
def cartoonise(generator: torch.nn.Module, crops: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.cat([generator(part)[0].float() for part in to_batch(crops, device).split(8)])


# -- the checks ------------------------------------------------------------------------------------


def style_reference(data: Path) -> StyleReference:
    """The style distance's cartoon set: the crops of trainB (if there) and testB."""
    from p2c.training.evaluation import load_crops
    from p2c.training.style_distance import StyleReference

    folders = [data / name for name in ("trainB", "testB") if (data / name).is_dir()]
    return StyleReference([crop for folder in folders for crop in load_crops(folder, align="no")[1]])


def output_figures(
    generator: Generator,
    faceid: FaceIdNetwork,
    gauge: CartoonGauge,
    data: Path,
    astronaut: np.ndarray,
    device: torch.device,
    style: StyleReference | None = None,
) -> dict[str, Any]:
    """p2c-eval's figures on testA (rank-1, dlib distances, P(cartoon), cosine identity, style
    distance, blotches; KID to testB and trainB) and the astronaut's, with the fractions the checks
    need over all 41. ``style`` None: :func:`style_reference` of ``data``."""
    from p2c.training.evaluation import evaluate_generator, load_crops
    from p2c.training.metrics import descriptor_distance, identity_similarity

    style = style or style_reference(data)
    names, photos, _ = load_crops(data / "testA", align="no")
    reports = {
        name: evaluate_generator(
            generator,
            names,
            photos,
            load_crops(data / name, align="no")[1],
            faceid,
            device,
            name,
            gauge=gauge,
            style_reference=style,
        )
        for name in ("testB", "trainB")
        if (data / name).is_dir()
    }
    testa = reports["testB"]
    assert testa.identity_mean is not None and testa.identity_std is not None
    assert testa.style_distance is not None and testa.blotch_fraction is not None
    if not testa.per_photo_dlib_distance:
        raise SystemExit(f"gate: {testa.dlib_note}; pass dlib's network (--faceid-weights)")
    photo, cartoon = to_batch([astronaut], device), cartoonise(generator, [astronaut], device)
    with torch.no_grad():
        star_p = float(gauge(cartoon).item())
        star_distance = float(descriptor_distance(faceid, photo, cartoon).item())
    star_identity = float(identity_similarity(faceid, photo, cartoon).item())
    distances = [*testa.per_photo_dlib_distance.values(), star_distance]
    p_cartoon = [*testa.per_photo_cartoon.values(), star_p]
    lowest = sorted(testa.per_photo_identity.items(), key=lambda item: item[1])
    return {
        "testA_photos": testa.photos,
        "pairs": len(distances),
        "identity_rank1_testA": testa.identity_rank1,
        "dlib_same_fraction": float(np.mean([d < DLIB_SAME_PERSON for d in distances])),
        "dlib_distance_testA_mean": testa.dlib_distance_mean,
        "dlib_distance_astronaut": star_distance,
        "dlib_distance_largest": dict(
            sorted(testa.per_photo_dlib_distance.items(), key=lambda item: -item[1])[:5]
        ),
        "cartoon_fraction": float(np.mean([p >= CARTOON_P for p in p_cartoon])),
        "cartoon_testA_mean": testa.cartoon_mean,
        "cartoon_astronaut": star_p,
        "cartoon_lowest": dict(sorted(testa.per_photo_cartoon.items(), key=lambda item: item[1])[:5]),
        "cartoon_references_mean": {name: r.reference_cartoon_mean for name, r in reports.items()},
        "identity_testA_mean": testa.identity_mean,
        "identity_testA_std": testa.identity_std,
        "identity_testA_min": lowest[0][1],
        "identity_testA_lowest": dict(lowest[:5]),
        "identity_astronaut": star_identity,
        "kid": {name: report.kid for name, report in reports.items()},
        "style_cartoons": style.cartoons,
        "style_distance_testA": testa.style_distance,
        "style_blocks_testA": testa.style_blocks,
        "blotch_fraction_testA": testa.blotch_fraction,
        "blotch_share_testA_mean": testa.blotch_share_mean,
        "blotch_largest_testA": dict(sorted(testa.per_photo_blotch.items(), key=lambda item: -item[1])[:5]),
    }


@torch.no_grad()
def clip_figures(
    generator: torch.nn.Module,
    faceid: FaceIdNetwork,
    gauge: CartoonGauge,
    frames: dict[str, list[np.ndarray]],
    style: StyleReference,
    device: torch.device,
) -> dict[str, Any]:
    """On the aligned frames of the clips, together: the fractions the clip checks need (dlib
    distance < 0.6, P(cartoon) >= 0.5, blotches), the style distance, and blotches per clip.
    Rank-1 is not measured: every frame of a clip is one person."""
    from p2c.training.blotches import blotch_shares
    from p2c.training.metrics import descriptor_distance
    from p2c.training.samples import tensor_to_rgb

    crops = [crop for clip in frames.values() for crop in clip]
    if len(crops) < 2:
        raise SystemExit(f"gate: only {len(crops)} clip frames with a face: the clip checks need 2")
    photos = to_batch(crops, device)
    cartoons = cartoonise(generator, crops, device)
    p_cartoon = torch.cat([gauge(part).float() for part in cartoons.split(8)]).cpu().numpy()
    pairs = zip(photos.split(8), cartoons.split(8), strict=True)
    distances = torch.cat([descriptor_distance(faceid, a, b) for a, b in pairs]).cpu().numpy()
    images = list(tensor_to_rgb(cartoons))
    shares = blotch_shares(crops, images)
    measured = style.measure(images)
    per_clip, start = {}, 0
    for clip, clip_crops in frames.items():
        part = shares[start : start + len(clip_crops)]
        start += len(clip_crops)
        fraction = float(np.mean(part > BLOTCH_SHARE_LIMIT)) if len(part) else None
        per_clip[clip] = {"frames": len(clip_crops), "blotch_fraction": fraction}
    return {
        "clip_frames": len(crops),
        "dlib_same_fraction_clips": float(np.mean(distances < DLIB_SAME_PERSON)),
        "dlib_distance_clips_mean": float(distances.mean()),
        "cartoon_fraction_clips": float(np.mean(p_cartoon >= CARTOON_P)),
        "cartoon_clips_mean": float(p_cartoon.mean()),
        "style_distance_clips": measured.distance,
        "style_blocks_clips": measured.blocks,
        "blotch_fraction_clips": float(np.mean(shares > BLOTCH_SHARE_LIMIT)),
        "blotch_share_clips_mean": float(shares.mean()),
        "blotches_per_clip": per_clip,
    }


def tiled(photos: torch.Tensor, cartoons: torch.Tensor, per_row: int = 4) -> np.ndarray:
    """Photo | cartoon pairs, ``per_row`` pairs side by side, on white."""
    from p2c.training.samples import tensor_to_rgb

    pairs = [
        np.concatenate(pair, axis=1)
        for pair in zip(tensor_to_rgb(photos), tensor_to_rgb(cartoons), strict=True)
    ]
    pairs += [np.full_like(pairs[0], 255)] * (-len(pairs) % per_row)
    rows = [np.concatenate(pairs[i : i + per_row], axis=1) for i in range(0, len(pairs), per_row)]
    return np.concatenate(rows, axis=0)


def write_grids(
    generator: torch.nn.Module,
    out: Path,
    astronaut: np.ndarray,
    data: Path,
    frames: dict[str, list[np.ndarray]],
    device: torch.device,
) -> dict[str, Any]:
    """The review grid (the astronaut, testA, ``CLIP_FRAMES`` of each clip's ``frames``, spread)
    and the public one (the astronaut)."""
    from p2c.training.evaluation import load_crops
    from p2c.training.samples import write_png

    review = [astronaut, *load_crops(data / "testA", align="no", limit=GRID_PHOTOS)[1]]
    rows = {"astronaut": 1, "testA": len(review) - 1}
    for clip, crops in frames.items():
        chosen = sorted({int(i) for i in np.linspace(0, len(crops) - 1, CLIP_FRAMES)}) if crops else []
        review += [crops[i] for i in chosen]
        rows[clip] = len(chosen)
    write_png(out / "grid_review.png", tiled(to_batch(review, device), cartoonise(generator, review, device)))
    public = [astronaut, np.ascontiguousarray(astronaut[:, ::-1])]  # and mirrored: one photo, two poses
    write_png(
        out / "grid_public.png", tiled(to_batch(public, device), cartoonise(generator, public, device), 2)
    )
    return {"review": "grid_review.png", "review_rows": rows, "public": "grid_public.png", "looked_at": None}


def flicker_figures(weights: Path, clips: Sequence[Path], out: Path, frames: int | None, device: str) -> dict:
    """``benchmarks/pipeline_fps.py`` on each clip: warping-error ratio, flicker ratio, fps."""
    figures = {}
    for clip in clips:
        folder = out / f"flicker_{clip.stem}"
        command = [
            sys.executable,
            str(REPO / "benchmarks" / "pipeline_fps.py"),
            str(clip),
            "--weights",
            str(weights),
        ]
        command += ["--out", str(folder), "--device", device, *(["--frames", str(frames)] if frames else [])]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(
                f"gate: pipeline_fps.py failed on {clip.name}: {done.stderr.strip().splitlines()[-1:]}"
            )
        report = json.loads((folder / "pipeline_fps.json").read_text())
        warping = report["flicker"]["warping_error"]
        figures[clip.name] = {
            "warping_error_ratio": warping["ratio"],
            "warping_error_input": warping["input_error"],
            "warping_error_output": warping["output_error"],
            "flicker_ratio": report["flicker"]["ratio"],
            "frames": report["frames"],
            "fps": report["fps"],
        }
    return figures


# -- the report ------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _verdict(value: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "not run"}[value]


def markdown(report: dict[str, Any]) -> str:
    f, checks = report["figures"], report["checks"]
    rows = []
    if "cartoon_fraction" in f:
        rows += [
            f"| identity rank-1: own cartoon the nearest of the {f['testA_photos']} (testA) "
            f"| {f['identity_rank1_testA']:.0%} | >= {RANK1_TESTA:.0%} "
            f"| {_verdict(checks['identity_rank1'])} |",
            f"| dlib distance < {DLIB_SAME_PERSON} ({f['pairs']} pairs; testA mean "
            f"{f['dlib_distance_testA_mean']:.3f}, astronaut {f['dlib_distance_astronaut']:.3f}) "
            f"| {f['dlib_same_fraction']:.0%} | >= {DLIB_SAME_FRACTION:.0%} "
            f"| {_verdict(checks['dlib_distance'])} |",
            f"| P(cartoon) >= {CARTOON_P} ({f['pairs']} cartoons; testA mean "
            f"{f['cartoon_testA_mean']:.3f}, astronaut {f['cartoon_astronaut']:.3f}) "
            f"| {f['cartoon_fraction']:.0%} | >= {CARTOON_FRACTION:.0%} | {_verdict(checks['cartoon'])} |",
            f"| style distance of the {f['testA_photos']} testA cartoons (KID to {f['style_cartoons']} "
            f"cartoons on line, flatness and layout features) | {f['style_distance_testA']:.2f} "
            f"| <= {STYLE_DISTANCE_MAX} | {_verdict(checks['style_distance'])} |",
            f"| testA cartoons with blotches over {BLOTCH_SHARE_LIMIT:.0%} of the head (mean share "
            f"{f['blotch_share_testA_mean']:.2%}) | {f['blotch_fraction_testA']:.0%} "
            f"| <= {BLOTCH_FRACTION_MAX:.0%} | {_verdict(checks['blotches'])} |",
        ]
    if "clip_frames" in f:
        per_clip = ", ".join(
            f"`{clip}` {_percent(v['blotch_fraction'])} of {v['frames']}"
            for clip, v in f["blotches_per_clip"].items()
        )
        rows += [
            f"| dlib distance < {DLIB_SAME_PERSON} ({f['clip_frames']} clip frames; mean "
            f"{f['dlib_distance_clips_mean']:.3f}) | {f['dlib_same_fraction_clips']:.0%} "
            f"| >= {DLIB_SAME_FRACTION:.0%} | {_verdict(checks['dlib_distance_clips'])} |",
            f"| P(cartoon) >= {CARTOON_P} ({f['clip_frames']} clip frames; "
            f"mean {f['cartoon_clips_mean']:.3f}) "
            f"| {f['cartoon_fraction_clips']:.0%} | >= {CARTOON_FRACTION:.0%} "
            f"| {_verdict(checks['cartoon_clips'])} |",
            f"| clip-frame cartoons with blotches over {BLOTCH_SHARE_LIMIT:.0%} of the head ({per_clip}; "
            f"mean share {f['blotch_share_clips_mean']:.2%}) | {f['blotch_fraction_clips']:.0%} "
            f"| <= {BLOTCH_FRACTION_MAX:.0%} | {_verdict(checks['blotches_clips'])} |",
        ]
    else:
        rows.append("| clip frames: dlib distance, P(cartoon), blotches | not measured | | not run |")
    for clip, figures in f.get("flicker", {}).items():
        ok = figures["warping_error_ratio"] <= WARPING_ERROR_RATIO
        rows.append(
            f"| warping error ratio, `{clip}` ({figures['frames']} frames; flicker ratio "
            f"{figures['flicker_ratio']:.2f}, {figures['fps']:.1f} fps) "
            f"| {figures['warping_error_ratio']:.2f} "
            f"| <= {WARPING_ERROR_RATIO} | {_verdict(ok)} |"
        )
    if not f.get("flicker"):
        rows.append(f"| warping error ratio | not measured | <= {WARPING_ERROR_RATIO} | not run |")
    rows.append(
        "| cartoons a person would call cartoons (`grid_review.png`) | look | a person | not automatic |"
    )
    kid = ", ".join(f"{name} {value:.4f}" for name, value in f.get("kid", {}).items()) or "not measured"
    training = report.get("training") or {}
    lines = [
        f"Gate of `{report['weights']}` ({report['bytes']:,} bytes, SHA-256 {report['sha256'][:16]}...): "
        f"**{'passed' if report['passed'] else 'not passed'}** (automatic checks).",
        "",
        "| check | figure | threshold | verdict |",
        "| --- | ---: | --- | --- |",
        *rows,
        "",
        f"KID (fixed colour/texture features, lower is better): {kid}.",
    ]
    if "style_distance_clips" in f:
        lines.append(
            f"Style distance of the {f['clip_frames']} clip-frame cartoons (not a check: two people "
            f"only): {f['style_distance_clips']:.2f}."
        )
    if report.get("style_calibration"):
        from p2c.training.style_distance import calibration_line

        lines.append(calibration_line(report["style_calibration"]))
    if "identity_testA_mean" in f:
        lines.append(
            f"Identity, mean cosine (dlib port; not a check): testA {f['identity_testA_mean']:.4f} "
            f"(std {f['identity_testA_std']:.3f}, lowest {f['identity_testA_min']:.3f}), "
            f"astronaut {f['identity_astronaut']:.4f}."
        )
    if training:
        lines.append(training_line(training))
    return "\n".join(lines) + "\n"


def training_line(training: dict[str, Any]) -> str:
    """What the weights' state says of their training: a GPU run's or the CPU run's state.json."""
    samples = training.get("samples_seen", training.get("samples", "unknown"))  # GPU's, CPU run's name
    line = f"Training: step {training.get('step')}, {samples} samples seen"
    if "cpu_hours" in training:
        return f"{line}, {training['cpu_hours']:.2f} CPU-hours."
    return (
        f"{line}, {training.get('gpu_minutes', 'unknown')} GPU minutes "
        f"({len(training.get('history', []))} GPU runs)."
    )


def run_gate(args: argparse.Namespace) -> dict[str, Any]:
    from p2c.devices import resolve_device
    from p2c.models.weights import load_generator
    from p2c.training.faceid import load_faceid
    from p2c.training.gauge import load_gauge
    from p2c.training.samples import write_png
    from p2c.training.style_distance import load_calibration

    device = resolve_device(args.device, 0)
    args.out.mkdir(parents=True, exist_ok=True)
    generator = load_generator(args.weights).to(device).eval()
    faceid = load_faceid(str(args.faceid_weights) if args.faceid_weights else None, device)
    faceid.eval().requires_grad_(False)
    gauge = load_gauge(args.gauge_weights, device)
    astronaut = astronaut_crop(args.astronaut_crop)
    write_png(args.out / "astronaut_crop.png", astronaut)
    style = style_reference(args.data)
    figures = output_figures(generator, faceid, gauge, args.data, astronaut, device, style)
    clips = [] if args.no_clips else list(args.clips)
    frames = {clip.name: clip_frames(clip, args.clip_frames) for clip in clips}
    if frames:
        figures.update(clip_figures(generator, faceid, gauge, frames, style, device))
    grids = write_grids(generator, args.out, astronaut, args.data, frames, device)
    if not args.no_flicker:
        figures["flicker"] = flicker_figures(
            args.weights, args.clips, args.out, args.frames, args.flicker_device
        )
        figures["warping_error_ratio"] = {c: v["warping_error_ratio"] for c, v in figures["flicker"].items()}
    state = args.weights.parent / "state.json"
    report = {
        "weights": str(args.weights),
        "bytes": args.weights.stat().st_size,
        "sha256": sha256(args.weights),
        "thresholds": {
            "identity_rank1_testA_at_least": RANK1_TESTA,
            "dlib_distance_below": DLIB_SAME_PERSON,
            "dlib_same_fraction_at_least": DLIB_SAME_FRACTION,
            "cartoon_p_at_least": CARTOON_P,
            "cartoon_fraction_at_least": CARTOON_FRACTION,
            "style_distance_at_most": STYLE_DISTANCE_MAX,
            "blotch_share_over": BLOTCH_SHARE_LIMIT,
            "blotch_fraction_at_most": BLOTCH_FRACTION_MAX,
            "warping_error_ratio_at_most": WARPING_ERROR_RATIO,
        },
        "style_calibration": load_calibration(),
        "figures": figures,
        "grids": grids,
        "training": json.loads(state.read_text()) if state.is_file() else None,
        **decide(figures),
    }
    (args.out / "gate.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gate.md").write_text(markdown(report))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="the A->B generator (.safetensors + .json)")
    parser.add_argument("--data", type=Path, required=True, help="crops: testA, testB (and trainB)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clips", type=Path, nargs="+", default=sorted(MEDIA.glob("*.mp4")))
    parser.add_argument(
        "--astronaut-crop", type=Path, default=None, help="default: align it here (MediaPipe)"
    )
    parser.add_argument("--faceid-weights", type=Path, default=None, help="default: the dlib port")
    parser.add_argument(
        "--gauge-weights", type=Path, default=None, help="cartoon-ness gauge (default: p2c's fitted one)"
    )
    parser.add_argument("--device", default="auto", help="for the output checks and grids")
    parser.add_argument("--flicker-device", default="auto", help="for pipeline_fps.py (default: auto)")
    parser.add_argument("--frames", type=int, default=None, help="flicker on the first N frames only")
    parser.add_argument("--no-flicker", action="store_true", help="skip the flicker check (not passed)")
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=CLIP_MEASURE_FRAMES,
        help=f"aligned frames per clip for the clip checks (default {CLIP_MEASURE_FRAMES})",
    )
    parser.add_argument(
        "--no-clips", action="store_true", help="no clip frames: no clip checks (not passed), no MediaPipe"
    )
    args = parser.parse_args(argv)
    if not args.no_flicker and not args.clips:
        parser.error(f"no clips: pass --clips or put them in {MEDIA}")
    if args.clip_frames < 1:
        parser.error(f"--clip-frames must be >= 1, got {args.clip_frames}")
    report = run_gate(args)
    print(markdown(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
