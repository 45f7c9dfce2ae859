"""Skips are summarised once per reason, with counts, and pytest's count line stays last.

Runs a small pytest session of its own in a subprocess, with the hook of tests/skip_summary.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent

INNER_CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS_DIR)!r})
from skip_summary import pytest_terminal_summary  # noqa: F401
"""

INNER_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(3))
def test_needs_a_library(n):
    pytest.skip("the library is not installed")

@pytest.mark.skipif(True, reason="not on this platform")
def test_platform():
    pass

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False

def test_runs():
    assert True
"""


def test_skips_are_summarised_once_per_reason(tmp_path):
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "SKIPPED [" not in out, out  # no line per skipped test
    assert out.count("    3  the library is not installed") == 1, out
    assert out.count("    1  not on this platform") == 1, out
    assert "known bug" not in out, out  # an xfail is not a skip
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1].startswith("1 passed, 4 skipped, 1 xfailed"), lines[-1]
