"""Crops out of frames and cartoons back into them, for all faces at once, on a torch device.

The OpenCV path (:func:`p2c.stream.alignment.warp_to_crop`, :func:`p2c.stream.compositing.
paste_cartoons`) warps one face at a time on the CPU. Here the same 2x3 matrices drive
``affine_grid`` / ``grid_sample`` on N faces in one call, so on a GPU the CPU only decodes and
encodes: a frame goes to the device once as uint8 and comes back once as uint8.

Conventions match OpenCV's: pixel centres at integers, bilinear sampling, white outside the
frame for crops, the same feathered mask (:func:`p2c.stream.compositing.feathering`), the same
premultiplied colour over the photo (:func:`p2c.stream.compositing.over_photo`) and tone matching
at the crop's edges (:func:`p2c.stream.compositing.tone_correction`) for pasting. Shrinking by more
than 2x first averages down a pyramid (2x2 box per level), as OpenCV's area interpolation would, so
fine detail does not alias.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from p2c.devices import resolve_device
from p2c.stream.alignment import CROP_SIZE, invert_transform
from p2c.stream.compositing import feathering, footprint_box, resize_transform, tone_grid

if TYPE_CHECKING:
    from p2c.stream.compositing import PlacedFace

__all__ = [
    "FrameTransfer",
    "TorchCompositor",
    "batch_to_pixels",
    "engine_inputs",
    "feather_masks",
    "masks_tensor",
    "paste_batch",
    "tone_corrections",
    "warp_crops",
]


# ---------------------------------------------------------------------------------------------
# Matrix bookkeeping (float64 numpy on the host: a handful of 3x3 products per face). The ones that
# depend only on sizes or pyramid levels are made once and shared read-only.


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])


def _read_only(matrix: np.ndarray) -> np.ndarray:
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=64)
def _pixels_to_normalized(width: int, height: int) -> np.ndarray:
    """Pixel coordinates (centres at integers) to grid_sample's [-1, 1] with align_corners=False."""
    return _read_only(
        np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0, 0, 1]])
    )


@functools.lru_cache(maxsize=64)
def _normalized_to_pixels(width: int, height: int) -> np.ndarray:
    return _read_only(np.linalg.inv(_pixels_to_normalized(width, height)))


@functools.lru_cache(maxsize=16)
def _pyramid_step(level: int) -> np.ndarray:
    """Pixels at full size to pixels ``level`` 2x2-averaging steps down: x' = (x + 0.5) / 2^k - 0.5."""
    factor = 0.5**level
    return _read_only(
        np.array([[factor, 0.0, 0.5 * factor - 0.5], [0.0, factor, 0.5 * factor - 0.5], [0, 0, 1]])
    )


def _shrink_level(scale: float) -> int:
    """Pyramid levels to go down before bilinear sampling at ``scale`` output pixels per input pixel,
    so the bilinear step never shrinks by more than 2x."""
    if scale >= 0.5:
        return 0
    return math.floor(math.log2(1.0 / scale))


def _thetas(
    output_to_source: Sequence[np.ndarray],
    output_size: tuple[int, int],
    source_sizes: Sequence[tuple[int, int]],
    device: torch.device,
) -> torch.Tensor:
    """``affine_grid`` matrices (N x 2 x 3) from per-sample pixel maps output -> source (3x3)."""
    out_w, out_h = output_size
    thetas = [
        _pixels_to_normalized(*size) @ matrix @ _normalized_to_pixels(out_w, out_h)
        for matrix, size in zip(output_to_source, source_sizes, strict=True)
    ]
    return torch.as_tensor(np.stack(thetas)[:, :2], dtype=torch.float32, device=device)


def _sample(source: torch.Tensor, theta: torch.Tensor, size: tuple[int, int], padding: str) -> torch.Tensor:
    """Bilinear samples of ``source`` (N x C x H x W, or 1 x C x H x W for all) on N affine grids."""
    width, height = size
    grid = F.affine_grid(theta, [theta.shape[0], source.shape[1], height, width], align_corners=False)
    if source.shape[0] != theta.shape[0]:
        source = source.expand(theta.shape[0], -1, -1, -1)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def _pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``image`` (N x C x H x W float) and ``levels`` 2x2-averaged halvings of it.

    Odd sizes are padded by repeating the last row or column, so level pixels keep the mapping
    x' = (x + 0.5) / 2 - 0.5 right up to the edge."""
    pyramid = [image]
    for _ in range(levels):
        current = pyramid[-1]
        pad_w, pad_h = current.shape[-1] % 2, current.shape[-2] % 2
        if pad_w or pad_h:
            current = F.pad(current, (0, pad_w, 0, pad_h), mode="replicate")
        pyramid.append(F.avg_pool2d(current, 2))
    return pyramid


# ---------------------------------------------------------------------------------------------
# Crops


def _frame_tensor(frame: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A uint8 H x W x 3 frame on ``device`` (one host -> device copy for a numpy frame)."""
    tensor = torch.as_tensor(np.ascontiguousarray(frame)) if isinstance(frame, np.ndarray) else frame
    if tensor.dtype != torch.uint8 or tensor.ndim != 3 or tensor.shape[2] != 3:
        raise ValueError(
            f"expected a uint8 RGB frame of shape (H, W, 3), got {tensor.dtype} {tuple(tensor.shape)}"
        )
    return tensor.to(device)


def warp_crops(
    frame: np.ndarray | torch.Tensor,
    transforms: Sequence[np.ndarray],
    size: int = CROP_SIZE,
    device: str | torch.device = "auto",
) -> torch.Tensor:
    """N crops (N x 3 x size x size float32 in [0, 255], on the frame's device) of one RGB frame,
    each warped by its image -> crop 2x3 matrix, white outside the frame.

    Does what :func:`p2c.stream.alignment.warp_to_crop` does, for all faces in one call.
    """
    target = frame.device if isinstance(frame, torch.Tensor) else resolve_device(device)
    image = _frame_tensor(frame, target)
    if not transforms:
        return torch.empty((0, 3, size, size), dtype=torch.float32, device=target)
    # Sampling frame - 255 with zero padding and adding 255 back makes outside exactly white,
    # with the same bilinear blend into white at the edge that OpenCV's constant border gives.
    shifted = image.permute(2, 0, 1).unsqueeze(0).float() - 255.0
    scales = [math.sqrt(abs(np.linalg.det(np.asarray(m)[:, :2]))) for m in transforms]
    levels = [_shrink_level(s) for s in scales]
    pyramid = _pyramid(shifted, max(levels))
    crops = torch.empty((len(transforms), 3, size, size), dtype=torch.float32, device=target)
    for level in sorted(set(levels)):
        chosen = [i for i, lv in enumerate(levels) if lv == level]
        source = pyramid[level]
        height, width = source.shape[-2:]
        maps = [_pyramid_step(level) @ _homogeneous(invert_transform(transforms[i])) for i in chosen]
        theta = _thetas(maps, (size, size), [(width, height)] * len(chosen), target)
        crops[chosen] = _sample(source, theta, (size, size), padding="zeros") + 255.0
    return crops


# ---------------------------------------------------------------------------------------------
# Pasting


class _DeviceFeathering:
    """:func:`p2c.stream.compositing.feathering`'s constants on one device, made once per crop size.

    ``rows``: for each row ``dy`` of OpenCV's elliptic structuring element, the half-width of its
    run of ones (each row is one run, centred); ``kernel``: the 1-D Gaussian OpenCV's GaussianBlur
    uses on float images (radius 4 sigma); ``ramp``: the edge fade.
    """

    def __init__(self, size: int, device: torch.device) -> None:
        constants = feathering(size, size)
        self.radius = constants.erode
        self.rows: list[tuple[int, int]] = []
        for dy, row in enumerate(constants.element):
            columns = np.flatnonzero(row)
            half = self.radius - int(columns[0])
            if list(columns) != list(range(self.radius - half, self.radius + half + 1)):
                raise ValueError(f"row {dy} of the structuring element is not one centred run: {row}")
            self.rows.append((dy, half))
        self.kernel = _gaussian_kernel(constants.sigma, device)
        self.ramp = torch.as_tensor(np.array(constants.ramp), device=device)


@functools.lru_cache(maxsize=8)
def _device_feathering(size: int, device: torch.device) -> _DeviceFeathering:
    return _DeviceFeathering(size, device)


@functools.lru_cache(maxsize=8)
def _device_tone(size: int, device: torch.device) -> torch.Tensor:
    """:attr:`p2c.stream.compositing.Feathering.tone` of a ``size`` crop, on ``device``."""
    return torch.as_tensor(np.array(feathering(size, size).tone), device=device)


@functools.lru_cache(maxsize=8)
def _gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    """The 1-D Gaussian OpenCV's GaussianBlur uses on float images (radius 4 sigma)."""
    taps = round(sigma * 8 + 1) | 1
    return torch.as_tensor(cv2.getGaussianKernel(taps, sigma, cv2.CV_32F).ravel(), device=device)


def _blur(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur of N x C x H x W with mirrored borders, as OpenCV's default BORDER_REFLECT_101."""
    channels, radius = images.shape[1], kernel.numel() // 2
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous()
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1).contiguous()
    images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=channels)
    return F.conv2d(F.pad(images, (0, 0, radius, radius), mode="reflect"), vertical, groups=channels)


def _erode(alpha: torch.Tensor, radius: int, rows: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Min filter over an elliptic structuring element, edges replicated (as ``cv2.erode``).

    Horizontal minima over runs of 1, 3, 5, ... columns are built one from the other, then each
    element row takes its run's minimum, shifted into place: 13 minimum kernels for a radius of 3,
    where one per element pixel would be 37.
    """
    padded = F.pad(alpha, (radius, radius, radius, radius), mode="replicate")
    height, width = alpha.shape[-2:]
    runs = [padded]  # runs[h][..., c] = min of padded columns c .. c + 2h
    for half in range(1, max(h for _, h in rows) + 1):
        previous = runs[-1]
        span = previous.shape[-1] - 2
        runs.append(
            torch.minimum(
                previous[..., :span],
                torch.minimum(
                    padded[..., 2 * half - 1 : 2 * half - 1 + span], padded[..., 2 * half : 2 * half + span]
                ),
            )
        )
    result = alpha
    for dy, half in rows:
        result = torch.minimum(
            result, runs[half][..., dy : dy + height, radius - half : radius - half + width]
        )
    return result


def feather_masks(masks: torch.Tensor) -> torch.Tensor:
    """:func:`p2c.stream.compositing.feather_mask` for N masks (N x S x S float in [0, 1]) at once."""
    constants = _device_feathering(masks.shape[-1], masks.device)
    alpha = _erode(masks.unsqueeze(1).float(), constants.radius, constants.rows)
    return _blur(alpha, constants.kernel).squeeze(1) * constants.ramp


def _cartoon_tensor(cartoons: Sequence[np.ndarray] | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Cartoons as N x 3 x S x S float32 in [0, 255] on ``device``.

    Accepts uint8 H x W x 3 images, or the generator's float output N x 3 x S x S in [-1, 1] (a
    tensor that may already be on the device, so a torch engine's output never visits the host).
    """
    if isinstance(cartoons, torch.Tensor) and cartoons.is_floating_point():
        if cartoons.ndim != 4 or cartoons.shape[1] != 3:
            raise ValueError(f"expected cartoons of shape (N, 3, S, S), got {tuple(cartoons.shape)}")
        return ((cartoons.to(device, torch.float32) + 1.0) * 127.5).clamp(0.0, 255.0)
    stacked = torch.as_tensor(np.stack([np.asarray(c) for c in cartoons]))
    if stacked.dtype != torch.uint8 or stacked.ndim != 4 or stacked.shape[3] != 3:
        raise ValueError(f"expected uint8 RGB cartoons of shape (S, S, 3), got {tuple(stacked.shape[1:])}")
    return stacked.to(device).permute(0, 3, 1, 2).float()


def _resample(images: torch.Tensor, size: int) -> torch.Tensor:
    """N x C x S x S to ``size``: area averages to shrink, bilinear to enlarge (as the OpenCV path)."""
    if images.shape[-1] == size:
        return images
    if size < images.shape[-1]:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def _person_tones(images: torch.Tensor, person: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``images`` (N x 3 x G x G) blurred over the person only (``person``: N x 1 x G x G)."""
    return _blur(images * person, kernel) / _blur(person, kernel).clamp_min(1e-3)


def tone_corrections(
    frame: torch.Tensor, matrices: Sequence[np.ndarray], cartoons: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """:func:`p2c.stream.compositing.tone_correction` for N cartoons at once.

    ``frame``: uint8 H x W x 3; ``matrices``: image -> cartoon pixels; ``cartoons``: N x 3 x S x S
    float in [0, 255]; ``masks``: N x S x S. Returns N x 3 x S x S float32.
    """
    size = cartoons.shape[-1]
    grid, sigma = tone_grid(size)
    height, width = frame.shape[:2]
    image = frame.permute(2, 0, 1).unsqueeze(0).float()
    maps = [_homogeneous(invert_transform(resize_transform(m, size, grid))) for m in matrices]
    theta = _thetas(maps, (grid, grid), [(width, height)] * len(maps), frame.device)
    # The photo sampled straight (no pyramid) and its edge repeated, as cv2.warpAffine with
    # BORDER_REPLICATE does on the CPU.
    sampled = _sample(image, theta, (grid, grid), padding="border")
    person = _resample(masks.unsqueeze(1), grid)
    kernel = _gaussian_kernel(sigma, frame.device)
    difference = _person_tones(sampled, person, kernel)
    difference = difference - _person_tones(_resample(cartoons, grid), person, kernel)
    difference = difference * _device_tone(grid, frame.device)
    return F.interpolate(difference, size=(size, size), mode="bilinear", align_corners=False)


def _over_photo(cartoons: torch.Tensor, masks: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """:func:`p2c.stream.compositing.over_photo` for N cartoons: N x 4 x S x S, premultiplied colour
    then weight."""
    keep = masks.unsqueeze(1)
    drawn = (cartoons.clamp(0.0, 255.0) - 255.0 * (1.0 - keep)).clamp_min(0.0)
    weight = alpha.unsqueeze(1)
    return torch.cat([drawn * weight, keep * weight], dim=1)


def paste_batch(
    frame: torch.Tensor,
    transforms: Sequence[np.ndarray],
    cartoons: torch.Tensor,
    masks: torch.Tensor,
) -> torch.Tensor:
    """Blend N cartoons into ``frame`` (uint8 H x W x 3 on the device, modified in place and returned).

    ``transforms``: image -> crop 2x3 matrices; ``cartoons``: N x 3 x S x S float in [0, 255];
    ``masks``: N x M x M head masks in crop coordinates (M = crop size, e.g. 256). Faces are
    blended smallest first, so the largest ends on top, as :func:`paste_cartoons` does.
    """
    count = len(transforms)
    if count == 0:
        return frame
    if cartoons.shape[0] != count or masks.shape[0] != count:
        raise ValueError(f"got {count} transforms, {cartoons.shape[0]} cartoons and {masks.shape[0]} masks")
    device = frame.device
    size, crop_size = cartoons.shape[-1], masks.shape[-1]
    masks = masks.to(device, torch.float32)
    alpha = feather_masks(masks)
    if crop_size != size:
        alpha = F.interpolate(alpha.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False)[
            :, 0
        ]
        masks = F.interpolate(masks.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False)[
            :, 0
        ]
    matrices = [resize_transform(t, crop_size, size) for t in transforms]
    boxes = [footprint_box(m, size, tuple(frame.shape)) for m in matrices]
    visible = [i for i, box in enumerate(boxes) if box is not None]
    if not visible:
        return frame
    cartoons = cartoons.to(device, torch.float32)
    toned = cartoons + tone_corrections(frame, matrices, cartoons, masks)
    # Premultiplied colour and weight travel together: one grid_sample for both.
    layers = _over_photo(toned, masks, alpha)
    box_w = max(boxes[i][2] - boxes[i][0] for i in visible)  # type: ignore[index]
    box_h = max(boxes[i][3] - boxes[i][1] for i in visible)  # type: ignore[index]
    # Image -> cartoon scale > 2 means the face is over twice smaller in the frame: go down the
    # cartoon's pyramid first, as the OpenCV path area-resizes.
    levels = [_shrink_level(1.0 / math.sqrt(abs(np.linalg.det(m[:, :2])))) for m in matrices]
    pyramid = _pyramid(layers, max(levels[i] for i in visible))
    warped = torch.zeros((count, 4, box_h, box_w), dtype=torch.float32, device=device)
    for level in sorted({levels[i] for i in visible}):
        chosen = [i for i in visible if levels[i] == level]
        source = pyramid[level][chosen]
        height, width = source.shape[-2:]
        maps = []
        for i in chosen:
            x0, y0 = boxes[i][:2]  # type: ignore[index]
            box_to_image = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
            maps.append(_pyramid_step(level) @ _homogeneous(matrices[i]) @ box_to_image)
        theta = _thetas(maps, (box_w, box_h), [(width, height)] * len(chosen), device)
        warped[chosen] = _sample(source, theta, (box_w, box_h), padding="zeros")
    order = sorted(visible, key=lambda i: abs(np.linalg.det(matrices[i][:, :2])), reverse=True)
    for i in order:
        x0, y0, x1, y1 = boxes[i]  # type: ignore[misc]
        region = frame[y0:y1, x0:x1].permute(2, 0, 1).float()
        colour = warped[i, :3, : y1 - y0, : x1 - x0]
        weight = warped[i, 3:, : y1 - y0, : x1 - x0]
        blended = region * (1.0 - weight) + colour
        frame[y0:y1, x0:x1] = blended.round().clamp(0.0, 255.0).to(torch.uint8).permute(1, 2, 0)
    return frame


class TorchCompositor:
    """The ``torch`` compositor: pasting with torch on ``device`` (``auto``: CUDA if any).

    ``paste`` takes and returns uint8 numpy frames, copying each once to the device and once back.
    """

    name = "torch"

    def __init__(self, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)

    def paste(
        self,
        frame: np.ndarray,
        faces: Sequence[PlacedFace],
        cartoons: Sequence[np.ndarray] | torch.Tensor,
    ) -> np.ndarray:
        """A copy of ``frame`` with every face's cartoon blended in (as :func:`paste_cartoons`)."""
        if len(faces) != len(cartoons):
            raise ValueError(f"got {len(faces)} faces but {len(cartoons)} cartoons")
        if not faces:
            return np.array(frame, copy=True)
        image = _frame_tensor(np.asarray(frame), self.device)
        if image.device.type == "cpu":
            image = image.clone()  # there .to() is a no-op: never write into the caller's frame
        masks = torch.as_tensor(np.stack([face.mask for face in faces]), dtype=torch.float32).to(self.device)
        pasted = paste_batch(
            image, [face.transform for face in faces], _cartoon_tensor(cartoons, self.device), masks
        )
        return pasted.cpu().numpy()

    def close(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# A whole frame on the device: one upload, crops, generator, paste, one download.


class FrameTransfer:
    """Frames to the device and back: one host -> device copy per frame in, one device -> host copy
    per finished frame out, through page-locked staging buffers reused while the frame size stays.

    On the CPU ``upload`` makes the one copy the in-place paste needs (the caller's frame is never
    written) and ``download`` hands that copy back.
    """

    def __init__(self, device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self._cuda = self.device.type == "cuda"
        self._staging_in: torch.Tensor | None = None
        self._staging_out: torch.Tensor | None = None
        self._copied_in: torch.cuda.Event | None = None

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """A uint8 H x W x 3 frame as a tensor on the device, the caller's array left untouched."""
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
        ):
            shape = getattr(frame, "shape", None)
            raise ValueError(
                f"expected a uint8 RGB frame of shape (H, W, 3), got {type(frame).__name__} {shape}"
            )
        if not self._cuda:
            return torch.from_numpy(np.array(frame, copy=True))
        if self._copied_in is not None:
            self._copied_in.synchronize()  # the previous frame has left the staging buffer
        self._staging_in = self._staging(self._staging_in, frame.shape)
        np.copyto(self._staging_in.numpy(), frame)
        tensor = self._staging_in.to(self.device, non_blocking=True)
        self._copied_in = torch.cuda.Event()
        self._copied_in.record(torch.cuda.current_stream(self.device))
        return tensor

    def download(self, frame: torch.Tensor) -> np.ndarray:
        """The finished uint8 frame as a new numpy array (waits for the device's work on it)."""
        if not self._cuda:
            return frame.numpy() if frame.device.type == "cpu" else frame.cpu().numpy()
        self._staging_out = self._staging(self._staging_out, tuple(frame.shape))
        self._staging_out.copy_(frame, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return self._staging_out.numpy().copy()  # the staging buffer is reused by the next frame

    @staticmethod
    def _staging(buffer: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        if buffer is None or tuple(buffer.shape) != tuple(shape):
            buffer = torch.empty(shape, dtype=torch.uint8).pin_memory()
        return buffer


def masks_tensor(masks: Sequence[np.ndarray] | np.ndarray, device: str | torch.device) -> torch.Tensor:
    """Head masks as N x M x M float32 in [0, 1] on ``device``.

    Float masks in [0, 1], or uint8 masks in 0..255, which are four times cheaper to copy; the
    conversion then happens on the device.
    """
    stacked = (
        np.stack([np.asarray(mask) for mask in masks]) if len(masks) else np.empty((0, 0, 0), np.float32)
    )
    tensor = torch.from_numpy(np.ascontiguousarray(stacked)).to(resolve_device(device))
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    return tensor.float()


def engine_inputs(
    frame: torch.Tensor, transforms: Sequence[np.ndarray], masks: torch.Tensor, size: int = CROP_SIZE
) -> torch.Tensor:
    """The generator's batch for the faces of an uploaded frame, made on the frame's device.

    Does on the device what the tracker (``warp_to_crop``, ``whiten_background``) and
    ``images_to_batch`` do on the host: each crop warped by its image -> crop matrix (made for
    ``masks``' crop size), the background whitened by its mask, N x 3 x size x size in [-1, 1].
    """
    if not transforms:
        return torch.empty((0, 3, size, size), dtype=torch.float32, device=frame.device)
    crop_size = masks.shape[-1]
    matrices = [resize_transform(t, crop_size, size) for t in transforms] if size != crop_size else transforms
    crops = warp_crops(frame, matrices, size)
    alpha = masks.to(frame.device, torch.float32).unsqueeze(1)
    if alpha.shape[-1] != size:
        alpha = F.interpolate(alpha, size=(size, size), mode="area")
    whitened = crops * alpha + 255.0 * (1.0 - alpha)
    return whitened / 127.5 - 1.0


def batch_to_pixels(batch: torch.Tensor) -> torch.Tensor:
    """The generator's output (N x 3 x S x S in [-1, 1]) as float pixels in [0, 255], where it is:
    what :func:`paste_batch` takes."""
    return _cartoon_tensor(batch, batch.device)
