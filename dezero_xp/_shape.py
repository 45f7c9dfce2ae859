"""Pure-Python shape and axis arithmetic shared by ops (no arrays, no imports of our modules).

May import: the standard library only.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negatives allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimension(s)")
        normalized.append(a % ndim if ndim else 0)
    return tuple(sorted(normalized))


def reduced_shape_keepdims(shape: tuple, axis) -> tuple:
    """The shape a reduction over ``axis`` has with ``keepdims=True`` (reduced axes are 1)."""
    axes = normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def check_broadcastable(*shapes) -> None:
    """Raise a ValueError naming the shapes unless they broadcast together (NumPy's rule)."""
    for sizes in zip(*(reversed(tuple(s)) for s in shapes)):
        if len({n for n in sizes if n != 1}) > 1:
            names = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"operands of shapes {names} do not broadcast together")


def sum_to_axes(in_shape: tuple, out_shape: tuple) -> tuple[int, ...]:
    """Axes to sum (with keepdims) so that ``in_shape`` reduces to ``out_shape``.

    Undoes broadcasting: the leading axes ``in_shape`` has in excess, and every axis where
    ``out_shape`` has 1 but ``in_shape`` does not.
    """
    lead = len(in_shape) - len(out_shape)
    if lead < 0:
        raise ValueError(f"cannot sum shape {in_shape} to the larger rank {out_shape}")
    axes = list(range(lead))
    for i, n in enumerate(out_shape):
        if n == 1 and in_shape[i + lead] != 1:
            axes.append(i + lead)
        elif n != in_shape[i + lead] and n != 1:
            raise ValueError(f"cannot sum shape {in_shape} to {out_shape}")
    return tuple(axes)


def inverse_permutation(axes: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``axes``."""
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a % len(axes)] = i
    return tuple(inverse)


def resolve_reshape(in_shape: tuple, shape: tuple) -> tuple:
    """``shape`` with its single ``-1`` resolved against the size of ``in_shape``."""
    if -1 not in shape:
        return tuple(shape)
    known = math.prod(n for n in shape if n != -1)
    total = math.prod(in_shape)
    if shape.count(-1) > 1 or known == 0 or total % known:
        raise ValueError(f"cannot reshape an array of shape {tuple(in_shape)} into {tuple(shape)}")
    return tuple(total // known if n == -1 else n for n in shape)


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _size(n, op: str, shape, what: str):
    """One entry of a shape as a Python int: ints, NumPy integers and 0-d integer arrays
    (``__index__``). Floats, strings and bools are refused: ``int(2.9)`` and ``int("2")``
    would turn a wrong argument into a plausible shape."""
    if isinstance(n, bool) or type(n).__name__ == "bool":  # bool, numpy.bool (no __index__)
        index = None
    else:
        try:
            index = operator.index(n)
        except TypeError:
            index = None
    if index is None:
        which = ", which is" if n is shape else f", whose entry {n!r} is"
        raise TypeError(
            f"{op}: {what} must be an int or a sequence of ints (NumPy integers are fine), got "
            f"{shape!r}{which} a {type(n).__name__}; pass Python ints, e.g. (2, 3)"
        )
    return index


def int_shape(shape, op: str, what: str = "shape") -> tuple:
    """``shape`` (an int or a sequence of ints) as a tuple of Python ints, else a TypeError
    naming ``op``. A string is not a sequence of ints here, even though ``int("2")`` works."""
    if type(shape) is tuple and all(type(n) is int for n in shape):
        return shape  # the common case, first
    one = isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__")
    if one or getattr(shape, "ndim", None) == 0:  # a 0-d integer array is one size too
        return (_size(shape, op, shape, what),)
    return tuple(_size(n, op, shape, what) for n in shape)


def pair(x: Any) -> tuple[int, int]:
    """``x`` (an int, NumPy ints too, or an (h, w) pair of them) as a pair of Python ints >= 0."""
    if _is_int(x):
        x = (x, x)
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(_is_int(n) for n in x):
        if x[0] >= 0 and x[1] >= 0:
            return (int(x[0]), int(x[1]))
        raise ValueError(f"expected sizes >= 0, got {tuple(x)!r}")
    raise TypeError(f"expected an int or a pair of ints, got {x!r}")


def get_conv_outsize(input_size: int, kernel_size: int, stride: int, pad: int) -> int:
    """Output length of a convolution/pooling along one axis (DeZero's name)."""
    return (input_size + pad * 2 - kernel_size) // stride + 1


def get_deconv_outsize(size: int, k: int, s: int, p: int) -> int:
    """Output length of a transposed convolution along one axis (DeZero's name)."""
    return s * (size - 1) + k - 2 * p
