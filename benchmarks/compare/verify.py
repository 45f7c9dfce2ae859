"""Check that every implementation computed the same numbers, before any timing is trusted.

Each checksum is ``[sum, sum of |.|, dtype]`` of an array (a loss, a gradient, an output). Two
implementations agree when, for every checksum, the dtypes are equal, the sums differ by at most
``rtol`` times the absolute sum and the absolute sums differ by at most ``rtol`` relative. The
reference is the NumPy floor when it ran (its derivatives are written by hand), else the first
implementation.

DeZero 0.0.13 is known to promote float32 gradients to float64 (its softmax cross-entropy
backward builds a float64 one-hot), so its dtype differences are reported, not failed.

Imports: the standard library and the benchmark's ``common`` module.
"""

from __future__ import annotations

import math

from .common import WORKLOADS

REFERENCE_ORDER = ("numpy", "dezero_xp", "dezero_xp_torch", "dezero", "torch")
DTYPE_LENIENT = frozenset({"dezero"})  # dtype differences reported, not failed


class ChecksumMismatch(AssertionError):
    """Two implementations of a workload computed different numbers."""


def dtype_differences(reference: dict, other: dict) -> list[str]:
    """``key: dtype vs reference dtype`` for every checksum whose dtype differs."""
    return [
        f"{key}: {other[key][2]} vs {reference[key][2]}"
        for key in sorted(set(reference) & set(other))
        if other[key][2] != reference[key][2]
    ]


def compare_checksums(reference: dict, other: dict, rtol: float, check_dtype=True) -> list[str]:
    """Human-readable differences between two checksum dicts (empty when they agree)."""
    problems = []
    for key in sorted(set(reference) | set(other)):
        if key not in other or key not in reference:
            problems.append(f"{key}: present in only one of the two")
            continue
        (s_ref, abs_ref, dtype_ref), (s, abs_, dtype) = reference[key], other[key]
        if check_dtype and dtype != dtype_ref:
            problems.append(f"{key}: dtype {dtype} vs {dtype_ref}")
        values = (s_ref, abs_ref, s, abs_)
        if not all(math.isfinite(v) for v in values):
            problems.append(f"{key}: non-finite checksum {list(values)}")
            continue
        # `not (a <= b)` so that a NaN that slipped through still fails.
        if not abs(s - s_ref) <= rtol * abs_ref:
            problems.append(f"{key}: sum {s!r} vs {s_ref!r} (allowed {rtol:g} x {abs_ref:g})")
        if not abs(abs_ - abs_ref) <= rtol * abs_ref:
            problems.append(f"{key}: abs-sum {abs_!r} vs {abs_ref!r} (rtol {rtol:g})")
    return problems


def verify(docs: dict) -> dict:
    """Per workload: the reference implementation, which were checked, and any mismatches.

    ``docs`` maps an implementation name to its worker document; only workloads with status
    ``ok`` take part.
    """
    report = {}
    for workload in WORKLOADS.values():
        sums = {
            impl: doc["workloads"][workload.name]["checksums"]
            for impl, doc in docs.items()
            if doc.get("workloads", {}).get(workload.name, {}).get("status") == "ok"
        }
        if not sums:
            continue
        order = [i for i in REFERENCE_ORDER if i in sums] + sorted(set(sums) - set(REFERENCE_ORDER))
        reference = order[0]
        mismatches, dtype_notes = {}, {}
        for impl in order[1:]:
            lenient = impl in DTYPE_LENIENT
            problems = compare_checksums(sums[reference], sums[impl], workload.rtol, not lenient)
            if problems:
                mismatches[impl] = problems
            if lenient and dtype_differences(sums[reference], sums[impl]):
                dtype_notes[impl] = dtype_differences(sums[reference], sums[impl])
        report[workload.name] = {
            "reference": reference,
            "checked": order[1:],
            "rtol": workload.rtol,
            "mismatches": mismatches,
            "dtype_differences": dtype_notes,
        }
    return report


def assert_agreement(report: dict):
    """Raise ChecksumMismatch listing every disagreement in a ``verify`` report."""
    lines = []
    for workload, entry in report.items():
        for impl, problems in entry["mismatches"].items():
            lines.append(f"{workload}: {impl} disagrees with {entry['reference']}:")
            lines += [f"    {p}" for p in problems]
    if lines:
        raise ChecksumMismatch("implementations computed different numbers:\n" + "\n".join(lines))
