"""What ``p2c-doctor`` checks: each check is one function returning a :class:`Finding`.

A finding says what was found (``lines``), whether live use (a camera into a virtual camera) needs
something that is missing (``blocks``: the reason, one sentence), and what to do about it
(``advice``). The checks measure rather than assume: the backends run the shipped generator for a
moment, MediaPipe looks for the astronaut's face, PyAV checks for its H.264 encoder, the virtual
camera is opened and closed. Each is injectable where it touches hardware, so the tests can fake a
camera and a virtual camera.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from p2c.errors import P2CError

__all__ = [
    "BackendSpeed",
    "Finding",
    "check_backends",
    "check_cameras",
    "check_mediapipe",
    "check_model",
    "check_pyav",
    "check_version",
    "check_virtual_camera",
    "measure_backend",
    "virtual_camera_steps",
]

# The crop the generator sees.
_CROP = 256


@dataclass(frozen=True)
class Finding:
    """One section of the report. ``blocks``: why live use cannot work without a fix (None: it can)."""

    title: str
    lines: tuple[str, ...]
    blocks: str | None = None
    advice: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackendSpeed:
    """A backend that runs the generator here, and how fast (faces per second at batch 1)."""

    name: str
    device: str
    precision: str
    faces_per_s: float
    note: str = field(default="")


def check_version() -> Finding:
    try:
        version = importlib.metadata.version("p2c")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed (running from a source tree)"
    where = f"Python {platform.python_version()} on {platform.system()} {platform.machine()}"
    return Finding("p2c", (f"version {version}; {where}",))


def check_model() -> Finding:
    """The shipped generator: its name, training step and the date it passed the gate."""
    from p2c.models.weights import default_model_card, default_weights_path

    path = default_weights_path()
    if path is None:
        return Finding(
            "default model",
            ("none ships with this install",),
            blocks="no default model",
            advice=("pass --weights PATH (photo2cartoon's .pt or .onnx, or a p2c .safetensors)",),
        )
    card = default_model_card()
    size = path.stat().st_size / 1e6
    return Finding(
        "default model",
        (
            f"{card.get('name', path.stem)}: step {card.get('step', '?'):,} "
            f"(gate passed {card.get('gate_passed', '?')}), {path.name} ({size:.2f} MB)",
        ),
    )


def measure_backend(engine: Any, seconds: float) -> float:
    """Faces per second of ``engine`` on one crop at a time, over about ``seconds`` after a warm-up."""
    crop = np.zeros((1, 3, _CROP, _CROP), np.float32)
    engine.run(crop)  # the first call builds what the backend builds lazily
    runs, started = 0, time.perf_counter()
    while True:
        engine.run(crop)
        runs += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and runs >= 2:
            return runs / elapsed


def check_backends(
    seconds: float, open_backend: Callable[[str], Any] | None = None, names: Sequence[str] | None = None
) -> tuple[Finding, list[BackendSpeed]]:
    """Every backend installed here, run on the shipped generator for about ``seconds`` each."""
    from p2c.engine.registry import available_backends

    opener = open_backend or _open_backend
    lines, speeds, skipped = [], [], []
    for name in names if names is not None else available_backends():
        if name == "inductor" and open_backend is None and not _cuda():
            skipped.append("inductor (an ahead-of-time build takes minutes on a CPU; not measured)")
            continue
        try:
            engine = opener(name)
        except (P2CError, ImportError, RuntimeError) as error:
            lines.append(f"{name}: does not run here ({str(error).splitlines()[0]})")
            continue
        try:
            rate = measure_backend(engine, seconds)
        finally:
            engine.close()
        speeds.append(BackendSpeed(name, engine.device, engine.precision, rate))
    speeds.sort(key=lambda speed: speed.faces_per_s, reverse=True)
    lines = [
        f"{s.name}: {s.faces_per_s:.1f} faces/s ({s.precision} on {s.device}, batch 1)" for s in speeds
    ] + lines
    lines += skipped
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load is not None and speeds:
        cores = os.cpu_count() or 1
        busy = " (busy: other programs slow these figures down)" if load > 0.5 * cores else ""
        lines.append(f"load average {load:.1f} on {cores} cores while measuring{busy}")
    if not speeds:
        return Finding(
            "backends",
            tuple(lines) or ("none installed",),
            blocks="no inference backend runs here",
            advice=('pip install onnxruntime (or torch): pip install "p2c"',),
        ), speeds
    return Finding("backends (measured now)", tuple(lines)), speeds


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _open_backend(name: str) -> Any:
    from p2c.engine import EngineConfig, create_backend
    from p2c.models.weights import default_weights_path
    from p2c.stream.threads import engine_config_for_run

    weights = default_weights_path()
    if weights is None:
        raise P2CError("no default model to measure with")
    config = engine_config_for_run(EngineConfig(backend=name), live=True, max_faces=1)
    return create_backend(name, weights, config)


def check_cameras(list_cameras: Callable[[], list[Any]] | None = None) -> tuple[Finding, list[Any]]:
    from p2c.stream.cameras import describe_cameras
    from p2c.stream.cameras import list_cameras as real_list

    cameras = (list_cameras or real_list)()
    lines = tuple(describe_cameras(cameras))
    if not cameras:
        return Finding(
            "cameras",
            lines,
            blocks="no camera found",
            advice=(
                "plug in a webcam (check `p2c-stream --list-cameras`), or try the live path without one: "
                "p2c-stream --camera builtin:astronaut-clip --preview",
            ),
        ), cameras
    return Finding("cameras", lines), cameras


def virtual_camera_steps(system: str | None = None) -> tuple[str, ...]:
    """The exact steps to get a virtual camera device on ``system`` (``platform.system()``)."""
    system = system or platform.system()
    if system == "Linux":
        return (
            "sudo apt install v4l2loopback-dkms   # Debian, Ubuntu; Fedora: akmod-v4l2loopback",
            'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="p2c"',
            "echo v4l2loopback | sudo tee /etc/modules-load.d/v4l2loopback.conf   # at every boot",
            "then: p2c-stream --camera 0 --virtualcam, and pick 'p2c' as the camera in the call",
        )
    if system == "Darwin":
        return (
            "install OBS Studio 30 or later (https://obsproject.com)",
            "open it once and click Start Virtual Camera (this installs the camera extension; allow it "
            "in System Settings > Privacy & Security), then quit OBS",
            "then: p2c-stream --camera 0 --virtualcam, and pick 'OBS Virtual Camera' in the call",
        )
    if system == "Windows":
        return (
            "install OBS Studio 30 or later (https://obsproject.com)",
            "open it once and click Start Virtual Camera, then quit OBS",
            "then: p2c-stream --camera 0 --virtualcam, and pick 'OBS Virtual Camera' in the call",
        )
    return ("no virtual camera driver is known for this OS; use --preview or --output instead",)


def _open_virtual_camera() -> str:
    """Open and close a small virtual camera; its device name. Raises P2CError when there is none."""
    from p2c.stream.sinks.virtualcam import pyvirtualcam_factory

    camera = pyvirtualcam_factory(640, 480, 30.0)
    try:
        return str(getattr(camera, "device", "")) or "(unnamed)"
    finally:
        camera.close()


def check_virtual_camera(open_camera: Callable[[], str] | None = None) -> Finding:
    try:
        device = (open_camera or _open_virtual_camera)()
    except P2CError as error:
        reason = str(error).split(";")[0].split(" (")[0]
        return Finding(
            "virtual camera",
            (f"not available: {reason}",),
            blocks="no virtual camera device",
            advice=virtual_camera_steps(),
        )
    return Finding("virtual camera", (f"available: {device}",))


def check_mediapipe(find_face: Callable[[], int] | None = None) -> Finding:
    """MediaPipe loads and finds the astronaut's face (what every face in p2c goes through)."""
    try:
        import mediapipe

        version = getattr(mediapipe, "__version__", "?")
        faces = (find_face or _astronaut_faces)()
    except Exception as error:  # a broken native install shows up as anything: report it
        return Finding(
            "MediaPipe",
            (f"does not work: {error.__class__.__name__}: {(str(error) or '?').splitlines()[0]}",),
            blocks="MediaPipe does not work",
            advice=('pip install "mediapipe==0.10.21" (Python 3.11 or 3.12 on x86-64 or arm64)',),
        )
    if faces < 1:
        return Finding(
            "MediaPipe",
            (f"{version}: loads, but finds no face in the astronaut",),
            blocks="MediaPipe finds no face",
        )
    return Finding("MediaPipe", (f"{version}: works (finds the astronaut's face)",))


def _astronaut_faces() -> int:
    from p2c.stream.image_io import read_image
    from p2c.stream.landmarks import FaceBoxFinder

    with FaceBoxFinder() as finder:
        return len(finder.find(read_image("builtin:astronaut")))


def check_pyav() -> Finding:
    try:
        import av
    except ImportError as error:
        return Finding("PyAV", (f"not installed ({error})",), blocks=None, advice=('pip install "av>=12"',))
    codecs: set[str] = set(getattr(av, "codecs_available", ()))
    h264 = "libx264" in codecs
    line = f"{av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')})"
    if not h264:
        return Finding(
            "PyAV",
            (f"{line}: no H.264 encoder, --output and p2c-video cannot write .mp4",),
            advice=("reinstall PyAV from its wheel: pip install --force-reinstall av",),
        )
    return Finding("PyAV", (f"{line}: reads video, writes H.264 (--output, p2c-video)",))


def python_ok() -> bool:
    return sys.version_info >= (3, 11)
