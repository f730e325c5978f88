"""Which files a batch converts and where each one goes.

``IN`` is a folder (searched recursively), a glob (``clips/**/*.mp4``), a text file of paths (one
a line, ``#`` comments, relative paths from the list's folder) or one media file. Outputs mirror
the input tree under ``OUT``: ``IN/a/b.mp4`` becomes ``OUT/a/b.mp4``. Videos keep a ``.mp4``,
``.mov`` or ``.mkv`` name (others become ``.mp4``, what the H.264 writer holds); stills keep
``.png`` or ``.jpg`` (others become ``.png``).

Every output is written under a temporary name and renamed when complete, so an output that
exists is finished and a rerun skips it. :func:`remove_partials` deletes the temporary files a
dead or interrupted worker leaves behind.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from p2c.batch.jobs import Job, Kind
from p2c.errors import InputNotFoundError, InvalidInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "BatchPlan",
    "find_inputs",
    "kind_of",
    "partial_files",
    "plan_batch",
    "probe_frames",
    "remove_partials",
    "target_name",
]

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".3gp"}
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
_WRITABLE = {"video": frozenset({".mp4", ".mov", ".mkv"}), "image": frozenset({".png", ".jpg", ".jpeg"})}
_FALLBACK = {"video": ".mp4", "image": ".png"}


def kind_of(path: Path) -> Kind | None:
    """``video`` or ``image`` by the file's suffix; ``None`` for anything else."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def target_name(relative: Path, kind: Kind) -> Path:
    """The output's path relative to ``OUT``: the input's, with a suffix the writer can produce."""
    suffix = relative.suffix.lower()
    return relative if suffix in _WRITABLE[kind] else relative.with_suffix(_FALLBACK[kind])


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder.resolve())


def _is_hidden(path: Path, root: Path) -> bool:
    """Dot files and dot folders below ``root`` (our own temporary files among them)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _walk(root: Path, exclude: Path | None) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and kind_of(path) and not _is_hidden(path, root) and not _inside(path, exclude)
    )


def _read_list(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"cannot read the list of inputs {list_file}: {error}") from error
    paths = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            path = Path(text).expanduser()
            paths.append(path if path.is_absolute() else list_file.parent.absolute() / path)
    if not paths:
        raise InvalidInputError(f"the list of inputs {list_file} names no file; write one path a line")
    return paths


def _glob_root(pattern: str) -> Path:
    """The folder a glob starts from: its leading parts without wildcards."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def find_inputs(spec: str | os.PathLike[str], exclude: Path | None = None) -> tuple[Path, list[Path]]:
    """``(root, files)``: the media files ``spec`` names and the folder outputs mirror from.

    Files under ``exclude`` (the output folder) are left out. A list file's entries are returned
    as they are, even missing or of an unknown kind, so each can be reported; a folder or glob
    yields only videos and images.
    """
    text = os.path.expanduser(os.fspath(spec))
    # Absolute (the workers may run elsewhere) but not resolved: a symlinked file keeps its place
    # in the tree it is listed in.
    path = Path(text).absolute()
    if path.is_dir():
        return path, _walk(path, exclude)
    if path.is_file():
        if kind_of(path):
            return path.parent, [path]
        listed = [Path(os.path.normpath(item)) for item in _read_list(path)]
        return Path(os.path.commonpath([str(item.parent) for item in listed])), listed
    if glob.has_magic(text):
        root = _glob_root(str(path))
        matches = [Path(item).absolute() for item in glob.glob(text, recursive=True)]
        files = sorted(m for m in matches if m.is_file() and kind_of(m) and not _inside(m, exclude))
        return root, files
    raise InputNotFoundError(
        f"input {text} does not exist; give a folder, a glob such as 'clips/**/*.mp4', "
        "or a text file of paths"
    )


def probe_frames(path: Path, start: float = 0.0, duration: float | None = None) -> int:
    """How many frames a video holds (from its header; 0 when unknown or unreadable)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            seconds = (
                float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            )
            if seconds is None and container.duration:
                seconds = container.duration / 1_000_000
            frames = int(stream.frames) or round((seconds or 0.0) * rate)
    except (av.error.FFmpegError, IndexError, OSError, UnicodeDecodeError, ValueError):
        return 0
    frames = max(frames - round(start * rate), 0)
    return min(frames, round(duration * rate)) if duration is not None else frames


@dataclass
class BatchPlan:
    """What a run does: ``jobs`` to convert, ``skipped`` jobs already finished (their output exists),
    ``problems`` inputs reported as failed without being tried (``(source, reason)``)."""

    root: Path
    output: Path
    jobs: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def plan_batch(
    spec: str | os.PathLike[str], output: Path, start: float = 0.0, duration: float | None = None
) -> BatchPlan:
    """Find the inputs, mirror them under ``output``, and split them into to-do, done and unusable.

    Jobs to do are ordered longest first, so the last files to finish are short ones.
    """
    output = output.expanduser().absolute()
    root, files = find_inputs(spec, exclude=output)
    plan = BatchPlan(root=root, output=output)
    owners: dict[Path, Path] = {}
    for index, source in enumerate(files):
        kind = kind_of(source)
        if kind is None:
            plan.problems.append((str(source), "not a video or image name; give files such as .mp4 or .jpg"))
            continue
        if not source.is_file():
            plan.problems.append((str(source), "does not exist"))
            continue
        target = output / target_name(source.relative_to(root), kind)
        if target in owners:
            plan.problems.append((str(source), f"its output {target} is also {owners[target]}'s; rename one"))
            continue
        owners[target] = source
        frames = probe_frames(source, start, duration) if kind == "video" else 1
        job = Job(index=index, source=str(source), target=str(target), kind=kind, frames=max(frames, 1))
        (plan.skipped if target.exists() else plan.jobs).append(job)
    plan.jobs.sort(key=lambda job: (job.kind != "video", -job.frames, job.index))
    return plan


def partial_files(target: Path) -> list[Path]:
    """The temporary files being (or left) written for ``target``.

    Both of p2c's atomic writers name them after the target, in its folder:
    ``p2c.files.atomic_path`` as ``.STEM.PID.HEX.tmpSUFFIX``, ``write_image`` as ``.NAME.PID.HEX.tmp``.
    """
    stem, suffix = re.escape(target.stem), re.escape(target.suffix)
    pattern = re.compile(rf"^\.{stem}(?:{suffix})?\.\d+\.[0-9a-f]{{8}}\.tmp(?:{suffix})?$")
    if not target.parent.is_dir():
        return []
    return [path for path in target.parent.glob(f".{glob.escape(target.stem)}*") if pattern.match(path.name)]


def remove_partials(target: Path) -> int:
    """Delete ``target``'s temporary files; returns how many there were."""
    removed = 0
    for path in partial_files(target):
        path.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.debug("removed %d unfinished temporary file(s) of %s", removed, target)
    return removed
