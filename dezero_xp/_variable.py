"""Variable and Parameter: the boxes of the graph, and the helpers that make them.

A Variable holds an array of any supported library (``data``), its gradient (``grad``, a
Variable), the Function that made it (``creator``), its ``generation`` and ``requires_grad``:
True for Variables and Parameters the user makes, False for wrapped raw arrays, scalars, masks
and gradients (:func:`wrap_array`'s default). ``backward`` and the operators are installed by
``dezero_xp/__init__.py`` (from ``dezero_xp._engine`` and ``dezero_xp.functions``); the public
home of these names is ``dezero_xp.core``.

May import: dezero_xp.backend.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dezero_xp.backend import (
    Backend,
    Movable,
    as_array_data,
    get_backend,
    is_scalar,
    to_host,
    transfer,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from dezero_xp.backend import Device
    from dezero_xp.core import Function
    from dezero_xp.typing import (
        Array,
        ArrayLike,
        Axis,
        DeviceLike,
        Scalar,
        Shape,
        VariableLike,
    )

__all__ = [
    "Parameter",
    "Variable",
    "as_array",
    "as_variable",
    "check_not_updated",
    "update_clock",
    "wrap_array",
]


class Variable(Movable):
    """A box for an array that remembers the Function that made it, so it can backpropagate.

    ``data`` is an array of any supported library (NumPy, CuPy, array-api-strict, torch, ...);
    ``grad`` is a Variable (or None) after :meth:`backward`.
    """

    __slots__ = (
        "_data",
        "_backend",
        "name",
        "grad",
        "creator",
        "generation",
        "requires_grad",
        "_clock",  # update_clock when its creator ran (see below); on the Variable, not the
        # Function: one more key in a Function's __dict__ would resize it at every op
        "_updated_at",  # update_clock at its last tracked change of data (unset: never)
        "__weakref__",
    )
    # NumPy defers `ndarray + Variable` to Variable.__radd__ instead of broadcasting over it.
    __array_priority__ = 200
    __array_ufunc__ = None

    def __init__(
        self, data: ArrayLike | None, name: str | None = None, device: DeviceLike | None = None
    ) -> None:
        backend = None
        if data is not None:
            data, backend = as_array_data(data, type(self).__name__)
            _refuse_non_numbers(data, type(self).__name__)
        if device is not None:
            target = get_backend(device)
            if data is not None:
                data = transfer(data, target)
            backend = target
        self._data = data
        self._backend = backend
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a str or None, got {name!r:.40}")
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0
        self.requires_grad = True
        self._clock = 0

    # ------------------------------------------------------------------ data and metadata
    @property
    def data(self) -> Array:
        """The array inside (assigning another array, even from another device, is allowed)."""
        data = self._data
        if data is not None and type(data) is not self._backend.array_type:
            # A NumPy scalar kept by a 0-d op (see Backend.value_types): hand out a 0-d array.
            data = self._data = self._backend.coerce(data)
        return data

    @data.setter
    def data(self, value: ArrayLike | None) -> None:
        if value is None:
            self._data = None
            return
        value, backend = as_array_data(value, "Variable.data")
        _refuse_non_numbers(value, "Variable.data")
        old = self._data
        if old is not None and old.shape != value.shape:
            # The ops that used the old data read the new one at backward time: tracked (see
            # check_not_updated); a new array of the same shape is not (like a raw write).
            update_clock[0] += 1
            self._updated_at = update_clock[0]
        self._data = value
        self._backend = backend

    @property
    def backend(self) -> Backend | None:
        """The Backend (library + device) of ``data``."""
        return self._backend

    @property
    def xp(self) -> Any:
        """The array namespace of ``data`` (numpy, cupy, array_api_strict, ...)."""
        return self._backend.xp

    @property
    def device(self) -> Device | None:
        """Where ``data`` lives, as a :class:`dezero_xp.Device` (compares equal to ``"cpu"``...)."""
        return self._backend.device if self._backend is not None else None

    @property
    def shape(self) -> Shape:
        return tuple(self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return math.prod(self._data.shape)

    @property
    def dtype(self) -> Any:
        return self._data.dtype

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d Variable")
        return self._data.shape[0]

    def __bool__(self) -> bool:
        # The truth of the one element, as NumPy and torch define it, on every backend (the
        # standard allows bool() of 0-d arrays only), not "has a length".
        data = self._data
        if data is None:
            raise ValueError("bool() of a Variable with no data")
        if math.prod(data.shape) != 1:
            raise ValueError(
                f"the truth value of a Variable of shape {tuple(data.shape)} is ambiguous; "
                "reduce it first, e.g. bool((x.data > 0).all())"
            )
        if data.ndim:
            data = self._backend.xp.reshape(data, ())
        return bool(data)

    def __repr__(self) -> str:
        if self._data is None:
            return "variable(None)"
        body = str(to_host(self._data)).replace("\n", "\n" + " " * 9)
        backend = self._backend
        if backend.name == "numpy":
            return f"variable({body})"
        return f"variable({body}, device='{backend}')"

    # DLPack export of the data: torch.from_dlpack(v) / numpy.from_dlpack(v) share its memory.
    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.data.__dlpack_device__()

    # ------------------------------------------------------------------ graph bookkeeping
    def cleargrad(self) -> None:
        """Forget the gradient (gradients accumulate across backward calls otherwise)."""
        self.grad = None

    def unchain(self) -> None:
        """Cut the link to the creator: backward stops here."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every link of the graph behind this Variable (truncated backprop in RNNs)."""
        if self.creator is None:
            return
        stack = [self.creator]
        seen = set()
        while stack:
            f = stack.pop()
            if f in seen:
                continue
            seen.add(f)
            for x in f.inputs:
                if x.creator is not None:
                    stack.append(x.creator)
                    x.unchain()
        self.unchain()

    # ------------------------------------------------------------------ devices
    def to(self, device: DeviceLike) -> Self:
        """Move ``data`` (and ``grad``) to ``device`` in place and return ``self``.

        Explicit copy between devices/libraries; a no-op when already there.
        """
        target = get_backend(device)
        if self._data is not None and self._backend is not target:
            self._data = transfer(self._data, target)
        self._backend = target
        if self.grad is not None:
            self.grad.to(target)
        return self

    if TYPE_CHECKING:
        # Slot types, and what dezero_xp/__init__.py installs at import (setup_variable).
        name: str | None
        grad: Variable | None
        creator: Function | None
        generation: int
        requires_grad: bool

        def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None: ...
        def __add__(self, other: VariableLike | Scalar) -> Variable: ...
        def __radd__(self, other: VariableLike | Scalar) -> Variable: ...
        def __sub__(self, other: VariableLike | Scalar) -> Variable: ...
        def __rsub__(self, other: VariableLike | Scalar) -> Variable: ...
        def __mul__(self, other: VariableLike | Scalar) -> Variable: ...
        def __rmul__(self, other: VariableLike | Scalar) -> Variable: ...
        def __truediv__(self, other: VariableLike | Scalar) -> Variable: ...
        def __rtruediv__(self, other: VariableLike | Scalar) -> Variable: ...
        def __neg__(self) -> Variable: ...
        def __pow__(self, other: VariableLike | Scalar) -> Variable: ...
        def __rpow__(self, other: VariableLike | Scalar) -> Variable: ...
        def __matmul__(self, other: VariableLike) -> Variable: ...
        def __rmatmul__(self, other: VariableLike) -> Variable: ...
        def __getitem__(self, slices: Any) -> Variable: ...
        def reshape(self, *shape: Any) -> Variable: ...
        def transpose(self, *axes: Any) -> Variable: ...
        @property
        def T(self) -> Variable: ...
        @property
        def mT(self) -> Variable: ...
        def sum(self, axis: Axis = None, keepdims: bool = False) -> Variable: ...
        def mean(self, axis: Axis = None, keepdims: bool = False) -> Variable: ...
        def max(self, axis: Axis = None, keepdims: bool = False) -> Variable: ...
        def min(self, axis: Axis = None, keepdims: bool = False) -> Variable: ...


# How many tracked changes of data have happened: in-place updates of Parameters (optimizer
# steps, ``p.data = ...``) and any Variable given data of another shape. A Function's outputs
# record the count when it joins a graph; when the count has moved by backward time, the engine
# checks that no input of the op changed since (the cheap part of PyTorch's version counters:
# writes through dezero_xp, not raw writes into arrays).
update_clock = [0]

# dtype kinds of NumPy (and CuPy) arrays that hold no numbers: object, str, bytes, void, dates.
_NOT_NUMBERS = frozenset("OUSVMm")


def _refuse_non_numbers(data, where: str) -> None:
    if getattr(getattr(data, "dtype", None), "kind", None) in _NOT_NUMBERS:
        raise TypeError(
            f"{where}: data must hold numbers (bool, int, float or complex), got an array of "
            f"dtype {data.dtype}; convert it first, e.g. numpy.asarray(data, dtype=float)"
        )


def check_not_updated(f, clock):
    """Refuse to backpropagate through ``f`` (run at update-clock ``clock``) when an input it
    used changed since: a Parameter updated in place, or a Variable given data of another
    shape (the backward pass would read data that the forward pass never saw)."""
    for i, x in enumerate(f.inputs):
        if getattr(x, "_updated_at", 0) > clock:
            name = f" {x.name!r}" if x.name else ""
            if isinstance(x, Parameter):
                raise RuntimeError(
                    f"{type(f).__name__}: Parameter{name} (input {i}, shape {tuple(x.shape)}) "
                    "was updated in place (an optimizer step or p.data = ...) after the forward "
                    "pass that used it, so its gradient would be wrong; call backward() before "
                    "optimizer.update(), or run the forward pass again"
                )
            raise RuntimeError(
                f"{type(f).__name__}: Variable{name} (input {i}) was given data of another shape "
                f"{tuple(x.shape)} (x.data = ...) after the forward pass that used it, so the "
                "backward pass cannot use it; run the forward pass again on the new data"
            )


class Parameter(Variable):
    """A Variable that a Layer registers and an Optimizer updates."""

    __slots__ = ()

    def mark_updated(self) -> None:
        """Record an in-place update of the data (optimizers call it after each step)."""
        update_clock[0] += 1
        self._updated_at = update_clock[0]

    def _set_data(self, value: ArrayLike | None) -> None:
        Variable.data.fset(self, value)
        self.mark_updated()

    data = property(Variable.data.fget, _set_data, doc=Variable.data.__doc__)


# Their public home (pickles, reprs and type names say dezero_xp.core, as before the split).
Variable.__module__ = Parameter.__module__ = "dezero_xp.core"


_new_object = object.__new__


def wrap_array(
    data: Array, backend: Backend, cls: type[Variable] = Variable, requires_grad: bool = False
) -> Variable:
    """A fresh Variable around an array known to belong to ``backend`` (no checks; hot path).

    By default a constant (``requires_grad=False``): how raw-array inputs, scalars, masks and
    gradients are wrapped. Variables handed to the user as their own pass ``requires_grad=True``.
    """
    v = _new_object(cls)
    v._data = data
    v._backend = backend
    v.name = None
    v.grad = None
    v.creator = None
    v.generation = 0
    v.requires_grad = requires_grad
    v._clock = 0
    return v


def as_variable(obj: VariableLike) -> Variable:
    """``obj`` if it is a Variable, else a new Variable around it (DeZero's helper)."""
    if isinstance(obj, Variable):
        return obj
    try:
        return Variable(obj)
    except TypeError as exc:
        raise TypeError(f"as_variable: {exc}") from None


def as_array(x: Any, array_module: Any = None) -> Any:
    """DeZero's helper: Python/NumPy scalars become 0-d arrays of ``array_module`` (NumPy)."""
    if is_scalar(x):
        if array_module is None:
            return get_backend("cpu").asarray(x)
        return array_module.asarray(x)
    return x
