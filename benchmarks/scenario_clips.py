"""The test clips of the pipeline scenarios, made at run time from the shared talking-head clips.

Two real clips feed them (``../shared/media``): the 1280x720 one, whose face is small (about 210
pixels from brows to chin), and the 512x512 close-up. A :class:`Scenario` says what to make:

- the 720p clip resized (1080p), or tiled 2x2 at half size (four real talking faces);
- the close-up scaled to ``close_up`` pixels high, centred on a 1280x720 canvas, its edge pixels
  drawn out to the sides: a face as near as a person at a laptop is (issue 25's large face:
  560 pixels; the face-size sweep: 180 to 720);
- H.264, or MJPEG in an AVI (what a 1080p webcam delivers: OpenCV's writer, quality 90).

Every clip plays at 30 fps, frame after frame; one longer than its source replays it forth and
back, so there is no jump where it restarts. ``benchmarks/pipeline_replay.py`` replays the first
four scenarios too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CAMERA_FPS",
    "CLOSE_CLIP",
    "CLOSE_UPS",
    "FACE_SWEEP",
    "LARGE_FACE",
    "MJPEG_1080P",
    "SCENARIOS",
    "WIDE_CLIP",
    "Scenario",
    "scenario_image",
    "write_scenario_clip",
]

_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
WIDE_CLIP = _MEDIA / "talking_1280x720_30fps_audio.mp4"
CLOSE_CLIP = _MEDIA / "talking_512x512_25fps_noaudio.mp4"
CAMERA_FPS = 30.0
_MJPEG_QUALITY = 90


@dataclass(frozen=True)
class Scenario:
    """A test clip: its frame size and how many copies of the wide clip it tiles (1 or 2x2).

    ``close_up``: instead, the close-up clip scaled to this many pixels high and centred on the
    canvas. ``codec``: ``"h264"`` or ``"mjpeg"``."""

    name: str
    width: int
    height: int
    grid: int = 1  # copies per side: 1 -> one face, 2 -> four faces
    close_up: int | None = None
    codec: str = "h264"

    def __post_init__(self) -> None:
        if self.codec not in ("h264", "mjpeg"):
            raise ValueError(f"Scenario.codec must be 'h264' or 'mjpeg', got {self.codec!r}")

    @property
    def faces(self) -> int:
        return self.grid * self.grid

    @property
    def suffix(self) -> str:
        """The clip file's extension."""
        return ".avi" if self.codec == "mjpeg" else ".mp4"


SCENARIOS = (
    Scenario("720p, 1 face", 1280, 720, 1),
    Scenario("720p, 4 faces", 1280, 720, 2),
    Scenario("1080p, 1 face", 1920, 1080, 1),
    Scenario("1080p, 4 faces", 1920, 1080, 2),
)
LARGE_FACE = Scenario("720p, large face", 1280, 720, close_up=560)
# The close-up at these heights on a 720p canvas: the face-size sweep (560 is the large face).
FACE_SWEEP = (180, 360, 560, 720)
CLOSE_UPS = tuple(
    LARGE_FACE
    if height == LARGE_FACE.close_up
    else Scenario(f"720p, close-up {height} px", 1280, 720, close_up=height)
    for height in FACE_SWEEP
)
MJPEG_1080P = Scenario("1080p MJPEG, 1 face", 1920, 1080, codec="mjpeg")


def _tile(image: np.ndarray, scenario: Scenario) -> np.ndarray:
    import cv2

    width, height = scenario.width // scenario.grid, scenario.height // scenario.grid
    tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    row = np.concatenate([tile] * scenario.grid, axis=1)
    tiled = np.concatenate([row] * scenario.grid, axis=0)
    if tiled.shape[:2] != (scenario.height, scenario.width):  # odd sizes: stretch the last pixel
        tiled = cv2.resize(tiled, (scenario.width, scenario.height), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(tiled)


def _close_up(image: np.ndarray, scenario: Scenario) -> np.ndarray:
    """``image`` scaled to ``scenario.close_up`` pixels high and centred on the scenario's canvas,
    its edge pixels drawn out to fill the rest (the clip's green backdrop goes on to the sides)."""
    import cv2

    assert scenario.close_up is not None
    height = min(scenario.close_up, scenario.height)
    width = min(round(image.shape[1] * height / image.shape[0]), scenario.width)
    grow = cv2.INTER_LINEAR if height > image.shape[0] else cv2.INTER_AREA
    scaled = cv2.resize(image, (width, height), interpolation=grow)
    top, left = (scenario.height - height) // 2, (scenario.width - width) // 2
    bottom, right = scenario.height - height - top, scenario.width - width - left
    return cv2.copyMakeBorder(scaled, top, bottom, left, right, cv2.BORDER_REPLICATE)


def scenario_image(image: np.ndarray, scenario: Scenario) -> np.ndarray:
    """One RGB frame of ``scenario`` made from one frame of its source clip."""
    return _close_up(image, scenario) if scenario.close_up is not None else _tile(image, scenario)


def write_scenario_clip(clip: Path, scenario: Scenario, frames: int, path: Path) -> Path:
    """``frames`` frames of ``clip`` (replayed forth and back if it is shorter), made into
    ``scenario``'s frames, at 30 fps in ``path`` (H.264, or MJPEG in an AVI)."""
    import av

    from p2c.errors import InvalidInputError

    with av.open(str(clip)) as source:
        images = [
            scenario_image(frame.to_ndarray(format="rgb24"), scenario) for frame in source.decode(video=0)
        ]
    if not images:
        raise InvalidInputError(f"clip {clip} has no decodable video frames; pass another clip")
    order = images + images[-2:0:-1]  # forth and back: no jump where the clip restarts
    sequence = (order[index % len(order)] for index in range(frames))
    if scenario.codec == "mjpeg":
        return _write_mjpeg(sequence, scenario, path)
    with av.open(str(path), mode="w") as target:
        video = target.add_stream("libx264", rate=int(CAMERA_FPS))
        video.width, video.height, video.pix_fmt = scenario.width, scenario.height, "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        for image in sequence:
            target.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        target.mux(video.encode())  # flush the encoder
    return path


def _write_mjpeg(images: Iterator[np.ndarray], scenario: Scenario, path: Path) -> Path:
    import cv2

    size = (scenario.width, scenario.height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), CAMERA_FPS, size)
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, _MJPEG_QUALITY)
    try:
        for image in images:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
