"""The Python API: one object that cartoonizes photos and videos, as the command lines do.

In the spirit of PaddleGAN's ``Photo2CartoonPredictor().run(img)``::

    import p2c

    with p2c.Cartoonizer(weights="photo2cartoon_weights.pt") as cartoonizer:
        cartoon = cartoonizer.portrait("photo.jpg")        # 256 x 256 x 3 uint8, the largest face
        group = cartoonizer.composite(pil_image)           # the whole picture, every face replaced
        cartoonizer.video("talk.mp4", "talk_cartoon.mp4", max_faces=2)

It runs the same functions as ``p2c-image`` and ``p2c-video`` (:mod:`p2c.stream.stills`,
:func:`p2c.stream.pipeline.cartoonize_video`), so ``portrait`` returns exactly the pixels
``p2c-image`` writes, and its errors are the same one-line :class:`p2c.errors.P2CError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from p2c.engine import EngineConfig, create_engine
from p2c.errors import InvalidInputError
from p2c.resources import Closeable
from p2c.stream import stills
from p2c.stream.faces import FaceAligner
from p2c.stream.image_io import read_image
from p2c.stream.smoothing import STILL_WEIGHT

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from p2c.engine.base import Backend
    from p2c.stream.sinks import OutputValue
    from p2c.stream.stats import StatsSnapshot

    # A picture: a file path (or builtin:astronaut), a PIL image, or an RGB uint8 H x W x 3 array.
    ImageInput: TypeAlias = str | os.PathLike[str] | np.ndarray | PILImage

__all__ = ["Cartoonizer", "load_image"]


def _from_pil(image: PILImage) -> np.ndarray:
    """RGB uint8; transparent pixels laid on white, as :func:`p2c.stream.image_io.read_image` does."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        return np.rint(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_image(image: ImageInput) -> tuple[np.ndarray, str]:
    """A path, PIL image or RGB uint8 array as an RGB uint8 array, and a name for messages."""
    if isinstance(image, str | os.PathLike):
        return read_image(image), os.fspath(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidInputError(
                f"expected an RGB uint8 image array of shape (H, W, 3), got {image.dtype} {image.shape}"
            )
        return np.ascontiguousarray(image), "the image"
    from PIL import Image

    if isinstance(image, Image.Image):
        return _from_pil(image), "the image"
    raise InvalidInputError(
        f"expected a file path, a PIL image or an RGB uint8 array, got {type(image).__name__}"
    )


class Cartoonizer(Closeable):
    """photo2cartoon's generator on photos and videos.

    ``weights``: photo2cartoon's ``.pt`` or ``.onnx``, or a p2c ``.safetensors`` (``None``: the
    shipped model); ``backend``/``precision``/``device`` as the commands' ``--backend``,
    ``--precision``, ``--device``. The model loads here, so a missing or wrong file fails at once.
    Results are RGB uint8 arrays. One object holds MediaPipe graphs: use it from one thread, and
    close it (or use ``with``) to free the model.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        backend: str = "auto",
        precision: str = "auto",
        device: str = "auto",
    ) -> None:
        try:
            config = EngineConfig(backend=backend, precision=precision, device=device)
        except ValueError as error:
            raise InvalidInputError(f"invalid engine option: {error}") from error
        self.engine: Backend = create_engine(None if weights is None else Path(weights), config)
        self._aligner: FaceAligner | None = None

    @property
    def aligner(self) -> FaceAligner:
        """The face aligner, built on first use (MediaPipe's graphs take a moment to load)."""
        if self._aligner is None:
            self._aligner = FaceAligner()
        return self._aligner

    def portrait(self, image: ImageInput) -> np.ndarray:
        """The cartoon of the largest face on white, 256 x 256 x 3: what ``p2c-image`` writes."""
        pixels, name = load_image(image)
        return stills.portrait(self.engine, self.aligner, pixels, name)

    def composite(self, image: ImageInput, max_faces: int = 8) -> np.ndarray:
        """The whole picture (same size) with each of its ``max_faces`` largest faces replaced by
        its cartoon: what ``p2c-image --composite`` writes."""
        pixels, name = load_image(image)
        return stills.composite(self.engine, self.aligner, pixels, max_faces, name)

    def video(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        start: float = 0.0,
        duration: float | None = None,
        max_faces: int = 1,
        detect_every: int = 15,
        smoothing: bool = True,
        side_by_side: bool = False,
        batch_size: int = 8,
        outputs: Mapping[str, OutputValue] | None = None,
        progress: bool = False,
    ) -> StatsSnapshot:
        """Cartoonize the video file ``src`` into ``dst``, as ``p2c-video SRC DST`` with the same
        options (every frame and timestamp kept, audio copied); returns the run's counters.

        ``outputs`` adds other sinks by name (``{"preview": True}``: see ``p2c.stream.sinks.SINKS``);
        ``progress`` shows a progress bar on stderr.
        """
        from p2c.stream.pipeline import VideoConfig, cartoonize_video
        from p2c.stream.sinks import check_outputs
        from p2c.stream.sources import open_video

        try:
            config = VideoConfig(
                max_faces=max_faces,
                batch_size=batch_size,
                side_by_side=side_by_side,
                detect_every=detect_every,
                cartoon_weight=STILL_WEIGHT if smoothing else 1.0,
            )
            source = open_video(src, start=start, duration=duration)
        except ValueError as error:
            raise InvalidInputError(f"invalid video option: {error}") from error
        every_output: dict[str, OutputValue] = {"file": dst, **(outputs or {})}
        check_outputs(every_output, source=src)
        with source:
            return cartoonize_video(source, every_output, self.engine, config, progress=progress)

    def close(self) -> None:
        """Free the model and MediaPipe's graphs; safe to call more than once."""
        if self._aligner is not None:
            self._aligner.close()
            self._aligner = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None  # type: ignore[assignment]
