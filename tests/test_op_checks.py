"""Op arguments: NumPy integers are ints, and what is not a size is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp._shape import pair


def test_numpy_integers_are_valid_conv_and_pooling_arguments(rng):
    x = dz.Variable(rng.standard_normal((1, 2, 5, 5)))
    W = dz.Variable(rng.standard_normal((3, 2, 3, 3)))
    expected = F.conv2d(x, W, stride=1, pad=1).data
    y = F.conv2d(x, W, stride=np.int64(1), pad=np.int32(1))
    np.testing.assert_array_equal(y.data, expected)
    y.backward()
    assert x.grad.shape == x.shape
    pooled = F.pooling(x, np.int64(2), stride=np.int64(2))
    assert pooled.shape == (1, 2, 2, 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, (3, 3)), (np.int64(2), (2, 2)), ((1, np.int32(4)), (1, 4)), ([2, 3], (2, 3))],
)
def test_pair_makes_python_ints(value, expected):
    result = pair(value)
    assert result == expected and all(type(n) is int for n in result)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, TypeError),
        (True, TypeError),
        ("2", TypeError),
        ((1, 2, 3), TypeError),
        ((1.0, 2), TypeError),
        (-1, ValueError),
        ((2, -3), ValueError),
    ],
)
def test_pair_refuses_what_is_not_a_size(value, error):
    with pytest.raises(error):
        pair(value)


@pytest.mark.parametrize(
    ("dtype", "x"), [(np.float32, -20.0), (np.float32, -7.0), (np.float64, -40.0)]
)
def test_sigmoid_keeps_its_left_tail_on_numpy(dtype, x):
    exact = 1 / (1 + np.exp(-np.float64(x)))
    v = dz.Variable(np.array([x, 0.0, 2.0], dtype))
    y = F.sigmoid(v)
    F.sum(y).backward()
    assert y.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data[0], exact, rtol=rtol)
    np.testing.assert_allclose(v.grad.data[0], exact * (1 - exact), rtol=rtol)
    np.testing.assert_allclose(y.data[1:], 1 / (1 + np.exp(-np.array([0.0, 2.0]))), rtol=rtol)
    scalar = F.sigmoid(dz.Variable(np.array(x, dtype)))  # 0-d input: a NumPy scalar inside
    np.testing.assert_allclose(scalar.data, exact, rtol=rtol)
