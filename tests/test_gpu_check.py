"""benchmarks/gpu_check.sh and bench_gpu.py as a GPU check: offline with few packages, within
its time budget, a one-screen summary, and never a pass on a machine whose GPU is not usable.

The end-to-end run here is on a machine without a usable GPU, where every step must fail with
its reason (the hardware run itself happens on a GPU machine).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dezero_xp import backend as B

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
# What the offline GPU machine has: the standard library, these, and dezero_xp itself.
GPU_MACHINE_PACKAGES = {"numpy", "cupy", "torch", "pytest", "pytest_benchmark", "dezero_xp"}


def _default(name: str) -> int:
    return int(re.search(rf"\$\{{{name}:-(\d+)\}}", SCRIPT.read_text()).group(1))


def test_the_budget_fits_in_eight_minutes():
    total = _default("TOTAL_LIMIT")
    steps = [_default(n) for n in ("TESTS_LIMIT", "EXAMPLE_LIMIT", "BENCH_LIMIT")]
    assert total <= 480 and sum(steps) <= total, (total, steps)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_example_step_needs_only_what_the_gpu_machine_has():
    example = re.search(r"EXAMPLE:-([^}]+)\}", SCRIPT.read_text()).group(1)
    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / example, ROOT / "benchmarks" / "bench_gpu.py"):
        extra = _imports(path) - stdlib - GPU_MACHINE_PACKAGES - {"__future__"}
        assert extra == set(), f"{path.name} imports {extra}, absent on the GPU machine"


def test_bench_gpu_as_a_gpu_check_fails_without_a_gpu(tmp_path):
    if B.cuda_available():
        pytest.skip("a usable GPU here")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, extra_env in ((["--require-gpu"], {}), ([], {"DEZERO_XP_REQUIRE_GPU": "1"})):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--smoke", *args],
            capture_output=True,
            text=True,
            env={**env, **extra_env},
            timeout=300,
        )
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "no usable CUDA GPU" in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_gpu_check_without_a_gpu_fails_every_step_and_writes_the_summary(tmp_path):
    if B.cuda_available():
        pytest.skip("a usable GPU here: the real check runs there")
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    env["PATH"] = f"{sysconfig.get_path('scripts')}{os.pathsep}{env.get('PATH', '')}"
    env.pop("DEZERO_XP_TEST_BACKENDS", None)
    proc = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600
    )
    summary = (tmp_path / "summary.txt").read_text()
    assert proc.returncode != 0, summary
    assert re.search(r"tests-gpu: exit [1-9]", summary), summary  # no all-skip pass
    assert "not usable here" in (tmp_path / "tests-gpu.log").read_text()
    assert re.search(r"example: exit [1-9]", summary), summary  # strict: no CPU fallback
    assert "bench_gpu: exit 3" in summary, summary
    assert summary.count("\n") <= 40 and "env: " in summary and "gpu_check: exit" in summary
