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

import numpy as np

__all__ = ["CartoonSmoother", "MaskSmoother", "OneEuroConfig", "OneEuroFilter"]


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
    """A motion-aware EMA of one face's cartoons, in crop coordinates.

    The weight of the new cartoon is ``min_weight`` for a still input crop and rises to 1 as the
    mean absolute change of the input crop (0-255 scale) reaches ``motion_scale``: a still face
    keeps a steady cartoon, a talking or moving one is not held back (no ghosting).
    """

    def __init__(self, min_weight: float = 0.5, motion_scale: float = 6.0) -> None:
        if not 0 < min_weight <= 1:
            raise ValueError(f"CartoonSmoother.min_weight must be in (0, 1], got {min_weight}")
        if motion_scale <= 0:
            raise ValueError(f"CartoonSmoother.motion_scale must be positive, got {motion_scale}")
        self.min_weight = min_weight
        self.motion_scale = motion_scale
        self._crop: np.ndarray | None = None
        self._cartoon: Any = None

    def weight(self, crop: np.ndarray) -> float:
        """How much of the new cartoon to take, given the new input crop."""
        if self._crop is None or self._crop.shape != crop.shape:
            return 1.0
        change = float(np.abs(crop.astype(np.int16) - self._crop.astype(np.int16)).mean())
        return min(1.0, self.min_weight + (1.0 - self.min_weight) * change / self.motion_scale)

    def __call__(self, crop: np.ndarray, cartoon: np.ndarray) -> np.ndarray:
        """The smoothed cartoon (uint8 H x W x 3) after the new ``cartoon`` of input ``crop``."""
        return np.rint(self.blend(crop, cartoon.astype(np.float32))).clip(0, 255).astype(np.uint8)

    def blend(self, crop: np.ndarray, cartoon: Any) -> Any:
        """The EMA after the new float ``cartoon`` (any array type with arithmetic: numpy, or a torch
        tensor that stays on its device); ``crop`` is the host uint8 input crop it was made from."""
        weight = self.weight(crop)
        self._crop = crop
        if weight >= 1.0 or self._cartoon is None or self._cartoon.shape != cartoon.shape:
            self._cartoon = cartoon
        else:
            self._cartoon = self._cartoon + weight * (cartoon - self._cartoon)
        return self._cartoon
