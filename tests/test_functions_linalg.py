"""matmul (dezero_xp/functions/linalg.py): 2-D, 1-D and batched operands through the declarative
checker on every backend, the ``@`` operator and the shape errors."""

import re

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp as dz
import dezero_xp.functions as F

CASES = [
    op_case(
        "matmul",
        F.matmul,
        np.matmul,
        [
            [(2, 3), (3, 4)],
            [(1, 1), (1, 1)],
            [(3,), (3, 4)],  # vector @ matrix
            [(2, 3), (3,)],  # matrix @ vector
            [(3,), (3,)],  # inner product: 0-d
            [(2, 2, 3), (3, 4)],  # batch @ matrix
            [(3, 4), (2, 4, 5)],  # matrix @ batch
            [(2, 1, 2, 3), (4, 3, 2)],  # batch axes broadcast both ways
            [(2, 2, 3), (3,)],
            [(3,), (2, 3, 4)],
        ],
    ),
    op_case("dot", F.dot, np.matmul, [[(2, 3), (3, 2)]]),
    op_case("matmul_operator", lambda a, b: a @ b, lambda a, b: a @ b, [[(4, 3), (3, 2)]]),
    op_case(
        "matmul_sq",
        lambda a, b: F.matmul(a, b) ** 2,
        lambda a, b: np.matmul(a, b) ** 2,
        [[(2, 3), (3,)], [(2, 2, 3), (3, 2)]],
    ),
]

test_linalg_ops = make_op_tests(CASES)


def test_ndarray_matmul_variable_uses_rmatmul():
    a = np.arange(6.0).reshape(2, 3)
    w = dz.Variable(np.ones((3, 2)))
    y = a @ w  # NumPy defers to Variable.__rmatmul__
    assert isinstance(y, dz.Variable)
    np.testing.assert_array_equal(y.data, a @ np.ones((3, 2)))
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, np.repeat(a.sum(axis=0)[:, None], 2, axis=1))


def _raises(exc, *fragments):
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    return pytest.raises(exc, match=re.compile(pattern, re.S))


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((4,), (3, 4)), ((2, 2, 3), (5, 3, 4))],
)
def test_matmul_shape_mismatch(xb, x_shape, w_shape):
    x, w = xb.variable(np.zeros(x_shape)), xb.variable(np.zeros(w_shape))
    with _raises(ValueError, "matmul", str(x_shape), str(w_shape)):
        F.matmul(x, w)
    with _raises(ValueError, "matmul", str(x_shape), str(w_shape)):
        x @ w


def test_matmul_of_0d(xb):
    with _raises(ValueError, "matmul", "at least 1-D", "()"):
        F.matmul(xb.variable(np.float64(2.0)), xb.variable(np.ones(3)))
