"""p2c-train --arch compact: photo2cartoon's objective on compact generators, the arch carried everywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from p2c.models.compact import CompactGenerator
from p2c.models.weights import load_generator, sidecar_path
from p2c.training.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint
from p2c.training.commands.train import main as train_main
from p2c.training.config import TrainConfig
from p2c.training.gan import GENERATOR_KEYS, CartoonGan
from p2c.training.step import GanStep, StepOptions, build_networks

pytestmark = pytest.mark.slow

# p2c-train options for networks small enough for CPU tests.
TINY = ["--img-size", "96", "--ch", "8", "--batch-size", "1", "--num-workers", "0", "--faceid-weight", "0"]


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--sample-every", "100", *TINY, *extra]


@pytest.fixture(scope="module")
def compact_run(train_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two steps of a compact run through the command line, with a generator state and a slice state."""
    out = tmp_path_factory.mktemp("compact") / "run"
    extra = ["--arch", "compact", "--iterations", "2", "--save-every", "100"]
    extra += ["--generator-state", str(out / "state"), "--slice-state", str(out / "slice.pt")]
    assert train_main(_argv(train_data, out, *extra)) == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    """A copy of the shared run, for a test that trains on in it."""
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_the_compact_gan_has_nothing_to_clip_and_its_fast_step_trains(faceid_standin) -> None:
    config = TrainConfig(data_dir="d", out_dir="o", img_size=96, ch=8, arch="compact")
    options = StepOptions(share_translations=True, freeze_discriminators=True, fused_optimizer=True)
    torch.manual_seed(0)
    gan, optimizers = build_networks(config, torch.device("cpu"), options, None, faceid_standin)
    assert all(isinstance(gan.network(key), CompactGenerator) for key in GENERATOR_KEYS)
    assert gan.genA2B.config.img_size == 96 and gan.mixing_parameters() == []
    assert gan.disGA.model[1].in_channels == 3 and gan.disGA.model[1].out_channels == 8  # --ch: the Ds
    before = {k: v.clone() for k, v in gan.genA2B.state_dict().items()}
    step = GanStep(gan, faceid_standin, config.weights, optimizers, None, torch.device("cpu"), options)
    real = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    losses = step(real, real.flip(3))
    assert {"D", "G", "G_cam_B", "G_cycle_A", "G_faceid_A"} <= set(losses)  # the CAM loss reads cam_logit
    assert all(torch.isfinite(value) for value in losses.values())
    changed = [k for k, v in gan.genA2B.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)  # every layer is used and trained, the CAM head too


def test_a_compact_run_writes_a_checkpoint_and_an_export_that_name_the_arch(compact_run: Path) -> None:
    assert json.loads((compact_run / "config.json").read_text())["arch"] == "compact"
    assert "G_cam_B" in (compact_run / "metrics.csv").read_text().splitlines()[0]
    checkpoint = compact_run / "checkpoints" / "ckpt_00000002.pt"
    payload = read_checkpoint(checkpoint)
    assert payload["config"]["arch"] == "compact" and "enc0.weight" in payload["genA2B"]
    assert isinstance(load_generator(checkpoint), CompactGenerator)  # as p2c-eval reads checkpoints
    exported = compact_run / "export" / "p2c_genA2B_00000002.safetensors"
    assert json.loads(sidecar_path(exported).read_text())["arch"] == "compact"
    generator = load_generator(exported)
    assert isinstance(generator, CompactGenerator)
    assert generator.config.img_size == 256  # trained on 96 px crops, declared at the engine's crop size
    for name, tensor in generator.state_dict().items():
        assert torch.allclose(tensor, payload["genA2B"][name], atol=1e-2, rtol=1e-2), name


def test_p2c_export_takes_a_compact_checkpoint(compact_run: Path, tmp_path: Path) -> None:
    from p2c.engine.export import main as export_main

    target = tmp_path / "best.safetensors"
    checkpoint = compact_run / "checkpoints" / "ckpt_00000002.pt"
    assert export_main([str(checkpoint), str(target), "--format", "safetensors"]) == 0
    assert isinstance(load_generator(target), CompactGenerator)


def test_resume_continues_a_compact_run(compact_run: Path, train_data: Path, tmp_path: Path) -> None:
    out = _copy(compact_run, tmp_path)
    step_two = read_checkpoint(out / "checkpoints" / "ckpt_00000002.pt")
    argv = _argv(train_data, out, "--arch", "compact", "--iterations", "4", "--save-every", "100", "--resume")
    assert train_main(argv) == 0
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [2, 4]
    step_four = read_checkpoint(latest_checkpoint(out / "checkpoints"))  # type: ignore[arg-type]
    assert step_four["step"] == 4 and step_four["config"]["arch"] == "compact"
    weight = "body.0.expand.weight"
    assert not torch.equal(step_four["genA2B"][weight], step_two["genA2B"][weight])
    assert isinstance(load_generator(out / "export" / "p2c_genA2B_00000004.safetensors"), CompactGenerator)


@pytest.mark.parametrize("start", ["--resume", "--resume-from", "--init-from"])
def test_continuing_a_compact_run_as_photo2cartoon_is_one_line(
    start: str, compact_run: Path, train_data: Path, tmp_path: Path, capsys
) -> None:
    out = _copy(compact_run, tmp_path)
    source = {"--resume": [], "--resume-from": [str(out / "slice.pt")], "--init-from": [str(out / "state")]}
    target = out if start == "--resume" else tmp_path / "new"
    assert train_main(_argv(train_data, target, "--iterations", "3", start, *source[start])) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2c-train: error: ") and "different arch" in err
    assert len(err.strip().splitlines()) == 1


def test_the_generator_state_names_the_arch_and_init_from_continues_it(
    compact_run: Path, train_data: Path, tmp_path: Path
) -> None:
    state = compact_run / "state"
    assert json.loads((state / "state.json").read_text())["arch"] == "compact"
    for key in GENERATOR_KEYS:
        assert json.loads((state / f"{key}.json").read_text())["arch"] == "compact"
    out = tmp_path / "continued"
    extra = ["--arch", "compact", "--init-from", str(state), "--iterations", "3", "--d-warmup-steps", "1"]
    # The discriminators start fresh, so their width may change: --ch is not the compact generators'.
    argv = [*_argv(train_data, out, *extra), "--ch", "12"]
    assert train_main(argv) == 0
    payload = read_checkpoint(out / "checkpoints" / "ckpt_00000003.pt")
    assert payload["step"] == 3 and payload["config"]["arch"] == "compact"


def test_a_checkpoint_of_the_other_architecture_is_refused_as_pretrained(
    train_data: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "photo2cartoon_weights.pt"
    torch.save(CartoonGan(ch=8, img_size=96).network_state_dicts(), path)
    argv = _argv(
        train_data, tmp_path / "run", "--arch", "compact", "--pretrained", str(path), "--iterations", "1"
    )
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "genA2B" in err and "--arch" in err and len(err.strip().splitlines()) == 1
