"""Measure how many discriminator-only steps a run continued from its generators alone needs.

    python recipes/measure_d_warmup.py DATA OUT [--base-steps 300] [--compare-steps 100]
                                       [--probe-steps 200] [--warmups 0 25 100]

1. *base*: train from scratch for ``--base-steps`` (constant lr), keeping a checkpoint and the
   generator state (FP16 generators, what travels between GPU sessions);
2. *reference*: continue the base run exactly (``--resume``: its discriminators and Adams) for
   ``--compare-steps``: the losses an uninterrupted run has there;
3. *probe*: ``--init-from`` the generator state with ``--probe-steps`` D-only steps: the fresh
   discriminators' loss per step, against the reference's level;
4. for each ``--warmups`` N: ``--init-from`` with N D-only steps, then ``--compare-steps`` normal
   steps; their D and G adversarial losses against the reference's, step by step.

Parts already measured in OUT by an earlier invocation are kept (add warm-ups without redoing the rest).

Writes ``d_warmup.json`` (every curve and the summary) and ``d_warmup.md`` into OUT. CPU, small
networks (``--img-size 96 --ch 8``, batch 1, Face ID loss off): the figures are for choosing the
default of ``--d-warmup-steps``, not for a full-size run's exact numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from p2c.training.config import LossWeights, TrainConfig
from p2c.training.trainer import Trainer

WINDOW = 10  # steps in the moving averages that smooth the per-step losses


def _read(path: Path) -> dict[int, dict[str, float]]:
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    return {int(row["step"]): {k: float(v) for k, v in row.items() if v} for row in rows}


def _done(log: Path, last: int) -> bool:
    """Whether ``log`` (a metrics CSV) reaches step ``last``: that part was measured before."""
    return log.is_file() and max(_read(log), default=0) >= last


def _train(config: TrainConfig, stop_after: int) -> Path:
    trainer = Trainer(config)
    try:
        trainer.run(stop_after=stop_after)
    finally:
        trainer.close()
    return config.run_dir


def _moving(values: list[float]) -> np.ndarray:
    series = np.asarray(values, dtype=float)
    if len(series) < WINDOW:
        return series
    return np.convolve(series, np.ones(WINDOW) / WINDOW, mode="valid")


def _g_adv(row: dict[str, float]) -> float:
    return row["G_adv_A"] + row["G_adv_B"]


def _compare(reference: dict[int, dict[str, float]], run: dict[int, dict[str, float]], first: int) -> dict:
    steps = sorted(s for s in run if s in reference)
    early = [s for s in steps if s < first + 25]
    out: dict[str, Any] = {}
    for name, value in (("D", lambda r: r["D"]), ("G_adv", _g_adv)):
        ours = np.array([value(run[s]) for s in steps])
        theirs = np.array([value(reference[s]) for s in steps])
        out[name] = {
            "mean": float(ours.mean()),
            "reference_mean": float(theirs.mean()),
            "first_25_mean": float(np.mean([value(run[s]) for s in early])),
            "reference_first_25_mean": float(np.mean([value(reference[s]) for s in early])),
        }
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(
        data_dir=str(args.data),
        out_dir=str(out / "base"),
        iterations=100_000,
        lr_decay=False,
        batch_size=args.batch,
        img_size=args.img_size,
        ch=args.ch,
        device="cpu",
        num_workers=0,
        weights=LossWeights(faceid=0.0),
        log_every=1,
        save_every=args.base_steps,
        sample_every=100_000,
        generator_state=str(out / "state"),
    )
    last = args.base_steps + args.compare_steps
    if not (out / "state" / "state.json").is_file():
        _train(base, args.base_steps)
    reference_dir = out / "reference"
    if not _done(reference_dir / "metrics.csv", last):
        shutil.rmtree(reference_dir, ignore_errors=True)
        shutil.copytree(out / "base", reference_dir)
        _train(replace(base, out_dir=str(reference_dir), resume=True, generator_state=None), last)
    reference = {s: r for s, r in _read(reference_dir / "metrics.csv").items() if s > args.base_steps}
    continued = replace(base, init_from=str(out / "state"), generator_state=None)

    probe_dir = out / "probe"
    if not _done(probe_dir / "d_warmup.csv", args.probe_steps):
        shutil.rmtree(probe_dir, ignore_errors=True)
        _train(
            replace(continued, out_dir=str(probe_dir), d_warmup_steps=args.probe_steps), args.base_steps + 1
        )
    probe = [row["D"] for _, row in sorted(_read(probe_dir / "d_warmup.csv").items())]

    reference_d = _moving([reference[s]["D"] for s in sorted(reference)])
    band = (float(reference_d.min()), float(reference_d.max()))
    smoothed = _moving(probe)
    # The trailing average of the WINDOW steps ending at step WINDOW + i.
    within = [WINDOW + i for i, value in enumerate(smoothed) if value <= band[1]]
    below_mean = [WINDOW + i for i, value in enumerate(smoothed) if value <= float(np.mean(reference_d))]
    runs = {}
    for warmup in args.warmups:
        folder = out / f"warmup_{warmup}"
        if not _done(folder / "metrics.csv", last):  # measured by an earlier invocation: kept
            shutil.rmtree(folder, ignore_errors=True)
            _train(replace(continued, out_dir=str(folder), d_warmup_steps=warmup), last)
        rows = _read(folder / "metrics.csv")
        runs[str(warmup)] = {
            "compared": _compare(reference, rows, args.base_steps + 1),
            "D": [rows[s]["D"] for s in sorted(rows)],
            "G_adv": [_g_adv(rows[s]) for s in sorted(rows)],
        }
    return {
        "settings": {
            "img_size": args.img_size,
            "ch": args.ch,
            "batch": args.batch,
            "base_steps": args.base_steps,
            "compare_steps": args.compare_steps,
            "probe_steps": args.probe_steps,
            "window": WINDOW,
            "faceid_weight": 0.0,
            "lr": base.lr,
            "lr_warmup_steps": base.warmup_steps,
            "torch": torch.__version__,
        },
        "reference": {
            "D": [reference[s]["D"] for s in sorted(reference)],
            "G_adv": [_g_adv(reference[s]) for s in sorted(reference)],
            "D_moving_average_range": band,
            "D_mean": float(np.mean([reference[s]["D"] for s in reference])),
        },
        "probe": {
            "D": probe,
            "first_step_within_reference_range": within[0] if within else None,
            "first_step_at_or_below_reference_mean": below_mean[0] if below_mean else None,
        },
        "runs": runs,
    }


def markdown(report: dict[str, Any]) -> str:
    s, probe, ref = report["settings"], report["probe"], report["reference"]
    lines = [
        f"D-only warm-up after `--init-from` ({s['img_size']} px, ch {s['ch']}, batch {s['batch']}, "
        f"Face ID off, base run {s['base_steps']} steps, compared over {s['compare_steps']} steps).",
        "",
        f"- reference D loss (uninterrupted run): mean {ref['D_mean']:.3f}, "
        f"{s['window']}-step averages within {ref['D_moving_average_range'][0]:.3f}-"
        f"{ref['D_moving_average_range'][1]:.3f}",
        f"- fresh discriminators, generators frozen: D loss {probe['D'][0]:.3f} at the first step; the "
        f"{s['window']}-step average enters the reference's range at step "
        f"{probe['first_step_within_reference_range']} and reaches its mean at step "
        f"{probe['first_step_at_or_below_reference_mean']}",
        "",
        "| D-only steps | D, first 25 steps | reference | D, all | reference | G adv, first 25 | reference "
        "| G adv, all | reference |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for warmup, run in report["runs"].items():
        d, g = run["compared"]["D"], run["compared"]["G_adv"]
        lines.append(
            f"| {warmup} | {d['first_25_mean']:.3f} | {d['reference_first_25_mean']:.3f} | {d['mean']:.3f} "
            f"| {d['reference_mean']:.3f} | {g['first_25_mean']:.3f} | {g['reference_first_25_mean']:.3f} "
            f"| {g['mean']:.3f} | {g['reference_mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a p2c-prepare-data folder (trainA, trainB)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--img-size", type=int, default=96)
    parser.add_argument("--ch", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--base-steps", type=int, default=300)
    parser.add_argument("--compare-steps", type=int, default=100)
    parser.add_argument("--probe-steps", type=int, default=200)
    parser.add_argument("--warmups", type=int, nargs="+", default=[0, 25, 100])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args)
    (args.out / "d_warmup.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "d_warmup.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
