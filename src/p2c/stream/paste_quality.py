"""How a pasted cartoon meets the photo around it: the halo at the head's edge, the seam at the body.

Two flaws show where :func:`p2c.stream.compositing.paste_cartoons` hands over from cartoon to photo:

- **Halo.** The cartoon is drawn on white and the head mask is soft: wherever the paste weight
  reaches past what the cartoon drew (outside the head's silhouette, or inside it where the drawn
  hair stops short of the mask), the cartoon's white is blended in, and a pale ring glows around
  the hair against any darker background.
- **Seam.** Where the crop's square edge cuts through the person (neck, chest, shoulders), the
  cartoon's pale skin hands over to the photo's darker skin in a few pixels: a visible line.

Both are measured in crop coordinates (the face's own, so a band of 6 pixels is the same part of
every head whatever its size in the photo), on the photo and the composite warped alike, and as
what the composite changes of the photo, so an edge the photo already has is not counted:

- halo, in a band 1-6 crop pixels outside the silhouette (the head mask at 0.5), away from the
  crop's edges: the mean CIE L* the composite adds to the photo (``outside_excess_l``) and the share
  of pixels it brightens by more than :data:`GLOW_L` (``glow_share``); in the 4 pixels inside the
  silhouette, the share the composite turns near-white where the photo is not (``white_share``);
- seam, on profiles across the crop's bottom, left and right edges (64 crop pixels inside to 16
  outside) where the person goes on across the edge and the photo is skin on both sides, blurred
  so that tones count rather than lines: the hand-over ``composite - photo`` (Lab) is 0 outside the
  crop and the cartoon's difference inside; its step over :data:`SEAM_SPAN` pixels, averaged over
  the profiles at each place across the edge, at its largest, is ``handover_step``: how abruptly
  the photo turns into the cartoon, wherever the turn lies (a longer or better-matched turn is a
  smaller step), but also where the cartoon draws something else than the photo has (a collar,
  the chin). ``edge_step`` is its largest step within 16 pixels of the crop's edge, where the
  paste's weight fades out: the straight line a seam draws there. ``body_handover_step`` and
  ``body_edge_step`` are the same wherever the person crosses the edge, skin or not; ``seam_step``
  and ``photo_seam_step`` are the composite's and the photo's own largest mean steps there, for
  scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from p2c.stream.alignment import CROP_SIZE

__all__ = ["GLOW_L", "SEAM_SPAN", "PasteEdges", "measure_paste", "skin_pixels"]

GLOW_L = 8.0  # a brightening of 8 L* units against a dark background is plainly visible
SEAM_SPAN = 8  # crop pixels: 3 % of the crop, about a fifth of a neck's width
_MARGIN = 32  # crop pixels measured around the crop, for what lies just outside its edges
_OUTSIDE = (1, 6)  # crop pixels outside the silhouette: the halo band
_INSIDE = 4  # crop pixels inside it: where the cartoon's white fringe lies
_AWAY_FROM_EDGE = 24  # the halo band keeps this far from the crop's edges (those are the seam's)
_PROFILE = (-64, 16)  # crop pixels along a seam profile, from inside to outside the crop's edge
_EDGE_ZONE = (-16, 4)  # the part of it where the paste's weight fades out at the crop's edge


@dataclass(frozen=True)
class PasteEdges:
    """The halo and seam figures of one pasted face (see the module's docstring); NaN where the
    face has no such place (no background beside the head in the photo, no skin at the crop's
    edges). ``halo_pixels``, ``seam_profiles``, ``body_profiles``: how much each was measured on."""

    outside_excess_l: float
    glow_share: float
    white_share: float
    halo_pixels: int
    seam_step: float
    photo_seam_step: float
    handover_step: float
    edge_step: float
    seam_profiles: int
    body_handover_step: float
    body_edge_step: float
    body_profiles: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def skin_pixels(rgb: np.ndarray) -> np.ndarray:
    """Where an RGB uint8 image has a skin colour (Chai and Ngan's YCrCb box), as booleans."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _around_crop(image: np.ndarray, transform: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``image`` warped into the crop grown by the margin on every side, and where it was inside
    the image. The margin scales with the crop: 32 pixels for a 256 crop."""
    margin = round(_MARGIN * size / CROP_SIZE)
    matrix = np.asarray(transform, dtype=np.float64).copy()
    matrix[:, 2] += margin
    shape = (size + 2 * margin, size + 2 * margin)
    warped = cv2.warpAffine(image, matrix, shape, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ones = np.ones(image.shape[:2], np.uint8)
    inside = cv2.warpAffine(ones, matrix, shape, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return warped, cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0  # no pixel half outside


def _halo(
    photo: np.ndarray, composite: np.ndarray, head: np.ndarray, valid: np.ndarray, scale: float
) -> tuple[float, float, float, int]:
    """Halo figures of one face (all arrays in the grown crop)."""
    outside = cv2.distanceTransform((~head).astype(np.uint8), cv2.DIST_L2, 5) / scale
    inside = cv2.distanceTransform(head.astype(np.uint8), cv2.DIST_L2, 5) / scale
    band = valid & ~head & (outside >= _OUTSIDE[0]) & (outside <= _OUTSIDE[1])
    fringe = valid & head & (inside <= _INSIDE)
    photo_lab, composite_lab = _lab(photo), _lab(composite)
    excess = composite_lab[..., 0] - photo_lab[..., 0]
    if band.sum() == 0:
        return float("nan"), float("nan"), float("nan"), 0

    def near_white(lab: np.ndarray) -> np.ndarray:
        return (lab[..., 0] > 90.0) & (np.hypot(lab[..., 1], lab[..., 2]) < 8.0)

    white = near_white(composite_lab) & ~near_white(photo_lab)
    return (
        float(excess[band].mean()),
        float((excess[band] > GLOW_L).mean()),
        float(white[fringe].mean()) if fringe.any() else float("nan"),
        int(band.sum()),
    )


def _edge_profiles(image: np.ndarray, margin: int, size: int, scale: float) -> list[np.ndarray]:
    """Profiles across the crop's bottom, left and right edges, from inside to outside: for each
    edge a P x T (x C) array, P along the edge (its middle, away from the corners), T across it."""
    lo, hi = (round(t * scale) for t in _PROFILE)
    away = round(_AWAY_FROM_EDGE * scale)
    along = slice(margin + away, margin + size - away)
    bottom = image[margin + size + lo : margin + size + hi, along].swapaxes(0, 1)
    left = image[along, margin - hi : margin - lo][:, ::-1]
    right = image[along, margin + size + lo : margin + size + hi]
    return [bottom, left, right]


def _mean_steps(lab_profiles: np.ndarray, span: int) -> np.ndarray:
    """The mean step (CIE76, points ``span`` apart) at each place across the edge: a line along the
    edge adds up, the steps the content has here and there average out."""
    return np.linalg.norm(lab_profiles[:, span:] - lab_profiles[:, :-span], axis=-1).mean(axis=0)


def _seam(
    photo: np.ndarray, composite: np.ndarray, person: np.ndarray, valid: np.ndarray, size: int, scale: float
) -> tuple[float, float, float, float, int, float, float, int]:
    """Seam figures of one face (arrays in the grown crop), in :class:`PasteEdges`' order."""
    margin = (photo.shape[0] - size) // 2
    span = max(1, round(SEAM_SPAN * scale))
    # Blurred, so the figures see tones rather than lines and sensor noise.
    photo_lab, composite_lab = (_lab(cv2.GaussianBlur(a, (0, 0), 3.0 * scale)) for a in (photo, composite))
    skin = skin_pixels(photo)
    lo = round(_PROFILE[0] * scale)
    inner, outer = round(-16 * scale) - lo, round(8 * scale) - lo  # 16 pixels inside, 8 outside
    # Windows that start in the edge zone: the step there is the line at the crop's edge.
    edge = slice(round(_EDGE_ZONE[0] * scale) - lo, round(_EDGE_ZONE[1] * scale) - span - lo + 1)
    photo_p, composite_p, skin_p, person_p, valid_p = (
        np.concatenate(_edge_profiles(a, margin, size, scale))
        for a in (photo_lab, composite_lab, skin, person, valid)
    )
    body = valid_p.all(axis=1) & person_p[:, inner]  # the person goes on across the crop's edge
    on_skin = body & skin_p[:, inner] & skin_p[:, outer]
    handover = composite_p - photo_p  # 0 where the photo is left as it was

    def step(profiles: np.ndarray, chosen: np.ndarray, where: slice = slice(None)) -> float:
        return float(_mean_steps(profiles[chosen], span)[where].max()) if chosen.any() else float("nan")

    return (
        step(composite_p, on_skin),
        step(photo_p, on_skin),
        step(handover, on_skin),
        step(handover, on_skin, edge),
        int(on_skin.sum()),
        step(handover, body),
        step(handover, body, edge),
        int(body.sum()),
    )


def measure_paste(
    photo: np.ndarray, composite: np.ndarray, transform: np.ndarray, mask: np.ndarray
) -> PasteEdges:
    """The halo and seam of one face pasted into ``photo`` (both RGB uint8, same shape), given the
    face's image -> crop ``transform`` and its head ``mask`` (crop coordinates)."""
    if photo.shape != composite.shape:
        raise ValueError(f"photo {photo.shape} and composite {composite.shape} differ in shape")
    size = mask.shape[0]
    scale = size / CROP_SIZE
    margin = round(_MARGIN * scale)
    photo_crop, valid = _around_crop(photo, transform, size)
    composite_crop, _ = _around_crop(composite, transform, size)
    head = np.zeros(valid.shape, bool)
    head[margin : margin + size, margin : margin + size] = np.asarray(mask) >= 0.5
    away = np.zeros(valid.shape, bool)
    edge = round(_AWAY_FROM_EDGE * scale)
    away[margin + edge : margin + size - edge, margin + edge : margin + size - edge] = True
    excess, glow, white, pixels = _halo(photo_crop, composite_crop, head, valid & away, scale)
    return PasteEdges(
        excess, glow, white, pixels, *_seam(photo_crop, composite_crop, head, valid, size, scale)
    )
