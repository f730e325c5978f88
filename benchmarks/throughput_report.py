"""The generator throughput report as Markdown tables and a plot (``benchmarks/generator_throughput.py``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator_throughput import Report, Timing

__all__ = ["write_markdown", "write_plot"]

log = logging.getLogger("p2c.benchmarks.generator_throughput")


def write_markdown(report: Report, path: Path) -> None:
    machine = report.machine
    gpu = machine["gpu"] or "none"
    lines = [
        f"Machine: {machine['cpu']} ({machine['cpu_count']} logical CPUs), GPU: {gpu}; "
        f"torch {machine['versions'].get('torch')}, onnxruntime {machine['versions'].get('onnxruntime')}; "
        f"load average {machine.get('load_average_at_start')} at start, "
        f"{machine.get('load_average_at_end')} at end.",
        "",
        f"Reference path: {report.reference['description']}: "
        f"{report.reference['faces_per_s']:.2f} faces/s, "
        f"{report.reference['ms_per_face_p50']:.1f} ms per face (p50).",
        "",
        f"Reference + FTZ: {report.reference_ftz['description']}: "
        f"{report.reference_ftz['faces_per_s']:.2f} faces/s, "
        f"{report.reference_ftz['ms_per_face_p50']:.1f} ms per face (p50).",
        "",
        "| backend | precision | device | I/O | batch | faces/s | ms/batch p50 | ms/batch p95 | vs reference "
        "| vs reference + FTZ | start s |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report.results:
        lines.append(
            f"| {r.backend} | {r.precision} | {r.device} | {r.io} | {r.batch} | {r.faces_per_s:.2f} "
            f"| {r.ms_per_batch_p50:.2f} | {r.ms_per_batch_p95:.2f} | {r.speedup_vs_reference:.2f}x "
            f"| {r.speedup_vs_reference_ftz:.2f}x | {r.setup_s:.1f} |"
        )
    if report.head_to_head:
        h = report.head_to_head
        lines += [
            "",
            f"Head to head (alternating calls, {h['rounds']} rounds): auto = {h['backend']} {h['precision']} "
            f"batch {h['batch']} {h['ms_per_face_p50']:.1f} ms per face vs the reference path "
            f"{h['reference_ms_per_face_p50']:.1f} ms: **{h['speedup_per_face']:.2f}x** per face; "
            f"vs the reference + FTZ {h['reference_ftz_ms_per_face_p50']:.1f} ms: "
            f"**{h['speedup_per_face_vs_reference_ftz']:.2f}x** per face.",
        ]
    lines += [
        "",
        "| backend | precision | max abs error vs torch FP32 | PSNR (dB) |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [
        f"| {a.backend} | {a.precision} | {a.max_abs_error:.2e} | {a.psnr_db:.1f} |" for a in report.accuracy
    ]
    if report.interleaved:
        cases = list(report.interleaved[0]["faces_per_s"])
        lines += [
            "",
            f"Interleaved (one call per case in turn, {report.interleaved[0]['rounds']} rounds; "
            f"faces/s, and speed relative to {cases[0]}):",
            "",
            "| batch | " + " | ".join(cases) + " |",
            "| ---: | " + " | ".join("---:" for _ in cases) + " |",
        ]
        for row in report.interleaved:
            cells = [f"{row['faces_per_s'][c]:.2f} ({row['speed_vs_first'][c]:.2f}x)" for c in cases]
            lines.append(f"| {row['batch']} | " + " | ".join(cells) + " |")
    if report.starts:
        lines += [
            "",
            "| backend | precision | first start s (this run: build or export, load, first call) "
            "| later start s (fresh process: create + first call) | import s |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for start in report.starts:
            later = start["cached"]
            cached = f"{later['start_s']:.2f}" if "start_s" in later else f"failed: {later.get('error')}"
            lines.append(
                f"| {start['backend']} | {start['precision']} | {start['first_start_s']:.1f} | {cached} "
                f"| {later.get('import_s', 0.0):.2f} |"
            )
    if report.skipped:
        lines += [
            "",
            "Skipped:",
            *[f"- {s['backend']} {s['precision']}: {s['reason']}" for s in report.skipped],
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_plot(report: Report, path: Path) -> bool:
    """The faces/s plot; False (and no file) where matplotlib is not installed (e.g. a bare GPU image)."""
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed: no plot written")
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list[Timing]] = {}
    for timing in report.results:
        series.setdefault(f"{timing.backend} {timing.precision} {timing.io}", []).append(timing)
    for label, timings in series.items():
        axes.plot([t.batch for t in timings], [t.faces_per_s for t in timings], marker="o", label=label)
    axes.axhline(
        report.reference["faces_per_s"], color="black", linestyle="--", label="reference (torch FP32, 1 face)"
    )
    axes.set_xscale("log", base=2)
    axes.set_xlabel("batch size")
    axes.set_ylabel("faces / s")
    axes.set_title(f"Generator throughput: {report.machine['cpu']}"[:70])
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
