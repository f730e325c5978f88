"""p2c.stream: faces in, cartoons out, for still images, video files and cameras."""

from p2c.stream.compositing import (
    CompositeStage,
    Compositor,
    available_compositors,
    cartoon_on_white,
    create_compositor,
    paste_cartoons,
)
from p2c.stream.faces import AlignedFace, AlignerConfig, FaceAligner
from p2c.stream.flicker import FlickerMeter
from p2c.stream.frame import Frame
from p2c.stream.human_check import HogFaceCheck
from p2c.stream.image_io import read_image, write_image
from p2c.stream.landmarks import LandmarkDetector, detect_landmarks
from p2c.stream.pipeline import Pipeline, PipelineConfig, VideoConfig, cartoonize, cartoonize_video
from p2c.stream.sources import ClipCameraSource, Source, VideoFileSource, VideoInfo, WebcamSource, open_camera
from p2c.stream.stage import BatchPolicy, Stage
from p2c.stream.stats import PipelineStats, StatsSnapshot
from p2c.stream.tracking import FaceTracker, TrackerConfig

__all__ = [
    "AlignedFace",
    "AlignerConfig",
    "BatchPolicy",
    "ClipCameraSource",
    "CompositeStage",
    "Compositor",
    "FaceAligner",
    "FaceTracker",
    "FlickerMeter",
    "Frame",
    "HogFaceCheck",
    "LandmarkDetector",
    "Pipeline",
    "PipelineConfig",
    "PipelineStats",
    "Source",
    "Stage",
    "StatsSnapshot",
    "TrackerConfig",
    "VideoConfig",
    "VideoFileSource",
    "VideoInfo",
    "WebcamSource",
    "available_compositors",
    "cartoon_on_white",
    "cartoonize",
    "cartoonize_video",
    "create_compositor",
    "detect_landmarks",
    "open_camera",
    "paste_cartoons",
    "read_image",
    "write_image",
]
