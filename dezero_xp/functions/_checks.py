"""Input checks shared by the op families: refusing complex input where an op orders values,
and real-number hyperparameters (slopes, rates, decays, epsilons).

relu, max/min, clip, maximum/minimum, softmax, pooling and the losses compare or order their
inputs; complex numbers have no order, and the libraries disagree on what to do with them
(NumPy orders them lexicographically, so relu(-2+5j) was 0j; strict and torch raise their own
errors). Each such op calls :func:`refuse_complex` in ``forward``: a dict lookup per call.

May import: nothing of dezero_xp (the array namespace comes from the caller).
"""

from __future__ import annotations

import math

__all__ = ["is_complex", "real_hyperparameter", "refuse_complex"]

# type(dtype) -> {dtype: whether it is complex}. Grouped by the dtype's type because dtypes of
# different libraries may hash alike (array-api-strict's float32 hashes as NumPy's), and
# comparing them warns; within one library a lookup is one hash and one comparison.
_complex_dtypes: dict = {}


def is_complex(xp, dtype) -> bool:
    """Whether ``dtype`` (of namespace ``xp``) is a complex floating dtype (cached)."""
    known = _complex_dtypes.get(type(dtype))
    if known is None:
        known = _complex_dtypes[type(dtype)] = {}
    found = known.get(dtype)
    if found is None:
        found = known[dtype] = bool(xp.isdtype(dtype, "complex floating"))
    return found


def refuse_complex(xp, op: str, x, other=None, what: str = "compares values") -> None:
    """TypeError naming ``op`` when ``x`` (or ``other``) is complex; ``what`` says why it needs
    real numbers ("compares values", "takes the maximum of each window", ...)."""
    dtype = x.dtype
    known = _complex_dtypes.get(type(dtype))
    # The hot path (a real dtype seen before) is two dict lookups and no call.
    if known is None or known.get(dtype) is not False:
        if is_complex(xp, dtype):
            raise TypeError(
                f"{op}: got a complex input (dtype {dtype}, shape {tuple(x.shape)}); {op} "
                f"{what}, which needs real numbers. Pass real data, e.g. the real part or the "
                "magnitude (dezero_xp.functions.abs)"
            )
    if other is not None:
        refuse_complex(xp, op, other, None, what)


def real_hyperparameter(op: str, name: str, value, rule="finite", ok=math.isfinite):
    """``value`` unchanged when it is a real number (NumPy scalars and 0-d arrays too, not a
    bool or a string) for which ``ok(float(value))`` holds; else a TypeError or a ValueError
    naming ``op``, ``name`` and ``rule`` (what a valid value is, e.g. "in [0, 1]")."""
    number = None
    if not isinstance(value, (bool, str, bytes)) and value is not None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
    if number is None:
        raise TypeError(
            f"{op}: {name} must be a real number, got {type(value).__name__} {value!r:.40}"
        )
    if not ok(number):
        raise ValueError(f"{op}: {name} must be {rule}, got {value!r:.40}")
    return value
