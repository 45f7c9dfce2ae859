"""benchmarks/bench_core.py still runs and computes the right thing (one tiny pass, no timing).

The real benchmarks run only in ``nox -s benchmark``; this keeps them from rotting in CI.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

BENCH_FILE = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_core.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_core", BENCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _OneShot:
    """Stands in for pytest-benchmark's fixture: calls the function once, records nothing."""

    def __init__(self):
        self.extra_info = {}
        self.calls = 0

    def __call__(self, fn, *args, **kwargs):
        self.calls += 1
        return fn(*args, **kwargs)


@pytest.mark.parametrize("n_ops", [1, 2, 3, 10, 31])
def test_chain_matches_the_numpy_floor(bench, n_ops):
    value, grad = bench.dezero_forward_backward(n_ops)
    floor_value, floor_grad = bench.numpy_floor(n_ops)
    assert math.isclose(value, floor_value, rel_tol=1e-14)
    assert math.isclose(grad, floor_grad, rel_tol=1e-14)
    assert math.isclose(bench.dezero_forward_no_grad(n_ops), floor_value, rel_tol=1e-14)


def test_chain_gradient_is_the_analytic_one(bench):
    # mul, add, sin: d/dx sin(0.999 x + 0.001) = 0.999 cos(0.999 x + 0.001)
    value, grad = bench.dezero_forward_backward(3)
    inner = bench.SCALE * bench.X0 + bench.SHIFT
    assert math.isclose(value, math.sin(inner), rel_tol=1e-15)
    assert math.isclose(grad, bench.SCALE * math.cos(inner), rel_tol=1e-15)


def test_every_benchmark_function_runs_once(bench, monkeypatch):
    monkeypatch.setattr(bench, "N_OPS", 12)
    names = [name for name in dir(bench) if name.startswith("test_")]
    assert len(names) >= 4
    for name in names:
        fake = _OneShot()
        getattr(bench, name)(fake)
        assert fake.calls == 1 and fake.extra_info["n_ops"] == 12


def test_quick_table_has_every_workload(bench):
    rows = bench.per_op_table(n_ops=6, repeat=1)
    assert [name for name, _ in rows][-1] == "NumPy floor forward+backward"
    assert len(rows) == 4 and all(us > 0 for _, us in rows)
