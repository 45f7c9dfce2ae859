"""The driver: ``python -m benchmarks.compare`` (or ``python benchmarks/compare/run.py``).

Runs every available implementation (dezero_xp on NumPy and on torch CPU tensors, DeZero
0.0.13, PyTorch eager on CPU, the hand-written NumPy floor) in its own process, one process per
workload by default, with the interpreter given for it (``--dezero-python`` /
``DEZERO_PYTHON`` and friends; the current one by default; dezero_xp on torch uses
dezero_xp's). Verifies that all implementations computed the same numbers, prints a table
with ratios, and saves everything as JSON under ``benchmarks/results/``.

Exit status: 0 when all went well (peers may be skipped or fail, that is reported), 1 when
dezero_xp or the NumPy floor failed, 2 when checksums disagree.

Imports: the standard library and the benchmark's ``common``, ``verify`` and ``report``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.compare.common import WORKLOADS  # noqa: E402
from benchmarks.compare.report import render  # noqa: E402
from benchmarks.compare.verify import assert_agreement, verify  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
IMPLEMENTATIONS = ("dezero_xp", "dezero_xp_torch", "dezero", "torch", "numpy")
# Per interpreter: the option and the environment variable naming it.
PYTHON_ENV = {
    "dezero_xp": "DEZERO_XP_PYTHON",
    "dezero": "DEZERO_PYTHON",
    "torch": "TORCH_PYTHON",
    "numpy": "NUMPY_FLOOR_PYTHON",
}
# dezero_xp on torch tensors runs in dezero_xp's interpreter (which then needs torch).
INTERPRETER_OF = {impl: impl for impl in PYTHON_ENV} | {"dezero_xp_torch": "dezero_xp"}
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
MUST_SUCCEED = ("dezero_xp", "numpy")  # failures of these make the run fail
# --steady-malloc: glibc keeps freed memory (no trimming, large blocks from the heap rather than
# fresh mmaps), so repeated large temporaries stop page-faulting on every repetition.
STEADY_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**25)}


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info() -> dict:
    """CPU model, core counts, OS, load average: what the timings depend on."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "available_cpus": available_cpus(),
        "platform": platform.platform(),
        "loadavg_start": _loadavg(),
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["git_commit"] = commit or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------- workers
def run_worker(python: str, impl: str, workloads, args) -> dict:
    """Start one worker process and return its JSON document (or an error document)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    for name in THREAD_VARIABLES:
        env[name] = str(args.threads)
    if args.steady_malloc:
        env.update(STEADY_MALLOC)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [
            python,
            "-m",
            "benchmarks.compare.worker",
            "--impl",
            impl,
            "--workloads",
            ",".join(workloads),
            "--threads",
            str(args.threads),
            "--min-time",
            str(args.min_time),
            "--json-out",
            str(out),
        ]
        if args.smoke:
            command.append("--smoke")
        try:
            proc = subprocess.run(
                command,
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.timeout,
            )
        except FileNotFoundError:
            return {"impl": impl, "unavailable": f"interpreter not found: {python}"}
        except subprocess.TimeoutExpired:
            return _failed(impl, workloads, f"timed out after {args.timeout} s")
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
            return _failed(impl, workloads, f"worker exited {proc.returncode}: " + " | ".join(tail))
        return json.loads(out.read_text(encoding="utf-8"))


def _failed(impl, workloads, reason):
    return {
        "impl": impl,
        "workloads": {w: {"status": "error", "reason": reason} for w in workloads},
    }


def collect(args) -> dict:
    """Run the chosen implementations; ``{impl: merged worker document}``.

    With ``args.rounds`` > 1 every implementation runs once per round, in reverse order every
    other round, so that a machine whose speed drifts over minutes (a shared or virtual host)
    slows all implementations alike; each metric is then the median over the rounds.
    """
    rounds = []
    for number in range(args.rounds):
        docs = {}
        for impl in args.impls if number % 2 == 0 else args.impls[::-1]:
            if rounds and "unavailable" in rounds[0][impl]:
                docs[impl] = rounds[0][impl]
            else:
                docs[impl] = _collect_impl(impl, args, f" (round {number + 1})" * (number > 0))
        rounds.append(docs)
    return {impl: merge_rounds([docs[impl] for docs in rounds]) for impl in args.impls}


def merge_rounds(docs: list) -> dict:
    """One implementation's documents from several rounds as one: medians of the metrics.

    Checksums and timings are the first round's; every round's metrics are kept under
    ``rounds``. A workload that failed in any round keeps that round's failure.
    """
    merged = copy.deepcopy(docs[0])
    if len(docs) == 1 or "unavailable" in merged:
        return merged
    for name, result in merged["workloads"].items():
        results = [doc["workloads"].get(name, {"status": "missing"}) for doc in docs]
        failed = [r for r in results if r.get("status") != "ok"]
        if failed:
            merged["workloads"][name] = copy.deepcopy(failed[0])
            continue
        result["rounds"] = [r["metrics"] for r in results]
        for key in result["metrics"]:
            values = [r["metrics"][key] for r in results if r["metrics"].get(key) is not None]
            result["metrics"][key] = statistics.median(values) if values else None
    return merged


def _collect_impl(impl, args, label="") -> dict:
    """One implementation, every workload: its worker document(s) merged into one."""
    python = args.python[INTERPRETER_OF[impl]]
    batches = [[w] for w in args.workloads] if args.isolate == "workload" else [args.workloads]
    merged = {"impl": impl, "python": python, "workloads": {}}
    for batch in batches:
        _progress(f"{impl}: {','.join(batch)}{label}")
        doc = run_worker(python, impl, batch, args)
        if "unavailable" in doc:
            owner = INTERPRETER_OF[impl]
            option = f"--{owner.replace('_', '-')}-python"
            merged["unavailable"] = (
                f"{doc['unavailable']} (interpreter {python}; choose another with "
                f"{option} or ${PYTHON_ENV[owner]})"
            )
            break
        for key in ("environment", "notes", "smoke"):
            if key in doc:
                merged[key] = doc[key]
        merged["workloads"].update(doc["workloads"])
    return merged


def _progress(message):
    print(f"[compare] {message}", file=sys.stderr, flush=True)


def exit_code(docs: dict, report: dict) -> int:
    """2 on checksum disagreement, 1 when dezero_xp or the floor failed, else 0."""
    if any(entry["mismatches"] for entry in report.values()):
        return 2
    for impl in MUST_SUCCEED:
        doc = docs.get(impl)
        if doc is None:
            continue
        if "unavailable" in doc:
            return 1
        if any(w.get("status") == "error" for w in doc["workloads"].values()):
            return 1
    return 0


# --------------------------------------------------------------------------- CLI
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description="Compare dezero_xp with DeZero 0.0.13, PyTorch (CPU) and a NumPy floor.",
    )
    parser.add_argument(
        "--impls",
        default=",".join(IMPLEMENTATIONS),
        help="comma-separated, from: " + ", ".join(IMPLEMENTATIONS),
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated, from: " + ", ".join(WORKLOADS),
    )
    for impl, variable in PYTHON_ENV.items():
        parser.add_argument(
            f"--{impl.replace('_', '-')}-python",
            dest=f"python_{impl}",
            default=os.environ.get(variable) or sys.executable,
            help=f"interpreter for {impl}{' and dezero_xp_torch' * (impl == 'dezero_xp')} "
            f"(default: ${variable}, else this one)",
        )
    parser.add_argument(
        "--threads",
        type=int,
        default=available_cpus(),
        help="BLAS and torch intra-op threads in every implementation (default: all CPUs)",
    )
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every implementation this many times, interleaved, and report the median "
        "(steadier figures on a machine whose speed drifts)",
    )
    parser.add_argument(
        "--steady-malloc",
        action="store_true",
        help="glibc keeps freed memory in every worker, so large temporaries do not page-fault "
        "on each repetition (sets MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition each")
    parser.add_argument(
        "--isolate",
        choices=("workload", "impl"),
        default=None,
        help="one process per workload (default; needed for max-RSS memory) or per implementation "
        "(default with --smoke)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker process")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/...)")
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON file")
    args = parser.parse_args(argv)
    args.impls = [i for i in args.impls.split(",") if i]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for value, known in ((args.impls, IMPLEMENTATIONS), (args.workloads, WORKLOADS)):
        unknown = [v for v in value if v not in known]
        if unknown:
            parser.error(f"unknown {unknown}; choose from {', '.join(known)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.python = {name: getattr(args, f"python_{name}") for name in PYTHON_ENV}
    if args.isolate is None:
        args.isolate = "impl" if args.smoke else "workload"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    started = time.time()
    docs = collect(args)
    machine["loadavg_end"] = _loadavg()
    report = verify(docs)
    print(render(docs, report, machine, args.threads, args.steady_malloc, args.rounds))
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "smoke": args.smoke,
        "threads": args.threads,
        "min_time_s": args.min_time,
        "rounds": args.rounds,
        "isolate": args.isolate,
        "steady_malloc": args.steady_malloc,
        "machine": machine,
        "verification": report,
        "implementations": docs,
    }
    if not args.no_save:
        path = args.output or RESULTS_DIR / time.strftime(
            f"compare-%Y%m%d-%H%M%S{'-smoke' if args.smoke else ''}.json", time.localtime(started)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"saved {path}")
    code = exit_code(docs, report)
    if code == 2:
        try:
            assert_agreement(report)
        except AssertionError as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
