"""The two conversions a worker runs, each behind one small adapter.

:func:`convert_video` is what ``p2c-video`` does and :func:`composite_image` what
``p2c-image --composite`` does, on an engine (and face aligner) the worker keeps warm. They are
adapters on purpose: when p2c grows a Python API for these (``p2c.Cartoonizer.video`` and
``.composite``), only these two bodies change. Both write their output atomically (temporary name,
renamed when complete) and raise :class:`p2c.errors.P2CError` for an input they cannot use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2c.errors import NoFaceError
from p2c.files import atomic_path

if TYPE_CHECKING:
    from p2c.engine import Backend
    from p2c.stream.runner import VideoConfig

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
    from p2c.stream.runner import cartoonize
    from p2c.stream.sinks import VideoFileSink
    from p2c.stream.sources import VideoFileSource

    def progress(_frame: object, _stats: object) -> None:
        if on_frame is not None:
            on_frame()

    with VideoFileSource(source, start=start, duration=duration) as video, atomic_path(target) as partial:
        info = video.info
        sink = VideoFileSink(
            partial,
            info.width * (2 if config.side_by_side else 1),
            info.height,
            info.fps,
            info.time_base,
            audio_from=source if info.audio else None,
        )
        stats = cartoonize(video, [sink], engine, config, on_frame=progress)
    return Converted(frames=stats.frames_out, faces=stats.faces, damaged=stats.damaged)


def composite_image(engine: Backend, aligner: Any, source: Path, target: Path) -> Converted:
    """Every face of the photo ``source`` replaced by its cartoon, written to ``target``.

    ``aligner`` is a :class:`p2c.stream.faces.FaceAligner` (its ``max_faces`` applies). A photo
    with no face is a :class:`NoFaceError`, as with ``p2c-image --composite``.
    """
    from p2c.engine import batch_to_images, images_to_batch
    from p2c.stream.compositing import paste_cartoons
    from p2c.stream.image_io import read_image, write_image

    image = read_image(source)
    faces = aligner.align(image)
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    cartoons = batch_to_images(engine.run(images_to_batch([face.crop for face in faces])))
    write_image(target, paste_cartoons(image, faces, cartoons))
    return Converted(frames=1, faces=len(faces))
