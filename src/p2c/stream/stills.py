"""Photos: the cartoon of the largest face, or the whole photo with every face replaced.

The functions behind ``p2c-image`` and :class:`p2c.Cartoonizer`: both open an engine and a face
aligner, then call these, so the command's PNG and the API's array hold the same pixels.
Every face of one photo goes through the engine as one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from p2c.engine.tensors import batch_to_images, images_to_batch
from p2c.errors import NoFaceError
from p2c.stream.compositing import cartoon_on_white, paste_cartoons

if TYPE_CHECKING:
    from p2c.engine.base import Backend
    from p2c.stream.faces import AlignedFace, FaceAligner

__all__ = ["aligned_crop", "cartoon_faces", "composite", "find_faces", "portrait"]

logger = logging.getLogger(__name__)


def find_faces(
    aligner: FaceAligner, image: np.ndarray, max_faces: int, name: str = "the image"
) -> list[AlignedFace]:
    """The ``max_faces`` largest faces of an RGB uint8 ``image``, largest first; a one-line
    :class:`p2c.errors.NoFaceError` naming ``name`` when there is none."""
    faces = aligner.align(image, max_faces=max_faces)
    if not faces:
        raise NoFaceError(f"no face found in {name}; use a photo where a face is clearly visible")
    return faces


def cartoon_faces(engine: Backend, faces: Sequence[AlignedFace]) -> list[np.ndarray]:
    """Every face's cartoon (RGB uint8, the generator's size), from one batch through the engine."""
    return batch_to_images(engine.run(images_to_batch([face.crop for face in faces])))


def portrait(engine: Backend, aligner: FaceAligner, image: np.ndarray, name: str = "the image") -> np.ndarray:
    """The largest face's cartoon on white, the generator's size (256x256), as photo2cartoon's
    ``test.py`` writes it."""
    (face,) = find_faces(aligner, image, 1, name)
    (cartoon,) = cartoon_faces(engine, [face])
    return cartoon_on_white(cartoon, face.mask)


def composite(
    engine: Backend, aligner: FaceAligner, image: np.ndarray, max_faces: int = 8, name: str = "the image"
) -> np.ndarray:
    """``image`` with each of its ``max_faces`` largest faces replaced by its cartoon (same size)."""
    faces = find_faces(aligner, image, max_faces, name)
    logger.info("%d face(s) to cartoonize in %s", len(faces), name)
    return paste_cartoons(image, faces, cartoon_faces(engine, faces))


def aligned_crop(aligner: FaceAligner, image: np.ndarray, name: str = "the image") -> np.ndarray:
    """The largest face's aligned, background-whitened crop: what the generator is given."""
    return find_faces(aligner, image, 1, name)[0].crop
