"""The compositor stage: paste each frame's cartoons back, optionally beside the original.

Pasting itself is :mod:`p2c.stream.compositing` (a named compositor: ``cpu`` with OpenCV, or
``torch`` on the GPU when the engine runs there). This stage adds what only video needs: a
light, motion-aware EMA of each track's cartoon (so a still face does not shimmer) and the
``--side-by-side`` layout (original | cartoon, twice the width).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from p2c.stream.frame import Frame
from p2c.stream.smoothing import CartoonSmoother

__all__ = ["CompositeStage", "default_compositor"]

logger = logging.getLogger(__name__)

# A smoother whose track has not been seen for this many frames is dropped (memory stays flat).
_FORGET_AFTER = 50


def default_compositor(engine: Any = None) -> Any:
    """The GPU compositor when the engine runs on CUDA and one is installed, else the CPU one."""
    from p2c.stream.compositing import available_compositors, create_compositor

    device = str(getattr(engine, "device", "cpu"))
    if device.startswith("cuda") and "torch" in available_compositors():
        try:
            return create_compositor("torch", device=device)
        except (ImportError, RuntimeError) as error:
            logger.warning("GPU compositor unavailable (%s); compositing on the CPU", error)
    return create_compositor("cpu")


class CompositeStage:
    """Blend cartoons into frames; ``output`` gets the result (``image`` is left as it was).

    ``cartoon_weight``: the new cartoon's weight for a still face (1 turns smoothing off).
    Frames without faces come out unchanged (``output`` stays ``None`` unless side by side).
    """

    name = "compositor"

    def __init__(
        self,
        compositor: Any = None,
        side_by_side: bool = False,
        cartoon_weight: float = 0.5,
        motion_scale: float = 6.0,
    ) -> None:
        self.compositor = compositor
        self.side_by_side = side_by_side
        self.cartoon_weight = cartoon_weight
        self.motion_scale = motion_scale
        self._smoothers: dict[int, tuple[CartoonSmoother, int]] = {}

    def _smooth(self, frame: Frame) -> list[np.ndarray]:
        cartoons = []
        for face in frame.faces:
            assert face.cartoon is not None, "the engine stage runs before the compositor"
            if self.cartoon_weight >= 1:
                cartoons.append(face.cartoon)
                continue
            smoother, _ = self._smoothers.get(face.track_id, (None, 0))
            if smoother is None:
                smoother = CartoonSmoother(self.cartoon_weight, self.motion_scale)
            self._smoothers[face.track_id] = (smoother, frame.index)
            cartoons.append(smoother(face.crop, face.cartoon))
        stale = [tid for tid, (_, seen) in self._smoothers.items() if frame.index - seen > _FORGET_AFTER]
        for track_id in stale:
            del self._smoothers[track_id]
        return cartoons

    def process(self, frames: list[Frame]) -> list[Frame]:
        if self.compositor is None and any(frame.faces for frame in frames):
            self.compositor = default_compositor()
        for frame in frames:
            output = None
            if frame.faces:
                output = self.compositor.paste(frame.image, frame.faces, self._smooth(frame))
            if self.side_by_side:
                output = np.concatenate([frame.image, frame.image if output is None else output], axis=1)
            frame.output = output
        return frames

    def close(self) -> None:
        close = getattr(self.compositor, "close", None)
        if close is not None:
            close()
