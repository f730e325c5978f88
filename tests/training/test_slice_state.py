"""Time-sliced training: --time-limit, the compact slice state (<= 60 MB), --resume-from."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from p2c.errors import InvalidInputError, OutputError
from p2c.training.checkpoint import capture_rng, latest_checkpoint, read_checkpoint
from p2c.training.commands.train import main as train_main
from p2c.training.config import TrainConfig
from p2c.training.gan import DISCRIMINATOR_KEYS, GENERATOR_KEYS, CartoonGan
from p2c.training.slice_state import (
    SLICE_LIMIT_BYTES,
    dequantize_int8,
    quantize_int8,
    read_slice_state,
    write_slice_state,
)
from p2c.training.trainer import Trainer, learning_rate

TINY = ["--img-size", "96", "--ch", "8", "--batch-size", "1", "--num-workers", "0", "--faceid-weight", "0"]


def _payload(gan: CartoonGan, step: int, ch: int, img_size: int) -> dict:
    return {
        "step": step,
        "config": {"ch": ch, "img_size": img_size, "light": True},
        "world_size": 1,
        "rng": [capture_rng()],
        **gan.network_state_dicts(),
    }


def _assert_state_matches(gan_state: dict, saved: dict, keys: tuple[str, ...], atol: float) -> None:
    for key in keys:
        for name, tensor in saved[key].items():
            assert torch.allclose(gan_state[key][name].float(), tensor.float(), atol=atol, rtol=0), (
                f"{key}.{name} differs"
            )


@pytest.mark.parametrize(("generators", "max_bytes"), [("fp32", SLICE_LIMIT_BYTES), ("fp16", 45_000_000)])
def test_full_size_slice_state_fits_its_limit(generators: str, max_bytes: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    gan = CartoonGan(ch=32, img_size=256)  # photo2cartoon's size: 2 x 3.83 M + 28.3 M parameters
    path = tmp_path / "slice.pt"
    size = write_slice_state(path, _payload(gan, 1234, 32, 256), generators=generators)
    assert size == path.stat().st_size <= max_bytes <= SLICE_LIMIT_BYTES == 60_000_000
    state = read_slice_state(path)
    assert state["step"] == 1234
    original = gan.network_state_dicts()
    if generators == "fp32":
        _assert_state_matches(original, state, GENERATOR_KEYS, atol=0.0)
    else:
        for key in GENERATOR_KEYS:
            for name, tensor in original[key].items():
                assert torch.equal(state[key][name], tensor.half().float()), f"{key}.{name}"
    for key in DISCRIMINATOR_KEYS:  # int8 per output channel: within one quantisation step
        for name, tensor in original[key].items():
            bound = (
                tensor.abs().max().item() / 127.0 if tensor.dim() >= 2 else 1e-3 * (1 + tensor.abs().max())
            )
            assert (state[key][name] - tensor).abs().max().item() <= bound, f"{key}.{name}"


def test_int8_round_trip_is_within_half_a_step_per_channel() -> None:
    weight = torch.randn(6, 3, 4, 4) * torch.arange(1, 7).float()[:, None, None, None]
    restored = dequantize_int8(quantize_int8(weight))
    step = weight.abs().flatten(1).amax(dim=1) / 127.0
    assert ((restored - weight).abs().flatten(1).amax(dim=1) <= step / 2 + 1e-7).all()


def test_a_state_over_the_limit_is_refused_and_not_written(tmp_path: Path) -> None:
    gan = CartoonGan(ch=8, img_size=96)
    path = tmp_path / "slice.pt"
    with pytest.raises(OutputError, match="over its 0 MB limit"):
        write_slice_state(path, _payload(gan, 1, 8, 96), limit=1000)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_time_limited_slice_writes_a_state_and_a_resumed_run_continues(
    train_data: Path, tmp_path: Path
) -> None:
    state_path = tmp_path / "state" / "slice.pt"
    first = ["--data", str(train_data), "--out", str(tmp_path / "slice1"), "--iterations", "6", *TINY]
    # A limit far below one step's time: the slice stops after its first step, with a checkpoint.
    assert train_main([*first, "--time-limit", "0.0001", "--slice-state", str(state_path)]) == 0
    checkpoint = latest_checkpoint(tmp_path / "slice1" / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "ckpt_00000001.pt"
    assert 0 < state_path.stat().st_size <= SLICE_LIMIT_BYTES
    saved = read_slice_state(state_path)
    assert saved["step"] == 1

    # On "another machine": a fresh run folder; the networks start as the slice left them.
    second = ["--data", str(train_data), "--out", str(tmp_path / "slice2"), "--iterations", "6", *TINY]
    argv = [*second, "--resume-from", str(state_path), "--warmup-steps", "4", "--log-every", "1"]
    config = _config_from(argv)
    trainer = Trainer(config)
    result = trainer.run(stop_after=1)  # nothing to train: only the start state is loaded
    trainer.close()
    assert result.step == 1
    _assert_state_matches(trainer.gan.network_state_dicts(), saved, GENERATOR_KEYS, atol=0.0)
    _assert_state_matches(trainer.gan.network_state_dicts(), saved, DISCRIMINATOR_KEYS, atol=0.0)

    assert train_main([*argv, "--slice-state", str(state_path)]) == 0
    final = read_checkpoint(tmp_path / "slice2" / "checkpoints" / "ckpt_00000006.pt")
    assert final["step"] == 6 and final["warmup_start"] == 1
    assert read_slice_state(state_path)["step"] == 6
    with (tmp_path / "slice2" / "metrics.csv").open() as stream:
        rates = {int(row["step"]): float(row["lr"]) for row in csv.DictReader(stream)}
    assert sorted(rates) == [2, 3, 4, 5, 6]  # it continued from step 1
    assert rates[2] == pytest.approx(0.25 * learning_rate(config, 2), rel=1e-4)  # Adam restarted: warm-up
    assert rates[5] == pytest.approx(learning_rate(config, 5), rel=1e-4)


@pytest.mark.slow
def test_resume_from_a_state_of_other_networks_says_so(train_data: Path, tmp_path: Path) -> None:
    gan = CartoonGan(ch=12, img_size=96)
    state = tmp_path / "slice.pt"
    write_slice_state(state, _payload(gan, 3, 12, 96))
    argv = ["--data", str(train_data), "--out", str(tmp_path / "run"), "--iterations", "4", *TINY]
    with pytest.raises(InvalidInputError, match="different ch"):
        Trainer(_config_from([*argv, "--resume-from", str(state)])).run()


def _config_from(argv: list[str]) -> TrainConfig:
    from p2c.training.commands.train import build_parser, config_from_args

    return config_from_args(build_parser().parse_args(argv))


def test_checkpoint_converts_to_a_slice_state_with_p2c_export(tmp_path: Path, capsys) -> None:
    from p2c.engine.export import main as export_main

    gan = CartoonGan(ch=8, img_size=96)
    checkpoint = tmp_path / "ckpt_00000007.pt"
    payload = _payload(gan, 7, 8, 96)
    torch.save({**payload, "optimizers": {"G": {}, "D": {}}}, checkpoint)
    out = tmp_path / "slice.pt"
    argv = [str(checkpoint), str(out), "--format", "slice-state", "--precision", "fp16"]
    assert export_main(argv) == 0
    state = read_slice_state(out)
    assert state["step"] == 7 and "(slice-state, fp16," in capsys.readouterr().out
    reference = gan.genA2B.state_dict()
    assert all(torch.equal(state["genA2B"][k], v.half().float()) for k, v in reference.items())
    # The old p2c-train flag says where the command went, in one line.
    assert train_main(["--to-slice-state", str(checkpoint), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "p2c-export CHECKPOINT OUT --format slice-state" in err
