"""The Layer base class (layers allocate their parameters with ``Backend.zeros/ones/normal``).

:class:`Layer` registers every Parameter and sub-Layer assigned to it as an attribute, iterates
them (:meth:`Layer.params`, nested, in registration order), moves them between devices
(:meth:`Layer.to`) and saves/loads them (:meth:`Layer.save_weights`, through
``dezero_xp.serialization``).

Devices: a layer created with ``device=...`` (or moved with :meth:`Layer.to`) is *placed* there.
A layer created without one starts on the default device and, at its first call, moves its own
freshly made parameters to the device of that first input (so ``L.Linear(10)(x_on_gpu)`` just
works); after that it never moves by itself, and an input on another device is an error.

May import: dezero_xp._errors, dezero_xp.backend, dezero_xp.core and dezero_xp.serialization.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dezero_xp import serialization
from dezero_xp._errors import with_name
from dezero_xp.backend import (
    DeviceMismatchError,
    Movable,
    backend_of,
    get_backend,
    is_array,
    transfer,
)
from dezero_xp.core import Parameter, Variable

if TYPE_CHECKING:
    from os import PathLike

    from typing_extensions import Self

    from dezero_xp.backend import Backend
    from dezero_xp.typing import DeviceLike

__all__ = ["Layer"]


class _Names(dict):
    """An insertion-ordered set of attribute names.

    DeZero keeps ``_params`` as a set; order matters here, so that :meth:`Layer.params` and
    saved files are the same from run to run.
    """

    __slots__ = ()

    def add(self, name: str) -> None:
        self[name] = None

    def discard(self, name: str) -> None:
        self.pop(name, None)


def _weak(obj: Any) -> Callable[[], Any]:
    """A weak reference when the object allows one, else a callable returning it."""
    try:
        return weakref.ref(obj)
    except TypeError:  # Python scalars
        return lambda: obj


def _input_backend(inputs: Any) -> Backend | None:
    """The backend of the first array or Variable among ``inputs`` (None when there is none)."""
    for x in inputs:
        if isinstance(x, Variable):
            if x.backend is not None:
                return x.backend
        elif is_array(x):
            return backend_of(x)
    return None


def _restorer(param: Variable) -> Callable[[], None]:
    """A callable putting ``param``'s data, grad data and device back as they are now."""
    backend, data = param.backend, param.data
    grad = param.grad
    grad_data = None if grad is None else grad.data

    def restore() -> None:
        if data is not None:
            param.data = data
        elif backend is not None:
            param.to(backend)  # a lazy parameter: no data, only its device
        param.grad = grad
        if grad is not None and grad_data is not None:
            grad.data = grad_data

    return restore


class Layer(Movable):
    """Base of layers and models: owns Parameters and sub-Layers assigned as attributes.

    Subclasses call ``super().__init__()`` first, assign Parameters/Layers as attributes and
    implement ``forward``. Assigning a raw array over a Parameter is refused (it would stop being
    trained and saved): set ``layer.W.data = array`` instead; None removes it. Raw arrays that
    belong to the layer's state (BatchNorm's running averages) are declared with
    :meth:`add_persistent`, so they are moved and saved too.
    """

    # Set with object.__setattr__ in __init__ (Layer.__setattr__ registers what is assigned).
    _params: _Names
    _persistent: _Names
    _backend: Backend | None

    def __init__(self, device: DeviceLike | None = None) -> None:
        object.__setattr__(self, "_params", _Names())  # Parameter and Layer attribute names
        object.__setattr__(self, "_persistent", _Names())  # raw state array names
        # The Backend this layer is placed on; None until placed (see the module docstring).
        backend = None
        if device is not None:
            try:
                backend = get_backend(device)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{type(self).__name__}: device: {exc}") from None
        object.__setattr__(self, "_backend", backend)

    def __setattr__(self, name: str, value: Any) -> None:
        names = self.__dict__.get("_params")
        if names is None:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes "
                f"(assigning {name!r})"
            )
        if isinstance(value, (Parameter, Layer)):
            names.add(name)
        elif name in names:
            if is_array(value) and isinstance(self.__dict__.get(name), Parameter):
                # A raw array here would silently stop training and saving the parameter.
                # (A Variable may stand in for it on purpose, e.g. in a gradient check.)
                raise TypeError(
                    f"{type(self).__name__}.{name} is a Parameter; assigning a "
                    f"{type(value).__name__} would unregister it (no longer trained or saved). "
                    f"Set its values with layer.{name}.data = array, or assign a Parameter"
                )
            names.discard(name)  # a Parameter or Layer removed by assigning None (or a Layer
            # replaced by something else, e.g. a plain function)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._params.discard(name)
        self._persistent.discard(name)
        object.__delattr__(self, name)

    def add_persistent(self, name: str, value: Any = None) -> None:
        """Register ``name`` as state (a raw array or a Variable, no gradient, not among
        ``params()``) moved and saved with the layer."""
        self._persistent.add(name)
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ calling
    def __call__(self, *inputs: Any) -> Any:
        if self._backend is None:
            backend = _input_backend(inputs)
            if backend is not None:
                self._adopt(backend)
        try:
            outputs = self.forward(*inputs)
        except (TypeError, ValueError, IndexError, RuntimeError, AttributeError) as exc:
            better = with_name(exc, type(self).__name__)
            if better is None:
                raise
            raise better from exc
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        object.__setattr__(self, "inputs", [_weak(x) for x in inputs])
        object.__setattr__(self, "outputs", [_weak(y) for y in outputs])
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *inputs: Any) -> Any:
        """Compute the outputs from the inputs (Variables or arrays)."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    # ------------------------------------------------------------------ traversal
    def _children(self) -> list[tuple[str, Any]]:
        """``(name, obj)`` for the Parameters and Layers assigned to this layer, in order."""
        d = self.__dict__
        return [(name, d[name]) for name in self._params]

    def _walk(self) -> Iterator[Layer]:
        """This layer and every sublayer below it, each once, depth first, in order.

        Iterative (an explicit stack), so a tree of any depth works."""
        seen = set()
        stack = [self]
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            yield layer
            children = [obj for _name, obj in layer._children() if isinstance(obj, Layer)]
            stack.extend(reversed(children))

    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, Layer, str, bool]]:
        """``(key, owner, name, is_param)`` for every Parameter and state array, nested.

        Keys are DeZero's ``'/'``-joined paths. A sublayer reachable under two names appears
        under both; a cycle of layers is followed once. Iterative, so any depth works.
        """
        path = {id(self)}  # the layers on the way down: a cycle stops here
        stack = [(self, prefix, iter(self._children()))]
        while stack:
            layer, layer_prefix, children = stack[-1]
            for name, obj in children:
                key = layer_prefix + name
                if not isinstance(obj, Layer):
                    yield key, layer, name, True
                elif id(obj) not in path:
                    path.add(id(obj))
                    stack.append((obj, key + "/", iter(obj._children())))
                    break
            else:  # every child done: this layer's state arrays, then back up
                for name in layer._persistent:
                    # A state Variable (BatchNorm's running averages) is saved and loaded like
                    # a Parameter, through its ``.data``; params() leaves it out (not trained).
                    state = layer.__dict__[name]
                    yield layer_prefix + name, layer, name, isinstance(state, Variable)
                path.discard(id(layer))
                stack.pop()

    def params(self) -> Iterator[Parameter]:
        """Every Parameter of this layer and its sublayers, each once, in registration order."""
        seen = set()
        for _key, owner, name, is_param in self._state_entries():
            if is_param and name not in owner._persistent:
                param = owner.__dict__[name]
                if id(param) not in seen:
                    seen.add(id(param))
                    yield param

    def cleargrads(self) -> None:
        """Forget the gradients of every Parameter."""
        for param in self.params():
            param.cleargrad()

    def _flatten_params(self, params_dict: dict[str, Any], parent_key: str = "") -> None:
        """DeZero's helper: fill ``params_dict`` with ``{'/'-joined key: Parameter}``."""
        prefix = parent_key + "/" if parent_key else ""
        for key, owner, name, is_param in self._state_entries(prefix):
            if is_param:
                params_dict[key] = owner.__dict__[name]

    # ------------------------------------------------------------------ devices
    def _move_own(self, target: Backend, undo: list[Callable[[], Any]] | None = None) -> None:
        """Move this layer's own Parameters and state arrays (not its sublayers) to ``target``.

        Appends to ``undo`` a callable per change that puts the old arrays back.
        """
        undo = [] if undo is None else undo
        for _name, obj in self._children():
            if isinstance(obj, Parameter):
                undo.append(_restorer(obj))
                obj.to(target)
        attributes = dict(self.__dict__)
        undo.append(lambda: self.__dict__.update(attributes))
        for name in self._persistent:
            value = self.__dict__[name]
            if isinstance(value, Variable):
                undo.append(_restorer(value))
                value.to(target)
            elif value is not None:
                object.__setattr__(self, name, transfer(value, target))
        self._move_state(target)
        object.__setattr__(self, "_backend", target)

    def _move_state(self, target: Backend) -> None:
        """Hook for other state (RNN hidden states) to follow :meth:`to`."""

    def _adopt(self, backend: Backend) -> None:
        """First call of an unplaced layer: take the device of its first input."""
        self._move_own(backend)

    def to(self, device: DeviceLike) -> Self:
        """Move every Parameter and state array (and their grads) to ``device``; return self.

        Explicit copies; a no-op for what is already there. The layer is placed on ``device``,
        so parameters created later (lazily) are created there too.
        """
        target = get_backend(device)
        undo: list[Callable[[], Any]] = []
        try:
            for layer in list(self._walk()):
                layer._move_own(target, undo)
        except BaseException:
            # All or nothing: a failure half-way (out of memory, an unusable device) puts every
            # array back where it was; the old arrays are still referenced, nothing is copied.
            for restore in reversed(undo):
                restore()
            raise
        return self

    def _creation_backend(self) -> Backend:
        """Where parameters made now go: the layer's device, else the default device."""
        return self._backend if self._backend is not None else get_backend(None)

    def _lazy_backend(self, x: Any) -> Backend:
        """Where lazily created parameters go: the input's device, which must be the layer's."""
        backend = _input_backend((x,)) or self._creation_backend()
        if self._backend is not None and backend is not self._backend:
            raise DeviceMismatchError(
                f"{type(self).__name__}: the input is on {backend} but the layer is on "
                f"{self._backend}; move one of them explicitly, e.g. model.to('{backend}') or "
                f"x.to('{self._backend}')"
            )
        return backend

    # ------------------------------------------------------------------ files
    def save_weights(self, path: str | PathLike[str], compressed: bool = False) -> str:
        """Save every Parameter and state array to ``path`` (``.npz``), atomically.

        The layer stays where it is (arrays are copied to the host). Returns the path written.
        """
        return serialization.save_weights(self, path, compressed=compressed)

    def load_weights(self, path: str | PathLike[str]) -> None:
        """Load a file written by :meth:`save_weights` (or DeZero), all or nothing.

        Arrays go to the device each parameter is on now; a file that does not match raises
        ``serialization.WeightsFileError`` and leaves every parameter unchanged.
        """
        serialization.load_weights(self, path)

    def _after_load(self) -> None:
        """Hook run after weights were loaded into this layer (lazy sizes are read back)."""
