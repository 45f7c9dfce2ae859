"""Shape ops: reshape, transpose, get_item, expand_dims, flatten, squeeze, concat, stack,
broadcast_to and sum_to (the op that undoes broadcasting for every binary op).

May import: dezero_xp.core and dezero_xp._shape.
"""

from __future__ import annotations

from dezero_xp import _shape
from dezero_xp.core import Function, Variable, as_variable

__all__ = [
    "broadcast_to",
    "concat",
    "expand_dims",
    "flatten",
    "get_item",
    "matrix_transpose",
    "reshape",
    "squeeze",
    "stack",
    "sum_to",
    "transpose",
]


def _shape_args(shape) -> tuple:
    """``reshape(x, 2, 3)``, ``reshape(x, (2, 3))`` and ``reshape(x, [2, 3])`` all mean (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        return self.xp.reshape(x, self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)


def reshape(x, shape):
    """``x`` with a new shape (one entry may be -1). Returns ``x`` itself when unchanged."""
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    if tuple(x.shape) == shape:
        return as_variable(x)
    return Reshape(shape)(x)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x):
        axes = self.axes if self.axes is not None else tuple(range(x.ndim))[::-1]
        self.axes = tuple(a % x.ndim for a in axes) if x.ndim else ()
        return self.xp.permute_dims(x, self.axes)

    def backward(self, gy):
        return transpose(gy, _shape.inverse_permutation(self.axes))


def transpose(x, axes=None):
    """Permute the axes of ``x`` (reverse them when ``axes`` is None)."""
    return Transpose(axes)(x)


def matrix_transpose(x):
    """Swap the last two axes (``x.mT``); arrays of rank < 2 are returned as they are."""
    x = as_variable(x)
    if x.ndim < 2:
        return x
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return transpose(x, tuple(axes))


def _unwrap_key(key):
    """An indexing key with Variables replaced by their arrays."""
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Variable) else k for k in key)
    return key.data if isinstance(key, Variable) else key


class GetItem(Function):
    def __init__(self, slices):
        self.slices = _unwrap_key(slices)

    def forward(self, x):
        self.x_shape = x.shape
        return x[self.slices]

    def backward(self, gy):
        return GetItemGrad(self.slices, self.x_shape)(gy)


class GetItemGrad(Function):
    """Backward of get_item: scatter-add ``gy`` into zeros of the input's shape."""

    def __init__(self, slices, in_shape):
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        gx = self.xp.zeros(self.in_shape, dtype=gy.dtype, device=self.backend.native_device)
        return self.ops.scatter_add(gx, self.slices, gy)

    def backward(self, ggx):
        return get_item(ggx, self.slices)


def get_item(x, slices):
    """``x[slices]``: basic indexing and integer-array indexing, differentiable."""
    return GetItem(slices)(x)


def expand_dims(x, axis):
    """Insert a length-1 axis at ``axis``."""
    x = as_variable(x)
    shape = list(x.shape)
    axis = axis if axis >= 0 else axis + x.ndim + 1
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


def squeeze(x, axis=None):
    """Remove length-1 axes (all of them, or those in ``axis``)."""
    x = as_variable(x)
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = _shape.normalize_axes(axis, x.ndim)
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise ValueError(
                f"squeeze: axis {bad[0]} of shape {x.shape} has length {x.shape[bad[0]]}, not 1"
            )
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def flatten(x):
    """Flatten all axes but the first (DeZero's ``F.flatten`` for batches)."""
    x = as_variable(x)
    return reshape(x, (x.shape[0], -1))


class Concat(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        self.ndim = xs[0].ndim
        return self.xp.concat(xs, axis=self.axis)

    def backward(self, gy):
        axis = self.axis % self.ndim
        lead = (slice(None),) * axis
        gxs, start = [], 0
        for size in self.sizes:
            gxs.append(get_item(gy, lead + (slice(start, start + size), Ellipsis)))
            start += size
        return tuple(gxs)


def concat(xs, axis=0):
    """Join a sequence of Variables along an existing axis."""
    return Concat(axis)(*xs)


class Stack(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        y = self.xp.stack(xs, axis=self.axis)
        self.axis %= y.ndim
        self.count = len(xs)
        return y

    def backward(self, gy):
        lead = (slice(None),) * self.axis
        return tuple(get_item(gy, lead + (i, Ellipsis)) for i in range(self.count))


def stack(xs, axis=0):
    """Join a sequence of same-shape Variables along a new axis."""
    return Stack(axis)(*xs)


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape``. Returns ``x`` itself when unchanged."""
    if tuple(x.shape) == tuple(shape):
        return as_variable(x)
    return BroadcastTo(shape)(x)


class SumTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        axes = _shape.sum_to_axes(tuple(x.shape), self.shape)
        y = self.xp.sum(x, axis=axes, keepdims=True)
        if y.ndim != len(self.shape):
            y = self.xp.reshape(y, self.shape)
        return y

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)


def sum_to(x, shape):
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting). ``x`` itself when unchanged."""
    if tuple(x.shape) == tuple(shape):
        return as_variable(x)
    return SumTo(shape)(x)
