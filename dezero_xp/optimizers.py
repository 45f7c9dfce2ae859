"""Optimizers (SGD, MomentumSGD, AdaGrad, AdaDelta, Adam, AdamW) and gradient hooks.

An optimizer is set up on a target that has ``params()`` (a Layer or Model) and updates every
Parameter with a gradient in place, on the parameter's own device, with standard Array API
operations only. Per-parameter state (momentum, moment estimates, ...) is created with
``xp.zeros_like`` next to the parameter and follows it when it moves: at the next update the
state is transferred to the parameter's current backend (and dtype).

Hooks run on the list of parameters about to be updated, before the update: ``WeightDecay``,
``ClipGrad`` and ``FreezeParam`` (defined in ``dezero_xp._optim_hooks``, exported here).

``state_dict()`` / ``load_state_dict()`` turn the state into ``{str: numpy.ndarray}`` for
checkpoints. Keys name parameters by their position in ``target.params()``, so they are the
same in every process (as long as ``params()`` yields in a fixed order).

Hyperparameters are validated on every assignment, and every gradient before its update (a
Variable of the parameter's shape, device and library, for a floating-point parameter): see
``dezero_xp._optim_checks``.

May import: dezero_xp.backend, dezero_xp.core, dezero_xp._optim_checks and
dezero_xp._optim_hooks.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dezero_xp._optim_checks import (
    Hyperparameter,
    check_grad,
    checked_counter,
    checked_state_array,
)
from dezero_xp._optim_hooks import ClipGrad, FreezeParam, WeightDecay
from dezero_xp.backend import get_backend, to_host, transfer

if TYPE_CHECKING:
    from typing_extensions import Self

    from dezero_xp.backend import Backend
    from dezero_xp.core import Parameter

__all__ = [
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adam",
    "AdamW",
    "ClipGrad",
    "FreezeParam",
    "MomentumSGD",
    "Optimizer",
    "WeightDecay",
]

_STATE_KEY = re.compile(r"state\.(\d+)\.(\w+)\Z")


class _Slot:
    """The state arrays of one parameter and the backend/dtype they currently live in."""

    __slots__ = ("ref", "backend", "dtype", "arrays")

    def __init__(
        self, ref: Callable[[], Any], backend: Backend | None, dtype: Any, arrays: dict[str, Any]
    ) -> None:
        self.ref = ref
        self.backend = backend
        self.dtype = dtype
        self.arrays = arrays


class Optimizer:
    """Base class: ``setup(target)``, ``update()``, ``add_hook(f)``; subclasses ``update_one``.

    Subclasses list the per-parameter arrays they keep in ``state_names`` and read them with
    :meth:`state`; integer counters saved in checkpoints go in ``counters``.
    """

    state_names: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.target: Any = None
        self.hooks: list[Callable[[Sequence[Parameter]], Any]] = []
        self._slots: dict[int, _Slot] = {}

    def setup(self, target: Any) -> Self:
        """Optimize the parameters of ``target`` (anything with ``params()``); returns self."""
        if not callable(getattr(target, "params", None)):
            raise TypeError(
                f"{type(self).__name__}.setup: the target must have a params() method "
                f"(a Layer or Model), got {type(target).__name__}"
            )
        self.target = target
        return self

    def _params(self) -> list[Parameter]:
        """The target's parameters, each once (shared layers may yield one twice)."""
        if self.target is None:
            raise RuntimeError(
                f"{type(self).__name__}: no target; call optimizer.setup(model) first"
            )
        seen = set()
        params = []
        for p in self.target.params():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        return params

    def update(self) -> None:
        """Run the hooks, then update every parameter that has a gradient."""
        params = [p for p in self._params() if p.grad is not None]
        for index, param in enumerate(params):
            check_grad(self, param, index)
        for hook in self.hooks:
            hook(params)
        for param in params:
            if param.grad is not None:  # a hook (FreezeParam) may have dropped it
                with param.backend:  # CuPy computes on its current device
                    self.update_one(param)
                param.mark_updated()  # graphs that saved it before now refuse to backpropagate

    def update_one(self, param: Parameter) -> None:
        """Update one parameter in place from ``param.grad``."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_one(param)")

    def add_hook(self, f: Callable[[Sequence[Parameter]], Any]) -> None:
        """Call ``f(params)`` on the parameters about to be updated, before each update."""
        self.hooks.append(f)

    # ------------------------------------------------------------------ per-parameter state
    def state(self, param: Parameter) -> dict[str, Any]:
        """The state arrays of ``param`` (by name), on its current backend and dtype.

        Created as zeros on first use; moved (explicitly, once) when the parameter has moved
        to another device or changed dtype since the last update.
        """
        key = id(param)
        slot = self._slots.get(key)
        backend = param.backend
        data = param.data
        if slot is None or slot.ref() is not param:
            xp = backend.xp
            with backend:  # zeros_like allocates on CuPy's current device
                arrays = {name: xp.zeros_like(data) for name in self.state_names}
            self._slots[key] = _Slot(self._weakref(param), backend, data.dtype, arrays)
            return arrays
        if slot.backend is not backend or slot.dtype != data.dtype:
            xp = backend.xp
            moved = {}
            for name, array in slot.arrays.items():
                array = transfer(array, backend)  # type: ignore[arg-type]
                if array.dtype != data.dtype:
                    array = xp.astype(array, data.dtype)
                moved[name] = array
            slot.arrays, slot.backend, slot.dtype = moved, backend, data.dtype
        return slot.arrays

    def _weakref(self, param: Parameter) -> weakref.ref[Parameter]:
        # The entry goes when the parameter dies, so a new object reusing its id() starts fresh.
        slots, key = self._slots, id(param)

        def forget(ref: weakref.ref[Parameter]) -> None:
            slot = slots.get(key)
            if slot is not None and slot.ref is ref:
                del slots[key]

        return weakref.ref(param, forget)

    def _state_view(self, name: str) -> dict[int, Any]:
        """DeZero's ``{id(param): array}`` dictionaries (``vs``, ``ms``, ...), read-only view."""
        return {key: slot.arrays[name] for key, slot in self._slots.items()}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer state as ``{str: numpy.ndarray}`` (host copies), for checkpoints.

        Keys: each counter by name (``"t"``) and ``"state.<i>.<name>"`` for parameter ``i`` of
        ``target.params()``.
        """
        cpu = get_backend("cpu")
        out = {name: cpu.asarray(int(getattr(self, name)), cpu.xp.int64) for name in self.counters}
        if not self._slots:
            return out
        for i, param in enumerate(self._params()):
            slot = self._slots.get(id(param))
            if slot is None or slot.ref() is not param:
                continue
            for name, array in slot.arrays.items():
                out[f"state.{i}.{name}"] = cpu.from_host(to_host(array))  # a copy
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; arrays move to each parameter's device at next update."""
        where = f"{type(self).__name__}.load_state_dict"
        params = self._params()
        cpu = get_backend("cpu")
        counters = {}
        per_param: dict[int, dict] = {}
        for key, value in state.items():
            if key in self.counters:
                counters[key] = checked_counter(where, key, value)
                continue
            match = _STATE_KEY.match(key)
            if match is None or match.group(2) not in self.state_names:
                expected = [*self.counters, *(f"state.<i>.{n}" for n in self.state_names)]
                raise KeyError(
                    f"{where}: unexpected key {key!r}; a {type(self).__name__} state has keys "
                    f"{expected} (was it saved from another optimizer?)"
                )
            index, name = int(match.group(1)), match.group(2)
            if index >= len(params):
                raise ValueError(
                    f"{where}: {key!r} is for parameter {index}, but the target has "
                    f"{len(params)} parameters"
                )
            array = checked_state_array(where, key, value, params[index], index)
            per_param.setdefault(index, {})[name] = array
        missing = [name for name in self.counters if name not in counters]
        for index, arrays in per_param.items():
            missing += [f"state.{index}.{n}" for n in self.state_names if n not in arrays]
        if missing:
            raise KeyError(f"{where}: missing keys {missing}")
        self._slots.clear()
        for index, arrays in per_param.items():
            param = params[index]
            dtype = next(iter(arrays.values())).dtype
            self._slots[id(param)] = _Slot(self._weakref(param), cpu, dtype, arrays)
        for name, value in counters.items():
            setattr(self, name, value)


# =============================================================================
# SGD / MomentumSGD / AdaGrad / AdaDelta / Adam
# =============================================================================
class SGD(Optimizer):
    """Plain gradient descent: ``param -= lr * grad``."""

    lr = Hyperparameter()

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        param.data -= float(self.lr) * param.grad.data


class MomentumSGD(Optimizer):
    """Gradient descent with momentum: ``v = momentum * v - lr * grad; param += v``."""

    state_names = ("v",)
    lr = Hyperparameter()
    momentum = Hyperparameter(below=1.0)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum

    @property
    def vs(self) -> dict[int, Any]:
        """Velocities by ``id(param)`` (DeZero's attribute; a read-only view)."""
        return self._state_view("v")

    def update_one(self, param: Parameter) -> None:
        v = self.state(param)["v"]
        v *= float(self.momentum)
        v -= float(self.lr) * param.grad.data
        param.data += v


class AdaGrad(Optimizer):
    """AdaGrad: ``h += grad**2; param -= lr * grad / (sqrt(h) + eps)``."""

    state_names = ("h",)
    lr = Hyperparameter()
    eps = Hyperparameter(positive=True)

    def __init__(self, lr: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.eps = eps

    @property
    def hs(self) -> dict[int, Any]:
        """Accumulated squared gradients by ``id(param)`` (DeZero's attribute; read-only)."""
        return self._state_view("h")

    def update_one(self, param: Parameter) -> None:
        xp = param.xp
        h = self.state(param)["h"]
        grad = param.grad.data
        h += grad * grad
        param.data -= float(self.lr) * grad / (xp.sqrt(h) + float(self.eps))


class AdaDelta(Optimizer):
    """AdaDelta (Zeiler 2012): step size from running averages of grad**2 and step**2."""

    state_names = ("msg", "msdx")
    rho = Hyperparameter(maximum=1.0)
    eps = Hyperparameter(positive=True)

    def __init__(self, rho: float = 0.95, eps: float = 1e-6) -> None:
        super().__init__()
        self.rho = rho
        self.eps = eps

    @property
    def msg(self) -> dict[int, Any]:
        """Running mean of grad**2 by ``id(param)`` (DeZero's attribute; read-only)."""
        return self._state_view("msg")

    @property
    def msdx(self) -> dict[int, Any]:
        """Running mean of step**2 by ``id(param)`` (DeZero's attribute; read-only)."""
        return self._state_view("msdx")

    def update_one(self, param: Parameter) -> None:
        xp = param.xp
        state = self.state(param)
        msg, msdx = state["msg"], state["msdx"]
        rho, eps = float(self.rho), float(self.eps)
        grad = param.grad.data
        msg *= rho
        msg += (1 - rho) * grad * grad
        dx = xp.sqrt((msdx + eps) / (msg + eps)) * grad
        msdx *= rho
        msdx += (1 - rho) * dx * dx
        param.data -= dx


class Adam(Optimizer):
    """Adam (Kingma & Ba) in DeZero's form, with optional decoupled weight decay (AdamW).

    ``t`` counts updates; :attr:`lr` is the bias-corrected step size of step ``t``. With
    ``weight_decay > 0`` every parameter is also shrunk by ``alpha * weight_decay * param``
    at each step, independently of the gradient (Loshchilov & Hutter's AdamW, as PyTorch's).
    """

    state_names = ("m", "v")
    counters = ("t",)
    alpha = Hyperparameter()
    beta1 = Hyperparameter(below=1.0)
    beta2 = Hyperparameter(below=1.0)
    eps = Hyperparameter(positive=True)
    weight_decay = Hyperparameter()

    def __init__(
        self,
        alpha: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.t = 0
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay

    @property
    def ms(self) -> dict[int, Any]:
        """First-moment estimates by ``id(param)`` (DeZero's attribute; read-only)."""
        return self._state_view("m")

    @property
    def vs(self) -> dict[int, Any]:
        """Second-moment estimates by ``id(param)`` (DeZero's attribute; read-only)."""
        return self._state_view("v")

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.t += 1
        super().update(*args, **kwargs)

    @property
    def lr(self) -> float:
        """``alpha * sqrt(1 - beta2**t) / (1 - beta1**t)``; before the first step, step 1's."""
        t = max(self.t, 1)
        fix1 = 1.0 - math.pow(self.beta1, t)
        fix2 = 1.0 - math.pow(self.beta2, t)
        return float(self.alpha) * math.sqrt(fix2) / fix1

    def update_one(self, param: Parameter) -> None:
        xp = param.xp
        state = self.state(param)
        m, v = state["m"], state["v"]
        beta1, beta2, eps = float(self.beta1), float(self.beta2), float(self.eps)
        grad = param.grad.data
        m += (1 - beta1) * (grad - m)
        v += (1 - beta2) * (grad * grad - v)
        decay = float(self.alpha) * float(self.weight_decay)
        if decay:
            param.data *= 1 - decay
        param.data -= self.lr * m / (xp.sqrt(v) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (default ``weight_decay=0.01``, as PyTorch's AdamW)."""

    def __init__(
        self,
        alpha: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(alpha, beta1, beta2, eps, weight_decay)
