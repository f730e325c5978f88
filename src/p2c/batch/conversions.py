"""The two conversions a worker runs: what ``p2c-video`` and ``p2c-image --composite`` do.

Both call the functions the commands and :class:`p2c.Cartoonizer` call
(:func:`p2c.stream.pipeline.cartoonize_video`, :func:`p2c.stream.stills.composite`), on an engine
(and face aligner) the worker keeps warm. Unlike the commands, an output appears only once it is
complete: the file is written under a temporary name and renamed at the end, so a file stopped
half-way (Ctrl-C, a dead worker) leaves nothing that a rerun would take for finished. An input they
cannot use raises :class:`p2c.errors.P2CError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from p2c.files import atomic_path

if TYPE_CHECKING:
    from p2c.engine import Backend
    from p2c.stream.faces import FaceAligner
    from p2c.stream.pipeline import VideoConfig

__all__ = ["Converted", "composite_image", "convert_video"]


@dataclass(frozen=True)
class Converted:
    """What one conversion wrote: frames (1 for a still), faces found, damaged frames skipped."""

    frames: int
    faces: int
    damaged: int = 0


def convert_video(
    engine: Backend,
    source: Path,
    target: Path,
    config: VideoConfig,
    start: float = 0.0,
    duration: float | None = None,
    on_frame: Callable[[], None] | None = None,
) -> Converted:
    """Cartoonize every face of the video ``source`` into ``target``, keeping timing and audio.

    ``on_frame`` is called after each frame is written; an exception it raises stops the
    conversion, and ``target`` is then left untouched.
    """
    from p2c.stream.pipeline import cartoonize_video
    from p2c.stream.sources import VideoFileSource

    def progress(_frame: object, _stats: object) -> None:
        if on_frame is not None:
            on_frame()

    with VideoFileSource(source, start=start, duration=duration) as video, atomic_path(target) as partial:
        stats = cartoonize_video(video, {"file": partial}, engine, config, on_frame=progress)
    return Converted(frames=stats.frames_out, faces=stats.faces, damaged=stats.damaged)


def composite_image(engine: Backend, aligner: FaceAligner, source: Path, target: Path) -> Converted:
    """Every face of the photo ``source`` replaced by its cartoon, written to ``target``.

    The aligner's ``max_faces`` applies. A photo with no face is a :class:`p2c.errors.NoFaceError`,
    as with ``p2c-image --composite``.
    """
    from p2c.stream.compositing import paste_cartoons
    from p2c.stream.image_io import read_image, write_image  # write_image is atomic itself
    from p2c.stream.stills import cartoon_faces, find_faces

    image = read_image(source)
    faces = find_faces(aligner, image, aligner.config.max_faces, name=str(source))
    write_image(target, paste_cartoons(image, faces, cartoon_faces(engine, faces)))
    return Converted(frames=1, faces=len(faces))
