"""Record what p2c's face tracker finds on every frame of a clip, so the GPU pipeline can be replayed
on a machine without MediaPipe (``benchmarks/pipeline_replay.py``).

    python benchmarks/record_faces.py CLIP --out DIR/NAME [--frames N] [--max-faces K] [--copy-clip]

Decodes CLIP with OpenCV (the decoder the replay uses, so frame indices agree), runs p2c's tracking
stage on each frame exactly as ``p2c-video`` does (MediaPipe face mesh in tracking mode, One-Euro
smoothing, head segmentation smoothed per track) and writes:

- ``NAME.json``: the clip (file name, size, frame rate, SHA-256), the settings and, per frame, how
  many faces were found;
- ``NAME.npz`` (compressed): per face, in frame order, ``frame`` index, ``track_id``, ``transform``
  (2x3 image -> crop), ``landmarks`` (68 x 2 image pixels) and ``mask`` (crop-sized uint8 head mask,
  0..255).

The masks are the bulk (a few kB per face compressed). ``--copy-clip`` copies CLIP beside the
recording, so a folder holding both can be carried to another machine. The recording is derived from
the clip: keep it where the clip may be (never in git).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "main", "record", "write_recording"]

FORMAT = "p2c-face-recording/1"


def _parser() -> argparse.ArgumentParser:
    from p2c.cli import positive_int

    parser = argparse.ArgumentParser(prog="record_faces", description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="a video file with faces")
    parser.add_argument("--out", type=Path, required=True, help="DIR/NAME: writes NAME.json and NAME.npz")
    parser.add_argument("--frames", type=positive_int, default=None, help="stop after this many frames")
    parser.add_argument("--max-faces", type=positive_int, default=1, help="faces tracked (default 1)")
    parser.add_argument("--copy-clip", action="store_true", help="copy the clip beside the recording")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    return parser


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(clip: Path, out: Path, frames: int | None = None, max_faces: int = 1) -> dict[str, Any]:
    """Track the faces of ``clip`` and write ``out.json`` and ``out.npz``; returns the JSON's content."""
    import cv2

    from p2c.errors import InputNotFoundError, InvalidInputError
    from p2c.stream.faces import AlignerConfig, FaceAligner
    from p2c.stream.frame import Frame
    from p2c.stream.tracking import FaceTracker, TrackerConfig, TrackingStage

    if not clip.is_file():
        raise InputNotFoundError(f"clip {clip} not found; pass a video file with a face")
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise InvalidInputError(f"OpenCV cannot decode {clip}; pass an H.264 .mp4 or another clip")
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 30.0
    stage = TrackingStage(
        FaceTracker(TrackerConfig(max_faces=max_faces)), FaceAligner(AlignerConfig(max_faces=max_faces))
    )
    columns: dict[str, list[Any]] = {k: [] for k in ("frame", "track_id", "transform", "landmarks", "mask")}
    counts: list[int] = []
    started = time.perf_counter()
    size = (0, 0)
    try:
        while frames is None or len(counts) < frames:
            ok, bgr = capture.read()
            if not ok:
                break
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            size = (image.shape[1], image.shape[0])
            (frame,) = stage.process([Frame.at_seconds(len(counts), len(counts) / fps, image)])
            for face in frame.faces:
                columns["frame"].append(np.int32(frame.index))
                columns["track_id"].append(np.int32(face.track_id))
                columns["transform"].append(np.asarray(face.transform, np.float64))
                columns["landmarks"].append(np.asarray(face.landmarks, np.float32))
                columns["mask"].append(np.rint(np.clip(face.mask, 0.0, 1.0) * 255).astype(np.uint8))
            counts.append(len(frame.faces))
    finally:
        capture.release()
        stage.close()
    if not counts:
        raise InvalidInputError(f"{clip} has no decodable video frames; pass another clip")
    crop_size = stage.aligner.config.crop_size
    arrays: dict[str, np.ndarray] = {
        "frame": np.array(columns["frame"], np.int32),
        "track_id": np.array(columns["track_id"], np.int32),
        "transform": np.array(columns["transform"], np.float64).reshape(-1, 2, 3),
        "landmarks": np.array(columns["landmarks"], np.float32).reshape(-1, 68, 2),
        "mask": np.array(columns["mask"], np.uint8).reshape(-1, crop_size, crop_size),
    }
    settings = {"max_faces": max_faces, "tracking_seconds": round(time.perf_counter() - started, 2)}
    return write_recording(out, clip, fps, size, counts, arrays, settings)


def write_recording(
    out: Path,
    clip: Path,
    fps: float,
    size: tuple[int, int],
    faces_per_frame: list[int],
    arrays: dict[str, np.ndarray],
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out.json`` and ``out.npz`` (see the module docstring); returns the JSON's content."""
    np.savez_compressed(out.with_suffix(".npz"), **arrays)
    meta = {
        "format": FORMAT,
        "clip": clip.name,
        "clip_sha256": _sha256(clip),
        "width": size[0],
        "height": size[1],
        "fps": fps,
        "frames": len(faces_per_frame),
        "faces_per_frame": faces_per_frame,
        "crop_size": int(arrays["mask"].shape[-1]),
        **(settings or {}),
        "arrays": out.with_suffix(".npz").name,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def _main(argv: Sequence[str] | None) -> int:
    from p2c.files import require_folder

    args = _parser().parse_args(argv)
    out = require_folder(args.out, "recording")
    meta = record(args.clip, out, args.frames, args.max_faces)
    if args.copy_clip and args.clip.resolve() != (out.parent / args.clip.name).resolve():
        shutil.copyfile(args.clip, out.parent / args.clip.name)
    found = sum(1 for count in meta["faces_per_frame"] if count)
    size_kb = (out.with_suffix(".npz").stat().st_size + out.with_suffix(".json").stat().st_size) / 1024
    print(
        f"wrote {out.with_suffix('.json')} and .npz ({size_kb:.0f} kB): {meta['frames']} frames, "
        f"faces on {found}",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from p2c.cli import run_command

    return run_command(_main, argv, prog="record_faces")


if __name__ == "__main__":
    sys.exit(main())
