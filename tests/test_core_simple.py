"""The book's stage 2 (steps 23-32) against DeZero's simple core, ``dezero_xp.core_simple``.

Gradients there are raw arrays, so the book's ``x.data -= lr * x.grad`` runs as written. The
printed numbers are the book's (the same ones tests/test_book_steps.py checks on the full core).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dezero_xp
import dezero_xp.core_simple as cs
from dezero_xp import backend as B
from dezero_xp.core_simple import Function, Variable


def value(x) -> float:
    data = x.data if isinstance(x, Variable) else x
    return float(np.asarray(B.to_host(data)))


def var(xb, host):
    return Variable(xb.asarray(np.asarray(host)))


def test_the_books_switch():
    assert dezero_xp.is_simple_core is False  # the package exports the full core
    assert dezero_xp.core_simple.Variable is not dezero_xp.Variable
    cs.setup_variable()  # the book calls it again in steps 28-29: harmless


def test_step23_raw_array_gradient(xb):
    x = var(xb, 1.0)
    y = (x + 3) ** 2
    y.backward()
    assert repr(Variable(np.array(16.0))) == "variable(16.0)"
    assert value(y) == 16.0 and value(x.grad) == 8.0
    assert not isinstance(x.grad, (Variable, dezero_xp.Variable))
    assert B.backend_of(x.grad) is xb.backend


def test_step24_goldstein_price(xb):
    x, y = var(xb, 1.0), var(xb, 1.0)
    z = (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)) * (
        30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    )
    z.backward()
    assert (value(x.grad), value(y.grad)) == (-5376.0, 8064.0)


def test_step24_matyas(xb):
    x, y = var(xb, 1.0), var(xb, 1.0)
    z = 0.26 * (x**2 + y**2) - 0.48 * x * y
    z.backward()
    assert value(x.grad) == value(y.grad) == 0.040000000000000036


def test_step27_user_function_and_taylor_sin():
    class Sin(Function):
        def forward(self, x):
            return np.sin(x)

        def backward(self, gy):
            return gy * np.cos(self.inputs[0].data)

    x = Variable(np.array(np.pi / 4))
    y = Sin()(x)
    y.backward()
    assert abs(value(y) - 0.7071067811865476) <= np.spacing(0.7071067811865476)

    def my_sin(x, threshold=0.0001):
        y = 0
        for i in range(100000):
            c = (-1) ** i / math.factorial(2 * i + 1)
            t = c * x ** (2 * i + 1)
            y = y + t
            if abs(t.data) < threshold:
                break
        return y

    x = Variable(np.array(np.pi / 4))
    y = my_sin(x)
    y.backward()
    assert value(y) == 0.7071064695751781
    assert value(x.grad) == 0.7071032148228457


def test_step28_rosenbrock_in_place_update(xb):
    x0, x1 = var(xb, 0.0), var(xb, 2.0)
    lr = 0.001
    y = 100 * (x1 - x0**2) ** 2 + (x0 - 1) ** 2
    y.backward()
    assert (value(x0.grad), value(x1.grad)) == (-2.0, 400.0)
    x0, x1 = var(xb, 0.0), var(xb, 2.0)
    ref0, ref1 = 0.0, 2.0
    for _ in range(1000):
        y = 100 * (x1 - x0**2) ** 2 + (x0 - 1) ** 2
        x0.cleargrad()
        x1.cleargrad()
        y.backward()
        x0.data -= lr * x0.grad  # the book's line: grad is an array
        x1.data -= lr * x1.grad
        g0 = -400 * ref0 * (ref1 - ref0**2) + 2 * (ref0 - 1)
        g1 = 200 * (ref1 - ref0**2)
        ref0, ref1 = ref0 - lr * g0, ref1 - lr * g1
    if xb.backend.is_gpu:
        np.testing.assert_allclose((value(x0), value(x1)), (ref0, ref1), rtol=1e-12)
    else:
        assert (value(x0), value(x1)) == (0.6837118569138317, 0.4659526837427042)
        np.testing.assert_allclose((ref0, ref1), (value(x0), value(x1)), rtol=1e-12)


def test_step29_newton(xb):
    printed = [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978]
    printed += [1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0, 1.0, 1.0]
    x = var(xb, 2.0)
    seen = []
    for _ in range(10):
        seen.append(value(x))
        y = x**4 - 2 * x**2
        x.cleargrad()
        y.backward()
        x.data -= x.grad / (12 * x.data**2 - 4)
    assert seen == printed


def test_gradients_accumulate_and_intermediates_are_freed():
    x = Variable(np.array(3.0))
    y = x + x
    y.backward()
    assert x.grad == 2.0
    x.cleargrad()
    a = x * x
    b = a + x
    b.backward()
    assert x.grad == 7.0 and a.grad is None
    b2 = x * x + x
    x.cleargrad()
    b2.backward(retain_grad=True)
    assert b2.creator.inputs[0].grad == 1.0


def test_no_grad_and_dtypes():
    with cs.no_grad():
        y = Variable(np.array(2.0)) * 3
    assert y.creator is None and value(y) == 6.0
    x32 = Variable(np.array([1.0, 2.0], dtype=np.float32))
    for z in (x32 * 2.0, 2.0 * x32, x32 / 3, 1 - x32, x32**2, -x32):
        assert z.dtype == np.float32
    z = np.array([2.0, 3.0]) * Variable(np.array([1.0, 2.0]))
    assert isinstance(z, Variable) and value(z.data[1]) == 6.0


def test_bad_data():
    with pytest.raises(TypeError, match="Variable"):
        Variable(1.0)
    a = Variable(np.array(1.0))
    b = Variable(B.get_backend("strict").from_host(np.array(1.0)))
    with pytest.raises(B.DeviceMismatchError, match="Add"):
        a + b
