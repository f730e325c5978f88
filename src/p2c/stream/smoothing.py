"""Temporal smoothing for video: landmarks (One-Euro filter), masks and cartoons (motion-aware EMAs).

A landmark detector run frame by frame jitters by a pixel or two even on a still face; the crop
follows the landmarks, so the generator sees a slightly different crop every frame and the
cartoon shimmers. A fixed low-pass filter would fix the jitter but make fast head turns lag and
ghost. The One-Euro filter (Casiez et al., CHI 2012) adapts its cut-off to speed: heavy
smoothing while the face is still, almost none while it moves.

Masks and cartoons are smoothed in crop coordinates. The crop is aligned to the face, so an EMA
there is already motion compensated: a nod moves the crop with the face instead of smearing the
face across the frame. The cartoon EMA backs off as the input crop changes, so speech and fast
motion pass straight through while a still face stops shimmering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = [
    "FLOW_QUALITIES",
    "MOTION_SCALE",
    "STILL_WEIGHT",
    "CartoonSmoother",
    "FlowQuality",
    "MaskSmoother",
    "OneEuroConfig",
    "OneEuroFilter",
]

# The cartoon EMA's defaults for video (docs/default-model.md, "Flicker"): a new cartoon counts
# 7 % where the flow explains the input's change, all of it where the input changed by 60 levels
# (0-255) beyond what the flow explains. Measured on the shared clips with the default model; 10 %
# until its lines were sharpened (720p clip, 180 frames: 2.14 at 10 %, 1.89 at 7 %).
STILL_WEIGHT = 0.07
MOTION_SCALE = 60.0


@dataclass(frozen=True)
class FlowQuality:
    """How the cartoon EMA finds the input crops' flow: a DIS preset on the crop shrunk ``shrink``
    times, with some of the preset's settings replaced (``None``: the preset's own)."""

    preset: int
    shrink: int = 1
    refinement_iterations: int | None = None
    descent_iterations: int | None = None
    patch_stride: int | None = None

    def create(self) -> Any:
        """A ``cv2.DISOpticalFlow`` set up for this quality."""
        dis = cv2.DISOpticalFlow.create(self.preset)
        if self.refinement_iterations is not None:
            dis.setVariationalRefinementIterations(self.refinement_iterations)
        if self.descent_iterations is not None:
            dis.setGradientDescentIterations(self.descent_iterations)
        if self.patch_stride is not None:
            dis.setPatchStride(self.patch_stride)
        return dis


# The qualities, measured on the 720p clip's first 90 frames with the default model at step 20,749
# (warping-error ratio; the gate's limit is 2.0) and DIS's time on one 256-pixel crop, one thread,
# idle 2-core machine: "fine" (medium preset, full size) 1.68 / 8.7 ms; "balanced" (medium, no
# variational refinement, 12 descent iterations, patch stride 4) 1.85 / 2.8 ms; "coarse" (fast
# preset at half size) 2.96 / 0.4 ms. Files use fine, live runs balanced, a busy live run coarse.
FLOW_QUALITIES = {
    "fine": FlowQuality(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
    "balanced": FlowQuality(
        cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, refinement_iterations=0, descent_iterations=12, patch_stride=4
    ),
    "coarse": FlowQuality(cv2.DISOPTICAL_FLOW_PRESET_FAST, shrink=2),
}


@dataclass(frozen=True)
class OneEuroConfig:
    """One-Euro parameters for values measured in face sizes (the tracker normalises landmarks).

    ``min_cutoff`` (Hz): smoothing of a still face (lower = steadier, more lag when it starts
    moving). ``beta``: how fast the cut-off grows with speed (face sizes per second); higher =
    less lag in motion. ``d_cutoff`` (Hz): smoothing of the speed estimate itself.
    """

    min_cutoff: float = 1.0
    beta: float = 4.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"OneEuroConfig.{name} must be positive, got {value}")
        if self.beta < 0:
            raise ValueError(f"OneEuroConfig.beta must be >= 0, got {self.beta}")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over a fixed-shape array of points ``(N, D)``; speed is taken per point."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def reset(self) -> None:
        self._value = self._speed = self._time = None

    def __call__(self, value: np.ndarray, timestamp: float) -> np.ndarray:
        """Filter ``value`` observed at ``timestamp`` seconds; the first call returns it unchanged."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._time is None or value.shape != self._value.shape:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), timestamp
            return value.copy()
        dt = timestamp - self._time
        if dt <= 0:  # a repeated or out-of-order timestamp: assume one frame at 30 fps
            dt = 1.0 / 30.0
        config = self.config
        assert self._speed is not None
        speed = (value - self._value) / dt
        self._speed = self._speed + _alpha(config.d_cutoff, dt) * (speed - self._speed)
        magnitude = np.linalg.norm(self._speed, axis=-1, keepdims=True)
        alpha = _alpha(config.min_cutoff + config.beta * magnitude, dt)
        self._value = self._value + alpha * (value - self._value)
        self._time = timestamp
        return self._value.copy()


class MaskSmoother:
    """EMA of a head mask in crop coordinates: ``new_weight`` of the fresh mask, the rest history.

    Segmentation masks flicker along hair and shoulders from frame to frame; blending with the
    previous mask hides that, and because the crop moves with the face it does not smear.
    """

    def __init__(self, new_weight: float = 0.5) -> None:
        if not 0 < new_weight <= 1:
            raise ValueError(f"MaskSmoother.new_weight must be in (0, 1], got {new_weight}")
        self.new_weight = new_weight
        self._mask: np.ndarray | None = None

    @property
    def value(self) -> np.ndarray | None:
        """The last smoothed mask (read-only view), or None before the first."""
        if self._mask is None:
            return None
        view = self._mask.view()
        view.setflags(write=False)
        return view

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask, dtype=np.float32)
        if self._mask is None or self._mask.shape != mask.shape or self.new_weight >= 1:
            self._mask = mask.copy()
        else:
            self._mask = self._mask + self.new_weight * (mask - self._mask)
        return self._mask.copy()


class CartoonSmoother:
    """A motion-compensated EMA of one face's cartoons, in crop coordinates, pixel by pixel.

    The crop already moves with the face (:mod:`p2c.stream.stabilizer`), but a face also talks,
    blinks and turns. So the last smoothed cartoon is first carried onto the new crop by the input
    crops' own optical flow (DIS; ``flow``: a key of :data:`FLOW_QUALITIES`, or ``None`` for none),
    as in Bonneel et al.'s blind temporal consistency (SIGGRAPH Asia 2015). The new cartoon's
    weight at a pixel is then ``min_weight``
    where the carried input matches the new input, rising to 1 as their mean absolute difference
    around that pixel (0-255, over ``window`` x ``window`` pixels) reaches ``motion_scale``: where
    the flow cannot explain the change (an occlusion, a new face), the new cartoon is taken as it
    is, so nothing ghosts, while the generator's shimmer of its own is averaged away.
    """

    def __init__(
        self,
        min_weight: float = STILL_WEIGHT,
        motion_scale: float = MOTION_SCALE,
        window: int = 9,
        flow: str | None = "fine",
    ) -> None:
        if not 0 < min_weight <= 1:
            raise ValueError(f"CartoonSmoother.min_weight must be in (0, 1], got {min_weight}")
        if motion_scale <= 0:
            raise ValueError(f"CartoonSmoother.motion_scale must be positive, got {motion_scale}")
        if window < 1:
            raise ValueError(f"CartoonSmoother.window must be >= 1, got {window}")
        self.min_weight = min_weight
        self.motion_scale = motion_scale
        self.window = window
        self.flow = flow
        self._crop: np.ndarray | None = None
        self._cartoon: Any = None
        self._dis: tuple[str, Any] | None = None  # (quality, DIS) of the last flow found
        self._grid: np.ndarray | None = None

    @property
    def flow(self) -> str | None:
        """The flow quality's name (``None``: no flow); a busy live run may change it between crops."""
        return self._flow

    @flow.setter
    def flow(self, flow: str | None) -> None:
        if flow is not None and flow not in FLOW_QUALITIES:
            raise ValueError(
                f"CartoonSmoother.flow must be one of {sorted(FLOW_QUALITIES)} or None: {flow!r}"
            )
        self._flow = flow

    def _flow_back(self, crop: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Where each pixel of ``crop`` was in ``previous`` (H x W x 2 sampling map, pixels)."""
        assert self.flow is not None
        quality = FLOW_QUALITIES[self.flow]
        if self._dis is None or self._dis[0] != self.flow:
            self._dis = (self.flow, quality.create())
        shrink = quality.shrink
        height, width = crop.shape[:2]
        half = (max(width // shrink, 8), max(height // shrink, 8))
        now = cv2.resize(_gray(crop), half, interpolation=cv2.INTER_AREA)
        before = cv2.resize(_gray(previous), half, interpolation=cv2.INTER_AREA)
        flow = self._dis[1].calc(now, before, None)
        if half != (width, height):
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
            flow *= width / half[0]
        if self._grid is None or self._grid.shape[:2] != (height, width):
            xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
            self._grid = np.dstack([xs, ys])  # made once per crop size, not per frame
        flow += self._grid
        return flow

    def weights(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
        """How much of the new cartoon to take at each pixel (H x W float32), and the sampling map
        that carries the last cartoon onto this crop (``None`` without flow), given the new input
        crop; ``None`` where all of the new cartoon is taken (the first crop, or another size)."""
        if self._crop is None or self._crop.shape != crop.shape:
            return None
        previous, where = self._crop, None
        if self.flow is not None and min(crop.shape[:2]) >= 32:  # DIS needs >= 12 px; tiny crops: none
            where = self._flow_back(crop, previous)
            previous = _carry(previous, where)
        # OpenCV passes, in place where it can: 0.26 ms against the numpy expression's 1.63 (no flow).
        change: np.ndarray = cv2.absdiff(crop, previous).astype(np.float32)
        if change.ndim == 3:
            change = cv2.transform(change, _CHANNEL_MEAN)
        if self.window > 1:
            change = cv2.blur(change, (self.window, self.window), borderType=cv2.BORDER_REFLECT)
        change *= (1.0 - self.min_weight) / self.motion_scale
        change += self.min_weight
        return np.minimum(change, 1.0, out=change), where

    def weight(self, crop: np.ndarray) -> float:
        """The mean of :meth:`weights`: how much of the new cartoon the face takes overall."""
        found = self.weights(crop)
        return 1.0 if found is None else float(found[0].mean())

    def __call__(self, crop: np.ndarray, cartoon: np.ndarray) -> np.ndarray:
        """The smoothed cartoon (uint8 H x W x 3) after the new ``cartoon`` of input ``crop``."""
        return np.rint(self.blend(crop, cartoon.astype(np.float32))).clip(0, 255).astype(np.uint8)

    def blend(self, crop: np.ndarray, cartoon: Any) -> Any:
        """The EMA after the new float ``cartoon``: a numpy H x W x 3 image, or a torch tensor,
        3 x H x W, that stays on its device; ``crop`` is the host uint8 input crop it was made from."""
        found = self.weights(crop)
        self._crop = crop
        if found is None or self._cartoon is None or self._cartoon.shape != cartoon.shape:
            self._cartoon = cartoon
            return self._cartoon
        weights, where = found
        if isinstance(cartoon, np.ndarray):
            carried = self._cartoon
            if where is not None:
                carried = _carry(carried, where)
            step = cartoon - carried
            step *= weights[..., None]
            step += carried
            self._cartoon = step
        else:
            self._cartoon = _blend_tensor(self._cartoon, cartoon, weights, where)
        return self._cartoon


_CHANNEL_MEAN = np.full((1, 3), 1.0 / 3.0, np.float32)  # cv2.transform: H x W x 3 -> their mean


def _carry(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``where`` (H x W x 2 pixel coordinates), edges repeated."""
    return cv2.remap(image, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def _blend_tensor(last: Any, cartoon: Any, weights: np.ndarray, where: np.ndarray | None) -> Any:
    """:meth:`CartoonSmoother.blend` for 3 x H x W torch tensors, on their device."""
    import torch
    import torch.nn.functional as F

    device = cartoon.device
    if where is not None:
        height, width = where.shape[:2]
        grid = torch.from_numpy(where).to(device)
        # grid_sample's coordinates: -1 and 1 are the centres of the corner pixels (align_corners).
        scale = torch.tensor([2.0 / (width - 1), 2.0 / (height - 1)], device=device)
        grid = (grid * scale - 1.0)[None].to(last.dtype)
        last = F.grid_sample(last[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
    on_device = torch.from_numpy(weights).to(device)[None]
    return last + on_device * (cartoon - last)
