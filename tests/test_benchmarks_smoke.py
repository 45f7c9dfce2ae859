"""The benchmark scripts still run and compute the right thing (one tiny pass each, no timing).

bench_core.py, bench_cnn.py, bench_gpu.py (which must exit cleanly without a GPU) and
bench_memory.py (``--smoke``). The real benchmarks run only by hand or in ``nox -s benchmark``;
this keeps them from rotting in CI.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _load(name: str):
    """benchmarks/<name>.py imported as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """``python benchmarks/<name>.py ARGS`` as a user runs it, from another directory."""
    return subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{name}.py"), *args],
        cwd=BENCH_DIR.parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def bench():
    return _load("bench_core")


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


# --------------------------------------------------------------------------- bench_cnn.py


@pytest.fixture(scope="module")
def bench_cnn():
    return _load("bench_cnn")


def test_cnn_table_runs_once_and_checks_the_floor(bench_cnn):
    rows = bench_cnn.table(runs=1)  # check_against_floor runs first: it raises on a mismatch
    names = [name for name, _ in rows]
    assert names[:3] == [
        "dezero_xp (numpy) forward+backward",
        "NumPy floor, parameter grads",
        "NumPy floor, + input grad",
    ]
    assert len(rows) == (5 if HAS_TORCH else 3)
    assert all(wall > 0 and cpu >= 0 for _, (wall, cpu) in rows)


def test_cnn_floor_agrees_with_dezero_xp_and_catches_a_wrong_gradient(bench_cnn):
    data = bench_cnn.make_data()
    model = bench_cnn.DezeroCNN(data)
    bench_cnn.check_against_floor(model, data)
    model.params["W2"].data = model.params["W2"].data * np.float32(1.001)
    with pytest.raises(AssertionError):
        bench_cnn.check_against_floor(model, data)


def test_cnn_benchmark_functions_run_once(bench_cnn):
    names = [name for name in dir(bench_cnn) if name.startswith("test_")]
    assert len(names) >= 3
    for name in names:
        fake = _OneShot()
        getattr(bench_cnn, name)(fake)
        assert fake.calls == 1


# --------------------------------------------------------------------------- bench_gpu.py


def test_gpu_script_exits_cleanly_or_runs(tmp_path):
    """Without a usable GPU it says why and exits 0; with one, the smoke run writes its JSON."""
    from dezero_xp import backend

    out = tmp_path / "gpu.json"
    proc = _run_script("bench_gpu", "--smoke", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    if backend.cuda_available():
        report = json.loads(out.read_text())
        assert {row["workload"] for row in report["rows"]} == {"op-chain", "mlp", "cnn"}
    else:
        assert proc.stdout.startswith("bench_gpu: skipped, no usable CUDA GPU (")
        assert not out.exists()


def test_gpu_benchmark_step_times_on_the_cpu():
    bench_gpu = _load("bench_gpu")
    step = bench_gpu.dezero_step_fn(False, "cpu", batch=4, sizes=(784, 8, 10))
    seconds = bench_gpu.median_seconds(step, lambda: None, warmup=1, repeat=1, inner=1)
    assert seconds > 0
    assert math.isfinite(bench_gpu.loss_value(step()))


# --------------------------------------------------------------------------- bench_memory.py


@pytest.fixture(scope="module")
def bench_memory():
    return _load("bench_memory")


def test_memory_script_smoke_run(tmp_path):
    out = tmp_path / "memory.json"
    proc = _run_script("bench_memory", "--smoke", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("slope after warm-up: RSS ") == 2
    results = json.loads(out.read_text())["results"]
    assert [r["workload"] for r in results] == ["mlp", "chain_300"]
    for result in results:
        steps = [s["step"] for s in result["traced_samples"]]
        assert steps[0] == 0 and steps[-1] == result["steps"]
        assert all(s["traced"] > 0 and s["objects"] > 0 for s in result["traced_samples"][1:])


def test_memory_slope_is_the_least_squares_growth_after_warm_up(bench_memory):
    samples = [{"step": i * 10, "rss": 5000 if i < 3 else 1000 + 7 * i * 10} for i in range(13)]
    # steps 0..120: the warm-up quarter (steps < 30) is left out, the rest grows 7 bytes/step
    assert bench_memory.slope(samples, "rss") == pytest.approx(7.0)
    assert bench_memory.rss_bytes() > 0


def test_memory_chain_gradient_matches_numpy(bench_memory):
    x = 0.5
    value = np.float64(x)
    derivative = 1.0
    for _ in range(10):  # 30 ops: (mul, add, sin) ten times
        inner = value * bench_memory.CHAIN_MUL + bench_memory.CHAIN_ADD
        derivative *= bench_memory.CHAIN_MUL * np.cos(inner)
        value = np.sin(inner)
    assert bench_memory.chain_runner(30)() == pytest.approx(derivative, rel=1e-12)


def test_memory_benchmark_flags_a_leak(bench_memory, monkeypatch, capsys):
    """A chain runner that keeps 8 KB per run makes the run fail, with that slope reported."""
    kept = []
    real = bench_memory.chain_runner

    def leaking_runner(ops, device=None):
        run = real(ops, device)

        def leaking_run():
            kept.append(np.zeros(1000))
            return run()

        return leaking_run

    monkeypatch.setattr(bench_memory, "chain_runner", leaking_runner)
    args = ["--steps", "40", "--every", "5", "--chain-ops", "30", "--chain-reps", "12"]
    assert bench_memory.main(args) == 1
    captured = capsys.readouterr()
    assert captured.err == "bench_memory: memory grows in chain_30\n"  # not in the MLP
    traced_slope = float(captured.out.split("tracemalloc +")[2].split(" B/step")[0])
    assert 8000 <= traced_slope <= 8300  # 1000 float64 plus the array header, per run
