"""Variables made from scratch on a chosen device: zeros, ones, full, arange, rand, randn, tensor.

Every helper takes ``device=`` (any device spec: ``None`` is the default device, ``"cpu"``,
``"cuda:1"``, ``"auto"``, ``"strict:device1"``, ...; an unusable ``"cuda"`` falls back to the CPU
with one ``DeviceFallbackWarning``, or raises in strict device mode) and ``dtype=`` (a name such
as ``"float64"``, a NumPy dtype, or the backend's own dtype object). The default float dtype is
float32; integer and boolean data keep their kind. The arrays are made directly on the device
(random numbers by the backend's own generator, seeded by ``dezero_xp.seed``); only
:func:`tensor` copies data that lives elsewhere, because you asked it to.

Each helper returns a new leaf :class:`~dezero_xp.core.Variable`.

May import: dezero_xp.backend, dezero_xp.core and dezero_xp.typing.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from dezero_xp.backend import (
    Backend,
    backend_of,
    dtype_name,
    get_backend,
    is_array,
    is_scalar,
    transfer,
)
from dezero_xp.core import Variable, wrap_array
from dezero_xp.typing import (
    Array,
    ArrayLike,
    DeviceLike,
    DTypeLike,
    Scalar,
    ShapeLike,
    VariableLike,
)

__all__ = [
    "DEFAULT_FLOAT",
    "arange",
    "full",
    "full_like",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "tensor",
    "zeros",
    "zeros_like",
]

DEFAULT_FLOAT = "float32"
_DEFAULT_COMPLEX = "complex64"


# --------------------------------------------------------------------------- helpers


def _shape(where: str, shape: Sequence[Any]) -> tuple[int, ...]:
    """``(2, 3)`` from ``(2, 3)``, ``((2, 3),)``, ``([2, 3],)`` or ``(5,)``; checked."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    try:
        dims = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(
            f"{where}: the shape must be ints, e.g. {where}(2, 3) or {where}((2, 3)); got {shape!r}"
        ) from None
    if any(n < 0 for n in dims):
        raise ValueError(f"{where}: negative dimension in shape {dims}")
    return dims


def _dtype(
    where: str, backend: Backend, dtype: DTypeLike | None, default: DTypeLike = DEFAULT_FLOAT
) -> Any:
    """The backend's dtype object for ``dtype`` (None means ``default``)."""
    return backend.dtype(default if dtype is None else dtype, where)


def _require_floating(where: str, backend: Backend, dtype: Any) -> None:
    if not backend.xp.isdtype(dtype, "real floating"):
        raise TypeError(
            f"{where}: random samples need a real floating dtype, got {dtype_name(dtype)}; "
            f"pass dtype='float32' or 'float64'"
        )


def _new(array: Array, backend: Backend, name: str | None) -> Variable:
    """A fresh leaf Variable around an array known to be on ``backend``."""
    v = wrap_array(array, backend, requires_grad=True)
    v.name = name
    return v


def _source(where: str, x: VariableLike) -> tuple[Array, Backend]:
    """``(array, backend)`` of a Variable or an array argument of a ``*_like`` helper."""
    data = x.data if isinstance(x, Variable) else x
    if data is None or not is_array(data):
        raise TypeError(f"{where}: expected a Variable or an array, got {type(x).__name__}")
    return data, backend_of(data)


# --------------------------------------------------------------------------- constant fills


def zeros(
    *shape: int | Sequence[int],
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """Zeros of ``shape`` (``zeros(2, 3)`` or ``zeros((2, 3))``) in ``dtype`` (float32)."""
    return full(_shape("zeros", shape), 0, dtype=dtype, device=device, name=name)


def ones(
    *shape: int | Sequence[int],
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """Ones of ``shape`` (``ones(2, 3)`` or ``ones((2, 3))``) in ``dtype`` (float32)."""
    return full(_shape("ones", shape), 1, dtype=dtype, device=device, name=name)


def full(
    shape: ShapeLike,
    fill_value: Scalar,
    *,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """``fill_value`` everywhere in an array of ``shape``, in ``dtype`` (float32 by default)."""
    if not is_scalar(fill_value):
        raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")
    dims = _shape("full", shape if isinstance(shape, (tuple, list)) else (shape,))
    backend = get_backend(device)
    return _new(backend.full(dims, fill_value, _dtype("full", backend, dtype)), backend, name)


def _like(
    where: str,
    x: VariableLike,
    fill_value: Scalar,
    dtype: DTypeLike | None,
    device: DeviceLike | None,
    name: str | None,
) -> Variable:
    data, source = _source(where, x)
    backend = source if device is None else get_backend(device)
    xp_dtype = _dtype(where, backend, data.dtype if dtype is None else dtype)
    return _new(backend.full(data.shape, fill_value, xp_dtype), backend, name)


def zeros_like(
    x: VariableLike,
    *,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """Zeros with the shape of ``x`` (Variable or array); its dtype and device unless given."""
    return _like("zeros_like", x, 0, dtype, device, name)


def ones_like(
    x: VariableLike,
    *,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """Ones with the shape of ``x`` (Variable or array); its dtype and device unless given."""
    return _like("ones_like", x, 1, dtype, device, name)


def full_like(
    x: VariableLike,
    fill_value: Scalar,
    *,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """``fill_value`` with the shape of ``x``; its dtype and device unless given."""
    if not is_scalar(fill_value):
        raise TypeError(f"full_like: fill_value must be a number, got {type(fill_value).__name__}")
    return _like("full_like", x, fill_value, dtype, device, name)


def arange(
    start: int | float,
    stop: int | float | None = None,
    step: int | float = 1,
    *,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """``start, start + step, ...`` below ``stop`` (``arange(n)`` is ``0 .. n-1``).

    The dtype is int64 when every bound is an integer, float32 otherwise, unless given.
    """
    bounds = [b for b in (start, stop, step) if b is not None]
    for b in bounds:
        if not is_scalar(b) or isinstance(b, (bool, complex)):
            raise TypeError(f"arange: bounds must be real numbers, got {b!r}")
    if step == 0:
        raise ValueError("arange: step must not be zero")
    integral = all(_int_or_none(b) is not None for b in bounds)
    backend = get_backend(device)
    xp_dtype = _dtype("arange", backend, dtype, default="int64" if integral else DEFAULT_FLOAT)
    if stop is None:
        start, stop = 0, start
    with backend:
        array = backend.xp.arange(start, stop, step, dtype=xp_dtype, device=backend.native_device)
    return _new(array, backend, name)


def _int_or_none(value: Any) -> int | None:
    """``operator.index(value)`` for integers (Python or NumPy), None for anything else."""
    try:
        return operator.index(value)
    except TypeError:
        return None


# --------------------------------------------------------------------------- random


def rand(
    *shape: int | Sequence[int],
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """Samples of U[0, 1) from the device's own generator (seeded by ``dezero_xp.seed``)."""
    dims = _shape("rand", shape)
    backend = get_backend(device)
    xp_dtype = _dtype("rand", backend, dtype)
    _require_floating("rand", backend, xp_dtype)
    return _new(backend.ops.uniform(dims, xp_dtype), backend, name)


def randn(
    *shape: int | Sequence[int],
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """Samples of N(0, 1) from the device's own generator (seeded by ``dezero_xp.seed``)."""
    dims = _shape("randn", shape)
    backend = get_backend(device)
    xp_dtype = _dtype("randn", backend, dtype)
    _require_floating("randn", backend, xp_dtype)
    return _new(backend.ops.normal(dims, xp_dtype), backend, name)


# --------------------------------------------------------------------------- from data


def tensor(
    data: Any,
    dtype: DTypeLike | None = None,
    device: DeviceLike | None = None,
    name: str | None = None,
) -> Variable:
    """A new Variable holding a copy of ``data``, on ``device``, in ``dtype``.

    ``data`` is a Python number, a nested list/tuple of numbers, an array of any supported
    library or a Variable (its data is copied; the result is a new leaf, not linked to it).

    - ``device=None``: arrays and Variables stay on their device; Python data goes to the
      default device. Another device copies the data there (explicitly: you asked for it).
    - ``dtype=None``: arrays keep their dtype; Python floats become float32 (complex numbers
      complex64), Python ints the library's default integer (int64), bools bool.

    Always a copy: writing into the result never changes ``data`` (use
    ``Variable(array)`` to wrap an array without copying).
    """
    if isinstance(data, Variable):
        data = data.data
        if data is None:
            raise TypeError("tensor: the Variable holds no data")
    if is_array(data):
        return _tensor_from_array(data, dtype, device, name)
    if isinstance(data, (str, bytes, dict, set)) or data is None:
        raise TypeError(
            f"tensor: expected numbers, a nested list of numbers, an array or a Variable; got "
            f"{type(data).__name__}"
        )
    backend = get_backend(device)
    if is_scalar(data) and hasattr(data, "dtype"):
        # A NumPy scalar: a host array with the scalar's own dtype.
        return _tensor_from_array(get_backend("cpu").asarray(data), dtype, backend, name)
    xp = backend.xp
    try:
        probe_error = None
        try:
            array = backend.asarray(data)
        except (TypeError, ValueError) as exc:
            array, probe_error = None, exc
        numeric = array is not None and xp.isdtype(array.dtype, ("bool", "numeric"))
        huge = False if numeric else _refuse_non_numbers(data)  # strings, None, ...: TypeError
        if dtype is not None:
            array = backend.asarray(data, _dtype("tensor", backend, dtype))
        elif huge:
            raise OverflowError("an int does not fit the default integer dtype; pass dtype=")
        elif not numeric:
            raise probe_error or TypeError(f"got an array of dtype {array.dtype}")
        elif xp.isdtype(array.dtype, "real floating"):
            array = _astype(backend, array, _dtype("tensor", backend, DEFAULT_FLOAT))
        elif xp.isdtype(array.dtype, "complex floating"):
            array = _astype(backend, array, _dtype("tensor", backend, _DEFAULT_COMPLEX))
    except (TypeError, ValueError, OverflowError) as exc:
        if str(exc).startswith("tensor:"):
            raise
        raise type(exc)(f"tensor: cannot make an array of {data!r:.60} ({exc})") from exc
    return _new(array, backend, name)


_INT64_RANGE = range(-(2**63), 2**63)


def _refuse_non_numbers(data: Any) -> bool:
    """TypeError naming the first leaf of nested lists/tuples that is not a number or bool;
    else whether some Python int is outside int64's range."""
    stack = [data]
    huge = False
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, int) and item not in _INT64_RANGE:
            huge = True
        elif not (is_scalar(item) or is_array(item)) or isinstance(item, (str, bytes)):
            raise TypeError(
                f"tensor: expected numbers, a nested list of numbers, an array or a Variable; "
                f"found {type(item).__name__} {item!r:.30} in {data!r:.60}"
            )
    return huge


def _astype(backend: Backend, array: Array, xp_dtype: Any) -> Array:
    if array.dtype == xp_dtype:
        return array
    with backend:
        return backend.xp.astype(array, xp_dtype)


def _tensor_from_array(
    array: ArrayLike, dtype: DTypeLike | None, device: DeviceLike | None, name: str | None
) -> Variable:
    source = backend_of(array)
    backend = source if device is None else get_backend(device)
    if backend is not source:
        array = transfer(array, backend)  # a new array on the target device
        copied = True
    else:
        copied = False
    xp = backend.xp
    with backend:
        if dtype is not None:
            xp_dtype = _dtype("tensor", backend, dtype)
            if array.dtype != xp_dtype:
                return _new(xp.astype(array, xp_dtype), backend, name)
        if not copied:
            array = xp.asarray(array, copy=True)
    return _new(array, backend, name)
