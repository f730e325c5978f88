"""Add this GPU run to the generator state's history: what the model card reports as its training.

    python recipes/record_run.py NEW_STATE [--previous OLD_STATE] --device NAME --train-seconds S
           --call-seconds S --batch B [--size-schedule 128:900,256:1] [--d-warmup-steps N]

NEW_STATE/state.json (written by ``p2c-train --generator-state``) gets ``history``: the previous
state's entries plus this run's (date, device, steps, samples, batch, schedule, seconds), and the
totals ``gpu_minutes`` (training time) and ``device_minutes`` (whole calls, benchmark included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _read(folder: Path | None) -> dict[str, Any]:
    path = folder / "state.json" if folder is not None else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def record(new: Path, previous: Path | None, run: dict[str, Any]) -> dict[str, Any]:
    state, before = _read(new), _read(previous)
    entry = {
        "date": time.strftime("%Y-%m-%d"),
        "from_step": before.get("step", 0),
        "to_step": state["step"],
        "samples": state.get("samples_seen", 0) - before.get("samples_seen", 0),
        **run,
    }
    history = [*before.get("history", []), entry]
    state["history"] = history
    state["gpu_minutes"] = round(sum(h["train_seconds"] for h in history) / 60, 1)
    state["device_minutes"] = round(sum(h["call_seconds"] for h in history) / 60, 1)
    (new / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("--previous", type=Path, default=None)
    parser.add_argument("--device", required=True)
    parser.add_argument("--train-seconds", type=float, required=True)
    parser.add_argument("--call-seconds", type=float, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--size-schedule", default="")
    parser.add_argument("--d-warmup-steps", type=int, default=0)
    args = parser.parse_args(argv)
    run = {
        "device": args.device,
        "batch": args.batch,
        "size_schedule": args.size_schedule or None,
        "d_warmup_steps": args.d_warmup_steps,
        "train_seconds": round(args.train_seconds),
        "call_seconds": round(args.call_seconds),
    }
    state = record(args.new, args.previous, run)
    print(
        f"record: step {state['step']}, {state.get('samples_seen')} samples seen, "
        f"{state['gpu_minutes']} GPU minutes over {len(state['history'])} runs",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
