"""What optimizers check before they touch a parameter: hyperparameters, gradients, saved state.

- :class:`Hyperparameter`: a descriptor validating a number on every assignment (the
  constructor's and a schedule's ``optimizer.lr = ...`` alike): a real number, finite, in range.
- :func:`check_grad`: the gradient of one parameter before an update: a Variable, on the
  parameter's device and library (:class:`DeviceMismatchError` otherwise: nothing is copied
  implicitly), of the parameter's shape (an update never broadcasts), for a floating-point
  parameter. A gradient of another floating dtype is cast, explicitly, to the parameter's.
- :func:`checked_counter` / :func:`checked_state_array`: one value of a checkpointed
  optimizer state, refused with a ValueError naming the key when it is not what was saved.

May import: numpy, dezero_xp.backend and dezero_xp.core.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from dezero_xp.backend import DeviceMismatchError, to_host
from dezero_xp.core import Variable, wrap_array

__all__ = ["Hyperparameter", "check_grad", "checked_counter", "checked_state_array"]


class Hyperparameter:
    """A validated float attribute: ``lr = Hyperparameter(minimum=0.0)``.

    ``below`` is an exclusive upper bound (``beta1 < 1``), ``positive`` excludes the minimum.
    """

    def __init__(
        self,
        minimum: float = 0.0,
        below: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
    ) -> None:
        self.minimum = minimum
        self.below = below
        self.maximum = maximum
        self.positive = positive

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = "_hyper_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__[self.slot]

    def _range(self) -> str:
        low = f"> {self.minimum}" if self.positive else f">= {self.minimum}"
        if self.below is not None:
            return f"{low} and < {self.below}"
        if self.maximum is not None:
            return f"{low} and <= {self.maximum}"
        return low

    def __set__(self, obj: Any, value: Any) -> None:
        where = f"{type(obj).__name__}: {self.name}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            shape = getattr(value, "shape", None)
            if shape == () and getattr(value, "dtype", None) is not None:
                value = to_host(value)[()]  # type: ignore[arg-type]  # a 0-d array
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"{where} must be a real number, got {type(value).__name__} {value!r:.40}"
                )
        number = float(value)
        ok = math.isfinite(number) and (
            number > self.minimum if self.positive else number >= self.minimum
        )
        if ok and self.below is not None:
            ok = number < self.below
        if ok and self.maximum is not None:
            ok = number <= self.maximum
        if not ok:
            raise ValueError(f"{where} must be finite and {self._range()}, got {value!r}")
        obj.__dict__[self.slot] = number


def _describe(param: Any, index: int) -> str:
    name = f" {param.name!r}" if getattr(param, "name", None) else ""
    return f"parameter {index}{name} (shape {tuple(param.shape)})"


def check_grad(optimizer: object, param: Any, index: int) -> None:
    """Refuse a gradient that cannot update ``param`` in place; cast another float dtype."""
    where = type(optimizer).__name__
    grad = param.grad
    if not isinstance(grad, Variable):
        raise TypeError(
            f"{where}: the grad of {_describe(param, index)} is a {type(grad).__name__}; "
            "assign a Variable (param.grad = Variable(array)) or let backward() set it"
        )
    if param.data is None:
        raise ValueError(f"{where}: {_describe(param, index)} has a grad but no data")
    backend = param.backend
    if grad.backend is not backend:
        raise DeviceMismatchError(
            f"{where}: the grad of {_describe(param, index)} is on {grad.backend} but the "
            f"parameter is on {backend}; nothing is copied implicitly: move the grad, e.g. "
            f"param.grad = param.grad.to('{backend}')"
        )
    if tuple(grad.shape) != tuple(param.shape):
        raise ValueError(
            f"{where}: the grad of {_describe(param, index)} has shape {tuple(grad.shape)}; "
            "an update never broadcasts: the grad must have the parameter's shape"
        )
    xp = backend.xp  # type: ignore[union-attr]  # a parameter with data has a backend
    if not xp.isdtype(param.dtype, "real floating"):
        raise TypeError(
            f"{where}: {_describe(param, index)} has dtype {param.dtype}; optimizers update "
            "floating-point parameters only: make it float (e.g. Parameter(x.astype('float32')))"
        )
    if grad.dtype != param.dtype:
        if xp.isdtype(grad.dtype, "complex floating"):
            raise TypeError(
                f"{where}: the grad of {_describe(param, index)} is complex ({grad.dtype})"
            )
        with backend:  # type: ignore[union-attr]
            param.grad = wrap_array(xp.astype(grad.data, param.dtype), backend)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- saved state


def checked_counter(where: str, key: str, value: Any) -> int:
    """A saved integer counter (Adam's ``t``): a 0-d, non-negative integer."""
    array = np.asarray(to_host(value))
    if array.shape != () or array.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: {key!r} must be a non-negative integer (0-d), got {array.dtype} "
            f"of shape {array.shape}"
        )
    number = int(array)
    if number < 0:
        raise ValueError(f"{where}: {key!r} must be a non-negative integer, got {number}")
    return number


def checked_state_array(where: str, key: str, value: Any, param: Any, index: int) -> np.ndarray:
    """A saved per-parameter array: real floating point, of the parameter's shape."""
    array = np.array(to_host(value), copy=True)  # own copy: updates happen in place
    if array.dtype.kind != "f":
        raise ValueError(
            f"{where}: {key!r} has dtype {array.dtype}; optimizer state is floating point"
        )
    # (a lazily created parameter may have no data yet: its shape is checked later)
    if param.data is not None and tuple(array.shape) != tuple(param.shape):
        raise ValueError(
            f"{where}: {key!r} has shape {tuple(array.shape)} but parameter {index} "
            f"has shape {tuple(param.shape)}"
        )
    return array
