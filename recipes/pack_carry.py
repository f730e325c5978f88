"""Pack what a GPU machine needs to train into one folder small enough to travel (64 MiB in all).

    python recipes/pack_carry.py DATA CARRY [--quality 90]
    python recipes/pack_carry.py --faceid-only CARRY   # only CARRY/faceid/dlib_fp16.safetensors

DATA: a p2c-prepare-data folder (trainA, testA, trainB, testB as 256x256 PNG crops). CARRY gets
``data/{trainA,testA,trainB,testB}/*.webp`` (WebP at ``--quality``: 7.4 MB for the 738 training
crops instead of 67 MB of PNG), ``faceid/dlib_fp16.safetensors`` (the Face ID network, 11 MB;
the GPU machine has no face_recognition_models) and ``gate/astronaut.png`` (skimage's astronaut
aligned here, for the gate's identity check there: the GPU machine has no MediaPipe).
Only run where the data may be: the crops are made from third-party photos and never enter git.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2

from p2c.training.dataset import list_images

FOLDERS = ("trainA", "testA", "trainB", "testB")


def pack_images(source: Path, target: Path, quality: int) -> int:
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in list_images(source):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {path}")
        ok, encoded = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise SystemExit(f"cannot encode {path} as WebP")
        (target / f"{path.stem}.webp").write_bytes(encoded.tobytes())
        total += len(encoded)
    return total


def pack_faceid(target: Path) -> int:
    from p2c.training.dlib_resnet import save_dlib_resnet
    from p2c.training.faceid import load_faceid

    target.parent.mkdir(parents=True, exist_ok=True)
    return save_dlib_resnet(load_faceid(None).backbone, target).stat().st_size


def pack_astronaut(target: Path) -> int:
    """skimage's astronaut (public domain), aligned as p2c-image aligns it: a PNG crop."""
    from skimage import data

    from p2c.stream.faces import FaceAligner

    with FaceAligner() as aligner:
        faces = aligner.align(data.astronaut(), max_faces=1)
    if not faces:
        raise SystemExit("no face found in the astronaut photo")
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(faces[0].crop, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SystemExit(f"cannot encode {target}")
    target.write_bytes(encoded.tobytes())
    return len(encoded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?")
    parser.add_argument("carry", type=Path, nargs="?")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument(
        "--faceid-only",
        type=Path,
        metavar="CARRY",
        help="write only CARRY/faceid/dlib_fp16.safetensors (for recipes/gpu_training_bench.sh)",
    )
    args = parser.parse_args(argv)
    if args.faceid_only:
        print(f"faceid: {pack_faceid(args.faceid_only / 'faceid' / 'dlib_fp16.safetensors') / 1e6:.1f} MB")
        return 0
    if args.data is None or args.carry is None:
        parser.error("DATA and CARRY are required (or --faceid-only CARRY)")
    missing = [n for n in FOLDERS if not (args.data / n).is_dir() or not list_images(args.data / n)]
    if missing:
        raise SystemExit(f"{args.data} lacks {', '.join(missing)}: run p2c-prepare-data first")
    for name in FOLDERS:
        shutil.rmtree(args.carry / "data" / name, ignore_errors=True)
        size = pack_images(args.data / name, args.carry / "data" / name, args.quality)
        print(f"{name}: {len(list_images(args.carry / 'data' / name))} crops, {size / 1e6:.1f} MB")
    faceid = args.carry / "faceid" / "dlib_fp16.safetensors"
    if not faceid.is_file():
        print(f"faceid: {pack_faceid(faceid) / 1e6:.1f} MB")
    print(f"astronaut crop: {pack_astronaut(args.carry / 'gate' / 'astronaut.png') / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
