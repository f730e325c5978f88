"""Putting cartoons back: into the photo they came from, or onto white as photo2cartoon does.

:func:`paste_cartoons` warps each cartoon back with the inverse of its crop transform and blends
it through a feathered head mask: eroded a little so no photo background ringed the head survives,
blurred so the seam is soft, and faded to zero near the crop's edge so the square crop never
shows. Only each face's footprint is touched; every other pixel stays byte-identical.

Two things keep the cartoon from glowing or showing its edge (``p2c.stream.paste_quality``
measures both; docs/face-path.md has the figures):

- the generator draws on white, through the same soft head mask that whitened its input, so where
  the mask is partial (hair, the feathered edge) the cartoon is part white. The cartoon is taken as
  drawn over white with the mask as its alpha, and the photo replaces that white
  (:func:`over_photo`): no white spills past the head, no pale haze hangs in wispy hair;
- near the crop's edges, where the neck and shoulders go on into the photo, the cartoon's tones
  (blurred, over the person only) are moved to the photo's (:func:`tone_correction`), so the pale
  cartoon skin meets the photo's without a step.

Compositors are pluggable (``cpu`` here with OpenCV, ``torch`` in
:mod:`p2c.stream.gpu_compositing`) and chosen by name with :func:`create_compositor`.
:class:`CompositeStage` is the video pipeline's step: it adds what only video needs, a light,
motion-aware EMA of each track's cartoon (so a still face does not shimmer) and the
``--side-by-side`` layout (original | cartoon, twice the width).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from p2c.stream.alignment import invert_transform
from p2c.stream.frame import Frame
from p2c.stream.smoothing import MOTION_SCALE, STILL_WEIGHT, CartoonSmoother
from p2c.stream.stage import Stage

if TYPE_CHECKING:
    from p2c.engine.base import Backend
    from p2c.stream.adaptive import LivePolicy

__all__ = [
    "COMPOSITORS",
    "CompositeStage",
    "Compositor",
    "CpuCompositor",
    "Feathering",
    "PlacedFace",
    "available_compositors",
    "cartoon_on_white",
    "create_compositor",
    "default_compositor",
    "edge_fade",
    "feather_mask",
    "feathering",
    "footprint_box",
    "over_photo",
    "paste_cartoons",
    "resize_transform",
    "tone_correction",
    "tone_grid",
]

logger = logging.getLogger(__name__)

# Feathering, as fractions of the crop side (so 256 crops get 3 / 4 / 12 pixels).
_ERODE_FRACTION = 0.012
_BLUR_SIGMA_FRACTION = 0.016
_EDGE_FADE_FRACTION = 0.047
# Tone matching: from the crop's edge to 14 % inside (36 pixels of 256: the crop's bottom edge lies
# 38 pixels under the chin, so the face itself keeps the cartoon's tones), compared on a grid of a
# quarter of the crop's side, blurred over 2 cells (8 crop pixels).
_TONE_REACH_FRACTION = 0.14
_TONE_GRID_FRACTION = 0.25
_TONE_SIGMA = 2.0

# A smoother whose track has not been seen for this many frames is dropped (memory stays flat).
_FORGET_AFTER = 50


class PlacedFace(Protocol):
    """What pasting needs of a face: its image -> crop 2x3 ``transform`` and its head ``mask``
    (float32 in [0, 1], crop coordinates)."""

    @property
    def transform(self) -> np.ndarray: ...

    @property
    def mask(self) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------
# Feathering


@dataclass(frozen=True)
class Feathering:
    """What feathering a crop of one size takes; the same for every frame, so made once per size.

    ``erode``: erosion radius; ``element``: OpenCV's elliptic structuring element of that radius;
    ``sigma``: blur sigma (pixels); ``ramp``: the H x W float32 edge fade; ``tone``: the H x W float32
    weight of :func:`tone_correction`, 1 at the crop's edges, 0 from ``_TONE_REACH_FRACTION`` inside
    (both read-only). Both compositors use it, so they feather alike.
    """

    erode: int
    element: np.ndarray
    sigma: float
    ramp: np.ndarray
    tone: np.ndarray


@functools.lru_cache(maxsize=8)
def feathering(height: int, width: int) -> Feathering:
    """The :class:`Feathering` of an ``height`` x ``width`` crop (cached: one per crop size)."""
    size = min(height, width)
    erode = max(1, round(_ERODE_FRACTION * size))
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
    ramp = edge_fade((height, width), max(2.0, _EDGE_FADE_FRACTION * size))
    tone = 1.0 - edge_fade((height, width), max(2.0, _TONE_REACH_FRACTION * size))
    for constant in (element, ramp, tone):
        constant.setflags(write=False)  # shared by every frame: nobody may change it
    return Feathering(erode, element, max(0.5, _BLUR_SIGMA_FRACTION * size), ramp, tone)


def edge_fade(shape: tuple[int, ...], width: float) -> np.ndarray:
    """1 inside, a smooth ramp to 0 over ``width`` pixels at each edge of the crop."""
    height, wide = shape[:2]

    def ramp(n: int) -> np.ndarray:
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        t = np.clip(distance / width, 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)  # smoothstep: no visible kink where the ramp ends

    return np.outer(ramp(height), ramp(wide))


def feather_mask(mask: np.ndarray) -> np.ndarray:
    """The blending weight of a crop: the head mask eroded, blurred and faded out at the edges.

    Float32 H x W in [0, 1]; exactly 0 on the crop's outermost pixel row and column.
    """
    alpha: np.ndarray = np.asarray(mask, dtype=np.float32)
    if alpha.ndim != 2:
        raise ValueError(f"expected a mask of shape (H, W), got {alpha.shape}")
    constants = feathering(*alpha.shape)
    alpha = cv2.erode(alpha, constants.element, borderType=cv2.BORDER_REPLICATE)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=constants.sigma)
    return alpha * constants.ramp


def cartoon_on_white(cartoon: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """photo2cartoon's post-process: ``cartoon * mask + 255 * (1 - mask)`` as uint8.

    A mask of another size than the cartoon (e.g. a 64x64 test generator) is resized to fit.
    """
    cartoon = np.asarray(cartoon)
    alpha: np.ndarray = np.asarray(mask, dtype=np.float32)
    if alpha.shape != cartoon.shape[:2]:
        alpha = cv2.resize(alpha, (cartoon.shape[1], cartoon.shape[0]), interpolation=cv2.INTER_AREA)
    blended = cartoon.astype(np.float32) * alpha[..., None] + 255.0 * (1.0 - alpha[..., None])
    return np.clip(blended, 0.0, 255.0).astype(np.uint8)


def over_photo(cartoon: np.ndarray, mask: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The premultiplied colour and the weight that paste ``cartoon`` over the photo instead of white.

    The generator draws on white through the head ``mask`` (as its input was whitened), so the
    cartoon is ``drawing * mask + 255 * (1 - mask)``: its premultiplied drawing is
    ``max(cartoon - 255 * (1 - mask), 0)`` and its weight ``mask``, both times the feathered
    ``alpha``. ``cartoon``: uint8 S x S x 3; ``mask``, ``alpha``: float32 S x S in [0, 1]. Returns
    uint8 S x S x 4, colour then weight (times 255): the pasted pixel is
    ``photo * (1 - weight / 255) + colour``. Saturating uint8 arithmetic, within a level of floats.
    """
    # OpenCV throughout (its channel copies are 4x numpy's): under 0.5 ms for a 256 crop.
    white = cv2.convertScaleAbs(mask, alpha=-255.0, beta=255.0)  # 255 * (1 - mask), mask <= 1
    drawn = cv2.subtract(cartoon, cv2.cvtColor(white, cv2.COLOR_GRAY2RGB))  # stops at 0
    colour = cv2.multiply(drawn, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), dtype=cv2.CV_8U)
    weight = cv2.multiply(mask, alpha, scale=255.0, dtype=cv2.CV_8U)
    return cv2.insertChannel(weight, cv2.cvtColor(colour, cv2.COLOR_RGB2RGBA), 3)


def tone_grid(size: int) -> tuple[int, float]:
    """The side of the grid tones are compared on for an S x S cartoon, and the blur's sigma there
    (cells); both compositors use it."""
    return max(16, round(size * _TONE_GRID_FRACTION)), _TONE_SIGMA


def _person_tones(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` blurred over the person only (``mask``-weighted), so no background mixes in."""
    weighted = cv2.GaussianBlur(image * mask[..., None], (0, 0), sigma)
    coverage = cv2.GaussianBlur(mask, (0, 0), sigma)
    return weighted / np.maximum(coverage, 1e-3)[..., None]


def tone_correction(
    photo: np.ndarray, matrix: np.ndarray, cartoon: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """What to add to ``cartoon`` (S x S x 3) so its tones meet the photo's at the crop's edges.

    ``matrix``: image -> cartoon pixels; ``mask``: the head mask at the cartoon's size. Tones are
    compared on a coarse grid (the photo sampled there, the cartoon and mask area-averaged), blurred
    over the person, weighted there by :attr:`Feathering.tone` (fully at the crop's edges, not at
    all from 14 % inside) and enlarged to the cartoon's size. Float32 S x S x 3.
    """
    size = cartoon.shape[0]
    grid, sigma = tone_grid(size)
    # Pixels the crop takes from outside the photo are never shown; repeating the edge keeps
    # them from pulling the tones there.
    sampled = cv2.warpAffine(
        photo,
        resize_transform(matrix, size, grid),
        (grid, grid),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    shrink = cv2.INTER_AREA if grid < size else cv2.INTER_LINEAR
    person = cv2.resize(np.asarray(mask, dtype=np.float32), (grid, grid), interpolation=shrink)
    small = cv2.resize(cartoon, (grid, grid), interpolation=shrink).astype(np.float32)
    difference = _person_tones(sampled.astype(np.float32), person, sigma)
    difference -= _person_tones(small, person, sigma)
    difference *= feathering(grid, grid).tone[..., None]
    return cv2.resize(difference, (size, size), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------------------------------------
# Geometry and pasting


def resize_transform(transform: np.ndarray, crop_size: int, cartoon_size: int) -> np.ndarray:
    """The image -> cartoon matrix when the cartoon is ``cartoon_size`` square, the crop ``crop_size``."""
    factor = cartoon_size / crop_size
    matrix = np.asarray(transform, dtype=np.float64) * factor
    matrix[:, 2] += 0.5 * factor - 0.5  # keep pixel centres aligned
    return matrix


def footprint_box(
    transform: np.ndarray, crop_size: int, frame_shape: tuple[int, ...]
) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the frame pixels a crop covers, clipped to the frame; None if none."""
    corners = np.array(
        [[-0.5, -0.5], [crop_size - 0.5, -0.5], [-0.5, crop_size - 0.5], [crop_size - 0.5, crop_size - 0.5]]
    )
    inverse = invert_transform(transform)
    points = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = frame_shape[:2]
    x0 = max(int(np.floor(points[:, 0].min())), 0)
    y0 = max(int(np.floor(points[:, 1].min())), 0)
    x1 = min(int(np.ceil(points[:, 0].max())) + 1, width)
    y1 = min(int(np.ceil(points[:, 1].max())) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _paste_one(
    frame: np.ndarray, photo: np.ndarray, transform: np.ndarray, cartoon: np.ndarray, mask: np.ndarray
) -> None:
    """Blend one cartoon into ``frame`` in place, touching only its footprint; ``photo`` is the
    picture before any face was pasted (the tones to meet)."""
    size = cartoon.shape[0]
    if cartoon.shape[:2] != (size, size) or cartoon.ndim != 3 or cartoon.shape[2] != 3:
        raise ValueError(f"expected a square RGB cartoon of shape (S, S, 3), got {cartoon.shape}")
    # Feather at the crop's size (the mask's), then fit the cartoon: same look whatever its size.
    alpha = feather_mask(mask)
    mask = np.asarray(mask, dtype=np.float32)
    matrix = resize_transform(transform, mask.shape[0], size)
    if alpha.shape != (size, size):
        shrink = cv2.INTER_AREA if size < alpha.shape[0] else cv2.INTER_LINEAR
        alpha = cv2.resize(alpha, (size, size), interpolation=shrink)
        mask = cv2.resize(mask, (size, size), interpolation=shrink)
    box = footprint_box(matrix, size, frame.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    toned = cv2.add(cartoon, tone_correction(photo, matrix, cartoon, mask), dtype=cv2.CV_8U)
    # Colour and weight in one 4-channel uint8 warp: 0.9 ms for a 450-pixel face against 2.5 ms
    # for two; the weight's 8 bits move a pasted pixel by at most half a level. The weight is 0
    # on the crop's outermost pixels, so the constant (zero) border never shows.
    rgba = over_photo(toned, mask, alpha)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale > 2.0:
        # The face is more than twice smaller in the frame than the cartoon: shrink first with area
        # averaging (of premultiplied colour, so edges stay right), or the bilinear warp back would
        # alias its fine lines.
        target = max(2, int(np.ceil(size / scale * 1.5)))
        rgba = cv2.resize(rgba, (target, target), interpolation=cv2.INTER_AREA)
        matrix = resize_transform(matrix, size, target)
    # Frame box pixel (u, v) is frame pixel (u + x0, v + y0): shift the matrix and warp backwards.
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(rgba, shifted, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    colour = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB)  # OpenCV's split: 10x numpy's slice copy
    keep = cv2.cvtColor(cv2.bitwise_not(cv2.extractChannel(warped, 3)), cv2.COLOR_GRAY2RGB)  # 255 - weight
    region = frame[y0:y1, x0:x1]
    # region * (1 - weight) + colour in uint8, two OpenCV passes: 0.3 ms for a 420-pixel face where
    # cv2.blendLinear on float weights took 0.8, within a level of the float formula; where the
    # weight is 0 the frame's pixel comes back exactly.
    region[...] = cv2.add(cv2.multiply(region, keep, scale=1.0 / 255.0), colour)


def paste_cartoons(
    image_rgb: np.ndarray, faces: Sequence[PlacedFace], cartoons: Sequence[np.ndarray]
) -> np.ndarray:
    """A copy of ``image_rgb`` with each face's cartoon blended in over its head.

    ``cartoons[i]`` is the generator's output for ``faces[i].crop`` (uint8 RGB, square, any size).
    Faces partly outside the frame are fine. Faces are pasted smallest first, so where two
    overlap the larger (usually nearer) one ends up on top.
    """
    if len(faces) != len(cartoons):
        raise ValueError(f"got {len(faces)} faces but {len(cartoons)} cartoons")
    frame = np.array(image_rgb, dtype=np.uint8, copy=True)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {frame.shape}")
    order = sorted(
        range(len(faces)), key=lambda i: abs(np.linalg.det(faces[i].transform[:, :2])), reverse=True
    )
    photo = np.asarray(image_rgb, dtype=np.uint8)
    for index in order:
        cartoon = np.asarray(cartoons[index], dtype=np.uint8)
        _paste_one(frame, photo, faces[index].transform, cartoon, faces[index].mask)
    return frame


# ---------------------------------------------------------------------------------------------
# Compositors by name


class Compositor(Protocol):
    """Blends cartoons into a frame; what the video pipeline calls once per frame.

    ``paste(frame, faces, cartoons)`` returns a new uint8 RGB frame of the same shape; pixels
    outside every face's footprint are unchanged; ``faces`` may be empty. ``close()`` frees
    device memory and is safe to call more than once.
    """

    name: str

    def paste(
        self, frame: np.ndarray, faces: Sequence[PlacedFace], cartoons: Sequence[np.ndarray]
    ) -> np.ndarray: ...

    def close(self) -> None: ...


class CpuCompositor:
    """:func:`paste_cartoons` with OpenCV on the CPU."""

    name = "cpu"

    def paste(
        self, frame: np.ndarray, faces: Sequence[PlacedFace], cartoons: Sequence[np.ndarray]
    ) -> np.ndarray:
        return paste_cartoons(frame, faces, cartoons)

    def close(self) -> None:
        return None


def _torch_compositor(device: str) -> Compositor:
    from p2c.stream.gpu_compositing import TorchCompositor  # torch loads only when asked for

    return TorchCompositor(device=device)


COMPOSITORS: dict[str, Callable[[str], Compositor]] = {
    "cpu": lambda device: CpuCompositor(),
    "torch": _torch_compositor,
}


def available_compositors() -> list[str]:
    """Names :func:`create_compositor` accepts."""
    return sorted(COMPOSITORS)


def create_compositor(name: str = "cpu", device: str = "auto") -> Compositor:
    """The compositor called ``name`` (``cpu`` or ``torch``); ``device`` is for ``torch``
    (``auto`` = CUDA when available, else CPU)."""
    if name not in COMPOSITORS:
        raise ValueError(f"unknown compositor {name!r}; choose one of {', '.join(available_compositors())}")
    return COMPOSITORS[name](device)


def default_compositor(engine: Backend) -> Compositor:
    """The GPU compositor when the engine runs on CUDA, else the CPU one."""
    # A backend's device may carry a note after the name ("cuda:0 (TensorRT)" for onnxruntime).
    device = engine.device.split(" ")[0]
    if device.startswith("cuda"):
        try:
            return create_compositor("torch", device=device)
        except (ImportError, RuntimeError) as error:
            logger.warning("GPU compositor unavailable (%s); compositing on the CPU", error)
    return create_compositor("cpu")


# ---------------------------------------------------------------------------------------------
# The pipeline stage


class CompositeStage(Stage):
    """Blend cartoons into frames; ``output`` gets the result (``image`` is left as it was).

    ``cartoon_weight``: the new cartoon's weight for a still face (1 turns smoothing off);
    ``flow``: the EMA's flow quality (:data:`p2c.stream.smoothing.FLOW_QUALITIES`, ``None``: none),
    coarse instead while ``policy`` (a busy live run's :class:`p2c.stream.adaptive.LivePolicy`) says.
    Frames without faces come out unchanged (``output`` stays ``None`` unless side by side).
    """

    name = "compositor"

    def __init__(
        self,
        compositor: Compositor,
        side_by_side: bool = False,
        cartoon_weight: float = STILL_WEIGHT,
        motion_scale: float = MOTION_SCALE,
        flow: str | None = "fine",
        policy: LivePolicy | None = None,
    ) -> None:
        self.compositor = compositor
        self.side_by_side = side_by_side
        self.cartoon_weight = cartoon_weight
        self.motion_scale = motion_scale
        self.flow = flow
        self.policy = policy
        self._smoothers: dict[int, tuple[CartoonSmoother, int]] = {}
        # Each track's last pasted cartoon, for frames whose face was not due a new one.
        self._last: dict[int, tuple[np.ndarray, int]] = {}

    def _smooth(self, frame: Frame, cartoons: Sequence[Any], faces: Sequence[Any] | None = None) -> list[Any]:
        """Each face's cartoon after its track's EMA (:meth:`CartoonSmoother.blend`): uint8 images
        here, float pixels on a device in :class:`p2c.stream.device_frames.DeviceCompositeStage`.
        ``faces``: the faces ``cartoons`` belong to (default: all of the frame's)."""
        if self.cartoon_weight >= 1:
            return list(cartoons)
        smoothed = []
        flow = self._flow_now()
        for face, cartoon in zip(frame.faces if faces is None else faces, cartoons, strict=True):
            smoother, _ = self._smoothers.get(face.track_id, (None, 0))
            if smoother is None:
                smoother = CartoonSmoother(self.cartoon_weight, self.motion_scale, flow=flow)
            smoother.flow = flow
            self._smoothers[face.track_id] = (smoother, frame.index)
            smoothed.append(smoother.blend(face.crop, cartoon))
        stale = [tid for tid, (_, seen) in self._smoothers.items() if frame.index - seen > _FORGET_AFTER]
        for track_id in stale:
            del self._smoothers[track_id]
        return smoothed

    def _flow_now(self) -> str | None:
        """The run's flow quality, or the coarse one while the live policy says the machine is busy."""
        if self.flow is not None and self.policy is not None and self.policy.level.coarse_flow:
            return "coarse"
        return self.flow

    def _host_cartoons(self, frame: Frame) -> tuple[list[Any], list[np.ndarray]]:
        """The faces to paste and their cartoons: new ones smoothed, the others the track's last."""
        fresh, cartoons = [], []
        for face in frame.faces:
            if face.cartoon is not None:
                fresh.append(face)
                cartoons.append(face.cartoon.astype(np.float32))
            else:
                assert not face.cartoon_due, "the engine stage runs before the compositor"
        smoothed = {
            id(face): np.rint(cartoon).clip(0, 255).astype(np.uint8)
            for face, cartoon in zip(fresh, self._smooth(frame, cartoons, fresh), strict=True)
        }
        faces, pasted = [], []
        for face in frame.faces:
            cartoon = smoothed.get(id(face))
            if cartoon is not None:
                self._last[face.track_id] = (cartoon, frame.index)
            elif face.track_id in self._last:
                cartoon = self._last[face.track_id][0]
            else:
                continue  # no cartoon yet for this face: it shows as it is
            faces.append(face)
            pasted.append(cartoon)
        stale = [tid for tid, (_, seen) in self._last.items() if frame.index - seen > _FORGET_AFTER]
        for track_id in stale:
            del self._last[track_id]
        return faces, pasted

    def process(self, frames: list[Frame]) -> list[Frame]:
        for frame in frames:
            output = None
            if frame.faces:
                faces, cartoons = self._host_cartoons(frame)
                output = self.compositor.paste(frame.image, faces, cartoons)
            if self.side_by_side:
                output = np.concatenate([frame.image, frame.image if output is None else output], axis=1)
            frame.output = output
        return frames

    def close(self) -> None:
        self.compositor.close()
