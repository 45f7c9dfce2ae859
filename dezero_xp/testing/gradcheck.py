"""Gradient checks anyone can run on their own Functions, on any backend (``dezero_xp.testing``).

- :func:`numerical_grad` and :func:`gradient_check`: DeZero's helpers (elementwise central
  differences), also re-exported by ``dezero_xp.utils``.
- :func:`check_backward`: backward of a whole function of several inputs against central
  differences, along random directions (cheap for any size) and elementwise for small inputs.
- :func:`check_double_backward`: the same for the gradient of the gradient (create_graph).
- :func:`array_equal` / :func:`array_allclose`: compare Variables or arrays of any backend.

Numbers are compared on the host in float64; run checks with float64 inputs.

May import: numpy, dezero_xp._config, dezero_xp.backend and dezero_xp.core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dezero_xp._config import no_grad
from dezero_xp.backend import backend_of, to_host
from dezero_xp.core import Variable

__all__ = [
    "array_allclose",
    "array_equal",
    "check_backward",
    "check_double_backward",
    "gradient_check",
    "numerical_grad",
]


def _host(x) -> np.ndarray:
    """A Variable, an array of any backend, or a scalar as a NumPy array."""
    if isinstance(x, Variable):
        x = x.data
    if isinstance(x, (int, float, bool, np.generic)):
        return np.asarray(x)
    return np.asarray(to_host(x))


def array_equal(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` (Variables or arrays, any backend) have equal shape and values."""
    a, b = _host(a), _host(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when ``a`` and ``b`` have the same shape and values within tolerance."""
    a, b = _host(a), _host(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _total(y) -> float:
    """sum(y) as a Python float, for a Variable or an array of any backend."""
    return float(np.sum(_host(y), dtype=np.float64))


def numerical_grad(
    f: Callable[..., Any], x: Any, *args: Any, eps: float = 1e-4, **kwargs: Any
) -> Any:
    """Central-difference gradient of ``sum(f(x, *args, **kwargs))`` with respect to ``x``.

    ``x`` is a Variable or an array; the result is an array on the same backend. One pair of
    evaluations per element: use it on small inputs (see :func:`check_backward` for large ones).
    """
    data = x.data if isinstance(x, Variable) else x
    backend = backend_of(data)
    host = np.array(_host(data), copy=True)  # perturbed in x's own dtype, as DeZero does
    grad = np.zeros(host.shape, dtype=np.float64)
    for index in np.ndindex(*host.shape):
        original = host[index]
        host[index] = original + eps
        y1 = _total(f(backend.from_host(host), *args, **kwargs))
        host[index] = original - eps
        y0 = _total(f(backend.from_host(host), *args, **kwargs))
        host[index] = original
        grad[index] = (y1 - y0) / (2 * eps)
    return backend.from_host(grad.astype(host.dtype))


def gradient_check(
    f: Callable[..., Any],
    x: Any,
    *args: Any,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    **kwargs: Any,
) -> bool:
    """DeZero's check: backprop gradient of ``sum(f(x))`` vs :func:`numerical_grad` (float64)."""
    x = x if isinstance(x, Variable) else Variable(x)
    x.data = x.xp.astype(x.data, x.xp.float64)
    x.cleargrad()
    num_grad = numerical_grad(f, x, *args, **kwargs)
    y = f(x, *args, **kwargs)
    y.backward()
    bp_grad = x.grad.data
    if _host(num_grad).shape != _host(bp_grad).shape:
        raise AssertionError(
            f"gradient_check: backprop gradient shape {_host(bp_grad).shape} != "
            f"numerical gradient shape {_host(num_grad).shape}"
        )
    ok = array_allclose(num_grad, bp_grad, rtol=rtol, atol=atol)
    if not ok:
        diff = np.abs(_host(num_grad) - _host(bp_grad))
        print("gradient_check failed: max abs difference", float(diff.max()))
    return ok


# ------------------------------------------------------------------ multi-input checks


def _scalar_objective(f, xs, weights):
    """``sum(f(*xs) * weights)``: a random projection of f's output to a scalar."""
    y = f(*xs)
    if weights is None:
        return y.sum() if y.ndim else y
    return (y * weights).sum()


def _objective_value(f, arrays, weights, backend) -> float:
    with no_grad():
        xs = [Variable(a) for a in arrays]
        return _total(_scalar_objective(f, xs, weights))


def _perturbed(backend, host_arrays, directions, step):
    return [backend.from_host(h + step * d) for h, d in zip(host_arrays, directions)]


def _central_difference(f, backend, hosts, directions, weights, eps) -> float:
    plus = _objective_value(f, _perturbed(backend, hosts, directions, eps), weights, backend)
    minus = _objective_value(f, _perturbed(backend, hosts, directions, -eps), weights, backend)
    return (plus - minus) / (2 * eps)


def _grads(xs):
    return [np.zeros(x.shape) if x.grad is None else _host(x.grad).astype(np.float64) for x in xs]


def _compare(name, analytic, numeric, rtol, atol):
    if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
        err = np.max(np.abs(np.asarray(analytic) - np.asarray(numeric)))
        raise AssertionError(
            f"{name}: analytic {analytic!r} vs numerical {numeric!r} (max abs error {err:.3g}, "
            f"rtol={rtol}, atol={atol})"
        )


def _weights_for(f, inputs, backend, rng):
    with no_grad():
        y = f(*[Variable(a) for a in inputs])
    return backend.from_host(rng.standard_normal(tuple(y.shape)).astype(np.float64))


def check_backward(f, inputs, *, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0, elementwise_max=64):
    """Check backward of ``f(*inputs)`` against central differences; raise AssertionError if off.

    ``inputs`` are float64 arrays of one backend. The output is projected to a scalar with
    random weights; gradients are checked along three random directions, and element by
    element when an input has at most ``elementwise_max`` elements.
    """
    backend = backend_of(inputs[0])
    rng = np.random.default_rng(seed)
    hosts = [np.asarray(_host(a), dtype=np.float64) for a in inputs]
    weights = _weights_for(f, inputs, backend, rng)
    xs = [Variable(a) for a in inputs]
    _scalar_objective(f, xs, weights).backward()
    grads = _grads(xs)
    for trial in range(3):
        directions = [rng.standard_normal(h.shape) for h in hosts]
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, directions))
        numeric = _central_difference(f, backend, hosts, directions, weights, eps)
        _compare(f"directional derivative #{trial}", analytic, numeric, rtol, atol)
    for i, h in enumerate(hosts):
        if h.size > elementwise_max:
            continue
        numeric = np.zeros_like(h)
        for index in np.ndindex(*h.shape):
            directions = [np.zeros_like(other) for other in hosts]
            directions[i][index] = 1.0
            numeric[index] = _central_difference(f, backend, hosts, directions, weights, eps)
        _compare(f"gradient of input {i}", grads[i], numeric, rtol, atol)


def check_double_backward(f, inputs, *, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0):
    """Check the gradient of the gradient (``backward(create_graph=True)``) of ``f(*inputs)``.

    Forms ``S(x) = <grad f(x), u>`` for random ``u``, differentiates it by backprop and compares
    with central differences of ``S`` along random directions.
    """
    backend = backend_of(inputs[0])
    rng = np.random.default_rng(seed + 1)
    hosts = [np.asarray(_host(a), dtype=np.float64) for a in inputs]
    weights = _weights_for(f, inputs, backend, rng)
    us = [backend.from_host(rng.standard_normal(h.shape)) for h in hosts]

    def gradient_projection(arrays, create_graph):
        xs = [Variable(a) for a in arrays]
        _scalar_objective(f, xs, weights).backward(create_graph=create_graph)
        grads = [x.grad for x in xs]
        for x in xs:
            x.cleargrad()
        total = None
        for g, u in zip(grads, us):
            if g is None:
                continue
            term = (g * u).sum()
            total = term if total is None else total + term
        return xs, total

    xs, s = gradient_projection(inputs, create_graph=True)
    if s is None:
        raise AssertionError("check_double_backward: f has no gradient with respect to any input")
    s.backward()
    second = _grads(xs)
    for trial in range(3):
        directions = [rng.standard_normal(h.shape) for h in hosts]
        analytic = sum(float(np.sum(g * d)) for g, d in zip(second, directions))
        values = []
        for step in (eps, -eps):
            _, s_step = gradient_projection(_perturbed(backend, hosts, directions, step), False)
            values.append(_total(s_step))
        _compare(
            f"second-order directional derivative #{trial}",
            analytic,
            (values[0] - values[1]) / (2 * eps),
            rtol,
            atol,
        )
