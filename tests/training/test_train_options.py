"""p2c-train's options are generated from TrainConfig: the parser and the config agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from p2c.training.commands.train import build_parser, config_from_args
from p2c.training.commands.train import main as train_main
from p2c.training.config import LossWeights, TrainConfig, shape_changes

# Every option p2c-train had before its options were generated, and the help texts users read.
LEGACY_OPTIONS = [
    "--data",
    "--out",
    "--iterations",
    "--stop-after",
    "--time-limit",
    "--slice-state",
    "--slice-generators",
    "--resume-from",
    "--warmup-steps",
    "--batch-size",
    "--img-size",
    "--ch",
    "--lr",
    "--no-lr-decay",
    "--adv-weight",
    "--cycle-weight",
    "--identity-weight",
    "--cam-weight",
    "--faceid-weight",
    "--faceid-weights",
    "--resume",
    "--pretrained",
    "--device",
    "--amp",
    "--compile",
    "--seed",
    "--num-workers",
    "--log-every",
    "--sample-every",
    "--save-every",
    "--export-every",
    "--keep-checkpoints",
    "--compact-checkpoints",
    "--sample-rows",
    "--dry-run",
    "--verbose",
]
LEGACY_HELP = {
    "--iterations": "total training steps (default %(default)s)",
    "--batch-size": "per process (default %(default)s)",
    "--img-size": "crop size, >= 96 (default %(default)s)",
    "--faceid-weight": "faceid loss weight (default %(default)s); 0 skips loading the Face ID network",
    "--no-lr-decay": "keep the learning rate constant (default: linear decay to 0 over the second half)",
    "--slice-state": "when training stops, also write a compact resume state (<= 60 MB) to PATH",
    "--compile": "torch.compile the generators",
}


def _actions() -> dict[str, object]:
    return {flag: action for action in build_parser()._actions for flag in action.option_strings}


def _config(tmp_path: Path, *extra: str) -> TrainConfig:
    argv = ["--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"), *extra]
    return config_from_args(build_parser().parse_args(argv))


def test_every_former_option_and_help_text_is_still_there() -> None:
    actions = _actions()
    assert set(LEGACY_OPTIONS) <= set(actions)
    for flag, text in LEGACY_HELP.items():
        assert actions[flag].help == text, flag  # type: ignore[attr-defined]


def test_the_defaults_are_the_config_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path)
    expected = TrainConfig(data_dir=str((tmp_path / "d").resolve()), out_dir=str((tmp_path / "o").resolve()))
    assert config == expected


# A value other than the default for each option (field name -> argv).
CHANGED = {
    "iterations": ["--iterations", "7"],
    "batch_size": ["--batch-size", "3"],
    "img_size": ["--img-size", "128"],
    "ch": ["--ch", "12"],
    "arch": ["--arch", "compact"],
    "lr": ["--lr", "2e-4"],
    "lr_decay": ["--no-lr-decay"],
    "faceid_weights": ["--faceid-weights", "dlib.dat"],
    "resume": ["--resume"],
    "slice_generators": ["--slice-generators", "fp16"],
    "warmup_steps": ["--warmup-steps", "5"],
    "d_warmup_steps": ["--d-warmup-steps", "5"],
    "device": ["--device", "cpu"],
    "amp": ["--amp", "bf16"],
    "compile": ["--compile"],
    "channels_last": ["--channels-last", "on"],
    "cuda_graph": ["--cuda-graph", "off"],
    "fused_adam": ["--no-fused-adam"],
    "checkpoint_hourglasses": ["--checkpoint-hourglasses"],
    "size_schedule": ["--size-schedule", "128:5,256:10"],
    "seed": ["--seed", "3"],
    "num_workers": ["--num-workers", "0"],
    "log_every": ["--log-every", "2"],
    "sample_every": ["--sample-every", "2"],
    "save_every": ["--save-every", "2"],
    "export_every": ["--export-every", "2"],
    "keep_checkpoints": ["--keep-checkpoints", "1"],
    "compact_checkpoints": ["--compact-checkpoints"],
    "sample_rows": ["--sample-rows", "1"],
}
PATHS = {
    "pretrained": "--pretrained",
    "resume_from": "--resume-from",
    "slice_state": "--slice-state",
    "init_from": "--init-from",
    "generator_state": "--generator-state",
}


def test_every_option_sets_its_field_and_every_cli_field_has_an_option(tmp_path: Path) -> None:
    cli_fields = {f.name for f in dataclasses.fields(TrainConfig) if "cli" in f.metadata}
    assert cli_fields == set(CHANGED) | set(PATHS) | {"data_dir", "out_dir"}
    default = _config(tmp_path)
    for name, argv in CHANGED.items():
        changed = _config(tmp_path, *argv)
        assert getattr(changed, name) != getattr(default, name), name
        assert dataclasses.replace(changed, **{name: getattr(default, name)}) == default, name
    assert _config(tmp_path, "--size-schedule", "128:5,256:10").size_schedule == ((128, 5), (256, 10))
    for name, flag in PATHS.items():
        assert getattr(_config(tmp_path, flag, "x.pt"), name) == str(Path("x.pt").resolve())
    for weight in dataclasses.fields(LossWeights):
        config = _config(tmp_path, f"--{weight.name}-weight", "0.5")
        assert getattr(config.weights, weight.name) == 0.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size-schedule", "128-5"], "is not SIZE:STEPS"),
        (["--size-schedule", "128:5,192:5"], "must end at the networks' size --img-size 256"),
        (["--size-schedule", "100:5,256:5"], "multiple of 16"),
    ],
)
def test_a_bad_size_schedule_is_refused_with_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys
) -> None:
    try:
        code = train_main(["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--dry-run", *argv])
    except SystemExit as exit:  # argparse's own usage error
        code = exit.code
    assert code == 2 and message in capsys.readouterr().err


def test_arch_takes_the_known_architectures_only(tmp_path: Path, capsys) -> None:
    assert _config(tmp_path).arch == "photo2cartoon"
    with pytest.raises(SystemExit) as caught:  # argparse's own one-line usage error
        train_main(["--data", "d", "--out", "o", "--arch", "stylegan", "--dry-run"])
    assert caught.value.code == 2
    assert "invalid choice: 'stylegan'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="arch must be one of photo2cartoon, compact"):
        TrainConfig(data_dir="d", out_dir="o", arch="stylegan")


def test_a_record_that_predates_arch_is_photo2cartoon(tmp_path: Path) -> None:
    recorded = {"img_size": 256, "ch": 32, "light": True}  # a config.json written before --arch
    assert shape_changes(recorded, _config(tmp_path)) == []
    assert shape_changes(recorded, _config(tmp_path, "--arch", "compact")) == ["arch"]
    assert TrainConfig.from_dict({"data_dir": "d", "out_dir": "o", **recorded}).arch == "photo2cartoon"


def test_the_compact_generator_takes_a_size_schedule(tmp_path: Path) -> None:
    config = _config(tmp_path, "--arch", "compact", "--size-schedule", "128:5,256:10")
    assert config.size_schedule == ((128, 5), (256, 10))
