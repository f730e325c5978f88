"""Faults injected into p2c-video and p2c-stream: each ends in one line, the right exit code, and
no lost output (what was recorded plays, with its sound).

Stop signals at random moments run as subprocesses; ``P2C_STOP_MOMENTS`` (default 2) sets how many
moments per command and signal (``P2C_STOP_MOMENTS=25`` for the long run of docs/robustness.md).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from p2c.stream.commands import live, video
from p2c.stream.sinks import output_file

STOP_MOMENTS = int(os.environ.get("P2C_STOP_MOMENTS", "2"))


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch, invert_engine) -> None:
    monkeypatch.setattr(video, "open_engine", lambda _args, live=False: invert_engine())
    monkeypatch.setattr(live, "open_engine", lambda _args, live=False: invert_engine())


def _decode(path: Path) -> tuple[int, float]:
    """Every video frame of ``path`` (raising on any damage) and the seconds of audio it holds."""
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, 0.0
        stream = container.streams.audio[0]
        audio = sum(packet.duration or 0 for packet in container.demux(stream)) * stream.time_base
    return frames, float(audio)


def _decodable_prefix(path: Path) -> tuple[int, int]:
    """Frames a player shows before any damage at the end, and audio packets: for killed runs."""
    frames = audio = 0
    with av.open(str(path)) as container:
        try:
            for packet in container.demux():
                if packet.stream.type == "audio" and packet.size:
                    audio += 1
                elif packet.stream.type == "video":
                    frames += len(packet.decode())
        except av.error.FFmpegError:
            pass
    return frames, audio


def _last_line(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- stop signals at random moments ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_with_sound(tmp_path_factory: pytest.TempPathFactory, clip_writer) -> Path:
    """10 s at 25 fps, 96x64, with a sine AAC track: faceless, so runs are quick and only files count."""

    ys, xs = np.mgrid[0:64, 0:96]
    frames = [
        np.stack([(xs * 3 + i * 5) % 256, (ys * 4) % 256, np.full_like(xs, 90)], axis=-1).astype(np.uint8)
        for i in range(250)
    ]
    return clip_writer(tmp_path_factory.mktemp("clip") / "sound.mp4", frames, fps=25, audio=True)


def _command(kind: str, clip: Path, out: Path, weights: Path) -> list[str]:
    """The console script's own entry point (``p2c.cli.p2c_video``), as ``pip install`` makes it."""
    entry = kind.replace("-", "_")
    script = f"import sys; from p2c.cli import {entry}; sys.argv[0] = {kind!r}; sys.exit({entry}())"
    if kind == "p2c-video":
        return [sys.executable, "-c", script, str(clip), str(out), "--weights", str(weights)]
    return [
        sys.executable,
        "-c",
        script,
        "--camera",
        str(clip),
        "--output",
        str(out),
        "--weights",
        str(weights),
    ]


def _stop_at_a_random_moment(command: list[str], out: Path, signum: int, rng: np.random.Generator) -> tuple:
    """Start ``command``; send ``signum`` while it starts up or while it records (half each).

    Not in the first 0.7 s: there the Python interpreter itself starts, before any p2c code runs
    (a signal then ends it with Python's own traceback or none, before any file exists)."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.7, 4.0))
    else:
        deadline = time.monotonic() + 120
        while not out.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 3.0))
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["p2c-video", "p2c-stream"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_at_any_moment_leaves_a_playable_file_with_its_sound(
    kind: str, signum: int, clip_with_sound: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(int(signum) * 100 + len(kind))
    for moment in range(STOP_MOMENTS):
        out = tmp_path / f"out{moment}.mp4"
        code, err = _stop_at_a_random_moment(
            _command(kind, clip_with_sound, out, tiny_weights), out, signum, rng
        )
        assert "Traceback" not in err, err
        if code == 0:  # it finished before the signal came
            assert _last_line(err).startswith(f"{kind}: "), err
        else:
            word = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
            assert code == 128 + signum and _last_line(err) == f"{kind}: {word}", (code, err)
        if not out.exists():
            continue  # stopped before its first frame was written: it leaves no file
        frames, sound = _decode(out)  # decodes to its end: the file was finished
        assert frames >= 1
        if kind == "p2c-video":  # the sound of every frame kept (a camera records no sound)
            # In sync within 3 frames and one AAC frame: a SIGTERM once left 0.1003 s more sound
            # than video (32 frames, 2026-12-02); whether x264's last frames go unflushed is open.
            assert abs(sound - frames / 25) < 3 / 25 + 1024 / 44100, (frames, sound)


@pytest.mark.slow
def test_a_killed_recording_still_plays_with_its_sound(
    clip_with_sound: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed.mp4"
    process = subprocess.Popen(
        _command("p2c-video", clip_with_sound, out, tiny_weights),
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while (not out.exists() or out.stat().st_size < 20_000) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("p2c-video ended before it could be killed")
        time.sleep(0.01)
    process.kill()  # SIGKILL: no handler runs, nothing is flushed
    process.wait(timeout=30)
    frames, audio_packets = _decodable_prefix(out)
    assert frames >= 25 and audio_packets >= 20, (frames, audio_packets)


# -- the disk fills, the folder goes ----------------------------------------------------------------


class _DiskThatFills(io.FileIO):
    """A file on a disk with ``room`` bytes left: past that, writes fail with ENOSPC."""

    room = 1_000_000

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


@pytest.fixture
def disk_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output_file, "_open_for_writing", lambda path: _DiskThatFills(path, "w+b"))


def _noisy_clip(make_clip) -> Path:
    """Frames that compress badly (noise), so a recording grows fast."""
    return make_clip(count=150, width=160, height=120)


@pytest.mark.parametrize("kind", ["p2c-video", "p2c-stream"])
def test_a_full_disk_stops_the_recording_in_one_line_and_keeps_what_was_written(
    kind: str, clip_writer, tmp_path: Path, tiny_weights: Path, fake_engines, disk_fills, capsys
) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(150)]
    clip = clip_writer(tmp_path / "noise.mp4", frames, fps=25, audio=True)
    out = tmp_path / "rec.mp4"
    if kind == "p2c-video":
        code = video.main([str(clip), str(out), "--weights", str(tiny_weights)])
    else:
        code = live.main(["--camera", str(clip), "--output", str(out), "--weights", str(tiny_weights)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = _last_line(err)
    assert line.startswith(f"{kind}: error: the disk holding {out} is full: recording stopped after"), line
    written = int(line.split("recording stopped after ")[1].split(" frames")[0])
    kept, _ = _decode(out)  # the torn last fragment was cut: it decodes to its end
    assert 1 <= kept <= written < 150


def test_removing_the_output_folder_while_recording_saves_the_recording(
    talking_clip: Path, tmp_path: Path, tiny_weights: Path, fake_engines, capsys
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    out = folder / "rec.mp4"

    def remove_folder_once_recording() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 2000):
            time.sleep(0.01)
        shutil.rmtree(folder)

    remover = threading.Thread(target=remove_folder_once_recording)
    remover.start()
    code = live.main(["--camera", str(talking_clip), "--output", str(out), "--weights", str(tiny_weights)])
    remover.join()
    err = capsys.readouterr().err
    line = _last_line(err)
    assert code == 2 and "Traceback" not in err
    assert line.startswith(f"p2c-stream: error: the output folder {folder} was removed while recording"), line
    saved = tmp_path / "rec.mp4"
    assert line.endswith(f"frames recorded were saved to {saved}")
    recorded = int(line.split("; the ")[1].split(" frames")[0])
    frames, _ = _decode(saved)
    assert frames == recorded >= 1


# -- damaged inputs -------------------------------------------------------------------------------


def test_a_frame_that_fails_to_decode_mid_file_is_skipped_and_reported(
    make_clip, tmp_path: Path, tiny_weights: Path, fake_engines, capsys
) -> None:
    clip = make_clip(count=40, width=96, height=64)
    damaged = tmp_path / "damaged.mkv"
    with av.open(str(clip)) as source, av.open(str(damaged), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for index, packet in enumerate(source.demux(video=0)):
            if packet.dts is None:
                continue
            if index == 20:  # garbage in place of one frame's data, mid-file
                garbage = av.Packet(
                    bytes(np.random.default_rng(0).integers(0, 256, packet.size, dtype=np.uint8))
                )
                garbage.pts, garbage.dts, garbage.time_base = packet.pts, packet.dts, packet.time_base
                packet = garbage
            packet.stream = stream
            target.mux(packet)
    out = tmp_path / "out.mp4"
    assert video.main([str(damaged), str(out), "--weights", str(tiny_weights)]) == 0
    line = _last_line(capsys.readouterr().err)
    frames, _ = _decode(out)
    assert line.startswith(f"p2c-video: wrote {out}: {frames} frames")
    damaged_count = int(line.split(", ")[3].split(" damaged")[0])
    assert damaged_count >= 1 and frames + damaged_count >= 39, line  # every decodable frame kept


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> dict[str, Path]:
    """The tiny generator as safetensors (+ JSON), a photo2cartoon-style .pt and an ONNX export."""
    import torch

    from p2c.models.onnx import export_onnx
    from p2c.models.weights import load_generator

    folder = tmp_path_factory.mktemp("weights")
    generator = load_generator(tiny_weights)
    torch.save({"genA2B": generator.state_dict()}, folder / "tiny.pt")
    export_onnx(generator, folder / "tiny.onnx")
    shutil.copy(tiny_weights, folder / "tiny.safetensors")
    shutil.copy(tiny_weights.with_suffix(".json"), folder / "tiny.json")
    return {suffix: folder / f"tiny{suffix}" for suffix in (".safetensors", ".pt", ".onnx")}


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".onnx"])
@pytest.mark.parametrize("kind", ["p2c-video", "p2c-stream"])
def test_a_truncated_weights_file_is_one_line(
    suffix: str, kind: str, weights_files: dict[str, Path], make_clip, tmp_path: Path, capsys
) -> None:
    whole = weights_files[suffix]
    cut = tmp_path / whole.name
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    if suffix == ".safetensors":
        shutil.copy(whole.with_suffix(".json"), cut.with_suffix(".json"))
    clip = make_clip(count=4)
    out = tmp_path / "out.mp4"
    if kind == "p2c-video":
        code = video.main([str(clip), str(out), "--weights", str(cut)])
    else:
        code = live.main(["--camera", str(clip), "--output", str(out), "--weights", str(cut)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"{kind}: error: ") and str(cut) in err
    assert not out.exists()
