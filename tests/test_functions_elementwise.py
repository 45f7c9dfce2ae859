"""Elementwise ops (dezero_xp/functions/elementwise.py) through the declarative checker."""

import re

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp.functions as F


def _away_from_clip_bounds(rng, shape):
    """Values in [-1.5, 1.5] but not within 0.1 of the clip bounds -0.8 and 0.9."""
    v = rng.uniform(-1.5, 1.5, shape)
    return np.where(np.abs(np.abs(v) - 0.85) < 0.1, 0.0, v)


def _away_from_zero(rng, shape):
    """Values in +-[0.3, 1.5]: no kink of abs or clip within a finite-difference step."""
    return rng.uniform(0.3, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


CASES = [
    op_case(
        "add", F.add, np.add, [[(3, 2), (3, 2)], [(3, 2), (2,)], [(), (2, 3)], [(4, 1), (1, 3)]]
    ),
    op_case("sub", F.sub, np.subtract, [[(3, 2), (3, 2)], [(2, 3), ()]]),
    op_case("mul", F.mul, np.multiply, [[(3, 2), (3, 2)], [(3, 1), (1, 2)]]),
    op_case("div", F.div, np.divide, [[(3, 2), (3, 2)], [(3, 2), (2,)]], domain=(0.5, 2.0)),
    op_case("neg", F.neg, np.negative, [(), (2, 3)]),
    op_case("pow3", lambda x: F.pow(x, 3), lambda x: x**3, [(), (2, 3)]),
    op_case("pow_half", lambda x: x**0.5, np.sqrt, [(2, 3)], domain=(0.5, 2.0)),
    op_case("pow_var", F.pow, np.power, [[(2, 3), (2, 3)], [(2, 3), ()]], domain=(0.5, 2.0)),
    op_case("rpow", lambda x: 2.0**x, lambda x: 2.0**x, [(2, 3)]),
    op_case("exp", F.exp, np.exp, [(), (3, 2)]),
    op_case("log", F.log, np.log, [(), (3, 2)], domain=(0.5, 2.0)),
    op_case("sin", F.sin, np.sin, [(), (3, 2)]),
    op_case("cos", F.cos, np.cos, [(), (3, 2)]),
    op_case("tanh", F.tanh, np.tanh, [(), (3, 2)]),
    op_case("sqrt", F.sqrt, np.sqrt, [(), (3, 2)], domain=(0.5, 2.0)),
    op_case("square", F.square, np.square, [(), (3, 2)]),
    op_case("abs", F.abs, np.abs, [(3, 4)], sampler=_away_from_zero),
    op_case(
        "clip",
        lambda x: F.clip(x, -0.8, 0.9),
        lambda x: np.clip(x, -0.8, 0.9),
        [(4, 5)],
        sampler=_away_from_clip_bounds,
    ),
    op_case("maximum", F.maximum, np.maximum, [[(3, 4), (3, 4)], [(3, 4), (4,)]]),
    op_case("minimum", F.minimum, np.minimum, [[(3, 4), (3, 4)]]),
    op_case("rsub_scalar", lambda x: 1.0 - x, lambda x: 1.0 - x, [(2, 3)]),
    op_case("rdiv_scalar", lambda x: 2.0 / x, lambda x: 2.0 / x, [(2, 3)], domain=(0.5, 2.0)),
    # 0-d operands and broadcasting on both sides
    op_case("add_0d", F.add, np.add, [[(), ()]]),
    op_case("mul_0d", F.mul, np.multiply, [[(), (2, 3)], [(2, 1, 3), (4, 1)]]),
    op_case("div_bcast", F.div, np.divide, [[(2, 1), (1, 3)], [(), (2,)]], domain=(0.5, 2.0)),
    op_case("sub_bcast", F.sub, np.subtract, [[(4, 1), (3,)]]),
    op_case("maximum_bcast", F.maximum, np.maximum, [[(3, 1), (1, 4)], [(), (2, 2)]]),
    op_case("minimum_bcast", F.minimum, np.minimum, [[(2, 3), (3,)]]),
    # operators with Python scalars on either side (the scalar takes the array's dtype)
    op_case("add_scalar", lambda x: x + 1, lambda x: x + 1, [(2, 3)]),
    op_case("radd_scalar", lambda x: 1.5 + x, lambda x: 1.5 + x, [(2, 3)]),
    op_case("sub_scalar", lambda x: x - 2, lambda x: x - 2, [(2, 3)]),
    op_case("mul_scalar", lambda x: x * 3.0, lambda x: x * 3.0, [(2, 3)]),
    op_case("rmul_scalar", lambda x: 3 * x, lambda x: 3 * x, [(2, 3)]),
    op_case("div_scalar", lambda x: x / 4, lambda x: x / 4, [(2, 3)]),
    op_case("neg_operator", lambda x: -x, lambda x: -x, [(2, 3)]),
    op_case("pow_operator", lambda x: x**2, lambda x: x**2, [(), (2, 3)]),
    op_case("pow_negative", lambda x: x**-2, lambda x: x**-2.0, [(2, 3)], domain=(0.5, 2.0)),
    op_case("mul_operator", lambda a, b: a * b, np.multiply, [[(2, 3), (3,)]]),
    op_case("truediv_operator", lambda a, b: a / b, np.divide, [[(2, 3), (2, 3)]], domain=(0.5, 2)),
    op_case(
        "clip_lower_only",
        lambda x: F.clip(x, -0.8, None),
        lambda x: np.clip(x, -0.8, None),
        [(4, 5)],
        sampler=_away_from_clip_bounds,
    ),
    op_case(
        "clip_upper_only",
        lambda x: F.clip(x, None, 0.9),
        lambda x: np.clip(x, None, 0.9),
        [(4, 5)],
        sampler=_away_from_clip_bounds,
    ),
    op_case(
        "where",
        lambda a, b, condition: F.where(condition, a, b),
        lambda a, b, condition: np.where(condition, a, b),
        [[(2, 3), (2, 3)], [(2, 3), ()], [(3,), (2, 1)]],
        consts=lambda: (np.array([True, False, True]),),
    ),
]

test_elementwise = make_op_tests(CASES)


# ---------------------------------------------------------------------------------- ties, errors


@pytest.mark.parametrize(
    "op, a, b, ga, gb",
    [
        (F.maximum, [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0, 0.5, 1], [1, 0.5, 0]),
        (F.minimum, [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1, 0.5, 0], [0, 0.5, 1]),
    ],
)
def test_maximum_minimum_ties_split_the_gradient(xb, op, a, b, ga, gb):
    x0 = xb.variable(np.asarray(a, dtype=np.float32))
    x1 = xb.variable(np.asarray(b, dtype=np.float32))
    op(x0, x1).backward()
    np.testing.assert_array_equal(xb.numpy(x0.grad), ga)
    np.testing.assert_array_equal(xb.numpy(x1.grad), gb)
    assert x0.grad.dtype == x1.grad.dtype == xb.dtype("float32")


def test_abs_and_clip_gradients_at_the_kinks(xb):
    x = xb.variable(np.array([-1.0, 0.0, 2.0]))
    F.abs(x).backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [-1.0, 0.0, 1.0])  # sign(0) = 0
    x = xb.variable(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    F.clip(x, -1.0, 1.0).backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [0.0, 1.0, 1.0, 1.0, 0.0])  # bounds inside


@pytest.mark.parametrize(
    "op, name",
    [
        (F.add, "Add"),
        (F.sub, "Sub"),
        (F.mul, "Mul"),
        (F.div, "Div"),
        (F.pow, "PowVar"),
        (F.maximum, "Maximum"),
        (F.minimum, "Minimum"),
    ],
)
def test_binary_ops_name_shapes_that_do_not_broadcast(xb, op, name):
    a, b = xb.variable(np.ones((2, 3))), xb.variable(np.ones(4))
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in (name, "(2, 3)", "(4,)", "broadcast"))
    with pytest.raises(ValueError, match=re.compile(pattern, re.S)):
        op(a, b)
