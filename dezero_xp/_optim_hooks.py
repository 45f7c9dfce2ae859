"""Gradient hooks for optimizers: WeightDecay, ClipGrad and FreezeParam (DeZero's names).

A hook is called with the list of parameters about to be updated, before the update
(``optimizer.add_hook(hook)``). Hooks replace a parameter's ``grad`` with a new Variable rather
than changing the gradient array in place, because one gradient Variable may be shared by
several parameters (the backward of ``a + b`` hands the same gradient to both).

May import: dezero_xp.core and dezero_xp._optim_checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dezero_xp._optim_checks import Hyperparameter
from dezero_xp.core import Parameter, wrap_array

__all__ = ["ClipGrad", "FreezeParam", "WeightDecay"]


class WeightDecay:
    """L2 regularisation as a hook: ``grad += rate * param`` before the update."""

    rate = Hyperparameter()

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, params: Sequence[Parameter]) -> None:
        rate = float(self.rate)
        for param in params:
            grad = param.grad
            if grad is None:
                continue
            with grad.backend:  # CuPy computes on its current device
                param.grad = wrap_array(grad.data + rate * param.data, grad.backend)  # type: ignore[arg-type]


class ClipGrad:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``."""

    max_norm = Hyperparameter(positive=True)

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def __call__(self, params: Sequence[Parameter]) -> None:
        params = [p for p in params if p.grad is not None]
        backends = {id(p.grad.backend): p.grad.backend for p in params}
        if len(backends) == 1 and params[0].grad.backend.is_gpu:
            self._clip_on_device(params)
            return
        total = 0.0
        for param in params:
            g = param.grad.data
            total += float(param.grad.xp.sum(g * g))
        rate = float(self.max_norm) / (math.sqrt(total) + 1e-6)
        if rate < 1:
            for param in params:
                grad = param.grad
                param.grad = wrap_array(grad.data * rate, grad.backend)  # type: ignore[arg-type]

    def _clip_on_device(self, params: list[Parameter]) -> None:
        # On a GPU, float() of each squared norm would wait for the device once per parameter.
        # The rate stays a 0-d device array instead and every gradient is scaled by
        # min(rate, 1): no host round trip at all.
        backend = params[0].grad.backend
        xp = backend.xp
        with backend:
            total = sum(xp.sum(p.grad.data * p.grad.data) for p in params)
            rate = xp.minimum(float(self.max_norm) / (xp.sqrt(total) + 1e-6), 1.0)
            for param in params:
                grad = param.grad
                scale = xp.astype(rate, grad.data.dtype)
                param.grad = wrap_array(grad.data * scale, grad.backend)  # type: ignore[arg-type]


class FreezeParam:
    """Keep the given layers' (or Parameters') values fixed by dropping their gradients.

    The parameters are looked up at every update, so layers whose parameters are created
    lazily (``Linear(out_size)`` before its first call) are frozen too.
    """

    def __init__(self, *layers: Any) -> None:
        for layer in layers:
            if not isinstance(layer, Parameter) and not callable(getattr(layer, "params", None)):
                raise TypeError(
                    f"FreezeParam: expected Layers or Parameters, got {type(layer).__name__}"
                )
        self.layers = layers

    @property
    def freeze_params(self) -> list[Parameter]:
        """The Parameters currently frozen (DeZero's attribute)."""
        params = []
        for layer in self.layers:
            if isinstance(layer, Parameter):
                params.append(layer)
            else:
                params.extend(layer.params())
        return params

    def __call__(self, params: Sequence[Parameter]) -> None:
        for param in self.freeze_params:
            param.grad = None
