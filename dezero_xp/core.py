"""Variable, Parameter and Function: the define-by-run graph itself (no op math, no engine).

A :class:`Function` call resolves its backend once from its first Variable input, checks every
other input against it by identity (raising :class:`DeviceMismatchError` before any compute),
runs ``forward`` on raw arrays and, when backprop is enabled, links the graph: outputs point to
their creator strongly, the creator points to its outputs by weakref, so a graph is freed by
reference counting alone. Every output gets a creator while backprop is enabled, even when no
input requires a gradient (DeZero's graphs and plots keep them); such an output has
``requires_grad=False`` and the backward pass stops there. Variable lives in
``dezero_xp._variable`` and is re-exported here; the backward loop is ``dezero_xp._engine``.

May import: dezero_xp._config, dezero_xp._errors, dezero_xp.backend, dezero_xp._shape and
dezero_xp._variable.
"""

from __future__ import annotations

import weakref
from typing import Any

from dezero_xp import _shape
from dezero_xp._config import Config
from dezero_xp._errors import annotated_error
from dezero_xp._variable import (
    Parameter,
    Variable,
    as_array,
    as_variable,
    check_not_updated,  # noqa: F401 - the engine's check, imported from here
    update_clock,
    wrap_array,
)
from dezero_xp.backend import (
    DeviceMismatchError,
    as_array_data,
    is_scalar,
    scalar_as_array,
)

__all__ = [
    "Function",
    "Parameter",
    "Variable",
    "as_array",
    "as_variable",
    "wrap_array",
]

_new_object = object.__new__


# --------------------------------------------------------------------------- constants
# Python scalars meet arrays as 0-d constants in the array's dtype (requires_grad=False); the
# common ones are shared between graphs through a small cache.
_constants: dict = {}
_CONSTANTS_MAX = 1024


def _constant(value, backend, like_dtype):
    # type(value) is part of the key: 1, 1.0 and True are equal and hash alike.
    key = (backend, like_dtype, type(value), value)
    try:
        return _constants[key]
    except (KeyError, TypeError):  # TypeError: unhashable NumPy scalar subclass, not cached
        pass
    c = wrap_array(scalar_as_array(value, backend, like_dtype), backend)
    if value == 0 and type(value) is not int:
        return c  # 0.0 and -0.0 are equal keys but not the same constant (1/-0.0 is -inf)
    if len(_constants) >= _CONSTANTS_MAX:
        _constants.clear()
    try:
        _constants[key] = c
    except TypeError:
        pass
    return c


def _describe(inputs) -> str:
    parts = []
    for x in inputs:
        if isinstance(x, Variable):
            if x._data is None:
                parts.append("Variable(None)")
            else:
                parts.append(f"{tuple(x._data.shape)} {x._data.dtype} on {x._backend}")
        elif is_scalar(x):
            parts.append(f"scalar {x!r}")
        elif hasattr(x, "shape"):
            parts.append(f"{type(x).__name__}{tuple(x.shape)}")
        else:
            parts.append(type(x).__name__)
    return "; ".join(parts)


class Function:
    """Base of every differentiable op: ``forward`` on raw arrays, one derivative rule.

    Subclasses read ``self.xp`` (array namespace) and ``self.ops`` (kernel table) in forward;
    both are set from the inputs' backend by ``__call__``. An instance is single-use.

    The derivative is written once, either way:

    - ``vjp(self, F, gy, y, *xs)`` (the built-in ops): gradients of the inputs from the output
      gradient ``gy``, the output ``y`` and the inputs ``xs``, using only operators and the
      names of ``F``. The engine hands it raw arrays and an array namespace in a first-order
      pass, Variables and ``dezero_xp.functions`` under ``create_graph=True``. An op with
      several outputs gets tuples ``gy`` and ``y``. ``self.inputs[i].requires_grad`` says
      whether gradient ``i`` is wanted; None stands for "no gradient".
    - DeZero's ``backward(self, *gys)`` on Variables (users' own Functions): works in both modes
      through the default ``vjp``. A subclass that defines ``backward`` and no ``vjp`` is run
      through its ``backward``.
    """

    inputs = None
    outputs = None
    generation = 0
    backend = None
    xp = None
    #: True for ops whose inputs broadcast against each other: the engine sums each input's
    #: gradient back to that input's shape (so the rules never do), and a forward error on
    #: shapes that do not broadcast becomes one clear ValueError on every backend.
    broadcasting = False
    #: Optional names of the inputs (and of the op) for error messages, e.g. "running mean".
    input_names: tuple = ()
    op_name: str | None = None

    #: False for users' Functions: their outputs are checked for library and device too.
    _builtin = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._builtin = cls.__module__.startswith("dezero_xp.")
        if "backward" in cls.__dict__ and "vjp" not in cls.__dict__:
            cls.vjp = Function.vjp  # a user's backward overrides an inherited rule

    @property
    def ops(self) -> Any:
        """The kernel table of the inputs' backend (scatter-add, pad, RNG, im2col, ...)."""
        return self.backend.ops

    def __call__(self, *inputs: Any) -> Any:
        if self.inputs is not None:
            raise RuntimeError(
                f"{type(self).__name__} instance was already called; a Function is single-use, "
                f"create a new one (e.g. {type(self).__name__}()(x))"
            )
        first = inputs[0] if inputs else None
        if isinstance(first, Variable) and first._data is not None:
            # The common case, kept short: the first input is a Variable and sets the backend.
            backend = first._backend
            if len(inputs) == 1:
                variables = inputs
                arrays = (first._data,)
            else:
                variables = [first]
                arrays = [first._data]
                for i in range(1, len(inputs)):
                    x = inputs[i]
                    if isinstance(x, Variable):
                        if x._backend is not backend or x._data is None:
                            self._check_variable_input(inputs, i, backend)
                    else:
                        kind = type(x)
                        # A cached scalar constant (see _constant), looked up inline.
                        cached = (
                            _constants.get((backend, first._data.dtype, kind, x))
                            if kind is float or kind is int
                            else None
                        )
                        if cached is None:
                            cached = self._as_input(x, i, inputs, backend, first._data.dtype)
                        x = cached
                    variables.append(x)
                    arrays.append(x._data)
        else:
            backend, variables = self._inputs_slow_path(inputs)
            arrays = [x._data for x in variables]

        self.backend = backend
        self.xp = backend.xp
        try:
            if backend.scoped:
                with backend.ops.scope():
                    ys = self.forward(*arrays)
            else:
                ys = self.forward(*arrays)
        # torch raises RuntimeError; OverflowError: a Python int beyond the dtype, e.g. clip's
        except (ValueError, TypeError, IndexError, RuntimeError, OverflowError) as exc:
            if isinstance(exc, DeviceMismatchError):
                raise
            if self.broadcasting:  # libraries disagree on the error: one ValueError for all
                try:
                    _shape.check_broadcastable(*[a.shape for a in arrays])
                except ValueError as shape_error:
                    exc = shape_error
            message = f"{type(self).__name__}: {exc} [inputs: {_describe(variables)}]"
            raise annotated_error(exc, message) from exc
        self.inputs = variables
        if not self._builtin:
            ys = self._checked_outputs(ys, backend)
        if type(ys) is not tuple:
            # One output (nearly every op): no lists, one weakref; wrap_array inlined.
            if type(ys) not in backend.value_types:
                ys = self._checked_output(ys, 0, backend)
            output = _new_object(Variable)
            output._data = ys
            output._backend = backend
            output.name = None
            output.grad = None
            if Config.enable_backprop:
                generation = 0
                requires_grad = False
                for x in variables:
                    if x.generation > generation:
                        generation = x.generation
                    if x.requires_grad:
                        requires_grad = True
                self.generation = generation
                output._clock = update_clock[0]
                output.creator = self
                output.generation = generation + 1
                output.requires_grad = requires_grad
                self.outputs = (weakref.ref(output),)
            else:
                # Made under no_grad(): no graph behind it, so nothing to backpropagate to (as
                # in PyTorch; DeZero made it a leaf, and backward() then silently did nothing).
                output.creator = None
                output.generation = 0
                output.requires_grad = False
                output._clock = 0
            return output
        if not ys:
            raise TypeError(f"{type(self).__name__}.forward returned an empty tuple")
        value_types = backend.value_types
        outputs = [
            wrap_array(
                y if type(y) in value_types else self._checked_output(y, i, backend),
                backend,
                Variable,
                True,
            )
            for i, y in enumerate(ys)
        ]
        if Config.enable_backprop:
            clock = update_clock[0]
            self.generation = max([x.generation for x in variables])
            requires_grad = any([x.requires_grad for x in variables])
            for output in outputs:
                output._clock = clock
                output.creator = self
                output.generation = self.generation + 1
                output.requires_grad = requires_grad
            self.outputs = tuple(weakref.ref(output) for output in outputs)
        else:
            for output in outputs:
                output.requires_grad = False
        return outputs if len(outputs) > 1 else outputs[0]

    def _checked_outputs(self, ys, backend):
        """A user's Function: each output must be an array on the inputs' very device (the
        built-in ops are written so; checking theirs would cost every op a device query)."""
        if type(ys) is tuple:
            return tuple(self._checked_output(y, i, backend) for i, y in enumerate(ys))
        return self._checked_output(ys, 0, backend)

    def _checked_output(self, y, i, backend):
        """``y`` as an array of the op's backend, or an error: forward must return arrays of
        its inputs' library and device (a tuple of them for several outputs), nothing else."""
        op = type(self).__name__
        if y is None or isinstance(y, (list, dict, str, bytes)) or type(y) in (float, int, bool):
            raise TypeError(
                f"{op}.forward returned {type(y).__name__} as output {i}; forward must return "
                f"an array of its inputs' library ({backend}), or a tuple of arrays for several "
                "outputs: wrap a value with self.xp.asarray(...)"
            )
        try:
            data, found = as_array_data(y, f"{op}.forward")
        except TypeError as exc:
            raise TypeError(f"{op}.forward returned output {i}, not an array: {exc}") from None
        if found is not backend:
            error = DeviceMismatchError if found.name == backend.name else TypeError
            raise error(
                f"{op}.forward returned output {i} on {found}, but its inputs are on {backend}; "
                "dezero_xp never copies between devices or libraries implicitly: compute with "
                "self.xp (the inputs' namespace) so outputs land where the inputs are"
            )
        return data if type(data) in backend.value_types else backend.coerce(data)

    def forward(self, *xs: Any) -> Any:
        """Compute the outputs from raw arrays with ``self.xp``."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys: Any) -> Any:
        """Gradients of the inputs (Variables) from the gradients of the outputs (Variables).

        By default the op's ``vjp`` rule on Variables (installed from ``dezero_xp._engine``).
        """
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def vjp(self, F: Any, gy: Any, y: Any, *xs: Any) -> Any:
        """The default rule: DeZero's :meth:`backward` on Variables, in either kind of pass.

        How users' Functions (``forward`` + ``backward``) run; built-in ops override it.
        """
        graph = F.graph
        gys = gy if len(self.outputs) > 1 else (gy,)
        if not graph:
            backend = self.backend
            gys = [None if g is None else wrap_array(g, backend) for g in gys]
        gxs = self.backward(*gys)
        if type(gxs) is not tuple:
            gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
        inputs = self.inputs
        if len(gxs) != len(inputs):
            raise RuntimeError(
                f"{type(self).__name__}.backward returned {len(gxs)} gradient(s) for "
                f"{len(inputs)} input(s)"
            )
        for x, gx in zip(inputs, gxs):
            if gx is not None and (not isinstance(gx, Variable) or gx._backend is not x._backend):
                check_gradient(self, x, gx)
        if graph:
            return gxs
        return tuple(None if gx is None else gx._data for gx in gxs)

    # ------------------------------------------------------------------ input handling
    def _check_variable_input(self, inputs, i, backend):
        x = inputs[i]
        if x._data is None:
            raise ValueError(f"{type(self).__name__}: input {i} is a Variable with no data")
        self._raise_mismatch(inputs, i, x._backend, backend)

    def _inputs_slow_path(self, inputs):
        """Backend and Variables when the first input is not a Variable with data."""
        backend = ref_dtype = None
        for i, x in enumerate(inputs):
            if isinstance(x, Variable):
                if x._data is None:
                    raise ValueError(f"{type(self).__name__}: input {i} is a Variable with no data")
                backend, ref_dtype = x._backend, x._data.dtype
                break
        if backend is None:
            backend, ref_dtype = self._backend_from_raw(inputs)
        variables = []
        for i, x in enumerate(inputs):
            if isinstance(x, Variable):
                if x._backend is not backend or x._data is None:
                    self._check_variable_input(inputs, i, backend)
            else:
                x = self._as_input(x, i, inputs, backend, ref_dtype)
            variables.append(x)
        return backend, variables

    def _backend_from_raw(self, inputs):
        for x in inputs:
            if not is_scalar(x) and not isinstance(x, (list, tuple)) and x is not None:
                try:
                    x, backend = as_array_data(x, type(self).__name__)
                except TypeError:
                    continue
                return backend, x.dtype
        raise TypeError(
            f"{type(self).__name__}: needs at least one array or Variable input, got "
            f"({_describe(inputs)}). Wrap data with Variable(numpy.array(...))"
        )

    def _as_input(self, x, i, inputs, backend, ref_dtype):
        if type(x) is float or type(x) is int or is_scalar(x):
            try:
                return _constant(x, backend, ref_dtype)
            except (OverflowError, ValueError, RuntimeError) as exc:  # torch: either of the last
                raise OverflowError(
                    f"{type(self).__name__}: input {i}, the scalar {x!r:.40}, does not fit the "
                    f"op's dtype {ref_dtype} ({exc}); use a smaller value or a wider dtype"
                ) from None
        if x is None or isinstance(x, (list, tuple, str, dict)):
            raise TypeError(
                f"{type(self).__name__}: input {i} is a {type(x).__name__}, not an array; inputs "
                f"were ({_describe(inputs)}). Convert it first, e.g. numpy.array(...)"
            )
        try:
            data, x_backend = as_array_data(x, type(self).__name__)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}: input {i}: {exc}") from None
        if x_backend is not backend:
            self._raise_mismatch(inputs, i, x_backend, backend)
        return wrap_array(data, backend)

    def _raise_mismatch(self, inputs, i, found, expected):
        op = type(self).__name__
        if self.op_name is not None:
            op = f"{self.op_name} ({op})"
        names = self.input_names
        what = f"{names[i]} (input {i})" if i < len(names) else f"input {i}"
        raise DeviceMismatchError(
            f"{op}: {what} is on {found} but the op runs on {expected} "
            f"(inputs: {_describe(inputs)}). dezero_xp never copies between devices implicitly; "
            f"move it first, e.g. x.to('{expected}')"
        )


def raise_gradient_shape(f: Function, x: Variable, gx: Variable) -> None:
    """The error for a gradient whose shape is not its input's."""
    raise RuntimeError(
        f"{type(f).__name__}.backward returned a gradient of shape {tuple(gx.shape)} for an "
        f"input of shape {tuple(x.shape)}"
    )


def check_gradient(f: Function, x: Variable, gx: Any) -> None:
    """Gradients must be Variables (Parameters too) with the input's shape and backend."""
    if not isinstance(gx, Variable):
        raise TypeError(
            f"{type(f).__name__}.backward returned {type(gx).__name__}; backward must return "
            "Variables (write raw-array math as its own Function so higher orders work)"
        )
    if gx._data.shape != x._data.shape:
        raise_gradient_shape(f, x, gx)
    if gx._backend is not x._backend:
        raise DeviceMismatchError(
            f"{type(f).__name__}.backward returned a gradient on {gx._backend} for an input on "
            f"{x._backend}; backward must create its arrays on the input's device "
            "(use wrap_array(..., self.backend) and self.backend.native_device)"
        )
