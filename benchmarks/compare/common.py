"""What every implementation shares: workload specs, sizes, input data, timing, checksums.

Runs inside every benchmarked interpreter (including an old one with NumPy 1.23 for DeZero),
so it imports only the standard library and NumPy, and uses no NumPy-2-only API.

Input data and initial weights come from ``numpy.random.RandomState`` with fixed seeds: its
streams are frozen across NumPy versions, so every interpreter starts from the same numbers.
"""

from __future__ import annotations

import gc
import math
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

# --------------------------------------------------------------------------- constants
# Chain op constants: y -> y * CHAIN_MUL -> + CHAIN_ADD -> sin. Chosen so the chain converges
# to a fixed point near -0.087 where the per-op derivative stays close to 1: the gradient of a
# 100,000-op chain is about 1e-53, a normal float64 (not denormal, not zero).
CHAIN_MUL = 1.0001
CHAIN_ADD = -0.0001
CHAIN_X0 = 0.5
SGD_LR = 0.1
CHECK_STEPS = 3  # MLP training steps whose losses go into the checksum
# Checksum tolerances. Implementations on different BLAS builds were seen to agree within 3e-7
# (float32) and 2e-16 (float64); the margins leave room for other CPUs and BLAS kernels while
# still catching a 1e-4 relative slip in one gradient.
RTOL = {"float32": 1e-5, "float64": 1e-10}


class Pending(Exception):
    """The implementation lacks a feature the workload needs (not an error of the harness)."""


@dataclass(frozen=True)
class Metric:
    """One row of the results table: a key in a workload's ``metrics``, a label and a unit."""

    key: str
    label: str
    unit: str


@dataclass(frozen=True)
class Workload:
    """A benchmark problem, identical arithmetic in every implementation."""

    name: str
    description: str
    dtype: str
    metrics: tuple[Metric, ...]
    full: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)

    def sizes(self, smoke: bool) -> dict:
        """The problem sizes for a full run or for a smoke run."""
        return dict(self.smoke if smoke else self.full)

    @property
    def rtol(self) -> float:
        """Relative tolerance for the checksums of this workload's dtype."""
        return RTOL[self.dtype]


def _chain(name, ops_full, ops_smoke, with_memory):
    metrics = [Metric("fwd_bwd_ms", "fwd+bwd", "ms"), Metric("us_per_op", "fwd+bwd per op", "us")]
    if with_memory:
        metrics += [
            Metric("tracemalloc_bytes_per_op", "peak memory / op (tracemalloc)", "B"),
            Metric("maxrss_bytes_per_op", "peak memory / op (maxrss growth)", "B"),
        ]
    return Workload(
        name,
        f"chain of {ops_full} scalar ops (x*{CHAIN_MUL}, +{CHAIN_ADD}, sin) on a 0-d float64, "
        "forward + backward",
        "float64",
        tuple(metrics),
        full={"ops": ops_full, "memory": with_memory},
        smoke={"ops": ops_smoke, "memory": with_memory},
    )


def _mlp(name, batch_full):
    return Workload(
        name,
        f"MLP 784-1000-1000-10 sigmoid, softmax cross-entropy, SGD, batch {batch_full}: "
        "one training step",
        "float32",
        (
            Metric("step_ms", "train step", "ms"),
            Metric("forward_ms", "  forward", "ms"),
            Metric("backward_ms", "  backward", "ms"),
            Metric("update_ms", "  update", "ms"),
        ),
        full={"batch": batch_full, "sizes": (784, 1000, 1000, 10)},
        smoke={"batch": 4, "sizes": (12, 16, 16, 10)},
    )


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        _chain("chain_1k", 1000, 30, with_memory=False),
        _mlp("mlp_b100", 100),
        _mlp("mlp_b1000", 1000),
        Workload(
            "elementwise_1m",
            "tanh(x)*x + x**2 on 1e6 float32 elements, forward + backward",
            "float32",
            (Metric("fwd_bwd_ms", "fwd+bwd", "ms"),),
            full={"n": 1_000_000},
            smoke={"n": 1000},
        ),
        Workload(
            "tanh_3rd",
            "3rd derivative of tanh on 1000 float64 values by double backprop",
            "float64",
            (Metric("total_us", "3 backward passes", "us"),),
            full={"n": 1000},
            smoke={"n": 10},
        ),
        _chain("chain_10k", 10_000, 300, with_memory=True),
        _chain("chain_100k", 100_000, 3000, with_memory=True),
        Workload(
            "cnn_small",
            "conv3x3x16 pad 1, relu, maxpool 2, linear to 10, softmax cross-entropy, "
            "batch 32 of 1x28x28, forward + backward",
            "float32",
            (Metric("fwd_bwd_ms", "fwd+bwd", "ms"),),
            full={"batch": 32, "hw": 28, "channels": 16, "classes": 10},
            smoke={"batch": 2, "hw": 8, "channels": 4, "classes": 10},
        ),
    )
}


# --------------------------------------------------------------------------- input data
def rng(seed: int) -> np.random.RandomState:
    """A legacy RandomState: its stream is identical in every NumPy version."""
    return np.random.RandomState(seed)


def mlp_data(sizes, batch):
    """Initial weights (DeZero's init: normal * sqrt(1/in)), inputs and labels, float32."""
    r = rng(0)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = (r.standard_normal((n_in, n_out)) * math.sqrt(1.0 / n_in)).astype(np.float32)
        params += [W, np.zeros(n_out, dtype=np.float32)]
    x = r.uniform(0.0, 1.0, (batch, sizes[0])).astype(np.float32)
    t = r.randint(0, sizes[-1], batch).astype(np.int64)
    return params, x, t


def elementwise_data(n):
    """Input of the elementwise workload: uniform in [-2, 2), float32."""
    return rng(1).uniform(-2.0, 2.0, n).astype(np.float32)


def tanh_data(n):
    """Input of the third-derivative workload: uniform in [-2, 2), float64."""
    return rng(2).uniform(-2.0, 2.0, n)


def cnn_data(batch, hw, channels, classes):
    """Conv weight (OC, C, KH, KW), bias, linear weight (in, out), bias, input NCHW, labels."""
    r = rng(3)
    W_conv = (r.standard_normal((channels, 1, 3, 3)) * math.sqrt(1.0 / 9)).astype(np.float32)
    b_conv = np.zeros(channels, dtype=np.float32)
    n_flat = channels * (hw // 2) * (hw // 2)
    W_fc = (r.standard_normal((n_flat, classes)) * math.sqrt(1.0 / n_flat)).astype(np.float32)
    b_fc = np.zeros(classes, dtype=np.float32)
    x = r.uniform(0.0, 1.0, (batch, 1, hw, hw)).astype(np.float32)
    t = r.randint(0, classes, batch).astype(np.int64)
    return [W_conv, b_conv, W_fc, b_fc], x, t


def chain_groups(ops):
    """A chain of ``ops`` ops is ``groups`` full (mul, add, sin) triples plus ``extra`` ops."""
    return divmod(ops, 3)


# --------------------------------------------------------------------------- checksums
def checksum(value) -> list:
    """``[sum, sum of |.|, dtype name]`` of a host array or number, sums in float64.

    The plain sum is compared with a tolerance scaled by the absolute sum, so values that cancel
    out do not make the check meaningless; the dtype catches a silent float32 -> float64 upcast.
    """
    a = np.asarray(value)
    wide = a.astype(np.float64)
    return [float(wide.sum()), float(np.abs(wide).sum()), str(a.dtype)]


# --------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and how many repetitions to take."""

    warmup_s: float = 0.3
    min_warmup: int = 1
    min_time_s: float = 1.0
    min_reps: int = 5
    max_reps: int = 500

    @classmethod
    def smoke(cls):
        """One untimed-warm-up-free repetition: checks the code path, not the speed."""
        return cls(warmup_s=0.0, min_warmup=0, min_time_s=0.0, min_reps=1, max_reps=1)


def timed(work):
    """Wrap ``work()`` into a step that reports its own duration as the phase ``total``."""

    def step():
        start = time.perf_counter()
        work()
        return {"total": time.perf_counter() - start}

    return step


def measure(step, plan: TimingPlan) -> dict:
    """Warm up, then repeat ``step`` and return the median and min of each phase it reports.

    ``step()`` returns ``{phase: seconds}`` measured with ``time.perf_counter``. The number of
    repetitions is sized from the warm-up so the measurement lasts about ``plan.min_time_s``.
    """
    gc.collect()
    warm_calls, warm_time, per_call = 0, 0.0, None
    while warm_calls < plan.min_warmup or warm_time < plan.warmup_s:
        start = time.perf_counter()
        step()
        per_call = time.perf_counter() - start
        warm_time += per_call
        warm_calls += 1
    if per_call:
        reps = int(min(plan.max_reps, max(plan.min_reps, math.ceil(plan.min_time_s / per_call))))
    else:
        reps = plan.min_reps
    gc.collect()
    samples: dict[str, list[float]] = {}
    for _ in range(reps):
        for phase, seconds in step().items():
            samples.setdefault(phase, []).append(seconds)
    return {
        phase: {
            "median_s": float(np.median(values)),
            "min_s": float(np.min(values)),
            "reps": len(values),
        }
        for phase, values in samples.items()
    }


def median_ms(timings: dict, phase: str = "total") -> float:
    """The median of ``phase`` in milliseconds."""
    return timings[phase]["median_s"] * 1e3


def max_rss_bytes() -> int | None:
    """The process's peak resident set size so far, in bytes (None where unsupported)."""
    try:
        import resource  # Unix only
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def chain_memory(run_chain, ops, *, traced: bool = True) -> dict:
    """Peak memory per op of one ``run_chain()`` (forward + backward of ``ops`` ops).

    Two methods, each reported per op: growth of the process's max RSS over the run (call this
    in a fresh process, before any larger allocation, or the high-water mark hides it), and
    the tracemalloc peak (sees Python objects and NumPy buffers; not C++ allocations such as
    PyTorch's, hence ``traced=False`` there).
    """
    gc.collect()
    before = max_rss_bytes()
    run_chain()
    after = max_rss_bytes()
    result = {"maxrss_bytes_per_op": None, "tracemalloc_bytes_per_op": None}
    if before is not None:
        result["maxrss_bytes_per_op"] = (after - before) / ops
    if traced:
        gc.collect()
        tracemalloc.start()
        run_chain()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result["tracemalloc_bytes_per_op"] = peak / ops
    return result
