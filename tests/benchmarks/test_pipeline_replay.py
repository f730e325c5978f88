"""The replay benchmark runs at a tiny size without MediaPipe or PyAV; the recorder writes what it reads."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"


def _load(name: str) -> ModuleType:  # benchmarks/ is a folder of scripts, not an installed package
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import each other by name
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _crop_transform(centre: tuple[float, float], side: float, size: int = 256) -> np.ndarray:
    scale = size / side
    return np.array(
        [[scale, 0.0, (size - 1) / 2 - scale * centre[0]], [0.0, scale, (size - 1) / 2 - scale * centre[1]]]
    )


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A 6-frame synthetic clip (OpenCV-written) and a recording of one face on its first 5 frames."""
    clip = tmp_path / "synthetic.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
    noise = np.random.default_rng(0).integers(0, 256, (240, 400, 3), dtype=np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 3)
    for index in range(6):
        writer.write(np.ascontiguousarray(background[:, 4 * index : 4 * index + 320]))
    writer.release()
    rows, cols = np.mgrid[0:256, 0:256]
    disc = np.where((rows - 128) ** 2 + (cols - 128) ** 2 < 100**2, 255, 0).astype(np.uint8)
    arrays = {
        "frame": np.arange(5, dtype=np.int32),
        "track_id": np.zeros(5, np.int32),
        "transform": np.stack([_crop_transform((150 + 2 * i, 110), 140) for i in range(5)]),
        "landmarks": np.zeros((5, 68, 2), np.float32),
        "mask": np.stack([disc] * 5),
    }
    _load("record_faces").write_recording(
        tmp_path / "synthetic", clip, 25.0, (320, 240), [1, 1, 1, 1, 1, 0], arrays
    )
    return tmp_path / "synthetic.json"


@pytest.mark.slow
def test_tiny_replay_reports_every_scenario_without_mediapipe_or_pyav(
    recording: Path, tmp_path: Path
) -> None:
    # The GPU machine has neither: the benchmark must run with both imports failing.
    code = (
        "import sys; sys.modules['mediapipe'] = None; sys.modules['av'] = None; "
        f"sys.path.insert(0, {str(BENCHMARKS)!r}); import pipeline_replay; "
        "sys.exit(pipeline_replay.main(sys.argv[1:]))"
    )
    out = tmp_path / "out"
    args = [
        str(recording),
        "--tiny",
        "--out",
        str(out),
        "--frames",
        "2",
        "--backend",
        "torch",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]

    report = json.loads((out / "pipeline_replay.json").read_text())
    assert report["machine"]["engine"] == "torch fp32 on cpu"
    assert report["settings"]["frames"] == 2 and report["settings"]["generator_px"] == 64
    scenarios = report["scenarios"]
    assert [s["size"] for s in scenarios] == [[1280, 720], [1280, 720], [1920, 1080], [1920, 1080]]
    assert [s["faces_per_frame"] for s in scenarios] == [1, 4, 1, 4]
    for scenario in scenarios:
        offline, live = scenario["offline"], scenario["live"]
        assert offline["frames"] == 2 and offline["fps"] > 0
        assert set(offline["stage_ms"]) == {"upload", "crops", "engine", "composite", "download"}
        assert all(ms >= 0 for ms in offline["stage_ms"].values()) and offline["stage_ms"]["engine"] > 0
        assert live["processed"] + live["dropped"] == 2
        assert live["latency_ms"]["p95"] >= live["latency_ms"]["p50"] > 0
        assert scenario["gpu_memory"] is None  # on the CPU
    assert "| 1080p, 4 faces | 4 |" in (out / "pipeline_replay.md").read_text()
    assert (out / "pipeline_replay.png").read_bytes()[:4] == b"\x89PNG"


def test_recorded_transforms_follow_the_frame_into_each_scenario(recording: Path) -> None:
    replay = _load("pipeline_replay")
    loaded = replay.load_recording(recording)
    images, _ = replay.decode_clip(loaded.clip, 2)
    assert len(images) == 2 and images[0].shape == (240, 320, 3)
    for scenario in replay.SCENARIOS:
        frames, transforms, rows = replay.scenario_frames(images, loaded, scenario)
        assert frames[0].shape == (scenario.height, scenario.width, 3)
        assert len(transforms[0]) == len(rows[0]) == scenario.faces
        # Each face's crop from the scenario frame is the crop from the original frame.
        original = cv2.warpAffine(images[0], loaded.arrays["transform"][0], (256, 256))
        for moved in transforms[0]:
            crop = cv2.warpAffine(frames[0], moved, (256, 256))
            assert np.abs(crop.astype(int) - original).mean() < 12


def test_a_missing_recording_says_how_to_make_one(tmp_path: Path) -> None:
    from p2c.errors import InputNotFoundError

    with pytest.raises(InputNotFoundError, match=r"record_faces\.py"):
        _load("pipeline_replay").load_recording(tmp_path / "none.json")


@pytest.mark.slow
def test_the_recorder_writes_each_frames_faces(talking_clip: Path, tmp_path: Path) -> None:
    meta = _load("record_faces").record(talking_clip, tmp_path / "talk", frames=3)
    assert meta["frames"] == 3 and meta["faces_per_frame"] == [1, 1, 1]
    with np.load(tmp_path / "talk.npz") as data:
        assert data["transform"].shape == (3, 2, 3) and data["landmarks"].shape == (3, 68, 2)
        assert data["mask"].shape == (3, 256, 256) and data["mask"].dtype == np.uint8
        assert 0.05 < float(data["mask"].mean()) / 255 < 0.95  # a head, not an empty or full mask
    assert json.loads((tmp_path / "talk.json").read_text())["clip"] == talking_clip.name
