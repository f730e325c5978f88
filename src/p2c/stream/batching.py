"""The engine stage: the crops of every face of a frame, and offline of several frames, as one call.

A generator call has a fixed overhead (Python, kernel launches, host<->device copies), so one call
on eight crops is much cheaper than eight calls on one. How many frames the stage collects per
call is its :class:`p2c.stream.stage.BatchPolicy`: full batches offline, what is waiting live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from p2c.engine.tensors import batch_to_images, images_to_batch
from p2c.stream.frame import Frame
from p2c.stream.stage import BatchPolicy, Stage

if TYPE_CHECKING:
    from p2c.engine.base import Backend

__all__ = ["EngineStage"]


class EngineStage(Stage):
    """Run every face crop of the collected frames through the engine in one call.

    The crops convert to the engine's ``N x 3 x S x S`` float range and back with p2c.engine's
    converters. The engine belongs to the caller, who closes it.
    """

    name = "engine"

    def __init__(self, engine: Backend, batch_policy: BatchPolicy, crop_size: int = 256) -> None:
        self.engine = engine
        self.batch_policy = batch_policy
        self.crop_size = crop_size
        self.batches = 0
        self.crops = 0

    def warm_up(self) -> None:
        """One call on a blank crop: first-call costs (allocation, kernel choice) before the clock."""
        self.engine.run(np.zeros((1, 3, self.crop_size, self.crop_size), np.float32))

    def process(self, frames: list[Frame]) -> list[Frame]:
        # A face not due a cartoon (a busy live run) keeps its track's last one: the compositor's.
        faces = [face for frame in frames for face in frame.faces if face.cartoon_due]
        if not faces:
            return frames
        cartoons = batch_to_images(self.engine.run(images_to_batch([face.crop for face in faces])))
        if len(cartoons) != len(faces):
            raise RuntimeError(f"the engine returned {len(cartoons)} images for {len(faces)} crops")
        for face, cartoon in zip(faces, cartoons, strict=True):
            face.cartoon = cartoon
        self.batches += 1
        self.crops += len(faces)
        return frames
