"""Reductions: sum, average/mean, max, min, logsumexp (int or tuple ``axis``, ``keepdims``).

May import: dezero_xp.core, dezero_xp._shape and the elementwise/shape families.
"""

from __future__ import annotations

import math

from dezero_xp import _shape
from dezero_xp.core import Function, as_variable, wrap_array
from dezero_xp.functions.elementwise import exp
from dezero_xp.functions.shape import broadcast_to, reshape

__all__ = ["average", "logsumexp", "max", "mean", "min", "sum"]


def _expand_reduced(gy, x_shape, axis, keepdims):
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if not keepdims:
        gy = reshape(gy, _shape.reduced_shape_keepdims(x_shape, axis))
    return broadcast_to(gy, x_shape)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        return self.xp.sum(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        return _expand_reduced(gy, self.x_shape, self.axis, self.keepdims)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - DeZero's public name
    """Sum over ``axis`` (None: all axes; an int or a tuple)."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Sum(axis, keepdims)(x)


def average(x, axis=None, keepdims=False):
    """Mean over ``axis`` (DeZero's name; ``mean`` is the same function)."""
    x = as_variable(x)
    y = sum(x, axis, keepdims)
    count = math.prod(x.shape) // max(math.prod(y.shape), 1) if x.size else 1
    return y * (1.0 / count)


mean = average


class _Extremum(Function):
    """max/min over ``axis``; the gradient is shared evenly by the elements that tie."""

    reduce_name = None

    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        return getattr(self.xp, self.reduce_name)(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        (x,) = self.inputs
        xp = self.xp
        y = self.outputs[0]().data
        kept = _shape.reduced_shape_keepdims(self.x_shape, self.axis)
        hit = xp.astype(x.data == xp.reshape(y, kept), gy.dtype)
        share = hit / xp.sum(hit, axis=self.axis, keepdims=True)
        return _expand_reduced(gy, self.x_shape, self.axis, self.keepdims) * wrap_array(
            share, self.backend
        )


class Max(_Extremum):
    reduce_name = "max"


class Min(_Extremum):
    reduce_name = "min"


def max(x, axis=None, keepdims=False):  # noqa: A001 - DeZero's public name
    """Maximum over ``axis``."""
    return Max(axis, keepdims)(x)


def min(x, axis=None, keepdims=False):  # noqa: A001 - DeZero's public name
    """Minimum over ``axis``."""
    return Min(axis, keepdims)(x)


class LogSumExp(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        xp = self.xp
        self.x_shape = tuple(x.shape)
        m = xp.max(x, axis=self.axis, keepdims=True)  # shift by the max: no overflow
        y = xp.log(xp.sum(xp.exp(x - m), axis=self.axis, keepdims=True)) + m
        if not self.keepdims:
            y = xp.reshape(y, tuple(n for i, n in enumerate(y.shape) if i not in _axes(self)))
        return y

    def backward(self, gy):
        (x,) = self.inputs
        y = self.outputs[0]()
        kept = _shape.reduced_shape_keepdims(self.x_shape, self.axis)
        softmax = exp(x - broadcast_to(reshape(y, kept), self.x_shape))  # d lse / dx
        return _expand_reduced(gy, self.x_shape, self.axis, self.keepdims) * softmax


def _axes(f):
    return _shape.normalize_axes(f.axis, len(f.x_shape))


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x), axis))`` computed stably."""
    return LogSumExp(axis, keepdims)(x)
