"""Training on tiny configs (CPU): losses, clipping, exact resume, pretrained weights, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from p2c.training.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint
from p2c.training.commands.train import main as train_main
from p2c.training.config import LossWeights, TrainConfig
from p2c.training.gan import NETWORK_KEYS, CartoonGan
from p2c.training.trainer import Trainer, learning_rate

pytestmark = pytest.mark.slow

# p2c-train options for networks small enough for CPU tests.
TINY = ["--img-size", "96", "--ch", "8", "--batch-size", "1", "--num-workers", "0"]


def _assert_same_networks(a: dict, b: dict, atol: float = 1e-6) -> None:
    for key in NETWORK_KEYS:
        for name, tensor in a[key].items():
            assert torch.allclose(tensor.float(), b[key][name].float(), atol=atol, rtol=0), (
                f"{key}.{name} differs"
            )


@pytest.fixture(scope="module")
def full_run(train_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four uninterrupted steps through the command line, checkpoints at 2 and 4."""
    out = tmp_path_factory.mktemp("full") / "run"
    argv = [
        "--data",
        str(train_data),
        "--out",
        str(out),
        "--iterations",
        "4",
        "--save-every",
        "2",
        "--sample-every",
        "2",
        "--log-every",
        "1",
        "--faceid-weight",
        "0",
        *TINY,
    ]
    assert train_main(argv) == 0
    return out


def test_one_step_with_face_id_loss(
    train_data: Path, tmp_path: Path, faceid_standin, tiny_train_config
) -> None:
    config = tiny_train_config(train_data, tmp_path / "run", iterations=1, weights=LossWeights(faceid=1.0))
    trainer = Trainer(config, faceid=faceid_standin)
    before = {k: v.clone() for k, v in trainer.gan.genA2B.state_dict().items()}
    with torch.no_grad():  # push the mixing weights out of range: the step must clip them back
        for name, parameter in trainer.gan.genA2B.named_parameters():
            if name.endswith(("rho", "w_gamma")):
                parameter.fill_(1.5)
    result = trainer.run()
    trainer.close()
    assert result.step == 1
    assert {"D", "G", "G_faceid_A", "G_faceid_B", "G_cam_B", "G_cycle_A"} <= set(result.losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    after = trainer.gan.genA2B.state_dict()
    changed = [
        k for k in before if not k.endswith(("rho", "w_gamma")) and not torch.equal(before[k], after[k])
    ]
    assert len(changed) > len(before) // 2
    mixing = [p for n, p in trainer.gan.genA2B.named_parameters() if n.endswith(("rho", "w_gamma", "w_beta"))]
    assert all(((p >= 0) & (p <= 1)).all() for p in mixing)


def test_run_folder_holds_config_metrics_samples_checkpoints(full_run: Path) -> None:
    config = json.loads((full_run / "config.json").read_text())
    assert config["iterations"] == 4 and config["ch"] == 8 and config["weights"]["cycle"] == 50.0
    lines = (full_run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("step,lr,it_per_s,D,") and len(lines) == 5
    assert sorted(p.name for p in (full_run / "samples").iterdir()) == [
        "A2B_00000002.png",
        "A2B_00000004.png",
    ]
    assert [step for step, _ in list_checkpoints(full_run / "checkpoints")] == [2, 4]
    assert not list((full_run / "checkpoints").glob("*.tmp"))
    payload = read_checkpoint(full_run / "checkpoints" / "ckpt_00000004.pt")
    assert payload["step"] == 4 and set(NETWORK_KEYS) <= set(payload)


def test_stop_and_resume_equals_uninterrupted(full_run: Path, train_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = [
        "--data",
        str(train_data),
        "--out",
        str(out),
        "--iterations",
        "4",
        "--save-every",
        "100",
        "--sample-every",
        "100",
        "--faceid-weight",
        "0",
        *TINY,
    ]
    assert train_main([*common, "--stop-after", "2"]) == 0
    assert latest_checkpoint(out / "checkpoints").name == "ckpt_00000002.pt"
    assert train_main([*common, "--resume"]) == 0
    resumed = read_checkpoint(out / "checkpoints" / "ckpt_00000004.pt")
    uninterrupted = read_checkpoint(full_run / "checkpoints" / "ckpt_00000004.pt")
    _assert_same_networks(resumed, uninterrupted)
    assert torch.allclose(
        resumed["optimizers"]["G"]["state"][0]["exp_avg"],
        uninterrupted["optimizers"]["G"]["state"][0]["exp_avg"],
    )


def test_learning_rate_decays_linearly_over_the_second_half() -> None:
    config = TrainConfig(data_dir="d", out_dir="o", iterations=10, lr=1e-4)
    rates = [learning_rate(config, step) for step in range(1, 11)]
    assert rates[:5] == [1e-4] * 5
    assert rates[5:] == pytest.approx([8e-5, 6e-5, 4e-5, 2e-5, 0.0])


def test_pretrained_released_six_network_file_loads(
    train_data: Path, tmp_path: Path, tiny_train_config
) -> None:
    torch.manual_seed(123)
    released = CartoonGan(ch=32, img_size=256)  # photo2cartoon's shapes
    path = tmp_path / "photo2cartoon_weights.pt"
    torch.save(released.network_state_dicts(), path)
    config = tiny_train_config(
        train_data,
        tmp_path / "run",
        ch=32,
        img_size=256,
        pretrained=str(path),
        weights=LossWeights(faceid=0.0),
    )
    trainer = Trainer(config)
    trainer._load_start_state()
    trainer.close()
    for key in NETWORK_KEYS:
        for name, tensor in released.network(key).state_dict().items():
            assert torch.equal(trainer.gan.network(key).state_dict()[name], tensor), f"{key}.{name}"


def test_pretrained_with_other_shapes_is_one_line(train_data: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "photo2cartoon_weights.pt"
    torch.save(CartoonGan(ch=12, img_size=96).network_state_dicts(), path)
    argv = [
        "--data",
        str(train_data),
        "--out",
        str(tmp_path / "run"),
        "--pretrained",
        str(path),
        "--faceid-weight",
        "0",
        "--iterations",
        "1",
        *TINY,
    ]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2c-train: error: ") and "genA2B" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("problem", ["missing data", "empty data", "not a checkpoint", "bad option"])
def test_bad_input_is_one_line_and_exit_2(problem: str, train_data: Path, tmp_path: Path, capsys) -> None:
    data, extra = train_data, []
    if problem == "missing data":
        data = tmp_path / "nowhere"
    elif problem == "empty data":
        data = tmp_path / "empty"
        (data / "trainA").mkdir(parents=True)
        (data / "trainB").mkdir()
    elif problem == "not a checkpoint":
        (tmp_path / "weights.pt").write_bytes(b"\x00garbage" * 64)
        extra = ["--pretrained", str(tmp_path / "weights.pt")]
    else:
        extra = ["--img-size", "100"]
    argv = ["--data", str(data), "--out", str(tmp_path / "run"), "--faceid-weight", "0", *TINY, *extra]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2c-train: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_dry_run_prints_the_resolved_config(tmp_path: Path, capsys) -> None:
    assert (
        train_main(["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--dry-run", "--lr", "2e-4"]) == 0
    )
    config = TrainConfig.from_dict(json.loads(capsys.readouterr().out))
    assert config.lr == 2e-4 and config.weights == LossWeights() and config.betas == (0.5, 0.999)
    assert not (tmp_path / "r").exists()


def test_export_in_the_engine_format(full_run: Path, tmp_path: Path) -> None:
    from p2c.models.weights import load_generator

    checkpoint = read_checkpoint(full_run / "checkpoints" / "ckpt_00000004.pt")
    exported = load_generator(full_run / "export" / "p2c_genA2B_00000004.safetensors")
    assert exported.config.ngf == 8 and exported.config.img_size == 256  # the engine's crop size
    for name, tensor in exported.state_dict().items():
        assert torch.allclose(tensor.float(), checkpoint["genA2B"][name].float(), atol=1e-2, rtol=1e-2), name
    from p2c.engine.export import main as export_main

    target = tmp_path / "best.safetensors"
    checkpoint = full_run / "checkpoints" / "ckpt_00000002.pt"
    assert export_main([str(checkpoint), str(target), "--format", "safetensors"]) == 0
    assert load_generator(target).config.ngf == 8
    assert train_main(["--export", str(checkpoint), str(target)]) == 2  # moved: a one-line pointer


def test_eval_names_the_best_checkpoint(full_run: Path, train_data: Path, tmp_path: Path, capsys) -> None:
    from p2c.training.commands.evaluate import main as eval_main

    argv = [
        "--checkpoints",
        str(full_run),
        "--photos",
        str(train_data / "testA"),
        "--cartoons",
        str(train_data / "testB"),
        "--out",
        str(tmp_path / "eval"),
        "--device",
        "cpu",
    ]
    assert eval_main(argv) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert [Path(r["weights"]).name for r in report["reports"]] == ["ckpt_00000002.pt", "ckpt_00000004.pt"]
    assert report["best"] in {r["weights"] for r in report["reports"]}
    assert all(r["identity_mean"] is not None for r in report["reports"])
    assert "best: " in capsys.readouterr().out


def test_pretrained_through_the_command_line(train_data: Path, tmp_path: Path) -> None:
    torch.manual_seed(321)
    released = CartoonGan(ch=8, img_size=96)
    path = tmp_path / "photo2cartoon_weights.pt"
    torch.save(released.network_state_dicts(), path)
    out = tmp_path / "run"
    argv = [
        "--data",
        str(train_data),
        "--out",
        str(out),
        "--pretrained",
        str(path),
        "--iterations",
        "1",
        "--faceid-weight",
        "0",
        "--sample-rows",
        "0",
        *TINY,
    ]
    assert train_main(argv) == 0
    trained = read_checkpoint(out / "checkpoints" / "ckpt_00000001.pt")
    for key in ("genA2B", "disGA"):
        start = released.network(key).state_dict()
        for name, tensor in trained[key].items():
            if tensor.is_floating_point() and not name.endswith(("weight_u", "weight_v")):
                # One Adam step moves each weight by at most about lr (1e-4) from where it started.
                assert (tensor - start[name]).abs().max() < 5e-4, f"{key}.{name} did not start from the file"
