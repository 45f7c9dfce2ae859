"""Argument checks shared by the built-in layers: sizes, dtypes and inputs, each refused with an
error that names the layer, what it got and what it takes.

May import: dezero_xp.backend, dezero_xp.core and dezero_xp.serialization.
"""

from __future__ import annotations

import numbers
from typing import Any

from dezero_xp.backend import backend_of, is_array
from dezero_xp.core import Variable
from dezero_xp.serialization import dtype_name

__all__ = ["check_float_dtype", "check_input", "check_size", "check_size_pair"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_size(
    where: str, name: str, value: Any, *, minimum: int = 1, optional: bool = False
) -> Any:
    """``value`` as a Python int ``>= minimum`` (None passes when ``optional``)."""
    if value is None and optional:
        return None
    if not _is_int(value):
        raise TypeError(
            f"{where}: {name} must be an int >= {minimum}, got {type(value).__name__} {value!r:.40}"
        )
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_size_pair(where: str, name: str, value: Any, *, minimum: int = 1) -> Any:
    """An int or an (h, w) pair of ints, each ``>= minimum``; returned as given (ints made
    Python ints)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{where}: {name} must be an int or a pair (h, w), got {value!r}")
        return tuple(check_size(where, name, v, minimum=minimum) for v in value)
    return check_size(where, name, value, minimum=minimum)


def check_float_dtype(where: str, dtype: Any, backend: Any, *, optional: bool = False) -> Any:
    """``dtype`` (a name, a NumPy type, a library dtype) if it is a floating-point dtype of
    ``backend``; parameters are trained, so they must be floating point."""
    if dtype is None and optional:
        return None
    try:
        name = dtype_name(dtype)
        found = getattr(backend.xp, name)
        ok = backend.xp.isdtype(found, "real floating")
    except (AttributeError, TypeError, ValueError):
        ok = False
    if not ok:
        raise TypeError(
            f"{where}: dtype must be a floating-point dtype such as 'float32' (parameters are "
            f"trained by gradients), got {dtype!r}"
        )
    return dtype


def check_input(
    where: str, x: Any, *, ndim: int | None = None, min_ndim: int = 0, floating: bool = False
) -> tuple[int, ...]:
    """``x`` must be a Variable or an array, of rank ``ndim`` (or at least ``min_ndim``)."""
    if isinstance(x, Variable):
        data = x.data
        if data is None:
            raise TypeError(f"{where}: the input Variable holds no data")
        backend = x.backend
    elif is_array(x):
        data, backend = x, backend_of(x)
    else:
        raise TypeError(
            f"{where}: expected a Variable or an array as input, got {type(x).__name__}; "
            "wrap data first, e.g. dz.tensor(data) or np.asarray(data, dtype=np.float32)"
        )
    shape = tuple(data.shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{where}: expected a {ndim}-D input, got shape {shape}")
    if len(shape) < min_ndim:
        raise ValueError(f"{where}: expected an input of at least {min_ndim} axes, got {shape}")
    if floating:
        dtype = data.dtype
        if not backend.xp.isdtype(dtype, "real floating"):  # type: ignore[union-attr]
            raise TypeError(
                f"{where}: expected a floating-point input, got {dtype_name(dtype)}; cast it, "
                "e.g. x.astype('float32')"
            )
    return shape
