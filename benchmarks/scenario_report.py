"""The tables and the plot of ``pipeline_scenarios.py``'s report (the ones in ``docs/benchmarks.md``).

Tables: the runs against their targets; the per-stage profile (CPU ms per frame from every
thread / wall ms of the stage's calls / cores); where live latency goes, per stage (the wait
before it and the work in it); and the cost runs, CPU ms per stage against the face's size.
The plot: delivered fps against the targets; the p95 latency of the live runs split into work
and queueing; the cost runs' CPU per frame stacked by stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reporting import pyplot, save_figure

__all__ = ["PATHS", "STAGES", "markdown_table", "plot"]

PATHS = ("compact", "full", "reference")
STAGES = ("source", "tracker", "engine", "compositor", "sink")
_HOPS = ("tracker", "engine", "compositor", "sink")


def _target(row: dict[str, Any]) -> str:
    parts = [] if row["target_fps"] is None else [f">= {row['target_fps']:g} fps"]
    if row["target_p95_ms"] is not None:
        parts.append(f"p95 <= {row['target_p95_ms']:g} ms")
    if row.get("target_dropped") is not None:
        parts.append(f"dropped <= {row['target_dropped']:.0%}")
    return ", ".join(parts) or "-"


def _latency_cells(row: dict[str, Any], compact: dict[str, Any]) -> tuple[str, str, str]:
    """p50 / p95 / max, p95 after the first second, and the tail's queueing / work (live runs)."""
    if row["mode"] != "live":
        return "-", "-", "-"
    lat = compact["latency_ms"]
    after = compact.get("latency_ms_steady")
    tail = compact["latency_split"]["tail"]
    return (
        f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f}",
        f"{after['p95']:.0f}" if after else "-",
        f"{tail['queueing_ms']:.0f} / {tail['work_ms']:.0f}",
    )


def _policy_cell(compact: dict[str, Any]) -> str:
    policy = compact["policy"]
    at_zero = policy["frames_at_level"].get("0", 0)
    out = max(compact["frames"]["out"], 1)
    return f"{policy['changes']}, {at_zero / out:.0%}"


def _runs_table(report: dict[str, Any], paths: list[str]) -> list[str]:
    lines = [
        "| run | target (compact) | "
        + " | ".join(f"fps {path}" for path in paths)
        + " | latency p50 / p95 / max (ms) | p95 after 1 s | tail >= p95: queueing / work (ms) "
        "| dropped / in | CPU ms/frame, cores | policy: changes, frames at level 0 | met |",
        "| --- | --- | "
        + " | ".join("---:" for _ in paths)
        + " | --- | ---: | --- | --- | --- | --- | --- |",
    ]
    for row in report["runs"]:
        if row["mode"] == "cost":
            continue
        compact = row.get("compact")
        if compact is None:
            latency = steady = tail = dropped = cpu = policy = "-"
        else:
            latency, steady, tail = _latency_cells(row, compact)
            frames = compact["frames"]
            dropped = f"{frames['dropped']} / {frames['in']}"
            cpu = f"{compact['cpu_ms_per_frame']:.0f}, {compact['cores']:.2f}"
            policy = _policy_cell(compact) if row["mode"] == "live" else "-"
        met = {True: "yes", False: "**no**", None: "-"}[row["targets_met"]]
        fps = " | ".join("-" if row.get(path) is None else f"{row[path]['fps']:.1f}" for path in paths)
        lines.append(
            f"| {row['name']} | {_target(row)} | {fps} | {latency} | {steady} | {tail} | {dropped} "
            f"| {cpu} | {policy} | {met} |"
        )
    return lines


def _profile_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "Profile of p2c's pipeline: per stage, CPU ms per frame out from every thread (the stage's own, "
        "MediaPipe's, the engine pool's, the codec's) / wall ms per frame of the stage's calls / cores",
        "",
        "| run | path | face px | " + " | ".join(STAGES) + " | other threads | policy at the end |",
        "| --- | --- | ---: | " + " | ".join("---" for _ in STAGES) + " | --- | --- |",
    ]
    for row in report["runs"]:
        for path in ("compact", "full"):
            result = row.get(path)
            if result is None:
                continue
            cells = " | ".join(
                f"{s['cpu_ms_per_frame']:.1f} / {s['wall_ms_per_frame']:.1f} / {s['cores']:.2f}"
                for s in (result["stages"][name] for name in STAGES)
            )
            policy = result["policy"]["lowered"] or "-"
            other = result["other_threads"]["cpu_ms_per_frame"]
            face = result["face_px"]["median"]
            lines.append(f"| {row['name']} | {path} | {face:.0f} | {cells} | {other:.1f} | {policy} |")
    return lines


def _split_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "Where the live latency goes (compact, past the first second): per stage, the wait before it "
        "(in the queue; before the tracker, the source's queue too) and the work in it, mean / p95 ms",
        "",
        "| run | "
        + " | ".join(f"wait before {hop}" for hop in _HOPS)
        + " | "
        + " | ".join(f"work in {hop}" for hop in _HOPS)
        + " |",
        "| --- | " + " | ".join("---" for _ in range(2 * len(_HOPS))) + " |",
    ]
    for row in report["runs"]:
        compact = row.get("compact")
        if compact is None or row["mode"] != "live":
            continue
        split = compact["latency_split"]
        cells = []
        for key in ("wait_before_ms", "work_in_ms"):
            for hop in _HOPS:
                figure = split[key].get(hop, {"mean": 0.0, "p95": 0.0})
                cells.append(f"{figure['mean']:.1f} / {figure['p95']:.1f}")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return lines


def _cost_table(report: dict[str, Any]) -> list[str]:
    rows = [row for row in report["runs"] if row["mode"] == "cost" and "compact" in row]
    if not rows:
        return []
    lines = [
        "What each frame costs on the live path (cost runs, compact: every frame, unpaced), CPU ms per "
        "frame from every thread",
        "",
        "| scenario | face px | " + " | ".join(STAGES) + " | total | fps unpaced |",
        "| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: | ---: |",
    ]
    for row in rows:
        result = row["compact"]
        stages = [result["stages"][name]["cpu_ms_per_frame"] for name in STAGES]
        total = sum(stages) + result["other_threads"]["cpu_ms_per_frame"]
        cells = " | ".join(f"{value:.1f}" for value in stages)
        lines.append(
            f"| {row['name'].removeprefix('cost ')} | {result['face_px']['median']:.0f} | {cells} "
            f"| {total:.1f} | {result['fps']:.1f} |"
        )
    return lines


def markdown_table(report: dict[str, Any]) -> str:
    """The runs (targets first), the profile, the live latency per stage and the cost runs."""
    paths = [path for path in PATHS if any(path in row for row in report["runs"])]
    lines = [*_runs_table(report, paths), "", *_profile_table(report), "", *_split_table(report)]
    cost = _cost_table(report)
    if cost:
        lines += ["", *cost]
    decoding = report.get("mjpeg_decoding")
    if decoding:
        width, height = decoding["size"]
        ways = ", ".join(f"{name} {ms:.1f}" for name, ms in decoding["cpu_ms_per_frame"].items())
        lines += ["", f"Decoding one {width}x{height} MJPEG frame to RGB, CPU ms (taking turns): {ways}"]
    return "\n".join(lines) + "\n"


def _stage_cpu(result: dict[str, Any], stage: str) -> float:
    source = result["other_threads"] if stage == "other" else result["stages"][stage]
    return float(source["cpu_ms_per_frame"])


def plot(report: dict[str, Any], path: Path) -> None:
    """Three panels: fps against the targets; live p95 latency split; the cost runs by stage."""
    plt = pyplot()
    rows = [row for row in report["runs"] if row["mode"] != "cost"]
    costs = [row for row in report["runs"] if row["mode"] == "cost" and "compact" in row]
    paths = [p for p in PATHS if any(p in row for row in rows)]
    figure, (speed, latency, cost) = plt.subplots(1, 3, figsize=(18, 5))
    x = np.arange(len(rows))
    width = 0.8 / max(len(paths), 1)
    for i, name in enumerate(paths):
        fps = [row[name]["fps"] if name in row else 0.0 for row in rows]
        speed.bar(x + (i - (len(paths) - 1) / 2) * width, fps, width, label=name)
    for i, row in enumerate(rows):
        if row["target_fps"] is not None:
            speed.hlines(row["target_fps"], i - 0.45, i + 0.45, colors="k", linestyles="--")
    speed.set_xticks(x, [row["name"] for row in rows], rotation=60, ha="right", fontsize=7)
    speed.set_ylabel("frames per second delivered (dashed: target)")
    speed.set_title(str(report["machine"].get("cpu")))
    speed.legend(fontsize=8)
    live = [row for row in rows if row["mode"] == "live" and "compact" in row]
    lx = np.arange(len(live))
    tails = [row["compact"]["latency_split"]["tail"] for row in live]
    work = np.array([tail["work_ms"] for tail in tails])
    latency.bar(lx, work, 0.6, label="work")
    latency.bar(lx, [tail["queueing_ms"] for tail in tails], 0.6, bottom=work, label="queueing")
    for i, row in enumerate(live):
        if row["target_p95_ms"] is not None:
            latency.hlines(row["target_p95_ms"], i - 0.4, i + 0.4, colors="k", linestyles="--")
    latency.set_xticks(lx, [row["name"] for row in live], rotation=60, ha="right", fontsize=7)
    latency.set_ylabel("compact, mean latency of the frames >= p95 (ms; dashed: p95 target)")
    latency.legend(fontsize=8)
    cx = np.arange(len(costs))
    bottom = np.zeros(len(costs))
    for stage in (*STAGES, "other"):
        values = np.array([_stage_cpu(row["compact"], stage) for row in costs])
        cost.bar(cx, values, 0.6, bottom=bottom, label=stage)
        bottom += values
    labels = [
        f"{row['name'].removeprefix('cost ')}\n{row['compact']['face_px']['median']:.0f} px" for row in costs
    ]
    cost.set_xticks(cx, labels, rotation=60, ha="right", fontsize=7)
    cost.set_ylabel("CPU ms per frame on the live path (cost runs, compact)")
    cost.legend(fontsize=8)
    save_figure(figure, path)
