"""Issue 25's pipeline scenarios at a tiny size: each runs end to end and reports its counters and
fields (never a time); the clips they are made of; the latency split into work and queueing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
SCRIPT = BENCHMARKS / "pipeline_scenarios.py"
FRAMES = 6


def _load(name: str) -> ModuleType:  # benchmarks/ is a folder of scripts, not an installed package
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import each other by name
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# One run of each new scenario (the sweep by its smallest close-up), and the cost of the two
# that matter most; one subprocess for all of them.
NEW_RUNS = (
    "live 720p, large face",
    "file 720p, large face",
    "live 1080p, 1 face",
    "live 1080p MJPEG, 1 face",
    "live 720p, 4 faces",
    "live 720p, close-up 180 px",
    "cost 720p, large face",
    "cost 1080p MJPEG, 1 face",
)


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory, talking_clip_with_audio: Path, talking_clip: Path
) -> Any:
    out = tmp_path_factory.mktemp("scenarios")
    command = [sys.executable, str(SCRIPT), str(talking_clip_with_audio), "--close-clip", str(talking_clip)]
    command += ["--tiny", "--frames", str(FRAMES), "--out", str(out), "--runs", *NEW_RUNS]
    command += ["--backend", "torch", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "pipeline_scenarios.json").read_text())
    report["_table"] = (out / "pipeline_scenarios.md").read_text()
    report["_png"] = (out / "pipeline_scenarios.png").stat().st_size
    return report


def _row(report: Any, name: str) -> Any:
    rows = {row["name"]: row for row in report["runs"]}
    return rows[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_RUNS)
def test_each_new_scenario_reports_its_counters_and_fields(report: Any, name: str) -> None:
    row = _row(report, name)
    mode = name.split()[0]
    assert row["mode"] == mode and set(row) >= {
        "size",
        "codec",
        "close_up_px",
        "faces_in_clip",
        "targets_met",
    }
    result = row["compact"]
    frames = result["frames"]
    assert frames["in"] == FRAMES and frames["out"] + frames["dropped"] == FRAMES and frames["out"] >= 1
    if mode != "live":
        assert frames["dropped"] == 0 and result["policy"]["changes"] == 0
    assert sum(result["policy"]["frames_at_level"].values()) == frames["out"]
    assert result["face_px"]["median"] > 0  # a face was found and followed
    assert set(result["stages"]) == {"source", "tracker", "engine", "compositor", "sink"}
    assert all(
        {"cpu_ms_per_frame", "own_thread_cpu_ms_per_frame", "cores"} <= set(s)
        for s in result["stages"].values()
    )
    assert result["stages"]["tracker"]["frames"] == frames["out"] or mode == "live"
    split = result["latency_split"]
    assert split["frames"] >= 1 and set(split["wait_before_ms"]) == {
        "tracker",
        "engine",
        "compositor",
        "sink",
    }
    latency, work = split["latency_ms"], split["work_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"] and 0 < work["p50"] <= latency["max"]
    tail = split["tail"]
    assert tail["work_ms"] + tail["queueing_ms"] == pytest.approx(tail["latency_ms"])
    assert 0 <= tail["queueing_share"] <= 1
    if row["target_fps"] is not None:
        assert isinstance(row["targets_met"], bool)


@pytest.mark.slow
def test_the_new_scenarios_are_the_clips_they_say(report: Any) -> None:
    mjpeg = _row(report, "live 1080p MJPEG, 1 face")
    assert mjpeg["codec"] == "mjpeg" and mjpeg["size"] == [1920, 1080]
    assert _row(report, "live 1080p, 1 face")["size"] == [1920, 1080]
    large, small = _row(report, "live 720p, large face"), _row(report, "live 720p, close-up 180 px")
    assert large["close_up_px"] == 560 and small["close_up_px"] == 180 and large["size"] == [1280, 720]
    # The face grows with the close-up's height: about half of it, brows to chin.
    assert large["compact"]["face_px"]["median"] > 2 * small["compact"]["face_px"]["median"] > 60
    four = _row(report, "live 720p, 4 faces")
    assert four["target_dropped"] == 0.25 and four["target_p95_ms"] == 150
    assert max(four["compact"]["faces_per_frame"]) == 4
    decoding = report["mjpeg_decoding"]  # the three ways to RGB, on the MJPEG clip's frames
    assert decoding["size"] == [1920, 1080] and decoding["frames"] == FRAMES
    assert {"ffmpeg_rgb (p2c)", "opencv_bgr_then_rgb (OpenCV's capture)"} <= set(decoding["cpu_ms_per_frame"])
    assert all(len(rounds) == decoding["rounds"] for rounds in decoding["cpu_ms_per_frame_rounds"].values())
    table = report["_table"]
    assert (
        "| live 720p, large face | >= 28 fps, p95 <= 80 ms |" in table and "| 1080p MJPEG, 1 face |" in table
    )
    assert "wait before engine" in table and "Decoding one 1920x1080 MJPEG frame" in table
    assert report["_png"] > 1000


def test_latency_splits_into_work_in_the_stages_and_waiting_between() -> None:
    split = _load("latency_split")
    # Arrived at 0; waited 5 ms, tracked 10; engine 20 (started at 20: waited 5); composited 10
    # right away; written at 50 (waited 5).
    stages = [
        ("tracker", 0.005, 0.015),
        ("engine", 0.020, 0.040),
        ("compositor", 0.040, 0.045),
        ("sink", 0.050, 0.050),
    ]
    timing = split.frame_timing(0.0, stages, 0.050)
    assert timing.latency == pytest.approx(0.050) and timing.work == pytest.approx(0.035)
    assert timing.queueing == pytest.approx(0.015)
    assert timing.waits == pytest.approx(
        {"tracker": 0.005, "engine": 0.005, "compositor": 0.0, "sink": 0.005}
    )
    fast = split.frame_timing(0.0, [("tracker", 0.0, 0.010), ("sink", 0.010, 0.010)], 0.010)
    figures = split.latency_split([fast] * 19 + [timing])
    assert figures["frames"] == 20 and figures["latency_ms"]["max"] == pytest.approx(50.0)
    tail = figures["tail"]  # the slow frame is the tail: 15 of its 50 ms were queueing
    assert tail["frames"] == 1 and tail["queueing_ms"] == pytest.approx(15.0)
    assert tail["queueing_share"] == pytest.approx(0.3)
    assert figures["wait_before_ms"]["engine"]["mean"] == pytest.approx(5.0 / 20)
    assert split.latency_split([])["latency_ms"] == {"p50": 0.0, "p95": 0.0, "max": 0.0}


def test_a_close_up_is_centred_at_its_height_with_its_edges_drawn_out() -> None:
    clips = _load("scenario_clips")
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = (0, 200, 0)  # a green left half, a black right half
    scenario = clips.Scenario("t", 160, 90, close_up=60)
    frame = clips.scenario_image(image, scenario)
    assert frame.shape == (90, 160, 3)
    assert (frame[45, :40] == (0, 200, 0)).all() and (frame[45, -40:] == 0).all()  # edges drawn out
    assert (frame[15:75, 50:78] == (0, 200, 0)).all() and (
        frame[15:75, 82:110] == 0
    ).all()  # 60 px high, centred


def test_an_mjpeg_scenario_clip_is_an_avi_of_jpeg_frames_a_source_reads(tmp_path: Path) -> None:
    import av

    from p2c.stream.sources import VideoFileSource

    clips = _load("scenario_clips")
    source = tmp_path / "source.mp4"
    with av.open(str(source), mode="w") as target:
        video = target.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for index in range(3):
            image = np.full((48, 64, 3), 40 * index, np.uint8)
            target.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        target.mux(video.encode())
    scenario = clips.Scenario("t", 96, 64, codec="mjpeg")
    path = clips.write_scenario_clip(source, scenario, 5, tmp_path / f"clip{scenario.suffix}")
    assert path.suffix == ".avi"
    with VideoFileSource(path) as clip:
        frames = list(clip)
        assert clip.info.codec == "mjpeg" and clip.info.fps == pytest.approx(30.0)
    assert len(frames) == 5 and frames[0].image.shape == (64, 96, 3)
    # Forth and back: 0, 1, 2, 1, 0 (grey levels 0, 40, 80 through JPEG).
    levels = [int(frame.image.mean()) for frame in frames]
    assert levels == pytest.approx([0, 40, 80, 40, 0], abs=4)


def test_the_four_face_target_counts_dropped_frames() -> None:
    scenarios = _load("pipeline_scenarios")
    run = scenarios.Run(
        "live", scenarios.SCENARIOS[1], target_fps=15.0, target_p95_ms=150.0, target_dropped=0.25
    )
    result = {
        "fps": 16.0,
        "latency_ms": {"p95": 120.0},
        "latency_ms_steady": None,
        "frames": {"in": 100, "dropped": 25},
    }
    assert scenarios._targets_met(run, result) is True
    assert scenarios._targets_met(run, {**result, "frames": {"in": 100, "dropped": 26}}) is False
    assert scenarios._targets_met(scenarios.Run("cost", scenarios.SCENARIOS[0]), result) is None
