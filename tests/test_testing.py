"""The public gradient checkers (dezero_xp/testing.py) catch wrong backward passes.

Each checker runs on a correct Function (it must pass) and on one whose backward, or whose
backward of the backward, is off by a factor (it must fail), on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp.functions as F
from dezero_xp import Function, Variable, testing


class Cube(Function):
    """``x ** 3`` with a backward scaled by ``factor`` (3 is right)."""

    def __init__(self, factor=3.0, second_factor=6.0):
        self.factor = factor
        self.second_factor = second_factor

    def forward(self, x):
        return x * x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * CubeGrad(self.factor, self.second_factor)(x)


class CubeGrad(Function):
    """``factor * x ** 2``; its own backward is ``second_factor * x`` (6 x is right for 3 x^2)."""

    def __init__(self, factor, second_factor):
        self.factor = factor
        self.second_factor = second_factor

    def forward(self, x):
        return self.factor * x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * (self.second_factor * x)


class Mul3(Function):
    """``a * b * c`` with a wrong gradient for ``c`` only when ``broken``."""

    def __init__(self, broken=False):
        self.broken = broken

    def forward(self, a, b, c):
        return a * b * c

    def backward(self, gy):
        a, b, c = self.inputs
        gc = gy * a * b * (1.001 if self.broken else 1.0)
        return gy * b * c, gy * a * c, gc


def cube(factor=3.0, second_factor=6.0):
    return lambda x: Cube(factor, second_factor)(x)


def inputs(xb, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [xb.asarray(rng.uniform(0.5, 1.5, size=s)) for s in shapes]


def test_check_backward_passes_a_correct_backward(xb):
    testing.check_backward(cube(), inputs(xb, (3, 2)))
    testing.check_backward(lambda a, b, c: Mul3()(a, b, c), inputs(xb, (2, 3), (2, 3), (2, 3)))


@pytest.mark.parametrize("factor", [2.0, 3.3, -3.0])
def test_check_backward_catches_a_scaled_backward(xb, factor):
    with pytest.raises(AssertionError, match="analytic"):
        testing.check_backward(cube(factor), inputs(xb, (3, 2)))


def test_check_backward_catches_a_small_error_in_one_input(xb):
    with pytest.raises(AssertionError):
        testing.check_backward(
            lambda a, b, c: Mul3(broken=True)(a, b, c), inputs(xb, (4,), (4,), (4,))
        )


def test_check_backward_checks_large_inputs_by_direction(xb):
    # 300 elements: above elementwise_max, only the random directions are checked.
    testing.check_backward(cube(), inputs(xb, (20, 15)))
    with pytest.raises(AssertionError, match="directional derivative"):
        testing.check_backward(cube(3.01), inputs(xb, (20, 15)))


def test_check_double_backward_passes_a_correct_one(xb):
    testing.check_double_backward(cube(), inputs(xb, (3, 2)))
    testing.check_double_backward(F.sin, inputs(xb, (5,)))


def test_check_double_backward_catches_a_wrong_second_derivative(xb):
    first_order_right = cube(3.0, second_factor=5.0)
    testing.check_backward(first_order_right, inputs(xb, (3, 2)))  # the first order is fine
    with pytest.raises(AssertionError, match="second-order"):
        testing.check_double_backward(first_order_right, inputs(xb, (3, 2)))


def test_numerical_grad_matches_the_analytic_gradient(xb):
    host = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    grad = testing.numerical_grad(lambda x: F.sin(x) * x, xb.asarray(host))
    assert type(grad) is type(xb.asarray(host))
    np.testing.assert_allclose(xb.numpy(grad), np.cos(host) * host + np.sin(host), rtol=1e-7)


def test_numerical_grad_of_square_like_the_book(xb):
    # DeZero step 4: numerical_diff of square at 2.0 with eps=1e-4 prints 4.000000000004.
    grad = testing.numerical_grad(F.square, xb.asarray(np.array(2.0)))
    assert float(xb.numpy(grad)) == (2.0001**2 - 1.9999**2) / (2 * 1e-4)
    np.testing.assert_allclose(xb.numpy(grad), 4.0, rtol=1e-11)


def test_gradient_check_passes_and_fails(xb, capsys):
    x = Variable(xb.asarray(np.array([0.3, 1.2, 0.8])))
    assert testing.gradient_check(cube(), x) is True
    x2 = Variable(xb.asarray(np.array([0.3, 1.2, 0.8])))
    assert testing.gradient_check(cube(3.5), x2) is False
    assert "gradient_check failed" in capsys.readouterr().out


def test_array_equal_and_allclose_across_backends(xb):
    a = xb.asarray(np.array([1.0, 2.0]))
    assert testing.array_equal(a, np.array([1.0, 2.0]))
    assert testing.array_equal(Variable(a), np.array([1.0, 2.0]))
    assert not testing.array_equal(a, np.array([1.0, 2.5]))
    assert not testing.array_equal(a, np.array([[1.0, 2.0]]))  # shapes differ
    assert testing.array_allclose(a, np.array([1.0, 2.0 + 1e-7]))
    assert not testing.array_allclose(a, np.array([1.0, 2.1]))
