"""Following each tracked face with a face mesh of its own, on a square around where it was.

MediaPipe's face mesh in tracking mode (``static_image_mode=False``) seeds a frame's landmarks
from the previous frame's and runs its face detector only when it has lost the face. On a whole
frame that works for a face that fills a good part of it; a small face (four people on a 720p
frame: about 100 pixels) is too small for the mesh's short-range detector, so it never starts
tracking, runs that detector on every frame for nothing, and the tracker fell back on the static
mesh around each face (a detector and a mesh per face per frame: 8.5 ms of CPU a face on the build
machine).

:class:`RegionMeshes` gives every track a tracking-mode mesh of its own, fed the square around the
track's last landmarks (:func:`p2c.stream.landmarks.tracking_region`: the square the static mesh
uses, at most 512 pixels, shrunk at a cost that does not grow with the face). The face then fills
its input, the mesh tracks it without a detector (4.8 ms a face), and if it loses it, its detector
runs on that square, where the face is large. The square is centred on the last landmarks, so from
frame to frame the face stays near its middle at the same size: the mesh's previous landmarks, in
the square's coordinates, still fit.

The pool holds ``size`` meshes (the tracker's ``max_faces``), built by :meth:`warm_up`; a track
without one takes the least recently used, whose stale landmarks also sit in the middle of its
square, so the new face is picked up at once (or found by the detector on the square).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from p2c.resources import Closeable
from p2c.stream.landmarks import region_landmarks, tracking_region

__all__ = ["RegionMeshes"]


class RegionMeshes(Closeable):
    """``follow(image, track_id, box)`` -> the 68 landmarks (image pixels) of the face in ``box``,
    or ``None``; one tracking-mode mesh per track, ``size`` of them at most. One per thread."""

    def __init__(
        self, size: int, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5
    ) -> None:
        if size < 1:
            raise ValueError(f"RegionMeshes.size must be >= 1, got {size}")
        self.size = size
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self._free: list[Any] = []
        self._by_track: OrderedDict[int, Any] = OrderedDict()  # least recently used first

    def _build(self) -> Any:
        import mediapipe as mp  # heavy: load only when a mesh is built

        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )

    def warm_up(self) -> None:
        """Build every mesh now (a graph takes tens of milliseconds to start: not on a live frame)."""
        blank = np.full((128, 128, 3), 127, np.uint8)
        while len(self._free) + len(self._by_track) < self.size:
            mesh = self._build()
            mesh.process(blank)
            self._free.append(mesh)

    def _mesh_for(self, track_id: int) -> Any:
        mesh = self._by_track.pop(track_id, None)
        if mesh is None:
            if self._free:
                mesh = self._free.pop()
            elif len(self._by_track) < self.size:
                mesh = self._build()
            else:
                _, mesh = self._by_track.popitem(last=False)  # the one unused longest
        self._by_track[track_id] = mesh
        return mesh

    def follow(self, image: np.ndarray, track_id: int, box: np.ndarray) -> np.ndarray | None:
        """Landmarks of track ``track_id``'s face on RGB ``image``, looked for around ``box``."""
        region, to_image = tracking_region(image, np.asarray(box, dtype=np.float64))
        found = self._mesh_for(track_id).process(region).multi_face_landmarks
        return region_landmarks(found[0], region, to_image) if found else None

    def close(self) -> None:
        for mesh in [*self._free, *self._by_track.values()]:
            mesh.close()
        self._free.clear()
        self._by_track.clear()
