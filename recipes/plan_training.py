"""Pick the batch and the progressive-resolution schedule of a time-limited GPU run from measured speed.

    python recipes/plan_training.py --seconds 360 [--bench training_throughput.json] [--from-scratch]
           [--max-batch 16] [--small-fraction 0.3] [--min-speedup 1.5] [--default-batch 8]

Prints shell assignments for ``default_model.sh`` (``BATCH=16`` and ``SIZE_SCHEDULE=128:900,256:1``
or ``SIZE_SCHEDULE=``), and the reasons on stderr.

- batch: among ``benchmarks/training_throughput.py``'s ``fast`` rows at 256 px, the largest batch up
  to ``--max-batch`` whose samples/s still grows by 5 % over the next smaller one. The cap: at a
  fixed learning rate a larger batch makes fewer updates, and GANs learn per update; past the
  point where samples/s stops growing it only costs updates. Without figures: ``--default-batch``.
- schedule: only for a run from scratch (a continued run's generators have learnt the coarse
  structure 128 px crops teach). If 128 px steps at the chosen batch run at least ``--min-speedup``
  times as fast as 256 px ones, the first ``--small-fraction`` of the time trains at 128 px.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GROWTH = 1.05  # a larger batch must give 5 % more samples/s to be worth fewer updates


def _rows(bench: dict[str, Any], size: int) -> list[dict[str, Any]]:
    rows = [
        r
        for r in bench.get("rows", [])
        if r.get("variant") == "fast" and r.get("img_size") == size and not r.get("error")
    ]
    return sorted((r for r in rows if r.get("samples_per_s")), key=lambda r: r["batch"])


def pick_batch(bench: dict[str, Any] | None, max_batch: int, default: int) -> tuple[int, str]:
    rows = [r for r in _rows(bench or {}, 256) if r["batch"] <= max_batch]
    if not rows:
        return default, f"no 256 px figures: batch {default}"
    chosen = rows[0]
    for row in rows[1:]:
        if row["samples_per_s"] < GROWTH * chosen["samples_per_s"]:
            break
        chosen = row
    figures = ", ".join(f"{r['batch']}: {r['samples_per_s']:.1f}" for r in rows)
    return chosen["batch"], f"batch {chosen['batch']} (samples/s by batch at 256 px: {figures})"


def plan_schedule(
    bench: dict[str, Any] | None, batch: int, seconds: float, fraction: float, min_speedup: float
) -> tuple[str, str]:
    if fraction <= 0:
        return "", "no progressive resolution (fraction 0)"
    large = {r["batch"]: r for r in _rows(bench or {}, 256)}.get(batch)
    small_rows = _rows(bench or {}, 128)
    if large is None or not small_rows:
        return "", "no progressive resolution: no 128 px and 256 px figures to plan it with"
    # The 128 px row nearest the chosen batch; per step, time scales about with the batch.
    small = min(small_rows, key=lambda r: abs(r["batch"] - batch))
    small_steps_per_s = small["samples_per_s"] / batch
    speedup = small_steps_per_s / (large["samples_per_s"] / batch)
    if speedup < min_speedup:
        return "", f"no progressive resolution: 128 px steps only {speedup:.2f}x as fast"
    steps = int(fraction * seconds * small_steps_per_s)
    return f"128:{steps},256:1", f"{steps} steps at 128 px first ({speedup:.2f}x as fast per step)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="training time of the run")
    parser.add_argument("--bench", type=Path, nargs="*", default=[], help="training_throughput.json files")
    parser.add_argument("--from-scratch", action="store_true")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--default-batch", type=int, default=8)
    parser.add_argument("--small-fraction", type=float, default=0.3)
    parser.add_argument("--min-speedup", type=float, default=1.5)
    args = parser.parse_args(argv)
    bench = None
    for path in args.bench:  # the first that holds GPU figures
        if path.is_file():
            content = json.loads(path.read_text())
            if content.get("device_type") == "cuda":
                bench = content
                print(f"plan: figures from {path} ({content.get('device')})", file=sys.stderr)
                break
    batch, why_batch = pick_batch(bench, args.max_batch, args.default_batch)
    schedule, why_schedule = "", "no progressive resolution: the run continues from a state"
    if args.from_scratch:
        fraction, speedup = args.small_fraction, args.min_speedup
        schedule, why_schedule = plan_schedule(bench, batch, args.seconds, fraction, speedup)
    print(f"plan: {why_batch}; {why_schedule}", file=sys.stderr)
    print(f"BATCH={batch}")
    print(f"SIZE_SCHEDULE={schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
