"""p2c-batch end to end on a local Ray with two workers: real clips, generated stills, a corrupt file,
a rerun, a worker killed mid-file, Ctrl-C, and an address where no cluster answers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from p2c.batch.summary import SUMMARY_NAME

pytestmark = pytest.mark.slow

# Every clip is cut to this long (a p2c-video option every worker applies).
SECONDS = "1"


@pytest.fixture(scope="module")
def media_tree(
    tmp_path_factory: pytest.TempPathFactory,
    talking_clip: Path,
    talking_clip_with_audio: Path,
    astronaut: np.ndarray,
    still_writer,
) -> Path:
    root = tmp_path_factory.mktemp("batch") / "in"
    (root / "clips/nested").mkdir(parents=True)
    shutil.copy(talking_clip, root / "clips/talk.mp4")  # 512x512, 25 fps, no audio
    shutil.copy(talking_clip_with_audio, root / "clips/nested/talk_audio.mp4")  # 1280x720, 30 fps, AAC
    still_writer(root / "stills/astronaut.png", astronaut)
    still_writer(root / "stills/small/astronaut_small.jpg", np.ascontiguousarray(astronaut[::2, ::2]))
    (root / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(6000))  # corrupt: not a video
    (root / "notes.txt").write_text("not media: ignored\n")
    return root


@pytest.fixture(scope="module")
def first_run(media_tree: Path, run_batch_command) -> tuple[subprocess.CompletedProcess, Path]:
    out = media_tree.parent / "out"
    return run_batch_command(media_tree, out, "--workers", "2", "--duration", SECONDS), out


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / SUMMARY_NAME).read_text())


def _files(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(record["source"]).name: record for record in summary["files"]}


def test_two_workers_convert_a_folder_with_a_corrupt_file(
    first_run, media_tree: Path, facts_of_video, screen_lines, temporary_files
) -> None:
    result, out = first_run
    assert result.returncode == 1, result.stderr[-3000:]  # one file failed
    screen = screen_lines(result.stderr)
    failures = [line for line in screen if line.startswith("p2c-batch: failed:")]
    assert len(failures) == 1 and str(media_tree / "broken.mp4") in failures[0], failures
    assert "Traceback" not in result.stderr
    assert screen[-1].startswith("p2c-batch: 4 converted, 0 skipped (already done), 1 failed;"), screen[-1]

    assert facts_of_video(out / "clips/talk.mp4") == (512, 512, 25, False)
    assert facts_of_video(out / "clips/nested/talk_audio.mp4") == (1280, 720, 30, True)  # audio kept
    import cv2

    assert cv2.imread(str(out / "stills/astronaut.png")).shape == (512, 512, 3)
    assert cv2.imread(str(out / "stills/small/astronaut_small.jpg")).shape == (256, 256, 3)
    assert not (out / "broken.mp4").exists() and not (out / "notes.txt").exists()
    assert temporary_files(out) == []

    summary = _summary(out)
    files = _files(summary)
    assert summary["counts"] == {"done": 4, "skipped": 0, "failed": 1, "interrupted": 0, "not started": 0}
    assert (files["talk.mp4"]["frames"], files["talk_audio.mp4"]["frames"]) == (25, 30)
    assert files["talk.mp4"]["faces"] == 25 and files["astronaut.png"]["faces"] == 1
    assert "cannot read" in files["broken.mp4"]["error"]
    # Both workers worked, each on the one engine it created.
    assert len({record["worker"] for record in summary["files"] if record["status"] == "done"}) == 2
    assert [worker["engine_loads"] for worker in summary["workers"]] == [1, 1]


def test_a_rerun_skips_everything_finished(
    first_run, media_tree: Path, run_batch_command, screen_lines
) -> None:
    _, out = first_run
    stamps = {path: path.stat().st_mtime_ns for path in out.rglob("*.mp4")}
    (media_tree / "broken.mp4").unlink()  # the user removed the bad file
    result = run_batch_command(media_tree, out, "--workers", "2", "--duration", SECONDS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert screen_lines(result.stderr)[-1].startswith(
        "p2c-batch: 0 converted, 4 skipped (already done), 0 failed"
    )
    summary = _summary(out)
    assert summary["counts"]["skipped"] == 4 and summary["workers"] == []  # no worker was even started
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.mp4")} == stamps


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _converting_workers(pid: int) -> list[int]:
    """The command's Ray worker processes busy converting a file (Ray titles them by method)."""
    busy = []
    for child in _descendants(pid):
        try:
            title = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::BatchWorker.convert"):
            busy.append(child)
    return busy


def _clips(root: Path, clip: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for index in range(count):
        shutil.copy(clip, root / f"clip{index}.mp4")
    return root


def _start(batch_command, source: Path, out: Path, *options: str) -> subprocess.Popen:
    argv, env = batch_command(source, out, *options)
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _wait_for_conversion(process: subprocess.Popen, busy_for_s: float = 1.0, timeout_s: float = 240) -> int:
    """The pid of a worker that has been converting a file for ``busy_for_s``."""
    deadline, first_seen = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline and process.poll() is None:
        busy = _converting_workers(process.pid)
        if busy and first_seen is None:
            first_seen = time.monotonic()
        if busy and first_seen is not None and time.monotonic() - first_seen >= busy_for_s:
            return busy[0]
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"no worker started converting: {process.communicate()[1][-3000:]}")


def test_a_worker_killed_mid_file_has_its_file_retried(
    tmp_path: Path, talking_clip: Path, batch_command, facts_of_video, screen_lines, temporary_files
) -> None:
    source, out = _clips(tmp_path / "in", talking_clip, 2), tmp_path / "out"
    process = _start(batch_command, source, out, "--workers", "2", "--duration", "2")
    victim = _wait_for_conversion(process)
    os.kill(victim, signal.SIGKILL)  # the worker's process dies (as when the OOM killer strikes)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    died = [line for line in screen_lines(stderr) if "died while converting" in line]
    assert len(died) == 1 and f":{victim} died" in died[0] and "attempt 2 of 3" in died[0], died
    files = _files(_summary(out))
    retried = [record for record in files.values() if record["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["status"] == "done"
    assert not retried[0]["worker"].endswith(f":{victim}")
    for index in range(2):
        assert facts_of_video(out / f"clip{index}.mp4") == (512, 512, 50, False)
    assert temporary_files(out) == []


def test_ctrl_c_stops_cleanly_leaving_only_complete_outputs(
    tmp_path: Path, talking_clip: Path, batch_command, facts_of_video, screen_lines, temporary_files
) -> None:
    source, out = _clips(tmp_path / "in", talking_clip, 2), tmp_path / "out"
    process = _start(batch_command, source, out, "--workers", "1", "--duration", "1.6")
    _wait_for_conversion(process)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    summary = _summary(out)
    assert summary["interrupted"] and summary["counts"]["done"] < 2
    assert temporary_files(out) == []
    for record in summary["files"]:  # an output exists only when it is complete
        target = Path(record["target"])
        assert target.exists() == (record["status"] == "done")
        if target.exists():
            assert facts_of_video(target) == (512, 512, 40, False)
    assert "interrupted" in screen_lines(stderr)[-1]


def test_an_unknown_address_is_one_clear_line(tmp_path: Path, talking_clip: Path, run_batch_command) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = _clips(tmp_path / "in", talking_clip, 1)
    result = run_batch_command(source, tmp_path / "out", "--address", f"127.0.0.1:{port}", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"p2c-batch: error: no Ray cluster answers at 127.0.0.1:{port} (connection refused); start one with "
        "`ray start --head` on the head machine, or fix --address (or RAY_ADDRESS); without either, "
        "p2c-batch runs a local Ray"
    ]
    assert not (tmp_path / "out").exists()
