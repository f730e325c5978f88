"""Dataset preparation: raw photos (or cartoons) -> aligned 256x256 white-background crops.

The crops come from :class:`p2c.stream.faces.FaceAligner`, the aligner inference uses, so the
generator trains on exactly what it will see. The raw folder is only read. Outputs follow
photo2cartoon's layout (``trainA``/``testA`` for photos, ``trainB``/``testB`` for cartoons) and a
manifest records, for every source file, its output or the reason it was skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from p2c.errors import InputNotFoundError, InvalidInputError, OutputError
from p2c.files import atomic_write
from p2c.training.dataset import IMAGE_SUFFIXES, read_rgb

__all__ = ["STATUSES", "PrepareConfig", "PrepareReport", "prepare_dataset"]

logger = logging.getLogger(__name__)

WRITTEN, NO_FACE, MULTIPLE_FACES, UNREADABLE = "written", "no_face", "multiple_faces", "unreadable"
STATUSES = (WRITTEN, NO_FACE, MULTIPLE_FACES, UNREADABLE)
DOMAINS = ("A", "B")


@dataclass(frozen=True)
class PrepareConfig:
    """``domain`` A = photos, B = cartoons; ``split_test`` crops go to testA/testB (seeded choice)."""

    raw_dir: str
    out_dir: str
    domain: str = "A"
    workers: int = 1
    allow_multiple_faces: bool = False  # True: keep the largest face instead of skipping the image
    split_test: int = 0
    seed: int = 0
    crop_size: int = 256
    min_detection_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be A (photos) or B (cartoons), got {self.domain!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")
        if not isinstance(self.split_test, int) or self.split_test < 0:
            raise ValueError(f"split_test must be an integer >= 0, got {self.split_test!r}")
        if self.crop_size < 16:
            raise ValueError(f"crop_size must be >= 16, got {self.crop_size}")


@dataclass
class PrepareReport:
    counts: dict[str, int] = field(default_factory=dict)
    train: int = 0
    test: int = 0
    manifest: Path | None = None

    def summary(self) -> str:
        parts = ", ".join(f"{self.counts.get(status, 0)} {status.replace('_', ' ')}" for status in STATUSES)
        return f"{parts}; {self.train} train, {self.test} test crops; manifest {self.manifest}"


# -- worker side: one FaceAligner per process ------------------------------------------------------

_ALIGNER: Any = None


def _open_aligner(crop_size: int, min_confidence: float) -> Any:
    from p2c.stream.faces import AlignerConfig, FaceAligner

    return FaceAligner(AlignerConfig(crop_size=crop_size, min_detection_confidence=min_confidence))


def _init_worker(crop_size: int, min_confidence: float) -> None:
    global _ALIGNER
    cv2.setNumThreads(1)  # the pool already uses every core
    _ALIGNER = _open_aligner(crop_size, min_confidence)


def _process(job: tuple[str, str, bool]) -> tuple[str, str, str | None]:
    """Align one raw image; write its crop to ``target``. Returns (source, status, target or None)."""
    source, target, allow_multiple = job
    image = read_rgb(Path(source))
    if image is None:
        return source, UNREADABLE, None
    faces = _ALIGNER.align(image, max_faces=1 if allow_multiple else 2)
    if not faces:
        return source, NO_FACE, None
    if len(faces) > 1 and not allow_multiple:
        return source, MULTIPLE_FACES, None
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(faces[0].crop, cv2.COLOR_RGB2BGR))
    if not ok:
        return source, UNREADABLE, None
    with atomic_write(target, "wb") as file:
        file.write(encoded.tobytes())
    return source, WRITTEN, target


# -- parent side --------------------------------------------------------------------------------


def _check_folders(raw: Path, out: Path) -> None:
    if not raw.is_dir():
        raise InputNotFoundError(f"raw folder {raw} does not exist")
    raw_r, out_r = raw.resolve(), out.resolve()
    if out_r == raw_r or raw_r in out_r.parents:
        raise InvalidInputError(
            f"OUT_DIR {out} is inside RAW_DIR {raw}; choose a folder outside the raw data"
        )
    if out_r in raw_r.parents:
        raise InvalidInputError(
            f"RAW_DIR {raw} is inside OUT_DIR {out}; choose an OUT_DIR that does not hold it"
        )


def _raw_images(raw: Path) -> list[Path]:
    images = sorted(p for p in raw.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InvalidInputError(f"{raw} holds no images (.png, .jpg, .jpeg, .webp, .bmp)")
    return images


def _output_names(raw: Path, images: list[Path]) -> list[str]:
    """``<relative path with / -> __>.png``: unique even for a.jpg beside a.png (then a.jpg.png)."""
    stems = [str(p.relative_to(raw).with_suffix("")).replace(os.sep, "__") for p in images]
    repeated = {stem for stem, n in Counter(stems).items() if n > 1}
    names = []
    for path, stem in zip(images, stems, strict=True):
        names.append(f"{stem}{path.suffix.lower()}.png" if stem in repeated else f"{stem}.png")
    return names


def _prepare_outputs(out: Path, domain: str) -> tuple[Path, Path]:
    train_dir, test_dir = out / f"train{domain}", out / f"test{domain}"
    for folder in (train_dir, test_dir):
        if folder.is_dir() and any(folder.iterdir()):
            raise OutputError(f"{folder} is not empty; prepare into a new OUT_DIR or empty it first")
    try:
        train_dir.mkdir(parents=True, exist_ok=True)
        test_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {train_dir}: {error.strerror or error}") from error
    return train_dir, test_dir


def _run_jobs(
    config: PrepareConfig, jobs: list[tuple[str, str, bool]]
) -> Iterator[tuple[str, str, str | None]]:
    args = (config.crop_size, config.min_detection_confidence)
    if config.workers == 1:
        global _ALIGNER
        _ALIGNER = _open_aligner(*args)
        try:
            yield from map(_process, jobs)
        finally:
            _ALIGNER.close()
            _ALIGNER = None
        return
    # spawn: MediaPipe's graphs and threads do not survive fork; each worker builds its own.
    with ProcessPoolExecutor(
        config.workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=args
    ) as pool:
        yield from pool.map(_process, jobs, chunksize=4)


def _write_manifest(path: Path, content: dict[str, Any]) -> None:
    with atomic_write(path) as stream:
        json.dump(content, stream, indent=2, sort_keys=True)
        stream.write("\n")


def prepare_dataset(config: PrepareConfig, progress: bool = True) -> PrepareReport:
    """Align every image of ``raw_dir`` into ``out_dir/train{domain}`` (and ``test{domain}``)."""
    from tqdm import tqdm

    raw, out = Path(config.raw_dir), Path(config.out_dir)
    _check_folders(raw, out)
    images = _raw_images(raw)
    train_dir, test_dir = _prepare_outputs(out, config.domain)
    names = _output_names(raw, images)
    jobs = [
        (str(p), str(train_dir / n), config.allow_multiple_faces) for p, n in zip(images, names, strict=True)
    ]
    results: dict[str, tuple[str, str | None]] = {}
    bar = tqdm(total=len(jobs), desc=f"aligning domain {config.domain}", unit="img", disable=not progress)
    for source, status, target in _run_jobs(config, jobs):
        results[source] = (status, target)
        bar.update(1)
    bar.close()

    written = sorted(source for source, (status, _) in results.items() if status == WRITTEN)
    if config.split_test > len(written):
        logger.warning("--split-test %d > %d crops written: all go to test", config.split_test, len(written))
    rng = np.random.default_rng(config.seed)
    chosen = rng.choice(len(written), size=min(config.split_test, len(written)), replace=False)
    for index in sorted(int(i) for i in chosen):
        source = written[index]
        written_to = Path(results[source][1] or "")
        moved = test_dir / written_to.name
        os.replace(written_to, moved)
        results[source] = (WRITTEN, str(moved))

    files: dict[str, dict[str, str | None]] = {}
    for path in images:
        status, target = results[str(path)]
        rel_out = str(Path(target).relative_to(out)) if target else None
        files[str(path.relative_to(raw))] = {"status": status, "output": rel_out}
    counts = {status: sum(1 for f in files.values() if f["status"] == status) for status in STATUSES}
    manifest = out / f"manifest_{config.domain}.json"
    _write_manifest(
        manifest,
        {
            "raw_dir": str(raw.resolve()),
            "domain": config.domain,
            "split_test": config.split_test,
            "seed": config.seed,
            "allow_multiple_faces": config.allow_multiple_faces,
            "crop_size": config.crop_size,
            "counts": counts,
            "files": files,
        },
    )
    test_count = len(chosen)
    return PrepareReport(
        counts=counts, train=counts[WRITTEN] - test_count, test=test_count, manifest=manifest
    )
