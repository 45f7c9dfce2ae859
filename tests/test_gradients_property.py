"""Property-based gradient checks: random shapes, values and compositions of ops (hypothesis,
derandomized and bounded), first and second order, on NumPy and array-api-strict.

The oracle is torch autograd in float64 when torch is installed, and central finite differences
in float64 otherwise, so the suite runs (and can fail) on every machine. Inputs are drawn away
from the ops' kinks and poles (relu at 0, log/sqrt near 0, division by ~0), where a numerical
derivative is meaningless.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.backend import get_backend, to_host  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
if HAS_TORCH:
    import torch
BACKENDS = ["cpu"] + (["strict"] if importlib.util.find_spec("array_api_strict") else [])
SETTINGS = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
RTOL, ATOL = 1e-6, 1e-8

# name -> (dezero_xp function, torch function, NumPy function, domain of the input)
UNARY = {
    "exp": (F.exp, lambda t: torch.exp(t), np.exp, "any"),
    "sin": (F.sin, lambda t: torch.sin(t), np.sin, "any"),
    "cos": (F.cos, lambda t: torch.cos(t), np.cos, "any"),
    "tanh": (F.tanh, lambda t: torch.tanh(t), np.tanh, "any"),
    "sigmoid": (F.sigmoid, lambda t: torch.sigmoid(t), lambda a: 1 / (1 + np.exp(-a)), "any"),
    "square": (F.square, lambda t: t * t, np.square, "any"),
    "log": (F.log, lambda t: torch.log(t), np.log, "positive"),
    "sqrt": (F.sqrt, lambda t: torch.sqrt(t), np.sqrt, "positive"),
    "relu": (F.relu, lambda t: torch.relu(t), lambda a: np.maximum(a, 0), "away_from_zero"),
    "abs": (F.abs, lambda t: torch.abs(t), np.abs, "away_from_zero"),
    "pow3": (lambda x: x**3, lambda t: t**3, lambda a: a**3, "any"),
    "pow_half": (lambda x: x**0.5, lambda t: t**0.5, lambda a: a**0.5, "positive"),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, "any"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, "any"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, "any"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "away_from_zero"),
    "maximum": (F.maximum, np.maximum, "distinct"),
}


def shapes(min_dims=1, max_dims=3):
    return st.lists(st.integers(1, 4), min_size=min_dims, max_size=max_dims).map(tuple)


def values(draw, shape, domain):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-2.0, 2.0, size=shape)
    if domain == "positive":
        x = np.abs(x) + 0.2
    elif domain == "away_from_zero":
        x = np.where(np.abs(x) < 0.2, np.sign(x + 1e-12) * 0.2, x)
    return x


def broadcastable(draw, shape):
    """A shape that broadcasts against ``shape``: a suffix, with some axes set to 1."""
    k = draw(st.integers(0, len(shape)))
    suffix = list(shape[len(shape) - k :])
    return tuple(1 if draw(st.booleans()) else n for n in suffix)


def host(x):
    return np.asarray(to_host(x.data if isinstance(x, dz.Variable) else x))


def numerical_grad(f, inputs, eps=1e-6):
    """Central differences of the scalar ``f(*inputs)`` (NumPy float64) for every input."""
    grads = []
    for i, x in enumerate(inputs):
        g = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            shifted = [a.copy() for a in inputs]
            shifted[i][index] = x[index] + eps
            up = f(*shifted)
            shifted[i][index] = x[index] - eps
            down = f(*shifted)
            g[index] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def oracle_grads(numpy_f, torch_f, inputs):
    """Gradients of ``sum(f(inputs))``: torch autograd when present, else finite differences."""
    if HAS_TORCH:
        tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
        torch_f(*tensors).sum().backward()
        return [t.grad.numpy() for t in tensors]
    return numerical_grad(lambda *a: float(np.sum(numpy_f(*a))), inputs)


def ours_grads(f, inputs, spec):
    backend = get_backend(spec)
    variables = [dz.Variable(backend.from_host(x)) for x in inputs]
    F.sum(f(*variables)).backward()
    return [host(v.grad) for v in variables]


@pytest.mark.parametrize("spec", BACKENDS)
@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(data=st.data())
def test_unary_gradients(spec, name, data):
    ours, torch_f, numpy_f, domain = UNARY[name]
    x = values(data.draw, data.draw(shapes()), domain)
    expected = oracle_grads(numpy_f, torch_f, [x])
    got = ours_grads(ours, [x], spec)
    np.testing.assert_allclose(got[0], expected[0], rtol=RTOL * 100, atol=ATOL * 100)


@pytest.mark.parametrize("spec", BACKENDS)
@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(data=st.data())
def test_binary_gradients_with_broadcasting(spec, name, data):
    ours, reference, domain = BINARY[name]
    shape = data.draw(shapes())
    other = broadcastable(data.draw, shape)
    a = values(data.draw, shape, "any")
    b = values(data.draw, other, "away_from_zero" if domain == "away_from_zero" else "any")
    if domain == "distinct":  # maximum: keep the two inputs apart (no ties)
        a = np.where(np.abs(a - b) < 0.1, a + 0.3, a)
    torch_f = reference if name != "maximum" else (lambda s, t: torch.maximum(s, t))
    expected = oracle_grads(reference, torch_f, [a, b])
    got = ours_grads(ours, [a, b], spec)
    for g, e, x in zip(got, expected, (a, b)):
        assert g.shape == x.shape
        np.testing.assert_allclose(g, e, rtol=RTOL * 100, atol=ATOL * 100)


def _chain(names):
    """A composition of unary ops (all defined on the whole real line)."""

    def ours(x):
        for n in names:
            x = UNARY[n][0](x)
        return x

    def reference(x):
        for n in names:
            x = UNARY[n][2](x)
        return x

    def torch_f(t):
        for n in names:
            t = UNARY[n][1](t)
        return t

    return ours, reference, torch_f


BOUNDED = ["sin", "cos", "tanh", "sigmoid"]  # first in a chain: later values stay within [-1, 1]
SMOOTH = ["exp", "sin", "cos", "tanh", "sigmoid", "square", "pow3"]


def chains(max_size):
    return st.tuples(
        st.sampled_from(BOUNDED), st.lists(st.sampled_from(SMOOTH), max_size=max_size - 1)
    ).map(lambda parts: [parts[0], *parts[1]])


@pytest.mark.parametrize("spec", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_compositions_with_matmul_and_reductions(spec, data):
    names = data.draw(chains(3))
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    a = values(data.draw, (n, k), "any") * 0.5
    w = values(data.draw, (k, m), "any") * 0.5
    axis = data.draw(st.sampled_from([None, 0, 1]))
    chain, chain_np, chain_torch = _chain(names)

    def ours(x, W):
        y = chain(F.matmul(x, W))
        return F.softmax(y, axis=1) * F.sum(y, axis=axis, keepdims=True)

    def reference(x, W):
        y = chain_np(x @ W)
        e = np.exp(y - y.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True) * y.sum(axis=axis, keepdims=True)

    def torch_f(x, W):
        y = chain_torch(x @ W)
        total = y.sum() if axis is None else y.sum(dim=axis, keepdim=True)
        return torch.softmax(y, dim=1) * total

    expected = oracle_grads(reference, torch_f, [a, w])
    got = ours_grads(ours, [a, w], spec)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("spec", BACKENDS)
@SETTINGS
@given(data=st.data())
def test_hessian_vector_products(spec, data):
    """``d/dx <grad f(x), v>`` through create_graph=True, against differences of the gradient."""
    names = data.draw(chains(2))
    shape = data.draw(shapes(max_dims=2))
    x0 = values(data.draw, shape, "any") * 0.5
    v = values(data.draw, shape, "any")
    chain, chain_np, chain_torch = _chain(names)
    backend = get_backend(spec)

    def hvp(x_host):
        x = dz.Variable(backend.from_host(x_host))
        F.sum(chain(x)).backward(create_graph=True)
        g = x.grad
        x.cleargrad()
        F.sum(g * dz.Variable(backend.from_host(v))).backward()
        return host(x.grad)

    got = hvp(x0)
    if HAS_TORCH:
        t = torch.tensor(x0, requires_grad=True)
        (g,) = torch.autograd.grad(chain_torch(t).sum(), t, create_graph=True)
        (expected,) = torch.autograd.grad((g * torch.tensor(v)).sum(), t)
        expected = expected.numpy()
    else:

        def grad_at(x_host):
            return ours_grads(chain, [x_host], "cpu")[0]

        eps = 1e-6
        expected = (grad_at(x0 + eps * v) - grad_at(x0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
