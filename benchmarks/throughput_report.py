"""The generator throughput report as Markdown tables and a plot (``benchmarks/generator_throughput.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generator_throughput import Report, Timing

__all__ = ["summary_line", "write_markdown", "write_plot"]

log = logging.getLogger("p2c.benchmarks.generator_throughput")


def _by_arch(rows: Iterable[dict[str, Any]], arch: str) -> dict[str, Any]:
    return next((row for row in rows if row["arch"] == arch), {})


def summary_line(report: Report) -> str:
    """``compact (1.11 GFLOP/face): best backend onnxruntime fp32 at batch 1: 52.10 faces/s; ...``."""
    reference_p2c = _by_arch(report.reference, "photo2cartoon").get("faces_per_s")
    parts = []
    for cost in report.archs:
        head = f"{cost.arch} ({cost.gflop_per_face:.3g} GFLOP/face, {cost.params / 1e6:.3g} M parameters)"
        best = cost.best_at_batch_1
        if not best:
            parts.append(f"{head}: no case timed at batch 1")
            continue
        against = f"{best['speedup_vs_reference']:.2f}x its reference path"
        if reference_p2c and cost.arch != "photo2cartoon":
            against += f", {best['faces_per_s'] / reference_p2c:.1f}x photo2cartoon's reference path"
        parts.append(
            f"{head}: best backend {best['backend']} {best['precision']} at batch 1: "
            f"**{best['faces_per_s']:.2f} faces/s** ({against})"
        )
    return "; ".join(parts) + "."


def write_markdown(report: Report, path: Path) -> None:
    machine = report.machine
    gpu = machine["gpu"] or "none"
    gflop = {cost.arch: cost.gflop_per_face for cost in report.archs}
    lines = [
        f"Machine: {machine['cpu']} ({machine['cpu_count']} logical CPUs), GPU: {gpu}; "
        f"torch {machine['versions'].get('torch')}, onnxruntime {machine['versions'].get('onnxruntime')}; "
        f"load average {machine.get('load_average_at_start')} at start, "
        f"{machine.get('load_average_at_end')} at end.",
        "",
        f"Numpy in and out, {report.settings.get('img_size')} px: {summary_line(report)}",
        "",
        "| arch | reference path | faces/s | ms per face p50 | ms per face p95 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for arch in (cost.arch for cost in report.archs):
        for name, rows in (("reference", report.reference), ("reference + FTZ", report.reference_ftz)):
            if ref := _by_arch(rows, arch):
                lines.append(
                    f"| {arch} | {name} | {ref['faces_per_s']:.2f} | {ref['ms_per_face_p50']:.1f} "
                    f"| {ref['ms_per_face_p95']:.1f} |"
                )
    for name, rows in (("Reference", report.reference), ("Reference + FTZ", report.reference_ftz)):
        lines += ["", f"{name}: {rows[0]['description']}."] if rows else []
    lines += [
        "",
        "| arch | backend | precision | device | I/O | batch | faces/s | GFLOP/s | ms/batch p50 "
        "| ms/batch p95 | vs reference | vs reference + FTZ | start s |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report.results:
        lines.append(
            f"| {r.arch} | {r.backend} | {r.precision} | {r.device} | {r.io} | {r.batch} "
            f"| {r.faces_per_s:.2f} | {r.faces_per_s * gflop.get(r.arch, 0.0):.1f} "
            f"| {r.ms_per_batch_p50:.2f} | {r.ms_per_batch_p95:.2f} | {r.speedup_vs_reference:.2f}x "
            f"| {r.speedup_vs_reference_ftz:.2f}x | {r.setup_s:.1f} |"
        )
    for h in report.head_to_head:
        lines += [
            "",
            f"Head to head, {h['arch']} (alternating calls, {h['rounds']} rounds): auto = {h['backend']} "
            f"{h['precision']} batch {h['batch']} {h['ms_per_face_p50']:.1f} ms per face "
            f"vs the reference path "
            f"{h['reference_ms_per_face_p50']:.1f} ms: **{h['speedup_per_face']:.2f}x** per face; "
            f"vs the reference + FTZ {h['reference_ftz_ms_per_face_p50']:.1f} ms: "
            f"**{h['speedup_per_face_vs_reference_ftz']:.2f}x** per face.",
        ]
    lines += [
        "",
        "| arch | backend | precision | max abs error vs torch FP32 | PSNR (dB) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    lines += [
        f"| {a.arch} | {a.backend} | {a.precision} | {a.max_abs_error:.2e} | {a.psnr_db:.1f} |"
        for a in report.accuracy
    ]
    lines += _interleaved_lines(report)
    if report.starts:
        lines += [
            "",
            "| arch | backend | precision | first start s (this run: build or export, load, first call) "
            "| later start s (fresh process: create + first call) | import s |",
            "| --- | --- | --- | ---: | ---: | ---: |",
        ]
        for start in report.starts:
            later = start["cached"]
            cached = f"{later['start_s']:.2f}" if "start_s" in later else f"failed: {later.get('error')}"
            lines.append(
                f"| {start['arch']} | {start['backend']} | {start['precision']} "
                f"| {start['first_start_s']:.1f} | {cached} | {later.get('import_s', 0.0):.2f} |"
            )
    if report.skipped:
        lines += [
            "",
            "Skipped:",
            *[f"- {s['arch']} {s['backend']} {s['precision']}: {s['reason']}" for s in report.skipped],
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _interleaved_lines(report: Report) -> list[str]:
    """One table per architecture: its cases timed call by call in turn."""
    lines: list[str] = []
    for arch in dict.fromkeys(row["arch"] for row in report.interleaved):
        rows = [row for row in report.interleaved if row["arch"] == arch]
        cases = list(rows[0]["faces_per_s"])
        lines += [
            "",
            f"Interleaved, {arch} (one call per case in turn, {rows[0]['rounds']} rounds; "
            f"faces/s, and speed relative to {cases[0]}):",
            "",
            "| batch | " + " | ".join(cases) + " |",
            "| ---: | " + " | ".join("---:" for _ in cases) + " |",
        ]
        for row in rows:
            cells = [f"{row['faces_per_s'][c]:.2f} ({row['speed_vs_first'][c]:.2f}x)" for c in cases]
            lines.append(f"| {row['batch']} | " + " | ".join(cells) + " |")
    return lines


def write_plot(report: Report, path: Path) -> bool:
    """Faces/s against batch size, one line per arch x case, each arch's reference path dashed (log
    scales: the architectures differ some 30x); False (and no file) where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed: no plot written")
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5))
    archs = list(dict.fromkeys(cost.arch for cost in report.archs))
    styles = {arch: ("-", "--", "-.", ":")[i % 4] for i, arch in enumerate(archs)}
    markers = {arch: "osD^v"[i % 5] for i, arch in enumerate(archs)}
    series: dict[tuple[str, str], list[Timing]] = {}
    for timing in report.results:
        label = f"{timing.backend} {timing.precision} {timing.io}"
        series.setdefault((timing.arch, label), []).append(timing)
    # One colour per case, the same in every architecture; one line style and marker per architecture.
    colors = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(label for _, label in series))}
    for (arch, label), timings in series.items():
        axes.plot(
            [t.batch for t in timings],
            [t.faces_per_s for t in timings],
            color=colors[label],
            linestyle=styles.get(arch, "-"),
            marker=markers.get(arch, "o"),
            label=f"{arch}: {label}",
        )
    for reference in report.reference:
        axes.axhline(
            reference["faces_per_s"],
            color="gray",
            linewidth=1,
            linestyle=styles.get(reference["arch"], "-"),
            label=f"{reference['arch']}: reference (torch FP32, 1 face)",
        )
    batches = sorted({t.batch for t in report.results})
    axes.set_xscale("log", base=2)
    if batches:
        axes.set_xticks(batches, [str(b) for b in batches])
    axes.set_yscale("log")
    axes.set_xlabel("batch size")
    axes.set_ylabel("faces / s")
    axes.set_title(f"Generator throughput: {report.machine['cpu']}"[:70])
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
