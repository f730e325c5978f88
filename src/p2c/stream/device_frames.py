"""Frames that stay on the engine's device from the engine stage to the sinks.

On a GPU the host path costs three copies per face and two per frame: crops up, cartoons down,
cartoons and frame up again to the GPU compositor, the frame down. Here the engine stage uploads
each frame once (:class:`p2c.stream.gpu_compositing.FrameTransfer`), warps and whitens the crops
there (:func:`~p2c.stream.gpu_compositing.engine_inputs`), runs the generator on the tensor batch,
and the compositor stage smooths, pastes and downloads the finished frame once. The tracker still
works on the host frame: MediaPipe needs it there.

The code is device-agnostic, so the CPU runs it in tests against the host path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from p2c.engine.tensors import backend_device
from p2c.stream.compositing import CompositeStage, create_compositor
from p2c.stream.frame import Frame
from p2c.stream.gpu_compositing import (
    FrameTransfer,
    batch_to_pixels,
    engine_inputs,
    masks_tensor,
    paste_batch,
)
from p2c.stream.smoothing import MOTION_SCALE, STILL_WEIGHT
from p2c.stream.stage import BatchPolicy, Stage

if TYPE_CHECKING:
    from p2c.engine.base import Backend

__all__ = ["DeviceCompositeStage", "DeviceEngineStage", "DeviceFrame", "device_stages"]


@dataclass
class DeviceFrame:
    """What a frame carries on the device between the engine and the compositor stage.

    ``image``: the uploaded uint8 H x W x 3 frame (the compositor pastes into it); ``masks``: the
    faces' head masks, N x S x S in [0, 1]; ``cartoons``: the generator's output as float pixels,
    N x 3 x S x S in [0, 255], in the order of ``Frame.faces``.
    """

    image: torch.Tensor
    masks: torch.Tensor
    cartoons: torch.Tensor


class DeviceEngineStage(Stage):
    """The engine stage on device frames: each frame with faces is uploaded once, its crops are cut
    there, and every crop of the collected frames goes through the engine in one tensor call.

    Sets ``Frame.on_device``; ``AlignedFace.cartoon`` stays ``None`` (the cartoons never reach the
    host). Frames without faces are not uploaded. The engine belongs to the caller.
    """

    name = "engine"

    def __init__(
        self, engine: Backend, batch_policy: BatchPolicy, transfer: FrameTransfer, crop_size: int = 256
    ) -> None:
        self.engine = engine
        self.batch_policy = batch_policy
        self.transfer = transfer
        self.crop_size = crop_size
        self.batches = 0
        self.crops = 0

    def warm_up(self) -> None:
        """One call on a blank crop on the device: first-call costs before the clock."""
        blank = torch.zeros((1, 3, self.crop_size, self.crop_size), device=self.transfer.device)
        self.engine.run(blank)

    def process(self, frames: list[Frame]) -> list[Frame]:
        with_faces = [frame for frame in frames if frame.faces]
        if not with_faces:
            return frames
        uploaded, inputs = [], []
        for frame in with_faces:
            image = self.transfer.upload(frame.image)
            masks = masks_tensor([face.mask for face in frame.faces], self.transfer.device)
            transforms = [face.transform for face in frame.faces]
            inputs.append(engine_inputs(image, transforms, masks, self.crop_size))
            uploaded.append((image, masks))
        batch = torch.cat(inputs)
        cartoons = batch_to_pixels(self.engine.run(batch))
        if cartoons.shape[0] != batch.shape[0]:
            raise RuntimeError(f"the engine returned {cartoons.shape[0]} images for {batch.shape[0]} crops")
        start = 0
        for frame, (image, masks) in zip(with_faces, uploaded, strict=True):
            count = len(frame.faces)
            frame.on_device = DeviceFrame(image, masks, cartoons[start : start + count])
            start += count
        self.batches += 1
        self.crops += batch.shape[0]
        return frames


class DeviceCompositeStage(CompositeStage):
    """The compositor stage on device frames: the cartoons are smoothed per track and pasted on the
    device, and the finished frame is downloaded once. Frames without faces pass untouched."""

    def __init__(
        self,
        transfer: FrameTransfer,
        side_by_side: bool = False,
        cartoon_weight: float = STILL_WEIGHT,
        motion_scale: float = MOTION_SCALE,
    ) -> None:
        super().__init__(
            create_compositor("torch", device=str(transfer.device)),
            side_by_side=side_by_side,
            cartoon_weight=cartoon_weight,
            motion_scale=motion_scale,
        )
        self.transfer = transfer

    def process(self, frames: list[Frame]) -> list[Frame]:
        for frame in frames:
            output = self._paste(frame) if frame.on_device is not None else None
            if self.side_by_side:
                output = np.concatenate([frame.image, frame.image if output is None else output], axis=1)
            frame.output = output
        return frames

    def _paste(self, frame: Frame) -> np.ndarray:
        on_device = frame.on_device
        assert on_device is not None
        frame.on_device = None  # the device memory goes with the frame's last use
        cartoons: Sequence[torch.Tensor] = self._smooth(frame, list(on_device.cartoons))
        pixels = torch.stack([cartoon.round().clamp(0.0, 255.0) for cartoon in cartoons])
        transforms = [face.transform for face in frame.faces]
        return self.transfer.download(paste_batch(on_device.image, transforms, pixels, on_device.masks))


def device_stages(
    engine: Backend,
    batch_policy: BatchPolicy,
    side_by_side: bool = False,
    cartoon_weight: float = STILL_WEIGHT,
    motion_scale: float = MOTION_SCALE,
) -> tuple[DeviceEngineStage, DeviceCompositeStage]:
    """The engine and compositor stages sharing one :class:`FrameTransfer` on the engine's device."""
    transfer = FrameTransfer(backend_device(engine.device))
    return (
        DeviceEngineStage(engine, batch_policy, transfer),
        DeviceCompositeStage(
            transfer, side_by_side=side_by_side, cartoon_weight=cartoon_weight, motion_scale=motion_scale
        ),
    )
