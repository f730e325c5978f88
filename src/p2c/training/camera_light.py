"""Photos as webcams and video light make them: a training augmentation for the photo domain.

The training photos are bright, frontal, retouched selfies; what the product sees live is side
light, shadowed cheeks, dim rooms, colour casts, sensor noise, soft focus and compression. A
generator that never saw those turns a shadowed cheek yellow-green and a dark collar blue
(issue 24). Each draw applies, each with its own probability, in the order a camera does:

1. **side light**: a smooth shading gradient across the face (a random direction, the far side
   darkened by 30-75 %), the look of a window or a desk lamp beside the person;
2. **exposure and gamma**: the whole picture darker or brighter (x0.55-1.25), gamma 0.75-1.4;
3. **colour temperature**: warm (tungsten) to cool (daylight, screens) white balance errors;
4. **sensor noise**: Gaussian noise that grows in the dark, as a small sensor's does;
5. **blur**: soft focus or motion, a Gaussian of sigma 0.5-1.6 px at 256;
6. **JPEG**: quality 35-90, a webcam's MJPEG or a streamed video's blocks.

The crop's white background is the preprocessing's (the head is segmented and the rest whitened
after capture), so it stays white: only the head's pixels are changed, blended by a soft mask.
Every draw comes from the ``rng`` passed in: the same key, the same picture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

__all__ = ["CameraLight", "camera_light", "head_mask"]

WHITE_LEVEL = 246  # a pixel whose channels are all above this is the crop's background


@dataclass(frozen=True)
class CameraLight:
    """The probability of each effect."""

    side_light: float = 0.5
    exposure: float = 0.6
    temperature: float = 0.5
    noise: float = 0.5
    blur: float = 0.3
    jpeg: float = 0.4

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"camera light probability {name} must lie in [0, 1], got {value}")


def head_mask(image: np.ndarray) -> np.ndarray:
    """H x W float32 in [0, 1]: 1 on the head, 0 on the whitened background, soft at the edge.

    The background is the white that touches the crop's border: a white highlight on a forehead is
    the head's."""
    white = (image.min(axis=2) > WHITE_LEVEL).astype(np.uint8)
    _, labels = cv2.connectedComponents(white, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, border[border > 0] if white.any() else [])
    return cv2.GaussianBlur((~background).astype(np.float32), (0, 0), sigmaX=1.0)


def _side_light(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = linear.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    along = ((xs / w - 0.5) * np.cos(angle) + (ys / h - 0.5) * np.sin(angle)) * 2  # -1 .. 1 about
    depth = rng.uniform(0.3, 0.75)
    softness = rng.uniform(0.3, 1.2)
    shade = 1.0 - depth * (1.0 / (1.0 + np.exp(-along * 3.0 / softness)))
    return linear * shade[..., None]


def _temperature(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift = rng.uniform(-1.0, 1.0)  # -1 cool (blue), +1 warm (orange)
    gains = np.array([1 + 0.22 * shift, 1.0, 1 - 0.22 * shift], np.float32)
    gains *= np.array(rng.uniform(0.95, 1.05, 3), np.float32)  # and a little tint either way
    return linear * gains


def camera_light(image: np.ndarray, rng: np.random.Generator, light: CameraLight | None = None) -> np.ndarray:
    """``image`` (uint8 RGB crop, white background) as a webcam in ordinary light might show it."""
    light = light or CameraLight()
    mask = head_mask(image)[..., None]
    linear = (image.astype(np.float32) / 255.0) ** 2.2
    if rng.random() < light.side_light:
        linear = _side_light(linear, rng)
    if rng.random() < light.exposure:
        linear = linear * rng.uniform(0.55, 1.25)
    if rng.random() < light.temperature:
        linear = _temperature(linear, rng)
    out = np.clip(linear, 0.0, 1.0) ** (1 / 2.2)
    if rng.random() < light.exposure:
        out = out ** rng.uniform(0.75, 1.4)
    if rng.random() < light.noise:
        sigma = rng.uniform(0.01, 0.05)
        grain = rng.standard_normal(out.shape).astype(np.float32) * sigma * (1.3 - out)
        out = out + grain
    out = np.clip(out * 255.0, 0, 255)
    if rng.random() < light.blur:
        sigma = rng.uniform(0.5, 1.6) * image.shape[0] / 256
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), sigmaX=sigma), dtype=np.float32)
    if rng.random() < light.jpeg:
        quality = int(rng.integers(35, 91))
        ok, data = cv2.imencode(".jpg", out.astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1], dtype=np.float32)
    return np.asarray((out * mask + image.astype(np.float32) * (1 - mask)).round(), dtype=np.uint8)
