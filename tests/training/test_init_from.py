"""Continuing from the generators alone: the generator state, --init-from and the D-only warm-up."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.training.checkpoint import latest_checkpoint, read_checkpoint
from p2c.training.commands.train import build_parser, config_from_args
from p2c.training.commands.train import main as train_main
from p2c.training.config import LossWeights, TrainConfig
from p2c.training.gan import DISCRIMINATOR_KEYS, GENERATOR_KEYS, CartoonGan
from p2c.training.generator_state import STATE_FORMAT, read_generator_state, write_generator_state
from p2c.training.step import GanStep, StepOptions, build_networks
from p2c.training.trainer import Trainer, learning_rate

TINY = ["--img-size", "96", "--ch", "8", "--batch-size", "1", "--num-workers", "0", "--faceid-weight", "0"]
CONFIG = TrainConfig(data_dir="d", out_dir="o", img_size=96, ch=8, weights=LossWeights(faceid=0.0))


def _snapshot(gan: CartoonGan, keys: tuple[str, ...]) -> dict[str, dict[str, torch.Tensor]]:
    return {key: {n: t.detach().clone() for n, t in gan.network(key).state_dict().items()} for key in keys}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[name].float(), b[name].float()) for name in a)


def test_the_d_only_step_moves_the_discriminators_and_never_the_generators() -> None:
    torch.manual_seed(0)
    options = StepOptions(share_translations=True, freeze_discriminators=True, fused_optimizer=True)
    gan, optimizers = build_networks(CONFIG, torch.device("cpu"), options, None)
    step = GanStep(gan, None, CONFIG.weights, optimizers, None, torch.device("cpu"), options)
    generators, discriminators = _snapshot(gan, GENERATOR_KEYS), _snapshot(gan, DISCRIMINATOR_KEYS)
    batch = torch.rand(2, 1, 3, 96, 96, generator=torch.Generator().manual_seed(3)) * 2 - 1
    losses = step.discriminator_step(batch[0], batch[1])
    assert set(losses) == {"D", "D_A", "D_B"} and torch.isfinite(losses["D"])
    after = _snapshot(gan, GENERATOR_KEYS + DISCRIMINATOR_KEYS)
    assert all(_same(generators[key], after[key]) for key in GENERATOR_KEYS)
    assert all(p.grad is None for p in gan.generator_parameters())
    assert not any(_same(discriminators[key], after[key]) for key in DISCRIMINATOR_KEYS)


def test_a_generator_state_holds_both_generators_in_fp16_and_the_step(tmp_path: Path) -> None:
    torch.manual_seed(0)
    gan = CartoonGan(ch=8, img_size=96)
    folder = write_generator_state(
        tmp_path / "state",
        {key: gan.network(key) for key in GENERATOR_KEYS},
        step=42,
        config=CONFIG.to_dict(),
        extra={"samples_seen": 336},
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "genA2B.json",
        "genA2B.safetensors",
        "genB2A.json",
        "genB2A.safetensors",
        "state.json",
    ]
    state = read_generator_state(folder)
    assert state.step == 42 and state.info["samples_seen"] == 336 and state.info["format"] == STATE_FORMAT
    for key in GENERATOR_KEYS:
        for name, tensor in gan.network(key).state_dict().items():
            assert torch.equal(state.networks[key][name], tensor.half().float()), f"{key}.{name}"


def test_a_folder_without_a_state_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="--generator-state"):
        read_generator_state(tmp_path)


def test_init_from_excludes_the_other_starts(tmp_path: Path) -> None:
    argv = ["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--init-from", str(tmp_path)]
    for other in (["--resume"], ["--resume-from", "s.pt"], ["--pretrained", "p.pt"]):
        with pytest.raises(InvalidInputError, match="exclude each other"):
            config_from_args(build_parser().parse_args([*argv, *other]))


@pytest.mark.slow
def test_a_run_continued_from_its_generators_warms_up_fresh_discriminators_then_trains(
    train_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    first = ["--data", str(train_data), "--out", str(tmp_path / "run1"), "--iterations", "8", *TINY]
    assert train_main([*first, "--stop-after", "2", "--generator-state", str(state)]) == 0
    saved = read_generator_state(state)
    assert saved.step == 2 and saved.info["samples_seen"] == 2
    checkpoint = latest_checkpoint(tmp_path / "run1" / "checkpoints")
    assert checkpoint is not None
    trained = read_checkpoint(checkpoint)  # the first run's discriminators: not kept, not reused

    seen: dict[str, object] = {}
    warm_up = Trainer._warm_up_discriminators

    def watched(self: Trainer, gan_step: GanStep, steps: int) -> None:
        before = _snapshot(self.gan, GENERATOR_KEYS + DISCRIMINATOR_KEYS)
        seen["fresh"] = not any(_same(before[key], trained[key]) for key in DISCRIMINATOR_KEYS)
        warm_up(self, gan_step, steps)
        after = _snapshot(self.gan, GENERATOR_KEYS + DISCRIMINATOR_KEYS)
        seen["generators_loaded"] = all(_same(saved.networks[k], before[k]) for k in GENERATOR_KEYS)
        seen["generators_frozen"] = all(_same(before[k], after[k]) for k in GENERATOR_KEYS)
        seen["discriminators_moved"] = all(not _same(before[k], after[k]) for k in DISCRIMINATOR_KEYS)
        seen["step"] = self.step

    monkeypatch.setattr(Trainer, "_warm_up_discriminators", watched)
    run2 = tmp_path / "run2"
    second = ["--data", str(train_data), "--out", str(run2), "--iterations", "8", *TINY, "--log-every", "1"]
    extra = ["--init-from", str(state), "--d-warmup-steps", "3", "--warmup-steps", "4"]
    config = config_from_args(build_parser().parse_args([*second, *extra, "--stop-after", "5"]))
    trainer = Trainer(config)
    result = trainer.run(stop_after=5)
    trainer.close()
    assert seen == {
        "fresh": True,
        "generators_loaded": True,
        "generators_frozen": True,
        "discriminators_moved": True,
        "step": 2,  # the warm-up does not count as training steps
    }
    with (run2 / "d_warmup.csv").open() as stream:
        warm_rows = list(csv.DictReader(stream))
    assert [int(row["step"]) for row in warm_rows] == [1, 2, 3] and all(float(r["D"]) > 0 for r in warm_rows)
    with (run2 / "metrics.csv").open() as stream:
        rates = {int(row["step"]): float(row["lr"]) for row in csv.DictReader(stream)}
    assert sorted(rates) == [3, 4, 5]  # training went on from the state's step
    assert rates[3] == pytest.approx(0.25 * learning_rate(config, 3), rel=1e-4)  # fresh G Adam: ramp
    assert result.step == 5
    # The discriminators' Adam warmed up in the D-only steps: their rate is not ramped.
    assert trainer.optimizers.d.param_groups[0]["lr"] == pytest.approx(learning_rate(config, 5))
    assert trainer.optimizers.g.param_groups[0]["lr"] == pytest.approx(0.75 * learning_rate(config, 5))
    moved = _snapshot(trainer.gan, GENERATOR_KEYS)
    assert not any(_same(saved.networks[k], moved[k]) for k in GENERATOR_KEYS)


@pytest.mark.slow
def test_the_state_written_after_a_continued_run_counts_all_samples(train_data: Path, tmp_path: Path) -> None:
    state, later = tmp_path / "state", tmp_path / "later"
    base = ["--data", str(train_data), "--iterations", "8", *TINY]
    first = [*base, "--out", str(tmp_path / "a"), "--stop-after", "1"]
    assert train_main([*first, "--generator-state", str(state)]) == 0
    argv = [*base, "--out", str(tmp_path / "b"), "--batch-size", "2", "--stop-after", "3"]
    continued = ["--init-from", str(state), "--d-warmup-steps", "1", "--generator-state", str(later)]
    assert train_main([*argv, *continued]) == 0
    info = json.loads((later / "state.json").read_text())
    assert (info["step"], info["samples_seen"], info["batch_size"]) == (3, 1 + 2 * 2, 2)


@pytest.mark.slow
def test_generators_of_another_width_are_refused_in_one_line(train_data: Path, tmp_path: Path) -> None:
    gan = CartoonGan(ch=12, img_size=96)
    config = TrainConfig(data_dir=str(train_data), out_dir=str(tmp_path / "run"), img_size=96, ch=12)
    generators = {key: gan.network(key) for key in GENERATOR_KEYS}
    write_generator_state(tmp_path / "state", generators, 3, config.to_dict())
    argv = ["--data", str(train_data), "--out", str(tmp_path / "run"), *TINY]
    argv += ["--init-from", str(tmp_path / "state")]
    with pytest.raises(InvalidInputError, match="different ch"):
        Trainer(config_from_args(build_parser().parse_args(argv))).run()
