"""The readable side of a comparison: a text table of medians with dezero_xp's ratios.

Ratios: dezero_xp (NumPy backend) over DeZero, PyTorch and the NumPy floor, and dezero_xp on
torch CPU tensors over PyTorch eager (same tensors, same kernels: dezero_xp's own overhead).

Imports: the standard library and the benchmark's ``common`` module.
"""

from __future__ import annotations

from .common import WORKLOADS

COLUMNS = ("dezero_xp", "dezero_xp_torch", "dezero", "torch", "numpy")
# (numerator, denominator, column label)
RATIOS = (
    ("dezero_xp", "dezero", "xp/DeZero"),
    ("dezero_xp", "torch", "xp/torch"),
    ("dezero_xp", "numpy", "xp/floor"),
    ("dezero_xp_torch", "torch", "xp_torch/torch"),
)


def fmt(value) -> str:
    """A measurement with about three significant digits, without exponents."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(doc, workload, key):
    if doc is None:
        return "n/a", None
    if "unavailable" in doc:
        return "skipped", None
    result = doc["workloads"].get(workload)
    if result is None:
        return "n/a", None
    if result["status"] != "ok":
        return result["status"], None
    value = result["metrics"].get(key)
    return fmt(value), value


def _environment_line(impl, doc):
    if "unavailable" in doc:
        return f"  {impl:<15} skipped: {doc['unavailable']}"
    env = doc.get("environment", {})
    blas = env.get("blas")
    if isinstance(blas, list):
        blas = ", ".join(
            f"{b.get('internal_api')} {b.get('version')} x{b.get('num_threads')}"
            if "build" not in b
            else f"{b['build'].get('name')} {b['build'].get('version')}"
            for b in blas
        )
    parts = [
        f"{env.get('library')} {env.get('version')}",
        f"python {env.get('python')}",
        f"numpy {env.get('numpy')}",
        f"BLAS {blas}",
    ]
    if "torch_version" in env:
        parts.append(f"on {env.get('backend')} (torch {env['torch_version']})")
    if "torch_threads" in env:
        parts.append(f"torch threads {env['torch_threads']}, torch BLAS {env.get('torch_blas')}")
    return f"  {impl:<15} " + "; ".join(parts)


def render(
    docs: dict, report: dict, machine: dict, threads: int, steady_malloc=False, rounds=1
) -> str:
    """The whole text report: machine, implementations, table, checksum verdicts, notes."""
    lines = [
        f"machine: {machine['cpu_model']}, {machine['available_cpus']} CPUs available "
        f"({machine['logical_cpus']} logical), threads per implementation: {threads}"
        + (", steady malloc" if steady_malloc else "")
        + (f", median of {rounds} interleaved rounds" if rounds > 1 else ""),
        f"load average at start {machine.get('loadavg_start')}, "
        f"at end {machine.get('loadavg_end')}",
        "implementations:",
    ]
    lines += [_environment_line(impl, doc) for impl, doc in docs.items()]
    header = ["workload", "metric", "unit", *COLUMNS, *(label for _, _, label in RATIOS)]
    rows = []
    for workload in WORKLOADS.values():
        if not any(workload.name in doc.get("workloads", {}) for doc in docs.values()):
            continue
        for metric in workload.metrics:
            cells, values = [], {}
            for impl in COLUMNS:
                text, values[impl] = _cell(docs.get(impl), workload.name, metric.key)
                cells.append(text)
            ratios = []
            for ours, peer, _ in RATIOS:
                xp, other = values.get(ours), values.get(peer)
                ratios.append(f"{xp / other:.2f}x" if xp is not None and other else "-")
            rows.append([workload.name, metric.label, metric.unit, *cells, *ratios])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines.append("")
    for row in [header, *rows]:
        lines.append(
            "  ".join(
                str(c).ljust(w) if i < 3 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            )
        )
    lines.append("")
    lines.append("checksums (same numbers computed?):")
    for name, entry in report.items():
        verdicts = []
        for impl in entry["checked"]:
            verdict = f"{impl} {'MISMATCH' if impl in entry['mismatches'] else 'ok'}"
            upcast = entry.get("dtype_differences", {}).get(impl)
            if upcast:
                verdict += f" (dtype differs: {len(upcast)} arrays, e.g. {upcast[0]})"
            verdicts.append(verdict)
        lines.append(
            f"  {name:<15} reference {entry['reference']}, rtol {entry['rtol']:g}: "
            + (", ".join(verdicts) or "nothing to compare")
        )
    notes = []
    for impl, doc in docs.items():
        notes += [f"{impl}: {note}" for note in doc.get("notes", [])]
        for name, result in doc.get("workloads", {}).items():
            if result.get("status") != "ok":
                notes.append(f"{impl} {name} {result['status']}: {result.get('reason')}")
    if notes:
        lines.append("notes:")
        lines += [f"  {note}" for note in notes]
    return "\n".join(lines)
