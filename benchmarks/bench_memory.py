"""Memory over long runs: does dezero_xp's memory stay flat over thousands of training steps?

Two workloads, each measured twice (once for the resident set size, as the OS sees the
process, and once under tracemalloc, which sees Python objects and NumPy buffers but slows
everything down and adds its own bookkeeping to the RSS):

- ``mlp``: an MLP 64-100-10 (sigmoid) with softmax cross-entropy and Adam, trained for
  ``--steps`` steps (default 3000) on batches of 100 from a DataLoader over a Digits-sized
  synthetic dataset (1437 examples of 64 float32 features, 10 classes); a sample every
  ``--every`` steps (default 100).
- ``chain``: a chain of ``--chain-ops`` scalar ops (default 10,000: ``x * 1.0001``,
  ``+ (-0.0001)``, ``sin``) built and backpropagated ``--chain-reps`` times (default 50); a
  sample after every repetition.

A sample holds the RSS (from ``/proc/self/statm``; the peak RSS from ``getrusage`` elsewhere),
the tracemalloc current size and the number of objects the garbage collector tracks, each taken
after the step's graph has been released and a full garbage collection. The slope is a
least-squares fit over the samples after the first quarter of the run (warm-up: optimizer state,
caches, allocator pools), in bytes per step; flat memory means a slope near 0 and no growth in
the object count.

Usage: ``python benchmarks/bench_memory.py [--smoke] [--device torch:cpu] [--json PATH]``.
Exit status 1 when the tracemalloc slope of a workload exceeds ``--max-slope`` bytes per step
(default 64), else 0. ``--smoke`` runs a few steps of each: it checks the harness only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp import optimizers  # noqa: E402
from dezero_xp.backend import to_host  # noqa: E402
from dezero_xp.dataloaders import DataLoader  # noqa: E402
from dezero_xp.datasets import Dataset  # noqa: E402
from dezero_xp.models import MLP  # noqa: E402

CHAIN_MUL, CHAIN_ADD, CHAIN_X0 = 1.0001, -0.0001, 0.5
WARMUP_FRACTION = 0.25  # samples before this fraction of the run are left out of the slope


class DigitsSized(Dataset):
    """Random stand-in for the Digits training split: 1437 x 64 float32 in [0, 1), 10 classes."""

    def __init__(self, seed=0, size=1437, features=64, classes=10):
        self._shape = (seed, size, features, classes)
        super().__init__(train=True)

    def prepare(self):
        seed, size, features, classes = self._shape
        rng = np.random.default_rng(seed)
        self.data = rng.random((size, features), dtype=np.float32)
        self.label = rng.integers(0, classes, size)


# --------------------------------------------------------------------------- sampling


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
try:
    # Kept open: reading a fresh file object per sample leaves a few traced bytes behind.
    _STATM = os.open("/proc/self/statm", os.O_RDONLY)
except OSError:
    _STATM = None


def rss_bytes() -> int | None:
    """The current resident set size (Linux), else the peak RSS so far, else None."""
    if _STATM is not None:
        return int(os.pread(_STATM, 128, 0).split()[1]) * _PAGE_SIZE
    try:
        import resource  # noqa: PLC0415 - Unix only
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux: KiB, macOS: bytes


SAMPLE_FIELDS = ("step", "rss", "traced", "objects")


def take_sample(row: np.ndarray, step: int, traced: bool) -> None:
    """Write step, RSS, tracemalloc current size (-1 untraced) and gc-tracked objects to ``row``.

    Writing into a preallocated array keeps the samples themselves out of the traced memory
    (a dict per sample would show up as a few hundred bytes of growth per sample). A full
    collection first empties CPython's free lists, whose blocks count as allocated and fill up
    over the first steps: without it, a bounded warm-up looks like a slow leak.
    """
    gc.collect()
    rss = rss_bytes()
    row[0] = step
    row[1] = -1 if rss is None else rss
    row[2] = tracemalloc.get_traced_memory()[0] if traced else -1
    row[3] = len(gc.get_objects())


def slope(samples: list[dict], key: str) -> float | None:
    """Least-squares growth of ``key`` in units per step, after the warm-up fraction."""
    start = samples[0]["step"] + WARMUP_FRACTION * (samples[-1]["step"] - samples[0]["step"])
    points = [(s["step"], s[key]) for s in samples if s["step"] >= start and s[key] is not None]
    if len(points) < 2:
        return None
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    xs -= xs.mean()
    denominator = float((xs * xs).sum())
    return float((xs * (ys - ys.mean())).sum() / denominator) if denominator else None


# --------------------------------------------------------------------------- workloads


def mlp_trainer(device=None, batch_size=100, seed=0):
    """``step()`` trains one batch (forward, backward, Adam) and returns the loss as a float."""
    dz.seed(seed)
    model = MLP((100, 10), device=device)
    optimizer = optimizers.Adam().setup(model)
    loader = DataLoader(DigitsSized(seed), batch_size, shuffle=True, device=device)

    def step():
        try:
            x, t = next(loader)
        except StopIteration:  # end of an epoch: the loader rewinds and reshuffles itself
            x, t = next(loader)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        return float(to_host(loss.data))

    return step


def chain_runner(ops, device=None):
    """``run()`` builds a chain of ``ops`` scalar ops, backpropagates it, returns the gradient."""
    x0 = np.array(CHAIN_X0)
    groups, extra = divmod(ops, 3)

    def run():
        x = dz.Variable(x0, device=device)
        y = x
        for _ in range(groups):
            y = F.sin(y * CHAIN_MUL + CHAIN_ADD)
        for _ in range(extra):
            y = y * CHAIN_MUL
        y.backward()
        return float(to_host(x.grad.data))

    return run


def record(make_step, steps: int, every: int, traced: bool) -> tuple[list[dict], float]:
    """Run ``make_step()`` ``steps`` times, sampling every ``every`` steps; (samples, seconds).

    The step function is built under tracing: a model, optimizer state or data order made
    before tracing starts and replaced later would count as growth. ``seconds`` is the time
    spent in the steps, not in sampling.
    """
    rows = np.zeros((steps // every + 2, len(SAMPLE_FIELDS)), dtype=np.int64)
    count = 0
    gc.collect()
    if traced:
        tracemalloc.start()
    try:
        step_fn = make_step()
        take_sample(rows[0], 0, traced)
        count = 1
        seconds = 0.0
        for i in range(1, steps + 1):
            start = time.perf_counter()
            step_fn()
            seconds += time.perf_counter() - start
            if i % every == 0 or i == steps:
                take_sample(rows[count], i, traced)
                count += 1
    finally:
        if traced:
            tracemalloc.stop()
    samples = [
        {key: (None if value < 0 else int(value)) for key, value in zip(SAMPLE_FIELDS, row)}
        for row in rows[:count]
    ]
    return samples, seconds


def measure(name, make_step, steps, every) -> dict:
    """Both passes of one workload (RSS untraced, then tracemalloc) with slopes and timing."""
    rss_samples, seconds = record(make_step, steps, every, traced=False)
    traced_samples, _ = record(make_step, steps, every, traced=True)
    return {
        "workload": name,
        "steps": steps,
        "every": every,
        "ms_per_step_untraced": seconds * 1e3 / steps,
        "rss_slope_bytes_per_step": slope(rss_samples, "rss"),
        "traced_slope_bytes_per_step": slope(traced_samples, "traced"),
        "objects_slope_per_step": slope(traced_samples, "objects"),
        "rss_samples": rss_samples,
        "traced_samples": traced_samples,
    }


# --------------------------------------------------------------------------- report


def _kib(value) -> str:
    return "-" if value is None else f"{value / 1024:,.1f}"


def table(result: dict, rows: int = 8) -> str:
    """The samples of one workload (at most ``rows``, evenly spaced) and its slopes."""
    rss, traced = result["rss_samples"], result["traced_samples"]
    picks = sorted({round(i * (len(rss) - 1) / (rows - 1)) for i in range(rows)})
    lines = [
        f"{result['workload']}: {result['steps']} steps, "
        f"{result['ms_per_step_untraced']:.3f} ms/step untraced",
        f"  {'step':>6}  {'RSS KiB':>12}  {'traced KiB':>12}  {'gc objects':>10}",
    ]
    for i in picks:
        lines.append(
            f"  {rss[i]['step']:>6}  {_kib(rss[i]['rss']):>12}  "
            f"{_kib(traced[i]['traced']):>12}  {traced[i]['objects']:>10}"
        )

    def fmt(value, unit):
        return "-" if value is None else f"{value:+.2f} {unit}"

    lines.append(
        f"  slope after warm-up: RSS {fmt(result['rss_slope_bytes_per_step'], 'B/step')}, "
        f"tracemalloc {fmt(result['traced_slope_bytes_per_step'], 'B/step')}, "
        f"gc objects {fmt(result['objects_slope_per_step'], '/step')}"
    )
    return "\n".join(lines)


def _results_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return REPO_ROOT / "benchmarks" / "results" / f"bench-memory-{stamp}.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few steps of each (harness check)")
    parser.add_argument("--device", default=None, help="device spec, e.g. torch:cpu or cuda")
    parser.add_argument("--steps", type=int, default=3000, help="MLP training steps")
    parser.add_argument("--every", type=int, default=100, help="MLP steps between samples")
    parser.add_argument("--chain-ops", type=int, default=10_000, help="ops per chain")
    parser.add_argument("--chain-reps", type=int, default=50, help="chains built and run")
    parser.add_argument(
        "--max-slope", type=float, default=64.0, help="tracemalloc bytes/step deemed a leak"
    )
    parser.add_argument("--json", default=None, help="where to write the samples (optional)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.every, args.chain_ops, args.chain_reps = 40, 10, 300, 8

    backend = dz.get_backend(args.device)
    print(
        f"bench_memory: dezero_xp {dz.__version__} on {backend}, numpy {np.__version__}, "
        f"python {sys.version.split()[0]}" + (" (smoke: figures mean little)" if args.smoke else "")
    )
    results = [
        measure("mlp", lambda: mlp_trainer(backend), args.steps, args.every),
        measure(
            f"chain_{args.chain_ops}",
            lambda: chain_runner(args.chain_ops, backend),
            args.chain_reps,
            1,
        ),
    ]
    for result in results:
        print(table(result))
    leaking = [
        r["workload"]
        for r in results
        if r["traced_slope_bytes_per_step"] is not None
        and r["traced_slope_bytes_per_step"] > args.max_slope
    ]
    if args.json:
        path = _results_path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"device": str(backend), "results": results}, indent=1))
        print(f"bench_memory: samples in {path}")
    if leaking and not args.smoke:
        print(f"bench_memory: memory grows in {', '.join(leaking)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
