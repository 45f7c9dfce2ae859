"""Reductions: sum, average/mean, max, min, logsumexp (int or tuple ``axis``, ``keepdims``).

``axis`` is None (every axis), an int or a tuple of ints, negatives allowed; it is checked
against the input's shape before any array is touched, so an out-of-range axis raises the same
clear ValueError on every backend. Where elements tie for a max/min, the gradient is shared
evenly among them (DeZero gives each tied element the whole gradient).

May import: dezero_xp.core, dezero_xp._shape and dezero_xp.functions._checks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dezero_xp import _shape
from dezero_xp.core import Function, as_variable
from dezero_xp.functions._checks import refuse_complex

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import Axis, VariableLike

__all__ = ["average", "logsumexp", "max", "mean", "min", "sum"]


def _checked_axis(axis: Axis, shape: Sequence[int], op: str) -> tuple[int, ...] | None:
    """``axis`` as None or a sorted tuple of non-negative ints, or a clear error."""
    if axis is None:
        return None
    ndim = len(shape)
    given = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    for a in given:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{op}: axis {int(a)} is out of range for an input of shape {tuple(shape)} "
                f"(valid: {-ndim} .. {ndim - 1})"
            )
    axes = tuple(sorted(int(a) % ndim for a in given))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: axis {axis!r} names an axis twice")
    return axes


def _expand_reduced(F, gy, x_shape, axis, keepdims):
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if not keepdims:
        gy = F.reshape(gy, _shape.reduced_shape_keepdims(x_shape, axis))
    return F.broadcast_to(gy, x_shape)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        return self.xp.sum(x, axis=self.axis, keepdims=self.keepdims)

    def vjp(self, F, gy, y, x):
        return _expand_reduced(F, gy, self.x_shape, self.axis, self.keepdims)


def sum(x: VariableLike, axis: Axis = None, keepdims: bool = False) -> Variable:  # noqa: A001 - DeZero's public name
    """Sum over ``axis`` (None: all axes; an int or a tuple). Same dtype as ``x`` for floats."""
    return Sum(_checked_axis(axis, x.shape, "sum"), keepdims)(x)


def average(x: VariableLike, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Mean over ``axis`` (DeZero's name; ``mean`` is the same function)."""
    x = as_variable(x)
    axes = _checked_axis(axis, x.shape, "average")
    y = Sum(axes, keepdims)(x)
    reduced = range(x.ndim) if axes is None else axes
    count = math.prod(x.shape[a] for a in reduced)
    # An empty reduction has no mean (NumPy gives NaN): keep that instead of dividing by zero.
    return y * (1.0 / count if count else math.nan)


mean = average


class _ReductionExtremum(Function):
    """max/min over ``axis``.

    Where several elements tie for the extremum, the gradient is shared evenly among them (each
    of k tied elements gets 1/k of it), so the gradient sums to the output's gradient. DeZero and
    Chainer give the full gradient to every tied element instead.
    """

    reduce_name = None

    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        refuse_complex(self.xp, self.reduce_name, x)
        self.x_shape = tuple(x.shape)
        return getattr(self.xp, self.reduce_name)(x, axis=self.axis, keepdims=self.keepdims)

    def vjp(self, F, gy, y, x):
        xp = self.xp
        kept = _shape.reduced_shape_keepdims(self.x_shape, self.axis)
        hit = xp.astype(F.raw(x) == xp.reshape(F.raw(y), kept), gy.dtype)
        share = hit / xp.sum(hit, axis=self.axis, keepdims=True)
        return _expand_reduced(F, gy, self.x_shape, self.axis, self.keepdims) * F.const(share)


class Max(_ReductionExtremum):
    reduce_name = "max"


class Min(_ReductionExtremum):
    reduce_name = "min"


def max(x: VariableLike, axis: Axis = None, keepdims: bool = False) -> Variable:  # noqa: A001 - DeZero's public name
    """Maximum over ``axis``; tied maxima share the gradient evenly (see ``_ReductionExtremum``)."""
    return Max(_checked_axis(axis, x.shape, "max"), keepdims)(x)


def min(x: VariableLike, axis: Axis = None, keepdims: bool = False) -> Variable:  # noqa: A001 - DeZero's public name
    """Minimum over ``axis``; tied minima share the gradient evenly (see ``_ReductionExtremum``)."""
    return Min(_checked_axis(axis, x.shape, "min"), keepdims)(x)


class LogSumExp(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        xp = self.xp
        refuse_complex(xp, "logsumexp", x, what="shifts by the maximum")
        self.x_shape = tuple(x.shape)
        m = xp.max(x, axis=self.axis, keepdims=True)  # shift by the max: no overflow
        # A slice that is all -inf has no finite max to shift by: its result is -inf, not NaN.
        self.shift = m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        y = xp.log(xp.sum(xp.exp(x - m), axis=self.axis, keepdims=True)) + m
        if not self.keepdims:
            axes = _shape.normalize_axes(self.axis, x.ndim)
            y = xp.reshape(y, tuple(n for i, n in enumerate(y.shape) if i not in axes))
        return y

    def vjp(self, F, gy, y, x):
        # d lse / dx = softmax(x), formed from the same shift as forward: exp(x - y) would lose
        # the low bits of y when |x| is large (float32 near 1000 has 6e-5 spacing).
        e = F.exp(x - F.const(self.shift))
        total = F.sum(e, self.axis, True)
        softmax = e / F.broadcast_to(total, self.x_shape)
        return _expand_reduced(F, gy, self.x_shape, self.axis, self.keepdims) * softmax


def logsumexp(x: VariableLike, axis: Axis = None, keepdims: bool = False) -> Variable:
    """``log(sum(exp(x), axis))`` computed stably (shifted by the max)."""
    return LogSumExp(_checked_axis(axis, x.shape, "logsumexp"), keepdims)(x)
