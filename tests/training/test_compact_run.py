"""The compact recipe's run: exact resume, the portable FP16 state, signals, the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from p2c.errors import InvalidInputError
from p2c.models.compact import CompactConfig
from p2c.training.compact_run import CompactRunConfig, train_compact
from p2c.training.compact_state import (
    CANDIDATE,
    FULL_STATE,
    PORTABLE_JSON,
    PORTABLE_NETWORKS,
    load_portable_networks,
)
from p2c.training.onesided import NETWORK_NAMES, OneSidedConfig, OneSidedNetworks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crops(smooth_crops: Callable[[int, int], Path]) -> Path:
    """Eight smooth random 64x64 'photos' and 'cartoons' (PNG), enough for a few steps."""
    return smooth_crops(64, 8)


def tiny(data: Path, out: Path, **changes: object) -> CompactRunConfig:
    objective = OneSidedConfig(
        generator=CompactConfig(img_size=64, widths=(4, 8, 8), blocks=2, expand=2),
        disc_width=4,
        nce_patches=16,
    )
    config = CompactRunConfig(
        data_dir=str(data),
        out_dir=str(out),
        objective=objective,
        batch_size=2,
        img_size=64,
        identity_steps=2,
        threads=1,
        processes=1,
        size_schedule="",
        log_every=1,
        sample_minutes=1e6,
        max_steps=6,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def networks(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(out / FULL_STATE, map_location="cpu", weights_only=True)["networks"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_resumed_run_continues_the_same_run_exactly(crops: Path, tmp_path: Path, precision: str) -> None:
    straight = train_compact(tiny(crops, tmp_path / "straight", precision=precision))
    train_compact(tiny(crops, tmp_path / "resumed", precision=precision, max_steps=4))
    resumed = train_compact(tiny(crops, tmp_path / "resumed", precision=precision))
    assert (straight.step, straight.samples) == (resumed.step, resumed.samples) == (6, 12)
    a, b = networks(tmp_path / "straight"), networks(tmp_path / "resumed")
    for name in NETWORK_NAMES:
        for key, value in a[name].items():
            assert torch.equal(value, b[name][key]), f"{name}.{key} differs after resuming"
    rows = (tmp_path / "resumed" / "metrics.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]


def test_a_run_that_does_not_resume_differs(crops: Path, tmp_path: Path) -> None:
    """The check above can fail: another seed gives other weights."""
    train_compact(tiny(crops, tmp_path / "a"))
    train_compact(tiny(crops, tmp_path / "b", seed=1))
    a, b = networks(tmp_path / "a"), networks(tmp_path / "b")
    assert not torch.equal(a["generator"]["dec0.weight"], b["generator"]["dec0.weight"])


def test_the_run_folder_holds_a_generator_that_weights_takes(crops: Path, tmp_path: Path) -> None:
    from p2c.models.weights import load_generator
    from p2c.training.compact_run import EXPORTED

    train_compact(tiny(crops, tmp_path / "run"))
    generator = load_generator(tmp_path / "run" / EXPORTED)
    ema = networks(tmp_path / "run")["generator_ema"]
    assert torch.allclose(generator.state_dict()["dec0.weight"], ema["dec0.weight"], atol=1e-3)


def test_the_portable_state_is_fp16_and_small_and_a_new_machine_continues_from_it(
    crops: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    train_compact(tiny(crops, tmp_path / "first", state_dir=str(state)))
    tensors = __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        str(state / PORTABLE_NETWORKS)
    )
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
    assert {k.split(".", 1)[0] for k in tensors} == set(NETWORK_NAMES) - {"disc_extra"}  # none here
    summary = json.loads((state / PORTABLE_JSON).read_text())
    assert (summary["step"], summary["samples"]) == (6, 12)
    assert summary["cpu_hours"] > 0 and len(summary["sessions"]) == 1
    assert "optimizers" not in summary and not any("exp_avg" in k for k in tensors)

    from p2c.models.weights import load_generator

    candidate = load_generator(state / CANDIDATE)
    assert type(candidate).__name__ == "CompactGenerator"

    # A new machine: no full state in its run folder, only the portable one.
    result = train_compact(
        tiny(crops, tmp_path / "second", init_from=str(state), state_dir=str(state), max_steps=9)
    )
    assert (result.step, result.samples) == (9, 18)
    summary = json.loads((state / PORTABLE_JSON).read_text())
    assert summary["step"] == 9
    assert [s["how"] for s in summary["sessions"]] == ["started", "continued"]


def test_a_run_continues_a_narrower_portable_state_in_wider_channels(crops: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    narrow_config = tiny(crops, tmp_path / "narrow", state_dir=str(state), max_steps=4)
    train_compact(narrow_config)
    narrow = OneSidedNetworks(narrow_config.objective)
    load_portable_networks(state, narrow)
    objective = narrow_config.objective
    wider = replace(objective, generator=replace(objective.generator, widths=(4, 8, 12)))
    wide_config = tiny(crops, tmp_path / "wide", objective=wider, init_from=str(state))
    wide = OneSidedNetworks(wide_config.objective)
    assert load_portable_networks(state, wide).step == 4
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for name in ("generator", "generator_ema"):  # the same cartoon before it trains on
            torch.testing.assert_close(getattr(wide, name)(photo)[0], getattr(narrow, name)(photo)[0])
    assert train_compact(wide_config).step == 6
    # A state of other depth is not a narrower one: one clear error, as before.
    deeper = replace(objective, generator=replace(objective.generator, blocks=3))
    with pytest.raises(InvalidInputError, match="does not fit"):
        load_portable_networks(state, OneSidedNetworks(deeper))


def test_the_full_state_is_rewritten_while_training(crops: Path, tmp_path: Path) -> None:
    train_compact(tiny(crops, tmp_path / "run", max_steps=3, save_minutes=1e-6))
    assert torch.load(tmp_path / "run" / FULL_STATE, weights_only=True)["progress"]["step"] == 3
    assert not list((tmp_path / "run").glob(".*tmp*")), "a temporary file was left behind"


def test_sigterm_ends_the_step_and_writes_the_state(crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "p2c.training.commands.train_compact", "--data", str(crops), "--out", str(out),
        "--img-size", "64", "--widths", "4,8,8", "--blocks", "1", "--disc-width", "4", "--batch-size", "1",
        "--threads", "2", "--processes", "2", "--size-schedule", "", "--log-every", "1", "--no-progress",
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    deadline = time.monotonic() + 120
    while not (out / "metrics.csv").is_file() or len((out / "metrics.csv").read_text().splitlines()) < 4:
        assert time.monotonic() < deadline and process.poll() is None, "training did not start"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "stopped (SIGTERM)" in err
    step = torch.load(out / FULL_STATE, weights_only=True)["progress"]["step"]
    assert step >= 3
    assert json.loads((tmp_path / "state" / PORTABLE_JSON).read_text())["step"] == step


def test_missing_data_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "p2c.training.commands.train_compact", "--data", str(tmp_path / "nope"),
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "p2c-prepare-data" in result.stderr


def test_two_processes_average_their_gradients_and_resume_exactly(crops: Path, tmp_path: Path) -> None:
    config = tiny(crops, tmp_path / "straight", processes=2, threads=2)
    straight = train_compact(config)
    assert (straight.step, straight.samples) == (6, 24)  # two ranks of batch 2
    train_compact(tiny(crops, tmp_path / "resumed", processes=2, threads=2, max_steps=4))
    train_compact(tiny(crops, tmp_path / "resumed", processes=2, threads=2))
    a, b = networks(tmp_path / "straight"), networks(tmp_path / "resumed")
    for name in NETWORK_NAMES:
        for key, value in a[name].items():
            assert torch.equal(value, b[name][key]), f"{name}.{key} differs after resuming"
    solo = tiny(crops, tmp_path / "solo")
    train_compact(solo)
    assert not torch.equal(
        a["generator"]["dec0.weight"], networks(tmp_path / "solo")["generator"]["dec0.weight"]
    )


def test_the_size_schedule_trains_small_first_then_at_the_full_size() -> None:
    """``128:20000`` (the default): 128 px crops for 20,000 steps, then 256 px, not 128 px forever
    (a run resumed past step 20,000 kept training at 128 px)."""
    config = CompactRunConfig(Path("data"), Path("out"), img_size=256, size_schedule="128:20000")
    assert [config.size(step) for step in (1, 20000, 20001, 40000)] == [128, 128, 256, 256]
    assert CompactRunConfig(Path("data"), Path("out"), img_size=256, size_schedule="").size(1) == 256


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(tmp_path: Path) -> None:
    from p2c.training.compact_run import cpu_has_native_bf16

    avx2 = tmp_path / "avx2"
    avx2.write_text("flags\t\t: fpu sse2 avx avx2 fma\n")
    native = tmp_path / "native"
    native.write_text("flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16\n")
    assert not cpu_has_native_bf16(avx2)
    assert cpu_has_native_bf16(native)
    assert not cpu_has_native_bf16(tmp_path / "missing")
