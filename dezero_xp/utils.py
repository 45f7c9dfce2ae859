"""DeZero's ``dezero.utils`` under its old names: a thin facade over the modules that own them.

- gradient checks and comparisons: from :mod:`dezero_xp.testing`, except
  :func:`array_allclose`, which broadcasts as DeZero's (``numpy.allclose``) does;
- graph drawing: from :mod:`dezero_xp.visualize`;
- convolution sizes: from ``dezero_xp._shape``;
- downloads (:func:`get_file`, :data:`cache_dir`): from ``dezero_xp._download``;
- array-level helpers that DeZero's ops used (:func:`sum_to`, :func:`logsumexp`,
  :func:`reshape_sum_backward`, :func:`max_backward_shape`), written here once for arrays of
  every backend (NumPy, CuPy, array-api-strict, torch, ...).

May import: every module of the package (it is at the bottom of the import order) and numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dezero_xp import _shape
from dezero_xp import functions as F
from dezero_xp._download import DownloadError, cache_dir, get_file
from dezero_xp._shape import get_conv_outsize, get_deconv_outsize, pair
from dezero_xp.backend import backend_of, to_host
from dezero_xp.core import Variable
from dezero_xp.testing import array_equal, gradient_check, numerical_grad
from dezero_xp.typing import Array, ArrayLike, Axis, VariableLike
from dezero_xp.visualize import get_dot_graph, plot_dot_graph

__all__ = [
    "DownloadError",
    "array_allclose",
    "array_equal",
    "cache_dir",
    "get_conv_outsize",
    "get_deconv_outsize",
    "get_dot_graph",
    "get_file",
    "gradient_check",
    "logsumexp",
    "max_backward_shape",
    "numerical_grad",
    "pair",
    "plot_dot_graph",
    "reshape_sum_backward",
    "sum_to",
]


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when ``a`` and ``b`` (arrays of any backend or Variables) are equal within tolerance
    element-wise, broadcasting one against the other as DeZero's ``numpy.allclose`` does.

    Shapes that do not broadcast raise ValueError; :func:`dezero_xp.testing.array_allclose`
    is the strict form (equal shapes too).
    """
    a, b = (_to_numpy(v) for v in (a, b))
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"array_allclose: shapes {a.shape} and {b.shape} do not broadcast; compare arrays "
            "of one shape (or a scalar)"
        ) from None
    return bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _to_numpy(x: Any) -> np.ndarray:
    data = x.data if isinstance(x, Variable) else x
    if isinstance(data, (bool, int, float, complex, np.ndarray, np.generic)):
        return np.asarray(data)
    return np.asarray(to_host(data))


def sum_to(x: VariableLike, shape: Sequence[int]) -> Any:
    """Sum the array ``x`` down to ``shape`` (undoes broadcasting); any backend's arrays.

    A Variable goes through the differentiable :func:`dezero_xp.functions.sum_to` instead.
    """
    if isinstance(x, Variable):
        return F.sum_to(x, shape)
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    xp = backend_of(x).xp
    axes = _shape.sum_to_axes(tuple(x.shape), shape)
    y = xp.sum(x, axis=axes, keepdims=True) if axes else x
    return xp.reshape(y, shape)


def reshape_sum_backward(
    gy: VariableLike, x_shape: Sequence[int], axis: Axis, keepdims: bool
) -> Any:
    """Reshape the gradient of ``sum(x, axis, keepdims)`` so it broadcasts back to ``x_shape``.

    The reduced axes come back as 1s (DeZero's helper). ``gy`` is a Variable (the result is a
    differentiable reshape) or an array of any backend.
    """
    x_shape = tuple(x_shape)
    if len(x_shape) == 0 or axis is None or keepdims:
        shape = tuple(gy.shape)
    else:
        shape = _shape.reduced_shape_keepdims(x_shape, axis)
    if isinstance(gy, Variable):
        return F.reshape(gy, shape)
    return backend_of(gy).xp.reshape(gy, shape)


def logsumexp(x: ArrayLike, axis: Axis = 1) -> Array:
    """``log(sum(exp(x), axis, keepdims=True))`` of an array, shifted by the max (no overflow).

    Array-level, as DeZero's ``utils.logsumexp``; for Variables use
    :func:`dezero_xp.functions.logsumexp`.
    """
    xp = backend_of(x).xp
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m


def max_backward_shape(x: VariableLike, axis: Axis) -> list[int]:
    """The shape (a list) of ``max(x, axis)`` with the reduced axes kept as 1s."""
    return list(_shape.reduced_shape_keepdims(tuple(x.shape), axis))
