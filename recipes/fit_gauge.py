"""Fit the cartoon-ness gauge on p2c's crops and write its weights with a record of the fit.

    python recipes/fit_gauge.py DATA --out src/p2c/training/gauge/cartoon_gauge.safetensors

DATA: the crops of ``p2c-prepare-data`` (trainA photos, trainB cartoons for the fit, with untrained
generators' outputs of the photos as more "not a cartoon"; testA and testB, held out, for the
figures). Writes ``OUT`` and ``OUT`` with ``.json``: the architecture, the input size, the seed, the
data counts, the epochs, the fit's time and machine, and the held-out figures (accuracy, AUC, each
held-out image's P(cartoon); the mean P(cartoon) of held-out photos and cartoons blurred,
down-sampled, re-compressed, smoothed and paled, of crude stylisations and of unseen untrained
generators' outputs). One torch thread: the fit is
repeatable on a machine, and it leaves the other core to whatever else runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import numpy as np

    from p2c.training.gauge import CartoonGauge


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def crude_stylisation(gauge: CartoonGauge, photos: list[np.ndarray]) -> dict[str, float]:
    """Mean P(cartoon) of identity_baseline.py's hand-made "cartoon" of each photo (bilateral
    smoothing, 8 colours, dark edges): a filter, not the cartoons' style."""
    from identity_baseline import stylise  # recipes/ is on the path when this script runs

    from p2c.training.gauge.fitting import scores

    values = scores(gauge, [stylise(photo) for photo in photos])
    return {"mean": float(values.mean()), "at_least_half": float((values >= 0.5).mean())}


def untrained(gauge: CartoonGauge, photos: list[np.ndarray]) -> dict[str, Any]:
    """P(cartoon) of unseen untrained generators' outputs (seeds 0-5; the fit's start at 1000)."""
    from p2c.training.gauge.fitting import scores
    from p2c.training.gauge.negatives import untrained_outputs

    values = scores(gauge, untrained_outputs(photos, generators=6, per_generator=10, seed=0))
    return {
        "mean": float(values.mean()),
        "at_least_half": float((values >= 0.5).mean()),
        "per_generator_mean": [round(float(v), 4) for v in values.reshape(6, -1).mean(axis=1)],
    }


def fit(args: argparse.Namespace) -> dict[str, Any]:
    from p2c.training.evaluation import load_crops
    from p2c.training.gauge import save_gauge
    from p2c.training.gauge.fitting import FitConfig, fit_gauge, separation, stress_figures

    torch.set_num_threads(args.threads)
    config = FitConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    _, photos, _ = load_crops(args.data / "trainA", align="no")
    _, cartoons, _ = load_crops(args.data / "trainB", align="no")
    load_before = _load()
    result = fit_gauge(photos, cartoons, config)
    load_after = _load()
    test_names_a, test_a, _ = load_crops(args.data / "testA", align="no")
    test_names_b, test_b, _ = load_crops(args.data / "testB", align="no")
    record = {
        "what": "P(cartoon) of an image: trainA photos (0) against trainB cartoons (1)",
        "fit": config.to_dict(),
        "parameters": result.gauge.parameter_count,
        "data": {
            "dir": str(args.data),
            "trainA": len(photos),
            "trainB": len(cartoons),
            "negatives": result.negatives,
            "testA": len(test_a),
            "testB": len(test_b),
        },
        "seconds": round(result.seconds, 1),
        "machine": {
            "cpu": _cpu(),
            "torch_threads": args.threads,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "torch": torch.__version__,
        },
        "history": result.history,
        "heldout": separation(result.gauge, test_a, test_b, test_names_a, test_names_b),
        "stress": {
            "testA": stress_figures(result.gauge, test_a),
            "testB": stress_figures(result.gauge, test_b),
        },
        "crude_stylisation_testA": crude_stylisation(result.gauge, test_a),
        "untrained_testA": untrained(result.gauge, test_a),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_gauge(result.gauge, args.out, record)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="crops: trainA, trainB (fit), testA, testB (figures)")
    parser.add_argument("--out", type=Path, required=True, help="the weights (.safetensors; .json beside)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    record = fit(args)
    heldout = record["heldout"]
    stress = record["stress"]["testA"]
    print(
        f"{args.out}: {record['parameters']:,} parameters, fitted in {record['seconds']:.0f} s; held out: "
        f"accuracy {heldout['accuracy']:.3f}, AUC {heldout['auc']:.3f}, "
        f"photo max P {heldout['photo_max']:.3f}, cartoon min P {heldout['cartoon_min']:.3f}; "
        f"testA blurred (sigma 2) mean P "
        f"{stress['blur_sigma_2']['mean']:.3f}, down-sampled x0.25 {stress['downscaled_x0.25']['mean']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
