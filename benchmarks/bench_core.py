"""Per-op overhead of the autodiff core: a chain of small ops on a 0-d float64 array.

The workload is ``N_OPS`` ops (mul by a constant, add a constant, sin, repeating) on a 0-d
array, so the arithmetic costs almost nothing and the time is the framework's: Function calls,
backend resolution, graph links, and the backward walk. A hand-written NumPy version of the same
arithmetic and the same chain-rule backward (no graph) runs alongside as the floor.

Run with pytest-benchmark (``nox -s benchmark``), or directly for a quick table:
``python benchmarks/bench_core.py``.
"""

from __future__ import annotations

import math
import sys
import timeit
from pathlib import Path

import numpy as np

# Importable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402

N_OPS = 1000
SCALE = 0.999  # constants keep the chain's values and gradients bounded and non-trivial
SHIFT = 0.001
X0 = 0.5


# ------------------------------------------------------------------ the workloads


def dezero_forward(n_ops: int = N_OPS):
    """Build the chain with the graph; returns (x, y)."""
    x = dz.Variable(np.array(X0))
    y = x
    for i in range(n_ops):
        kind = i % 3
        if kind == 0:
            y = y * SCALE
        elif kind == 1:
            y = y + SHIFT
        else:
            y = F.sin(y)
    return x, y


def dezero_forward_backward(n_ops: int = N_OPS):
    """Build the chain and backpropagate through it; returns (y value, dy/dx) as floats."""
    x, y = dezero_forward(n_ops)
    y.backward()
    return float(y.data), float(x.grad.data)


def dezero_forward_no_grad(n_ops: int = N_OPS):
    """The forward chain under ``no_grad`` (no graph bookkeeping); returns y as a float."""
    with dz.no_grad():
        _, y = dezero_forward(n_ops)
    return float(y.data)


def numpy_floor(n_ops: int = N_OPS):
    """The same arithmetic and chain rule written by hand in NumPy; returns (y, dy/dx)."""
    y = np.array(X0)
    sin_inputs = []
    for i in range(n_ops):
        kind = i % 3
        if kind == 0:
            y = np.multiply(y, SCALE)
        elif kind == 1:
            y = np.add(y, SHIFT)
        else:
            sin_inputs.append(y)
            y = np.sin(y)
    grad = np.array(1.0)
    for i in reversed(range(n_ops)):
        kind = i % 3
        if kind == 0:
            grad = np.multiply(grad, SCALE)
        elif kind == 2:
            grad = np.multiply(grad, np.cos(sin_inputs.pop()))
        # d(y + c)/dy = 1: nothing to do, as the framework's Add.backward passes gy through
    return float(y), float(grad)


# ------------------------------------------------------------------ pytest-benchmark


def _record_per_op(benchmark, n_ops: int) -> None:
    """Add microseconds per op (median and min of the rounds) to the saved JSON."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    benchmark.extra_info["n_ops"] = n_ops
    if stats is not None:
        benchmark.extra_info["us_per_op_median"] = stats.median / n_ops * 1e6
        benchmark.extra_info["us_per_op_min"] = stats.min / n_ops * 1e6


def test_chain_forward_backward(benchmark):
    value, grad = benchmark(dezero_forward_backward, N_OPS)
    _record_per_op(benchmark, N_OPS)
    assert math.isclose(grad, numpy_floor(N_OPS)[1], rel_tol=1e-12)


def test_chain_forward_with_graph(benchmark):
    benchmark(dezero_forward, N_OPS)
    _record_per_op(benchmark, N_OPS)


def test_chain_forward_no_grad(benchmark):
    value = benchmark(dezero_forward_no_grad, N_OPS)
    _record_per_op(benchmark, N_OPS)
    assert math.isclose(value, numpy_floor(N_OPS)[0], rel_tol=1e-12)


def test_numpy_floor_forward_backward(benchmark):
    benchmark(numpy_floor, N_OPS)
    _record_per_op(benchmark, N_OPS)


# ------------------------------------------------------------------ quick table


def per_op_table(n_ops: int = N_OPS, repeat: int = 7) -> list[tuple[str, float]]:
    """(name, best microseconds per op) for every workload, timed with timeit."""
    rows = []
    for name, fn in [
        ("dezero_xp forward+backward", dezero_forward_backward),
        ("dezero_xp forward (graph)", dezero_forward),
        ("dezero_xp forward (no_grad)", dezero_forward_no_grad),
        ("NumPy floor forward+backward", numpy_floor),
    ]:
        best = min(timeit.repeat(lambda fn=fn: fn(n_ops), number=1, repeat=repeat))
        rows.append((name, best / n_ops * 1e6))
    return rows


def main() -> None:
    rows = per_op_table()
    floor = rows[-1][1]
    print(f"chain of {N_OPS} ops (mul, add, sin) on a 0-d float64 array; numpy {np.__version__}")
    for name, us in rows:
        print(f"{name:32s} {us:7.2f} us/op  ({us / floor:5.1f}x the NumPy floor)")


if __name__ == "__main__":
    main()
