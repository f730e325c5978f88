"""The skip policy of tests/conftest.py: machine-related skips pass, a missing dependency fails the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TESTS = """
import pytest

def test_runs():
    pass

def test_without_a_gpu():
    pytest.skip("needs a CUDA GPU; this machine has none")

def test_without_shared_media():
    pytest.skip("/x/shared/media is absent: real media live in ../shared beside the checkout")
"""
MISSING_DEPENDENCY = """
def test_needs_a_library():
    pytest.importorskip("p2c_surely_absent_module")
"""


def _run(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    shutil.copy2(REPO / "tests" / "conftest.py", folder / "conftest.py")
    (folder / "test_sample.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_skips_about_the_machine_pass(tmp_path: Path) -> None:
    done = _run(tmp_path, TESTS)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 passed, 2 skipped" in done.stdout


def test_a_skip_for_a_missing_dependency_fails_the_run_and_names_the_test(tmp_path: Path) -> None:
    done = _run(tmp_path, TESTS + MISSING_DEPENDENCY)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "skips that fail the run" in done.stdout
    assert "test_sample.py::test_needs_a_library: could not import 'p2c_surely_absent_module'" in done.stdout
    assert "1 passed, 3 skipped" in done.stdout
