"""``p2c-doctor``: will the live filter work on this machine, how fast, and what to do if not.

One screen: p2c's version and its default model; the backends that run here, with faces per second
measured now (``--seconds`` each); the live frame rate to expect at 720p and 1080p; the cameras; the
virtual camera, with the steps to get one; MediaPipe and PyAV. Exit 0 when live use should work, 2
with the reasons when it cannot.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from p2c.cli import EXIT_ERROR, positive_float, run_command
from p2c.doctor.checks import (
    Finding,
    check_backends,
    check_cameras,
    check_mediapipe,
    check_model,
    check_pyav,
    check_version,
    check_virtual_camera,
)
from p2c.doctor.estimate import CHECKOUT, estimate_live_fps, load_profiles

__all__ = ["build_parser", "diagnose", "main", "render"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-doctor",
        description="Check that the live cartoon filter can work here: model, backends and their speed, "
        "cameras, virtual camera, MediaPipe, PyAV. Exit 0 if it can, 2 (with the reasons) if not.",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=1.5,
        metavar="SEC",
        help="how long to measure each backend (default %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    return parser


def _expected_fps(speeds: list) -> Finding:
    profiles, source = load_profiles()
    if not speeds:
        return Finding("expected live fps", ("no backend runs here",))
    best = speeds[0]
    if source is None:
        return Finding(
            "expected live fps",
            ("no committed profile found (docs/benchmarks/issue25/pipeline_scenarios.json)",),
        )
    estimates = estimate_live_fps(best.faces_per_s, profiles)
    lines = tuple(
        f"{e.size}, one face: about {e.fps:.0f} fps ({e.cpu_ms_per_frame:.0f} ms of CPU a frame; {best.name})"
        + ("" if e.measured else "; from the 720p profile, scaled by the pixels")
        for e in estimates
    )
    where = source.relative_to(CHECKOUT) if source.is_relative_to(CHECKOUT) else source
    return Finding(
        "expected live fps (estimate)",
        (*lines, f"(the committed live profiles, {where}, scaled by the speed measured now)"),
    )


def diagnose(seconds: float) -> list[Finding]:
    """Every check, in the order the report shows them."""
    findings = [check_version(), check_model()]
    backends, speeds = check_backends(seconds)
    findings += [backends, _expected_fps(speeds)]
    findings.append(check_cameras()[0])
    findings += [check_virtual_camera(), check_mediapipe(), check_pyav()]
    return findings


def render(findings: list[Finding]) -> tuple[str, list[str]]:
    """The report as text, and the reasons live use cannot work (empty: it should)."""
    out, reasons = [], []
    for finding in findings:
        mark = "!!" if finding.blocks else "ok"
        out.append(f"[{mark}] {finding.title}")
        out += [f"     {line}" for line in finding.lines]
        if finding.advice:
            out.append("     to fix:")
            out += [f"       {step}" for step in finding.advice]
        if finding.blocks:
            reasons.append(finding.blocks)
    if reasons:
        out.append(f"live use: not ready: {'; '.join(reasons)}")
    else:
        out.append("live use: ready: p2c-stream --camera 0 --virtualcam")
    return "\n".join(out), reasons


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    text, reasons = render(diagnose(args.seconds))
    print(text)
    return EXIT_ERROR if reasons else 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-doctor")


if __name__ == "__main__":
    sys.exit(main())
