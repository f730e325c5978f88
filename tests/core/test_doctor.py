"""p2c-doctor on this machine (no camera, no virtual camera device) and with both faked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2c.doctor import command as doctor
from p2c.doctor.checks import BackendSpeed, check_backends, virtual_camera_steps
from p2c.doctor.estimate import estimate_live_fps, load_profiles
from p2c.models.weights import default_weights_path
from p2c.stream import cameras as cameras_module
from p2c.stream.cameras import CameraInfo, CameraMode
from p2c.stream.sinks import virtualcam as virtualcam_module

QUICK = ["--seconds", "0.1"]


class FakeVirtualCamera:
    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps, self.device = width, height, fps, "/dev/video9"

    def close(self) -> None:
        pass


@pytest.fixture
def no_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cameras_module, "list_cameras", lambda: [])


@pytest.fixture
def a_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = CameraInfo(0, "USB Camera", "/dev/video0", (CameraMode(1280, 720, (30.0,), ("MJPG",)),), "v4l2")
    monkeypatch.setattr(cameras_module, "list_cameras", lambda: [camera])


def test_without_camera_and_virtual_camera_it_says_why_and_how_and_exits_2(
    no_camera: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = doctor.main(QUICK)  # this machine: no virtual camera device
    out = capsys.readouterr().out
    assert code == 2, out
    lines = out.splitlines()
    assert lines[-1] == "live use: not ready: no camera found; no virtual camera device"
    for section in ("p2c", "default model", "cameras", "virtual camera", "MediaPipe", "PyAV"):
        assert any(line.endswith(f"] {section}") for line in lines), section
    card = json.loads(default_weights_path().with_suffix(".json").read_text())["card"]
    assert f"step {card['step']:,} (gate passed {card['gate_passed']})" in out
    assert "faces/s" in out and "720p, one face: about" in out and "1080p, one face: about" in out
    assert "builtin:astronaut-clip" in out  # what to try without a camera
    assert "sudo modprobe v4l2loopback" in out  # the exact steps, on Linux
    assert "MediaPipe\n     0.10.21: works" in out and "writes H.264" in out


def test_with_a_camera_and_a_virtual_camera_live_use_is_ready(
    a_camera: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(virtualcam_module, "pyvirtualcam_factory", FakeVirtualCamera)
    assert doctor.main(QUICK) == 0
    out = capsys.readouterr().out
    assert "camera 0: USB Camera (/dev/video0)" in out and "1280x720 at 30 fps (MJPG)" in out
    assert "available: /dev/video9" in out
    assert out.splitlines()[-1].startswith("live use: ready")


def test_no_backend_that_runs_is_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(name: str) -> object:
        from p2c.errors import BackendUnavailableError

        raise BackendUnavailableError(f"{name} needs a GPU")

    finding, speeds = check_backends(0.1, open_backend=refuse, names=["tensorrt"])
    assert speeds == [] and finding.blocks == "no inference backend runs here"
    assert finding.lines == ("tensorrt: does not run here (tensorrt needs a GPU)",)


def test_the_estimate_scales_with_the_engine_and_the_frame_size() -> None:
    profiles, source = load_profiles()
    assert source is not None and set(profiles) == {"720p", "1080p"}  # the committed issue-25 run
    fast = {e.size: e for e in estimate_live_fps(114.0, profiles, cores=2)}
    slow = {e.size: e for e in estimate_live_fps(10.0, profiles, cores=2)}
    assert fast["720p"].fps == 30.0  # the camera's rate caps it
    assert slow["720p"].fps < fast["720p"].fps and slow["1080p"].fps < slow["720p"].fps
    assert slow["720p"].fps <= 10.0  # never faster than the engine alone
    assert slow["1080p"].measured and BackendSpeed("onnxruntime", "cpu", "fp32", 10.0).faces_per_s == 10.0


def test_a_size_without_its_own_profile_takes_the_720p_one_scaled_by_its_pixels(tmp_path: Path) -> None:
    stages = {"source": 4.0, "tracker": 13.0, "engine": 20.0, "compositor": 9.0, "sink": 0.0}
    profile = {
        "stages": {
            name: {"cpu_ms_per_frame": ms, "wall_ms_per_frame": 10.0 if name == "engine" else ms}
            for name, ms in stages.items()
        }
    }
    old = tmp_path / "old.json"  # issue 19's file: 720p only
    old.write_text(json.dumps({"runs": [{"name": "live 720p, 1 face", "compact": profile}]}))
    profiles, source = load_profiles((tmp_path / "missing.json", old))
    assert source == old and set(profiles) == {"720p"}
    at = {e.size: e for e in estimate_live_fps(50.0, profiles, cores=2)}  # 20 ms: twice the profile's
    assert at["720p"].cpu_ms_per_frame == pytest.approx(2 * (4 + 13 + 9) + 20)
    assert not at["1080p"].measured
    assert at["1080p"].cpu_ms_per_frame == pytest.approx(2 * (2.25 * 4 + 13 + 2.25 * 9) + 20)
    assert load_profiles((tmp_path / "missing.json",)) == ({}, None)


@pytest.mark.parametrize(
    ("system", "words"),
    [("Linux", "modprobe v4l2loopback"), ("Darwin", "OBS Studio"), ("Windows", "Start Virtual Camera")],
)
def test_the_steps_to_a_virtual_camera_for_each_os(system: str, words: str) -> None:
    assert any(words in step for step in virtual_camera_steps(system))
