"""p2c.stream: faces in, cartoons out, for still images, video files and cameras."""

from p2c.stream.compositing import (
    Compositor,
    available_compositors,
    cartoon_on_white,
    create_compositor,
    paste_cartoons,
)
from p2c.stream.faces import AlignedFace, AlignerConfig, FaceAligner
from p2c.stream.image_io import read_image, write_image
from p2c.stream.landmarks import LandmarkDetector, detect_landmarks

__all__ = [
    "AlignedFace",
    "AlignerConfig",
    "Compositor",
    "FaceAligner",
    "LandmarkDetector",
    "available_compositors",
    "cartoon_on_white",
    "create_compositor",
    "detect_landmarks",
    "paste_cartoons",
    "read_image",
    "write_image",
]
