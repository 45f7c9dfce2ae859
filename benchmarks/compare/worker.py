"""The process that benchmarks ONE implementation: ``python -m benchmarks.compare.worker``.

The driver starts it with the interpreter of that implementation (DeZero needs its own old
NumPy; PyTorch may live in its own environment), from the repository root, with the BLAS
thread variables already set. It writes one JSON document: the environment (Python, NumPy,
BLAS, threads, library version) and, per workload, metrics, checksums and raw timings, or
``pending`` / ``error`` with the reason; ``unavailable`` when the library does not import.

Imports: the standard library, NumPy and the benchmark modules; the library under test lazily.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import traceback

IMPLEMENTATIONS = ("dezero_xp", "dezero_xp_torch", "dezero", "torch", "numpy")


def load_impl(name: str):
    """The implementation object for ``name`` (imports its library)."""
    if name in ("dezero", "dezero_xp"):
        from .impl_dezero_api import DezeroAPI

        return DezeroAPI(name)
    if name == "dezero_xp_torch":  # dezero_xp computing on torch CPU tensors
        from .impl_dezero_api import DezeroAPI

        return DezeroAPI("dezero_xp", device="torch:cpu", name=name)
    if name == "torch":
        from . import impl_torch

        return impl_torch
    if name == "numpy":
        from . import impl_numpy

        return impl_numpy
    raise ValueError(f"unknown implementation {name!r}; choose from {', '.join(IMPLEMENTATIONS)}")


def blas_info() -> list | str:
    """The BLAS libraries NumPy uses, with their thread counts (threadpoolctl when installed)."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        keep = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
        return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]
    # Without threadpoolctl: the BLAS named in NumPy's build configuration (no thread count).
    try:
        return [{"build": np.show_config(mode="dicts")["Build Dependencies"]["blas"]}]
    except (TypeError, KeyError):  # NumPy < 1.26 has no mode="dicts"
        pass
    get_info = getattr(np.__config__, "get_info", None)
    for section in ("blas_ilp64_opt", "blas_opt"):
        libraries = get_info(section).get("libraries") if get_info else None
        if libraries:
            return f"{libraries[0]} (install threadpoolctl for version and threads)"
    return "unknown (install threadpoolctl)"


def limit_blas_threads(threads: int):
    """Cap NumPy's BLAS threads (the driver also sets the *_NUM_THREADS variables)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def environment(impl, threads: int) -> dict:
    """Versions and threading of this process."""
    import numpy as np

    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "blas": blas_info(),
        "threads_requested": threads,
        **impl.info(),
    }


def run(args) -> dict:
    """Benchmark the requested workloads; never raises (errors go into the document)."""
    from .common import Pending, TimingPlan
    from .runner import run_workload

    doc = {"impl": args.impl, "smoke": args.smoke, "workloads": {}}
    try:
        impl = load_impl(args.impl)
    except Exception as exc:
        doc["unavailable"] = f"{type(exc).__name__}: {exc}"
        return doc
    if hasattr(impl, "set_threads"):
        impl.set_threads(args.threads)
    limiter = limit_blas_threads(args.threads)
    doc["environment"] = environment(impl, args.threads)
    doc["notes"] = list(impl.notes)
    if args.smoke:
        plan = TimingPlan.smoke()
    else:
        plan = TimingPlan(min_time_s=args.min_time)
    for name in args.workloads:
        try:
            result = {"status": "ok", **run_workload(impl, name, args.smoke, plan)}
        except Pending as exc:
            result = {"status": "pending", "reason": str(exc)}
        except Exception as exc:
            result = {
                "status": "error",
                "reason": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=-8),
            }
        doc["workloads"][name] = result
    del limiter
    return doc


def parse_args(argv=None):
    from .common import WORKLOADS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True, choices=IMPLEMENTATIONS)
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        type=lambda s: [w for w in s.split(",") if w],
        help="comma-separated workload names",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--json-out", required=True, help="where to write the JSON result")
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    doc = run(args)
    with open(args.json_out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
