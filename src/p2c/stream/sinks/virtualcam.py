"""A virtual camera sink through pyvirtualcam: video calls see the cartoon as a webcam.

The camera backend is injectable (``camera_factory``), so tests run this code against a fake
backend and CI needs no device. A missing device is one sentence saying how to create one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from p2c.errors import MissingDependencyError, OutputError
from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget

__all__ = ["HOW_TO_CREATE_DEVICE", "VirtualCameraSink", "pyvirtualcam_factory"]

logger = logging.getLogger(__name__)

HOW_TO_CREATE_DEVICE = (
    "on Linux load v4l2loopback (sudo modprobe v4l2loopback devices=1); "
    "on Windows and macOS install OBS Studio and start its Virtual Camera once"
)

# (width, height, fps) -> a camera object with send(rgb), sleep_until_next_frame(), close(),
# and width/height/fps attributes that say what was negotiated.
CameraFactory = Callable[[int, int, float], Any]


def pyvirtualcam_factory(width: int, height: int, fps: float) -> Any:
    """Open the first virtual camera pyvirtualcam finds (RGB frames)."""
    try:
        import pyvirtualcam
    except ImportError as error:
        raise MissingDependencyError(
            'the virtual camera needs pyvirtualcam: pip install "pyvirtualcam>=0.11"'
        ) from error
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB)
    except RuntimeError as error:
        raise OutputError(
            f"no virtual camera device is available ({error}); {HOW_TO_CREATE_DEVICE}"
        ) from error


class VirtualCameraSink(FrameSink):
    """Send frames to a virtual camera of the frames' size at ``fps``.

    ``pace``: sleep until the camera's next frame slot (for sources faster than real time, such
    as files); live sources are already paced by their camera.
    """

    name = "virtualcam"
    option = SinkOption("--virtualcam", "send the result to a virtual camera")

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        camera_factory: CameraFactory | None = None,
        pace: bool = False,
    ) -> None:
        super().__init__(width, height)
        if fps <= 0:
            raise ValueError(f"VirtualCameraSink.fps must be positive, got {fps}")
        self.fps = fps
        self.pace = pace
        self.device = ""
        self._factory = camera_factory or pyvirtualcam_factory
        self._camera: Any = None

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> VirtualCameraSink:
        # A file runs faster than real time: hold each frame for its slot, as a camera would.
        return cls(target.width, target.height, target.fps, pace=not target.live)

    def open(self) -> None:
        camera = self._factory(self.width, self.height, self.fps)
        got = (int(camera.width), int(camera.height))
        if got != (self.width, self.height):
            camera.close()
            raise OutputError(
                f"the virtual camera opened at {got[0]}x{got[1]}, not {self.width}x{self.height}; "
                "close other programs using it or pass --width/--height to match"
            )
        self._camera = camera
        self.device = str(getattr(camera, "device", ""))
        logger.info("virtual camera %s: %dx%d at %.1f fps", self.device, self.width, self.height, camera.fps)

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        self._camera.send(image)
        if self.pace:
            self._camera.sleep_until_next_frame()

    def _close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
