"""The shared command-line runner: one-line errors, exit codes, native log lines hidden."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from p2c.cli import EXIT_ERROR, run_command
from p2c.errors import InputNotFoundError


def test_p2c_error_becomes_one_line_and_exit_code_2(capsys) -> None:
    def main(argv):
        raise InputNotFoundError("input clip.mp4 does not exist; check the path")

    assert run_command(main, [], prog="p2c-test") == EXIT_ERROR
    assert capsys.readouterr().err == "p2c-test: error: input clip.mp4 does not exist; check the path\n"


def _run_script(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        """
        import os, sys
        from p2c.cli import run_command
        from p2c.errors import WeightsError

        def main(argv):
            os.write(2, b"W0000 native library chatter\\n")  # what MediaPipe's C++ logging does
            print("progress", file=sys.stderr)
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)


def test_native_log_lines_are_hidden_but_ours_are_kept() -> None:
    result = _run_script(
        """
            raise WeightsError("w.pt is not a generator checkpoint")
        sys.exit(run_command(main, sys.argv[1:], prog="p2c-test"))
        """
    )
    assert result.returncode == EXIT_ERROR
    assert "native library chatter" not in result.stderr
    assert result.stderr.splitlines() == ["progress", "p2c-test: error: w.pt is not a generator checkpoint"]


def test_verbose_keeps_native_log_lines() -> None:
    result = _run_script(
        """
        sys.exit(run_command(main, sys.argv[1:], prog="p2c-test"))
        """,
        "--verbose",
    )
    assert result.returncode == 0
    assert "native library chatter" in result.stderr


def test_a_bug_keeps_its_traceback() -> None:
    result = _run_script(
        """
            raise RuntimeError("a bug")
        sys.exit(run_command(main, sys.argv[1:], prog="p2c-test"))
        """
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr


def test_a_stop_signal_while_a_native_module_initialises_is_one_line(capsys) -> None:
    """pybind11 modules (dlib) turn a Ctrl-C during their init into an ImportError."""

    def main(argv: object) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise ImportError("initialization failed") from stop

    assert run_command(main, [], prog="p2c-test") == 130
    assert capsys.readouterr().err.strip() == "p2c-test: interrupted"


def test_an_import_error_without_a_stop_signal_is_a_bug() -> None:
    def main(argv: object) -> int:
        raise ImportError("no module named nowhere")

    with pytest.raises(ImportError, match="nowhere"):
        run_command(main, [])


def test_option_types_refuse_out_of_range_values() -> None:
    import argparse

    import pytest

    from p2c.cli import non_negative_float, positive_float, positive_int

    assert positive_int("3") == 3 and positive_float("29.97") == 29.97 and non_negative_float("0") == 0.0
    for parse, bad in (
        (positive_int, "0"),
        (positive_int, "2.5"),
        (positive_float, "0"),
        (non_negative_float, "-1"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number"):
        positive_float("fast")
