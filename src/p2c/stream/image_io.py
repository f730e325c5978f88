"""Still images in and out: any format OpenCV decodes in, PNG or JPEG out; always RGB uint8.

Formats are recognised by content, not name (photo collections hold WebP files called .jpg).
Grayscale, 16-bit and transparent images become plain 8-bit RGB here, at the boundary, so
everything downstream sees one pixel format.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from p2c.errors import InputNotFoundError, InvalidInputError, OutputError
from p2c.files import atomic_path, require_folder

__all__ = ["BUILTIN_IMAGES", "BUILTIN_PREFIX", "check_output_path", "read_image", "to_rgb8", "write_image"]

BUILTIN_PREFIX = "builtin:"


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())


# Images that ship with the dependencies, for demos and tests without a photo at hand.
BUILTIN_IMAGES: dict[str, Callable[[], np.ndarray]] = {"astronaut": _astronaut}

_WRITE_PARAMS: dict[str, list[int]] = {
    ".png": [cv2.IMWRITE_PNG_COMPRESSION, 3],
    ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
    ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
}


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; 8 or 16 bit; OpenCV channel order) as RGB uint8.

    Transparent pixels are laid on white, the background the generator was trained with.
    """
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(
            np.uint8
        )
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255.0
        bgr = image[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return cv2.cvtColor(np.rint(bgr).astype(np.uint8), cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise ValueError(f"cannot convert an image of shape {image.shape} to RGB")


def _decode_flags(data: np.ndarray) -> int:
    """PNG and WebP may be transparent: decode them as they are, alpha included. Everything else
    (JPEG above all) as colour, which also applies the EXIF orientation phone cameras record:
    without it, portrait photos would arrive on their side and no face would be found."""
    head = data[:12].tobytes()
    if head.startswith(b"\x89PNG") or (head.startswith(b"RIFF") and head[8:12] == b"WEBP"):
        return cv2.IMREAD_UNCHANGED
    return cv2.IMREAD_COLOR


def _read_builtin(name: str) -> np.ndarray:
    from p2c.stream.builtin_clips import BUILTIN_CLIPS  # here: that module reads its images here

    if name in BUILTIN_CLIPS:
        raise InvalidInputError(
            f"{BUILTIN_PREFIX + name} is a video, not a photo: use p2c-video or p2c-stream --camera; "
            f"the photo it is made from is {BUILTIN_PREFIX}astronaut"
        )
    if name not in BUILTIN_IMAGES:
        names = ", ".join(BUILTIN_PREFIX + key for key in sorted(BUILTIN_IMAGES))
        raise InvalidInputError(f"unknown built-in image {BUILTIN_PREFIX + name!r}; choose one of {names}")
    return np.ascontiguousarray(BUILTIN_IMAGES[name]()[..., :3], dtype=np.uint8)


def read_image(path_or_builtin: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file (or ``builtin:astronaut``) as H x W x 3 RGB uint8."""
    text = os.fspath(path_or_builtin)
    if text.startswith(BUILTIN_PREFIX):
        return _read_builtin(text[len(BUILTIN_PREFIX) :])
    path = Path(text)
    if not path.exists():
        raise InputNotFoundError(f"input image {path} does not exist; check the path")
    if path.is_dir():
        raise InvalidInputError(
            f"input {path} is a folder, not an image file; pass an image file inside it "
            "(p2c-batch converts every photo in a folder)"
        )
    if not path.is_file():
        raise InvalidInputError(f"input {path} is not a file; give the path of an image file")
    try:
        # imdecode on the bytes, not imread: it also copes with non-ASCII paths on every platform.
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise InvalidInputError(f"cannot read {path}: {error.strerror or error}") from error
    decoded = cv2.imdecode(data, _decode_flags(data)) if data.size else None
    if decoded is None:
        raise InvalidInputError(
            f"{path} is not an image OpenCV can decode; use a PNG, JPEG, WebP, BMP or TIFF file"
        )
    try:
        return to_rgb8(decoded)
    except ValueError as error:
        raise InvalidInputError(
            f"{path} has an unsupported pixel layout {decoded.shape}; save it as RGB"
        ) from error


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`OutputError` unless ``path`` can be written by :func:`write_image`: a .png,
    .jpg or .jpeg name in an existing folder. Commands call it before their slow work."""
    target = Path(path)
    if target.suffix.lower() not in _WRITE_PARAMS:
        raise OutputError(f"cannot write {target}: name the output .png, .jpg or .jpeg")
    return require_folder(target)


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG or JPEG (by extension), atomically; returns the path.

    Creates no folders: a missing folder is an :class:`OutputError` naming it.
    """
    target = check_output_path(path)
    suffix = target.suffix.lower()
    image = np.asarray(rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _WRITE_PARAMS[suffix])
    if not ok:
        raise OutputError(f"OpenCV could not encode {target}")
    try:
        with atomic_path(target) as temporary:  # a reader never sees half an image
            temporary.write_bytes(encoded.tobytes())
    except OutputError:
        raise
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from error
    return target
