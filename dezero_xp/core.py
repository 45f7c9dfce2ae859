"""Variable, Parameter, Function and the backward engine: the define-by-run graph itself.

A :class:`Function` call resolves its backend once from its first Variable input, checks every
other input against it by identity (raising :class:`DeviceMismatchError` before any compute),
runs ``forward`` on raw arrays and, when backprop is enabled, links the graph: outputs point to
their creator strongly, the creator points to its outputs by weakref, so a graph is freed by
reference counting alone. :meth:`Variable.backward` walks the graph iteratively, newest
generation first, and accumulates gradients as Variables, so derivatives of any order work.

This module holds no op math; operators (``+``, ``*``, ``[]``, ...) and the shape methods of
Variable are installed by ``dezero_xp/__init__.py`` from ``dezero_xp.functions``.

May import: dezero_xp._config and dezero_xp.backend.
"""

from __future__ import annotations

import heapq
import math
import weakref

from dezero_xp._config import Config
from dezero_xp.backend import (
    Backend,
    DeviceMismatchError,
    Movable,
    as_array_data,
    get_backend,
    is_scalar,
    scalar_as_array,
    to_host,
    transfer,
)

__all__ = [
    "Function",
    "Parameter",
    "Variable",
    "as_array",
    "as_variable",
    "needs_grad",
    "run_forward",
    "wrap_array",
]


class Variable(Movable):
    """A box for an array that remembers the Function that made it, so it can backpropagate.

    ``data`` is an array of any supported library (NumPy, CuPy, array-api-strict, torch, ...);
    ``grad`` is a Variable (or None) after :meth:`backward`.
    """

    __slots__ = ("_data", "_backend", "name", "grad", "creator", "generation", "__weakref__")
    # NumPy defers `ndarray + Variable` to Variable.__radd__ instead of broadcasting over it.
    __array_priority__ = 200
    __array_ufunc__ = None

    def __init__(self, data, name=None, device=None):
        backend = None
        if data is not None:
            data, backend = as_array_data(data, "Variable")
        if device is not None:
            target = get_backend(device)
            if data is not None:
                data = transfer(data, target)
            backend = target
        self._data = data
        self._backend = backend
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    # ------------------------------------------------------------------ data and metadata
    @property
    def data(self):
        """The array inside (assigning another array, even from another device, is allowed)."""
        data = self._data
        if data is not None and type(data) is not self._backend.array_type:
            # A NumPy scalar kept by a 0-d op (see Backend.value_types): hand out a 0-d array.
            data = self._data = self._backend.coerce(data)
        return data

    @data.setter
    def data(self, value):
        if value is None:
            self._data = None
            return
        value, backend = as_array_data(value, "Variable.data")
        self._data = value
        self._backend = backend

    @property
    def backend(self) -> Backend | None:
        """The Backend (library + device) of ``data``."""
        return self._backend

    @property
    def xp(self):
        """The array namespace of ``data`` (numpy, cupy, array_api_strict, ...)."""
        return self._backend.xp

    @property
    def device(self):
        """Where ``data`` lives, as a :class:`dezero_xp.Device` (compares equal to ``"cpu"``...)."""
        return self._backend.device if self._backend is not None else None

    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def size(self):
        return math.prod(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d Variable")
        return self._data.shape[0]

    def __repr__(self):
        if self._data is None:
            return "variable(None)"
        body = str(to_host(self._data)).replace("\n", "\n" + " " * 9)
        backend = self._backend
        if backend.name == "numpy":
            return f"variable({body})"
        return f"variable({body}, device='{backend}')"

    # DLPack export of the data: torch.from_dlpack(v) / numpy.from_dlpack(v) share its memory.
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    # ------------------------------------------------------------------ graph bookkeeping
    def set_creator(self, func):
        """Record ``func`` as the Function that produced this Variable."""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self):
        """Forget the gradient (gradients accumulate across backward calls otherwise)."""
        self.grad = None

    def unchain(self):
        """Cut the link to the creator: backward stops here."""
        self.creator = None

    def unchain_backward(self):
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

    # ------------------------------------------------------------------ backward engine
    def backward(self, retain_grad=False, create_graph=False):
        """Backpropagate from this Variable, filling ``.grad`` of every Variable behind it.

        ``retain_grad`` keeps the gradients of intermediate Variables (else they are freed as
        soon as they are used). ``create_graph`` records the backward computation as a graph, so
        ``x.grad`` can itself be differentiated (higher-order derivatives, double backprop).
        """
        if self._data is None:
            raise ValueError("backward: this Variable holds no data")
        if self.creator is None:
            if self.grad is None:
                self.grad = wrap_array(self._backend.xp.ones_like(self._data), self._backend)
            return
        previous = Config.enable_backprop
        Config.enable_backprop = create_graph
        engine = _backprop_variables if create_graph else _backprop_arrays
        try:
            if self._backend.scoped:  # a graph lives on one device: one scope for the pass
                with self._backend.ops.scope():
                    engine(self, retain_grad)
            else:
                engine(self, retain_grad)
        finally:
            Config.enable_backprop = previous

    # ------------------------------------------------------------------ devices
    def to(self, device):
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


class Parameter(Variable):
    """A Variable that a Layer registers and an Optimizer updates."""

    __slots__ = ()


_new_object = object.__new__


def wrap_array(data, backend, cls=Variable):
    """A fresh Variable around an array known to belong to ``backend`` (no checks; hot path).

    Also how ops make constants (masks, signs): a Variable with no creator has zero derivative.
    """
    v = object.__new__(cls)
    v._data = data
    v._backend = backend
    v.name = None
    v.grad = None
    v.creator = None
    v.generation = 0
    return v


# --------------------------------------------------------------------------- backward engine
# Two loops over the same graph, both iterative (a heap keyed by (-generation, counter): newest
# generation first, the counter keeps the order deterministic) and both accumulating gradients
# out of place (one gradient object may be handed to several inputs):
# - _backprop_variables: gradients are Variables and each op's ``backward`` runs as ops, so the
#   backward pass is itself a graph when create_graph=True (higher-order derivatives).
# - _backprop_arrays: the first-order case. Gradients stay raw arrays; an op that defines
#   ``backward_data`` runs it directly, any other op runs its ``backward`` on Variables wrapped
#   around the arrays. No graph is built, so no Function/Variable bookkeeping is paid per step.


def _seed_gradient(root):
    if root.grad is None:
        root.grad = wrap_array(root._backend.xp.ones_like(root._data), root._backend)
    return root.grad


def _as_gradient_tuple(f, gxs):
    if type(gxs) is not tuple:
        gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
    if len(gxs) != len(f.inputs):
        raise RuntimeError(
            f"{type(f).__name__}.backward returned {len(gxs)} gradient(s) for "
            f"{len(f.inputs)} input(s)"
        )
    return gxs


def _backprop_variables(root, retain_grad):
    _seed_gradient(root)
    creator = root.creator
    heap = [(-creator.generation, 0, creator)]
    queued = {creator}
    counter = 1
    while heap:
        f = heapq.heappop(heap)[2]
        outputs = [ref() for ref in f.outputs]
        gys = [None if y is None else y.grad for y in outputs]
        gxs = _as_gradient_tuple(f, f.backward(*gys))
        for x, gx in zip(f.inputs, gxs):
            if gx is None or type(x) is _Constant:
                continue
            if type(gx) is not Variable or gx._backend is not x._backend:
                _check_gradient(f, x, gx)
            if gx._data.shape != x._data.shape:
                _check_gradient(f, x, gx)
            x.grad = gx if x.grad is None else x.grad + gx
            c = x.creator
            if c is not None and c not in queued:
                queued.add(c)
                heapq.heappush(heap, (-c.generation, counter, c))
                counter += 1
        if not retain_grad:
            for y in outputs:
                if y is not None:
                    y.grad = None


def _backward_on_variables(f, gys):
    """Run an op's Variable ``backward`` for the array loop: wrap, call, unwrap."""
    backend = f.backend
    gxs = _as_gradient_tuple(
        f, f.backward(*[None if g is None else wrap_array(g, backend) for g in gys])
    )
    arrays = []
    for x, gx in zip(f.inputs, gxs):
        if gx is not None and (type(gx) is not Variable or gx._backend is not x._backend):
            _check_gradient(f, x, gx)
        arrays.append(None if gx is None else gx._data)
    return arrays


def _backprop_arrays(root, retain_grad):
    # grads: Variable -> accumulated gradient array of the Variables not yet finished.
    grads = {root: _seed_gradient(root)._data}
    heap = []
    queued = {root.creator}
    counter = 0
    pop = heapq.heappop
    push = heapq.heappush
    take = grads.pop
    # Variables whose entry in `grads` is a sum this loop allocated: safe to add into in place.
    owned = set()
    f = root.creator
    while f is not None:
        # All consumers of f's outputs have run (they have higher generations): their
        # gradients are complete, so they leave `grads` now.
        refs = f.outputs
        if len(refs) == 1:  # nearly every op: no lists
            y = refs[0]()
            gy = take(y, None)
            if owned:
                owned.discard(y)
            if retain_grad and gy is not None:
                y.grad = wrap_array(gy, y._backend)
            elif y.grad is not None:
                y.grad = None
            gys = (gy,)
        else:
            outputs = [ref() for ref in refs]
            gys = tuple(None if y is None else take(y, None) for y in outputs)
            owned.difference_update(outputs)
            for y, gy in zip(outputs, gys):
                if y is not None:
                    keep = retain_grad and gy is not None
                    y.grad = wrap_array(gy, y._backend) if keep else None
        backward_data = f.backward_data
        gxs = backward_data(*gys) if backward_data is not None else _backward_on_variables(f, gys)
        if type(gxs) is not tuple and type(gxs) is not list:
            gxs = (gxs,)
        following = None  # a creator found now that may run next without the heap
        for x, gx in zip(f.inputs, gxs):
            if gx is None or type(x) is _Constant:
                continue
            if gx.shape != x._data.shape:
                _raise_array_gradient_shape(f, x, gx)
            accumulated = grads.get(x)
            if accumulated is None:
                # DeZero semantics: a gradient left from an earlier backward call adds up.
                previous = x.grad
                if previous is None:
                    grads[x] = gx  # may be shared (Add hands one array to both inputs)
                else:
                    grads[x] = previous._data + gx
                    owned.add(x)
            elif x in owned and accumulated.dtype == gx.dtype:
                accumulated += gx  # our own sum, referenced nowhere else: add in place
                grads[x] = accumulated
            else:
                grads[x] = accumulated + gx
                owned.add(x)
            c = x.creator
            if c is not None and c not in queued:
                queued.add(c)
                if following is None:
                    following = c
                else:
                    push(heap, (-c.generation, counter, c))
                    counter += 1
        # A chain (one new creator, nothing else waiting) skips the heap; otherwise the newest
        # generation goes first.
        if following is not None:
            if not heap:
                f = following
                continue
            push(heap, (-following.generation, counter, following))
            counter += 1
        f = pop(heap)[2] if heap else None
    # What is left has no creator: the leaves (inputs, parameters).
    for x, g in grads.items():
        x.grad = wrap_array(g, x._backend)


def _raise_array_gradient_shape(f, x, gx):
    raise RuntimeError(
        f"{type(f).__name__}.backward returned a gradient of shape {tuple(gx.shape)} for an "
        f"input of shape {tuple(x.shape)}"
    )


class _Constant(Variable):
    """An operand the user did not give as a Variable: a scalar (``2.0`` in ``2.0 * x``, as a
    0-d array in the other operand's dtype) or a raw array (a batch of data, labels).

    Nobody can ask for its gradient (the user never held this Variable), so the backward
    engines give it none, and ops may skip computing it (:func:`needs_grad`). Scalar constants
    are shared between graphs through a small cache.
    """

    __slots__ = ()


def needs_grad(variable) -> bool:
    """False for the inputs whose gradient nobody can observe (scalars, raw arrays).

    ``backward_data`` fast paths use it to skip work, e.g. the input-data gradient of the first
    layer when the batch was passed as a plain array.
    """
    return type(variable) is not _Constant


def _wrap_constant(data, backend):
    return wrap_array(data, backend, _Constant)


_constants: dict = {}
_CONSTANTS_MAX = 1024


def _constant(value, backend, like_dtype):
    # type(value) is part of the key: 1, 1.0 and True are equal and hash alike.
    key = (backend, like_dtype, type(value), value)
    try:
        return _constants[key]
    except (KeyError, TypeError):  # TypeError: unhashable NumPy scalar subclass, not cached
        pass
    c = _wrap_constant(scalar_as_array(value, backend, like_dtype), backend)
    if len(_constants) >= _CONSTANTS_MAX:
        _constants.clear()
    try:
        _constants[key] = c
    except TypeError:
        pass
    return c


def run_forward(func, backend, *arrays):
    """``func.forward(*arrays)`` on raw arrays of ``backend``, building no graph.

    For ``backward_data`` fast paths whose gradient is another Function's forward (a
    ``<Op>Grad``): the same math as calling it, without the Variables around it.
    """
    func.backend = backend
    func.xp = backend.xp
    return func.forward(*arrays)


def _check_gradient(f, x, gx):
    """Gradients must be Variables (Parameters too) with the input's shape and backend."""
    if not isinstance(gx, Variable):
        raise TypeError(
            f"{type(f).__name__}.backward returned {type(gx).__name__}; backward must return "
            "Variables (write raw-array math as its own Function so higher orders work)"
        )
    if gx._data.shape != x._data.shape:
        raise RuntimeError(
            f"{type(f).__name__}.backward returned a gradient of shape {tuple(gx.shape)} for an "
            f"input of shape {tuple(x.shape)}"
        )
    if gx._backend is not x._backend:
        raise DeviceMismatchError(
            f"{type(f).__name__}.backward returned a gradient on {gx._backend} for an input on "
            f"{x._backend}; backward must create its arrays on the input's device "
            "(use wrap_array(..., self.backend) and self.backend.native_device)"
        )
    return gx


def as_variable(obj):
    """``obj`` if it is a Variable, else a new Variable around it (DeZero's helper)."""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


def as_array(x, array_module=None):
    """DeZero's helper: Python/NumPy scalars become 0-d arrays of ``array_module`` (NumPy)."""
    if is_scalar(x):
        if array_module is None:
            return get_backend("cpu").asarray(x)
        return array_module.asarray(x)
    return x


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
    """Base of every differentiable op: ``forward`` on raw arrays, ``backward`` on Variables.

    Subclasses read ``self.xp`` (array namespace) and ``self.ops`` (kernel table) in forward;
    both are set from the inputs' backend by ``__call__``. An instance is single-use.
    """

    inputs = None
    outputs = None
    generation = 0
    backend = None
    xp = None
    #: Optional first-order fast path: ``backward_data(*gy_arrays) -> gx arrays`` (None for an
    #: input without gradient). Used when no graph of the backward is needed; it must compute
    #: exactly what ``backward`` computes, which stays the definition (and the higher-order path).
    backward_data = None

    @property
    def ops(self):
        """The kernel table of the inputs' backend (scatter-add, pad, RNG, im2col, ...)."""
        return self.backend.ops

    def __call__(self, *inputs):
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
        except (ValueError, TypeError, IndexError, RuntimeError) as exc:  # torch: RuntimeError
            if isinstance(exc, DeviceMismatchError):
                raise
            message = f"{type(self).__name__}: {exc} [inputs: {_describe(variables)}]"
            raise _annotated(exc, message) from exc
        self.inputs = variables
        if type(ys) is not tuple:
            # One output (nearly every op): no lists, one weakref; wrap_array inlined.
            if type(ys) not in backend.value_types:
                ys = backend.coerce(ys)
            output = _new_object(Variable)
            output._data = ys
            output._backend = backend
            output.name = None
            output.grad = None
            if Config.enable_backprop:
                generation = 0
                for x in variables:
                    if x.generation > generation:
                        generation = x.generation
                self.generation = generation
                output.creator = self
                output.generation = generation + 1
                self.outputs = (weakref.ref(output),)
            else:
                output.creator = None
                output.generation = 0
            return output
        value_types = backend.value_types
        outputs = [
            wrap_array(y if type(y) in value_types else backend.coerce(y), backend) for y in ys
        ]
        if Config.enable_backprop:
            self.generation = max([x.generation for x in variables])
            for output in outputs:
                output.creator = self
                output.generation = self.generation + 1
            self.outputs = tuple(weakref.ref(output) for output in outputs)
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs):
        """Compute the outputs from raw arrays with ``self.xp``."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys):
        """Gradients of the inputs (Variables) from the gradients of the outputs (Variables)."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

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
            return _constant(x, backend, ref_dtype)
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
        return _wrap_constant(data, backend)

    def _raise_mismatch(self, inputs, i, found, expected):
        raise DeviceMismatchError(
            f"{type(self).__name__}: input {i} is on {found} but the op runs on {expected} "
            f"(inputs: {_describe(inputs)}). dezero_xp never copies between devices implicitly; "
            f"move it first, e.g. x.to('{expected}')"
        )


def _annotated(exc, message):
    """The same kind of exception with the op's context added (the original stays chained)."""
    try:
        new = type(exc)(message)
    except Exception:  # exception types with unusual constructors keep their own message
        return exc
    new.__cause__ = exc
    return new
