"""Two CPU processes under torchrun (gloo): DDP keeps both ranks' weights identical; rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from p2c.training.checkpoint import list_checkpoints, read_checkpoint
from p2c.training.config import LossWeights
from p2c.training.gan import NETWORK_KEYS, CartoonGan
from p2c.training.trainer import Trainer

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch

    from p2c.training.config import LossWeights, TrainConfig
    from p2c.training.trainer import Trainer

    torch.set_num_threads(1)
    config = TrainConfig(
        data_dir=sys.argv[1], out_dir=sys.argv[2], iterations=2, batch_size=1, img_size=96, ch=8,
        num_workers=0, log_every=1, sample_every=100, save_every=100, sample_rows=1,
        weights=LossWeights(faceid=0.0),
    )
    trainer = Trainer(config)
    trainer.run()
    # Test-only dump of what each rank holds; the trainer itself writes from rank 0 only.
    torch.save(trainer.gan.network_state_dicts(), Path(sys.argv[3]) / f"rank{trainer.context.rank}.pt")
    trainer.close()
    """
)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_agree(train_data: Path, tmp_path: Path, tiny_train_config) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(train_data),
        str(out),
        str(dumps),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]

    rank0 = torch.load(dumps / "rank0.pt", weights_only=True)
    rank1 = torch.load(dumps / "rank1.pt", weights_only=True)
    for key in NETWORK_KEYS:
        for name, tensor in rank0[key].items():
            assert torch.equal(tensor, rank1[key][name]), f"ranks disagree on {key}.{name}"
    torch.manual_seed(0)
    initial = CartoonGan(ch=8, img_size=96).genA2B.state_dict()
    assert not torch.equal(initial["ConvBlock1.1.weight"], rank0["genA2B"]["ConvBlock1.1.weight"])

    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [2]
    payload = read_checkpoint(out / "checkpoints" / "ckpt_00000002.pt")
    assert payload["world_size"] == 2 and len(payload["rng"]) == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # header + 2 steps, written once

    # Gradients are averaged over ranks: two processes with batch 1 = one process with batch 2.
    config = tiny_train_config(
        train_data,
        tmp_path / "single",
        iterations=2,
        batch_size=2,
        sample_rows=1,
        weights=LossWeights(faceid=0.0),
    )
    trainer = Trainer(config)
    trainer.run()
    trainer.close()
    single = trainer.gan.network_state_dicts()
    # Adam's first steps move each weight by about lr * sign(gradient), so weights whose gradient is
    # rounding noise (e.g. biases cancelled by a following instance norm) can move either way; a real
    # difference (gradients summed not averaged, other samples or augmentation) moves nearly all.
    total = differing = 0
    for key in NETWORK_KEYS:
        for name, tensor in single[key].items():
            difference = (tensor.float() - rank0[key][name].float()).abs()
            total += difference.numel()
            differing += int((difference > 1e-5).sum())
    assert differing / total < 0.01, f"{differing} of {total} weights differ from one process with batch 2"
