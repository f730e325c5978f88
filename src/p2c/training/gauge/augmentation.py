"""The gauge's training augmentation: the same random changes for photos and cartoons.

The two training sets differ in ways that have nothing to do with style: the photos were JPEGs
of every size and sharpness, the cartoons clean PNGs; framing and colour balance vary by source.
Each change here is drawn for every image of *both* classes, so none of these can tell them
apart and the gauge has to learn the style (flat shading, drawn eyes and lips, line work):

- geometry: horizontal flip, scale (zoom in and out), translation and a small rotation, on white;
- background: white rectangles erasing regions at the borders (shoulders, hair ends, clothes);
- colour: moderate brightness, contrast and saturation, and a small hue shift (skin colour is part
  of the style, so hue moves only a few degrees); and sometimes a wash, lifted toward white and
  desaturated, sometimes smoothed (a photo as pale as a cartoon is still a photo, a washed-out
  cartoon still a cartoon: paleness alone cannot decide);
- softness: Gaussian blur, or down-and-up sampling at a random factor (a GAN's output is smooth
  and slightly blurry; a blurred photo is still a photo);
- sensor and codec: Gaussian noise, a little sharpening, JPEG re-compression at a random quality.


Randomness comes only from the ``numpy`` generator passed in, so a seeded fit is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["AugmentConfig", "augment_style", "blurred", "downscaled", "recompressed", "wash", "washed"]


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (``p_*``) and ranges of each change; the defaults are the fitted gauge's."""

    p_flip: float = 0.5
    scale: tuple[float, float] = (0.85, 1.2)  # > 1 zooms in
    shift: float = 0.08  # of the side, each way
    rotate_degrees: float = 8.0
    p_erase: float = 0.35
    erase_max: float = 0.22  # of the side (half that for the bottom strip)
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.2
    hue_degrees: float = 5.0
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.5, 2.5)
    p_resample: float = 0.3
    resample_factor: tuple[float, float] = (0.2, 0.7)
    p_noise: float = 0.25
    noise_sigma: tuple[float, float] = (1.0, 8.0)  # in 0..255 levels
    p_sharpen: float = 0.15
    p_jpeg: float = 0.6
    jpeg_quality: tuple[int, int] = (25, 95)
    p_wash: float = 0.25  # lifted toward white, desaturated, sometimes smoothed
    wash_lift: tuple[float, float] = (0.2, 0.6)
    wash_saturation: tuple[float, float] = (0.2, 0.7)
    p_wash_smooth: float = 0.5

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be an increasing pair of positive factors, got {self.scale}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be an increasing pair in 1..100, got {self.jpeg_quality}")


def _geometry(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    height, width = image.shape[:2]
    if rng.random() < config.p_flip:
        image = np.ascontiguousarray(image[:, ::-1])
    scale = float(np.exp(rng.uniform(np.log(config.scale[0]), np.log(config.scale[1]))))
    angle = float(rng.uniform(-config.rotate_degrees, config.rotate_degrees))
    matrix = np.asarray(cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, scale), np.float64)
    matrix[:, 2] = matrix[:, 2] + rng.uniform(-config.shift, config.shift, size=2) * np.array([width, height])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def _erase_background(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """One or two white rectangles, each touching a side of the image (where the background is)."""
    height, width = image.shape[:2]
    image = image.copy()
    for _ in range(int(rng.integers(1, 3))):
        side = int(rng.integers(0, 3))  # left, right, bottom (the top is mostly hair)
        if side == 2:  # a low strip: shoulders and clothes, not the chin
            h, w = int(height * rng.uniform(0.05, config.erase_max / 2)), int(width * rng.uniform(0.15, 0.6))
            top, left = height - h, int(rng.integers(0, width - w + 1))
        else:
            w, h = int(width * rng.uniform(0.05, config.erase_max)), int(height * rng.uniform(0.15, 0.6))
            top, left = int(rng.integers(0, height - h + 1)), 0 if side == 0 else width - w
        image[top : top + h, left : left + w] = 255
    return image


def _colour(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    x = image.astype(np.float32)
    x *= rng.uniform(1 - config.brightness, 1 + config.brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * rng.uniform(1 - config.saturation, 1 + config.saturation)
    x = np.clip(x, 0, 255).astype(np.uint8)
    shift = rng.uniform(-config.hue_degrees, config.hue_degrees) / 2.0  # OpenCV hue: 0..180
    if abs(shift) >= 0.5:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + round(shift)) % 180).astype(np.uint8)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return x


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an RGB uint8 image (kernel of about 3 sigma each way)."""
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)


def downscaled(image: np.ndarray, factor: float, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Down-sampled by ``factor`` (area) and back up to the original size."""
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (max(int(width * factor), 4), max(int(height * factor), 4)), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (width, height), interpolation=interpolation)


def washed(image: np.ndarray, lift: float, saturation: float) -> np.ndarray:
    """Paler: colours scaled toward grey by ``saturation``, then lifted toward white by ``lift``."""
    x = image.astype(np.float32) / 255.0
    grey = x.mean(axis=2, keepdims=True)
    x = 1.0 - (1.0 - (grey + (x - grey) * saturation)) * (1.0 - lift)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def wash(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A random washed-out, sometimes smoothed version of an image.

    The cartoons' skin is pale and smooth, so a gauge fitted on photos against cartoons learns
    paleness as a cue: a fit without this took photos lifted 50 % toward white and 70 %
    desaturated for cartoons a third of the time. Washing both classes takes that cue away.
    """
    image = washed(image, float(rng.uniform(*config.wash_lift)), float(rng.uniform(*config.wash_saturation)))
    if rng.random() < config.p_wash_smooth:
        for _ in range(2):
            image = cv2.bilateralFilter(image, 9, 40, 7)
    return image


def recompressed(image: np.ndarray, quality: int) -> np.ndarray:
    """Re-compressed as a JPEG at ``quality`` (OpenCV's codec; it takes BGR)."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else image


def augment_style(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """One random variant of an RGB uint8 crop, the same size, for either class."""
    if rng.random() < config.p_wash:
        image = wash(image, rng, config)
    image = _geometry(image, rng, config)
    if rng.random() < config.p_erase:
        image = _erase_background(image, rng, config)
    image = _colour(image, rng, config)
    softness = rng.random()
    if softness < config.p_blur:
        image = blurred(image, float(rng.uniform(*config.blur_sigma)))
    elif softness < config.p_blur + config.p_resample:
        interpolation = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(0, 2))]
        image = downscaled(image, float(rng.uniform(*config.resample_factor)), interpolation)
    if rng.random() < config.p_noise:
        noise = rng.normal(0.0, rng.uniform(*config.noise_sigma), size=image.shape)
        image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < config.p_sharpen:
        soft = blurred(image, 1.0)
        image = cv2.addWeighted(image, 1.6, soft, -0.6, 0)
    if rng.random() < config.p_jpeg:
        image = recompressed(image, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    return image
