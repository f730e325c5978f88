"""What continuing from the portable FP16 state costs, against resuming the full state exactly.

    python recipes/measure_rewarm.py RUN_DIR DATA OUT --steps 300 [--rewarm 0 100]

RUN_DIR holds a compact run's ``state.pt`` (networks, both Adams). From it, three continuations of
``--steps`` steps each, run one after another on the same machine:

- ``exact``: the full state (what the same machine does every 5 minutes);
- ``portable/R``: the networks rounded to FP16 and fresh Adams whose learning rate ramps up over R
  steps (what a new session does), for each R of ``--rewarm``.

Writes ``OUT/rewarm.json``: per continuation the loss curves (means over windows of 25 steps), the
mean over the first 50 and over all steps, CPU seconds, and the generator's moving-average output
difference to ``exact`` on eight training photos at the end (mean absolute, in [-1, 1] units).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from p2c.training.compact_run import CompactRunConfig, train_compact  # noqa: E402
from p2c.training.compact_state import FULL_STATE, RunProgress, export_portable_state  # noqa: E402
from p2c.training.crops import CropBank  # noqa: E402
from p2c.training.onesided import OneSidedConfig, OneSidedNetworks  # noqa: E402

WINDOW = 25


def run_config(run_dir: Path, data: Path, out: Path, steps: int, **changes: object) -> CompactRunConfig:
    saved = json.loads((run_dir / "config.json").read_text())
    saved["objective"] = OneSidedConfig.from_dict(saved["objective"])
    saved.update(processes=1, threads=1)  # one process: the three continuations are compared step by step
    config = CompactRunConfig(**saved)
    start = torch.load(run_dir / FULL_STATE, map_location="cpu", weights_only=True)["progress"]["step"]
    settings: dict[str, object] = {
        "data_dir": str(data), "out_dir": str(out), "max_steps": start + steps, "log_every": 1,
        "sample_minutes": 1e9, "save_minutes": 10, "state_dir": None, "init_from": None, "cpu_hours": None,
    }  # fmt: skip
    return replace(config, **{**settings, **changes})  # type: ignore[arg-type]


def curves(metrics: Path, start: int) -> dict[str, object]:
    rows = [line.split(",") for line in metrics.read_text().splitlines()]
    header, body = rows[0], [r for r in rows[1:] if int(r[0]) > start]
    out: dict[str, object] = {}
    for key in ("d", "g_adv", "nce"):
        values = [float(r[header.index(key)]) for r in body]
        out[key] = {
            "first_50": sum(values[:50]) / max(len(values[:50]), 1),
            "all": sum(values) / max(len(values), 1),
            "windows": [
                round(sum(values[i : i + WINDOW]) / len(values[i : i + WINDOW]), 4)
                for i in range(0, len(values), WINDOW)
            ],
        }
    return out


@torch.no_grad()
def ema_output(run: Path, config: CompactRunConfig, photos: torch.Tensor) -> torch.Tensor:
    nets = OneSidedNetworks(config.objective)
    state = torch.load(run / FULL_STATE, map_location="cpu", weights_only=True)
    nets.generator_ema.load_state_dict(state["networks"]["generator_ema"])
    return nets.generator_ema(photos).image


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rewarm", type=int, nargs="+", default=[0, 100])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = torch.load(args.run_dir / FULL_STATE, map_location="cpu", weights_only=True)["progress"]["step"]

    results: dict[str, dict[str, object]] = {}
    runs: dict[str, Path] = {}
    exact = args.out / "exact"
    shutil.rmtree(exact, ignore_errors=True)
    exact.mkdir()
    shutil.copy2(args.run_dir / FULL_STATE, exact / FULL_STATE)
    plans = [("exact", exact, {})]
    for rewarm in args.rewarm:
        # The portable state of the same step: the networks in FP16, no Adams.
        portable = args.out / f"portable_state_{rewarm}"
        shutil.rmtree(portable, ignore_errors=True)
        config = run_config(args.run_dir, args.data, args.out, 0)
        nets = OneSidedNetworks(config.objective)
        payload = torch.load(args.run_dir / FULL_STATE, map_location="cpu", weights_only=True)
        for name, state in payload["networks"].items():
            getattr(nets, name).load_state_dict(state)
        export_portable_state(portable, config.to_dict(), nets, RunProgress(**payload["progress"]))
        plans.append(
            (
                f"portable/{rewarm}",
                args.out / f"portable_{rewarm}",
                {"init_from": str(portable), "rewarm_steps": max(rewarm, 1) if rewarm else 1},
            )
        )
    for label, out, changes in plans:
        if label != "exact":
            shutil.rmtree(out, ignore_errors=True)
        config = run_config(args.run_dir, args.data, out, args.steps, **changes)
        cpu = time.process_time()
        train_compact(config)
        results[label] = {
            "cpu_seconds": round(time.process_time() - cpu, 1),
            **curves(out / "metrics.csv", start),
        }
        runs[label] = out
        print(label, json.dumps({k: v["first_50"] for k, v in results[label].items() if isinstance(v, dict)}))

    config = run_config(args.run_dir, args.data, exact, 0)
    photos = CropBank(args.data / "trainA", 0)
    batch = torch.stack([photos.plain(i, 256) for i in range(8)])
    reference = ema_output(exact, config, batch)
    for label, out in runs.items():
        results[label]["ema_output_mad_vs_exact"] = round(
            float((ema_output(out, config, batch) - reference).abs().mean()), 5
        )
    report = {
        "run_dir": str(args.run_dir),
        "from_step": start,
        "steps": args.steps,
        "window": WINDOW,
        "results": results,
    }
    (args.out / "rewarm.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: {
                    "first_50": {m: round(v[m]["first_50"], 4) for m in ("d", "g_adv", "nce")},
                    "mad": v["ema_output_mad_vs_exact"],
                }
                for k, v in results.items()
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
