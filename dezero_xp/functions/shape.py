"""Shape ops: reshape, transpose, get_item, expand_dims, flatten, squeeze, concat, stack,
broadcast_to and sum_to (the op that undoes broadcasting for every binary op).

Shape arguments are checked in Python before any array is touched, so a bad shape or axis gives
the same clear error (naming the op and the shapes) on every backend.

May import: dezero_xp.core and dezero_xp._shape.
"""

from __future__ import annotations

import math
import numbers

from dezero_xp import _shape
from dezero_xp.backend import DeviceMismatchError, backend_of
from dezero_xp.core import Function, Variable, as_variable
from dezero_xp.typing import Axis, ShapeLike, VariableLike

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


def _check_axis(axis: int, ndim: int, op: str, shape) -> int:
    """``axis`` (negatives allowed) as an index into ``ndim`` axes, or a clear ValueError."""
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{op}: axis {axis} is out of range for an input of shape {tuple(shape)} "
            f"(valid: {-ndim} .. {ndim - 1})"
        )
    return int(axis) % ndim


class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        return self.xp.reshape(x, self.shape)

    def vjp(self, F, gy, y, x):
        return F.reshape(gy, self.x_shape)


def reshape(x: VariableLike, shape: ShapeLike) -> Variable:
    """``x`` with a new shape (one entry may be -1). Returns ``x`` itself when unchanged."""
    in_shape = tuple(x.shape)
    shape = _shape.int_shape(shape, "reshape")
    if shape == in_shape:
        return as_variable(x)
    size = math.prod(in_shape)
    try:
        target = _shape.resolve_reshape(in_shape, shape)
    except ValueError:
        target = None
    if target is None or math.prod(target) != size or any(n < 0 for n in target):
        raise ValueError(
            f"reshape: cannot reshape an input of shape {in_shape} (size {size}) into {shape}"
        )
    if target == in_shape:
        return as_variable(x)
    return Reshape(target)(x)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x):
        if self.axes is None:
            self.axes = tuple(range(x.ndim))[::-1]
        return self.xp.permute_dims(x, self.axes)

    def vjp(self, F, gy, y, x):
        return F.transpose(gy, _shape.inverse_permutation(self.axes))


def transpose(x: VariableLike, axes: tuple[int, ...] | list[int] | None = None) -> Variable:
    """Permute the axes of ``x`` (reverse them when ``axes`` is None; negatives allowed)."""
    ndim = len(x.shape)
    if axes is None:
        axes = tuple(range(ndim))[::-1]
    else:
        given = _shape.int_shape(axes, "transpose", "axes")
        axes = tuple(a % ndim if -ndim <= a < ndim else a for a in given) if ndim else given
        if sorted(axes) != list(range(ndim)):
            raise ValueError(
                f"transpose: axes {given} are not a permutation of the {ndim} axes of an input "
                f"of shape {tuple(x.shape)}"
            )
    return Transpose(axes)(x)


def matrix_transpose(x: VariableLike) -> Variable:
    """Swap the last two axes (``x.mT``); arrays of rank < 2 are returned as they are."""
    x = as_variable(x)
    if x.ndim < 2:
        return x
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return transpose(x, tuple(axes))


# ---------------------------------------------------------------------------------- get_item


def _is_full_slice(k) -> bool:
    return isinstance(k, slice) and k == slice(None)


class _Key:
    """An indexing key prepared for one input.

    ``key``: the tuple that indexes the input. ``take_axis``: set when the key is one integer
    array on one axis with ``:`` or ``...`` everywhere else; such a key is applied with the
    standard's ``take`` (array-api-strict refuses to mix arrays and slices in ``[]``) and its
    gradient is scattered along that axis moved to the front.
    """

    __slots__ = ("key", "take_axis", "index", "reverses")

    def __init__(self, key, take_axis=None, index=None):
        self.key = key
        self.take_axis = take_axis
        self.index = index
        # A slice with a negative step: indexed through the kernel table (torch has none).
        self.reverses = any(type(k) is slice and k.step is not None and k.step < 0 for k in key)

    def __repr__(self):
        return f"_Key({self.key!r}, take_axis={self.take_axis})"


def _index_on(backend, index):
    """An index array for an input of ``backend``: host (NumPy) indices are copied over like
    lists are; an index on another device is an error, never a silent copy."""
    owner = backend_of(index)
    if owner is backend:
        return index
    if owner.name == "numpy":
        return backend.from_host(index)
    raise DeviceMismatchError(
        f"get_item: the index array is on {owner} but the indexed input is on {backend}; "
        f"pass a host (NumPy) index, or move it first: dz.Variable(index, device='{backend}')"
    )


def _prepare_key(key, backend, ndim: int) -> _Key:
    """Normalize ``key`` for an input of ``backend`` with ``ndim`` axes.

    The key becomes a tuple with Variables unwrapped, lists turned into arrays of ``backend`` and
    NumPy integer scalars into ints. A key without arrays that indexes fewer axes than the input
    has gets a trailing ``...`` (what NumPy does implicitly and the standard wants explicit).
    """
    if isinstance(key, _Key):
        return key
    xp = backend.xp
    prepared, arrays = [], []
    for k in key if type(key) is tuple else (key,):
        kind = type(k)
        if kind is int or kind is slice or k is None or k is Ellipsis:
            pass  # the common case, first
        elif isinstance(k, Variable):
            k = k.data
        elif kind is list:
            k = backend.asarray(k) if k else backend.asarray(k, xp.int64)
        elif isinstance(k, numbers.Integral) and kind is not bool:
            k = int(k)  # NumPy integer scalars
        if hasattr(k, "shape") and hasattr(k, "dtype"):
            k = _index_on(backend, k)
            arrays.append(len(prepared))
        prepared.append(k)
    if not arrays:
        used = sum(1 for k in prepared if k is not None and k is not Ellipsis)
        if Ellipsis not in prepared and used < ndim:
            prepared.append(Ellipsis)
        return _Key(tuple(prepared))
    if len(arrays) == 1:
        pos = arrays[0]
        index = prepared[pos]
        others = prepared[:pos] + prepared[pos + 1 :]
        if (
            isinstance(index, backend.array_type)
            and xp.isdtype(index.dtype, "integral")
            and all(_is_full_slice(k) or k is Ellipsis for k in others)
            and others.count(Ellipsis) <= 1
            and len(others) - others.count(Ellipsis) < ndim
        ):
            after = len(prepared) - pos - 1
            axis = pos if Ellipsis not in prepared[:pos] else ndim - after - 1
            return _Key(tuple(prepared), take_axis=axis, index=index)
    return _Key(tuple(prepared))


def _apply_key(xp, x, key: _Key, ops):
    """``x[key]`` (through ``take`` for a one-array key, see :class:`_Key`)."""
    if key.take_axis is None:
        return ops.getitem(x, key.key) if key.reverses else x[key.key]
    axis, index = key.take_axis, key.index
    # CuPy's take wraps out-of-range indices: checked when asked for
    ops.check_index_range(index, x.shape[axis], "get_item")
    flat = xp.take(x, xp.reshape(index, (-1,)), axis=axis)
    if index.ndim == 1:
        return flat
    shape = tuple(x.shape)
    return xp.reshape(flat, shape[:axis] + tuple(index.shape) + shape[axis + 1 :])


class GetItem(Function):
    def __init__(self, slices):
        self.key = slices

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        self.key = _prepare_key(self.key, self.backend, x.ndim)
        return _apply_key(self.xp, x, self.key, self.ops)

    def vjp(self, F, gy, y, x):
        return F.apply(GetItemGrad(self.key, self.x_shape), gy)


class GetItemGrad(Function):
    """Backward of get_item: scatter-add ``gy`` into zeros of the input's shape.

    Repeated integer indices accumulate (the kernel table's ``scatter_add``).
    """

    def __init__(self, key: _Key, in_shape):
        self.key = key
        self.in_shape = tuple(in_shape)

    def forward(self, gy):
        xp = self.xp
        key = self.key
        if key.take_axis is None:
            gx = xp.zeros(self.in_shape, dtype=gy.dtype, device=self.backend.native_device)
            return self.ops.scatter_add(gx, key.key, gy)
        # Move the indexed axis to the front, so the key is one array on the leading axis:
        # the form every kernel (the standard-only one included) scatters.
        axis, index = key.take_axis, xp.reshape(key.index, (-1,))
        shape = self.in_shape
        gy = xp.reshape(gy, shape[:axis] + (index.shape[0],) + shape[axis + 1 :])
        to_front = (axis,) + tuple(i for i in range(len(shape)) if i != axis)
        front_shape = tuple(shape[i] for i in to_front)
        gx = xp.zeros(front_shape, dtype=gy.dtype, device=self.backend.native_device)
        gx = self.ops.scatter_add(gx, (index,), xp.permute_dims(gy, to_front))
        return xp.permute_dims(gx, _shape.inverse_permutation(to_front))

    def vjp(self, F, ggx, y, gy):
        return F.apply(GetItem(self.key), ggx)


def get_item(x: VariableLike, slices: object) -> Variable:
    """``x[slices]``, differentiable: ints, slices, ``None``, ``...`` and integer arrays.

    Integer arrays (or lists) may repeat indices: their gradients accumulate. A key that
    indexes fewer axes than ``x`` has means ``...`` for the rest, as in NumPy, on every backend.
    A single integer array among ``:``/``...`` works on every backend (it is applied with
    ``take``); other mixes of arrays and slices work where the array library supports them.
    """
    return GetItem(slices)(x)


# ---------------------------------------------------------------------------------- axes


def expand_dims(x: VariableLike, axis: int) -> Variable:
    """Insert a length-1 axis at ``axis`` (``-1`` appends one)."""
    shape = list(x.shape)
    axis = _check_axis(axis, len(shape) + 1, "expand_dims", x.shape)
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


def squeeze(x: VariableLike, axis: Axis = None) -> Variable:
    """Remove length-1 axes (all of them, or those in ``axis``: an int or a tuple)."""
    shape = tuple(x.shape)
    if axis is None:
        axes = {i for i, n in enumerate(shape) if n == 1}
    else:
        given = axis if isinstance(axis, (tuple, list)) else (axis,)
        axes = {_check_axis(a, len(shape), "squeeze", shape) for a in given}
        bad = sorted(a for a in axes if shape[a] != 1)
        if bad:
            raise ValueError(
                f"squeeze: axis {bad[0]} of an input of shape {shape} has length "
                f"{shape[bad[0]]}; only length-1 axes can be removed"
            )
    return reshape(x, tuple(n for i, n in enumerate(shape) if i not in axes))


def flatten(x: VariableLike) -> Variable:
    """Flatten all axes but the first: ``(N, ...)`` becomes ``(N, rest)`` (DeZero's flatten)."""
    shape = tuple(x.shape)
    if not shape:
        raise ValueError("flatten: needs an input with at least one axis, got a 0-d input")
    return reshape(x, (shape[0], math.prod(shape[1:])))


# ---------------------------------------------------------------------------------- joining


class Concat(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return self.xp.concat(xs, axis=self.axis)

    def vjp(self, F, gy, y, *xs):
        lead = (slice(None),) * self.axis
        gxs, start = [], 0
        for size in self.sizes:
            gxs.append(gy[lead + (slice(start, start + size), Ellipsis)])
            start += size
        return tuple(gxs)


def _inputs_and_shapes(xs, op: str):
    """``xs`` as a list, and the shapes of its entries (at least one)."""
    if isinstance(xs, Variable) or hasattr(xs, "shape"):
        raise TypeError(f"{op}: expects a sequence of Variables or arrays, got a single one")
    xs = list(xs)
    if not xs:
        raise ValueError(f"{op}: needs at least one input")
    return xs, [tuple(x.shape) for x in xs]


def concat(xs: list[VariableLike] | tuple[VariableLike, ...], axis: int = 0) -> Variable:
    """Join a sequence of Variables along an existing axis (shapes must agree elsewhere)."""
    xs, shapes = _inputs_and_shapes(xs, "concat")
    ndim = len(shapes[0])
    if ndim == 0:
        raise ValueError("concat: 0-d inputs have no axis to join along; use stack")
    axis = _check_axis(axis, ndim, "concat", shapes[0])
    for s in shapes:
        if len(s) != ndim or s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]:
            raise ValueError(
                f"concat: shapes {shapes} differ outside the joined axis {axis}; all inputs "
                "need the same shape except along that axis"
            )
    return Concat(axis)(*xs)


class Stack(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.count = len(xs)
        return self.xp.stack(xs, axis=self.axis)

    def vjp(self, F, gy, y, *xs):
        lead = (slice(None),) * self.axis
        return tuple(gy[lead + (i, Ellipsis)] for i in range(self.count))


def stack(xs: list[VariableLike] | tuple[VariableLike, ...], axis: int = 0) -> Variable:
    """Join a sequence of same-shape Variables along a new axis."""
    xs, shapes = _inputs_and_shapes(xs, "stack")
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack: all inputs need the same shape, got {shapes}")
    axis = _check_axis(axis, len(shapes[0]) + 1, "stack", shapes[0])
    return Stack(axis)(*xs)


# ---------------------------------------------------------------------------------- broadcasting


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        return self.xp.broadcast_to(x, self.shape)

    def vjp(self, F, gy, y, x):
        return F.sum_to(gy, self.x_shape)


def broadcast_to(x: VariableLike, shape: ShapeLike) -> Variable:
    """Broadcast ``x`` to ``shape``. Returns ``x`` itself when unchanged."""
    in_shape = tuple(x.shape)
    shape = _shape.int_shape(shape, "broadcast_to")
    if in_shape == shape:
        return as_variable(x)
    lead = len(shape) - len(in_shape)
    if lead < 0 or any(n not in (1, m) for n, m in zip(in_shape, shape[lead:])):
        raise ValueError(f"broadcast_to: cannot broadcast an input of shape {in_shape} to {shape}")
    return BroadcastTo(shape)(x)


class SumTo(Function):
    def __init__(self, shape, axes=None):
        self.shape = tuple(shape)
        self.axes = axes

    def forward(self, x):
        self.x_shape = tuple(x.shape)
        if self.axes is None:
            self.axes = _shape.sum_to_axes(self.x_shape, self.shape)
        y = self.xp.sum(x, axis=self.axes, keepdims=True)
        if y.ndim != len(self.shape):
            y = self.xp.reshape(y, self.shape)
        return y

    def vjp(self, F, gy, y, x):
        return F.broadcast_to(gy, self.x_shape)


def sum_to(x: VariableLike, shape: ShapeLike) -> Variable:
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting). ``x`` itself when unchanged."""
    in_shape = tuple(x.shape)
    shape = _shape.int_shape(shape, "sum_to")
    if in_shape == shape:
        return as_variable(x)
    try:
        axes = _shape.sum_to_axes(in_shape, shape)
    except ValueError:
        raise ValueError(
            f"sum_to: cannot sum an input of shape {in_shape} to {shape}: {shape} must be a "
            f"shape that broadcasts to {in_shape}"
        ) from None
    return SumTo(shape, axes)(x)
