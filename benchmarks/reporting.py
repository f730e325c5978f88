"""What every benchmark script does with its report: JSON, Markdown and a plot under ``--out``, the
table on stdout, one line saying where the files went, and errors as one line (``p2c.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

Report = dict[str, Any]


class BenchmarkMain(Protocol):
    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def pyplot() -> Any:
    """matplotlib's pyplot drawing to files only (no display on CI or GPU machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path, dpi: int = 100) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)


def write_report(
    out: Path, name: str, report: Report, markdown: str, plot: Callable[[Report, Path], None]
) -> None:
    """``out/NAME.json``, ``.md`` and ``.png``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    plot(report, out / f"{name}.png")


def benchmark_command(
    name: str,
    parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[argparse.Namespace], Report],
    table: Callable[[Report], str],
) -> BenchmarkMain:
    """``main(argv)`` of a benchmark script: parse, ``run`` (which writes the files), print the table."""

    def _main(argv: Sequence[str] | None) -> int:
        args = parser().parse_args(argv)
        report = run(args)
        print(table(report), end="")
        print(f"wrote {args.out / name}.json, .md and .png", file=sys.stderr)
        return 0

    def main(argv: Sequence[str] | None = None) -> int:
        from p2c.cli import run_command

        return run_command(_main, argv, prog=name)

    return main
