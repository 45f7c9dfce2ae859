"""Ops refuse bad input clearly and stay exact at the edges of their domain: shape arguments,
pow at 0, target shapes, empty batches, bias shapes, complex inputs, label and id ranges.

Each test names the op's error (type and message) or compares with an oracle (torch autograd
where torch is installed)."""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F

# ----------------------------------------------------------------------------- shape arguments


@pytest.mark.parametrize("shape", [(2.9, 3.1), (2.0, 3.0), "23", (True, 6), (2, "3"), 6.0])
def test_reshape_refuses_shapes_that_are_not_ints(shape):
    x = dz.Variable(np.arange(6.0))
    with pytest.raises(TypeError, match=r"reshape: shape must be an int .* got") as info:
        F.reshape(x, shape)
    assert repr(shape) in str(info.value)


def test_variable_reshape_refuses_float_sizes():
    with pytest.raises(TypeError, match="reshape: shape"):
        dz.Variable(np.arange(6.0)).reshape(2.0, 3.0)


@pytest.mark.parametrize("shape", [(2, 3), (np.int64(2), -1), [np.int32(2), 3], (-1, 3)])
def test_reshape_takes_python_and_numpy_ints(shape):
    y = F.reshape(dz.Variable(np.arange(6.0)), shape)
    assert y.shape == (2, 3)


def test_shape_arguments_of_broadcast_to_sum_to_and_transpose_are_ints():
    x = dz.Variable(np.ones((2, 3)))
    with pytest.raises(TypeError, match="broadcast_to: shape"):
        F.broadcast_to(x, (4.0, 2, 3))
    with pytest.raises(TypeError, match="sum_to: shape"):
        F.sum_to(x, (3.0,))
    with pytest.raises(TypeError, match="transpose: axes"):
        F.transpose(x, (1.0, 0.0))
    with pytest.raises(TypeError, match="transpose: axes"):
        F.transpose(x, (True, False))
    assert F.broadcast_to(x, (np.int64(4), 2, 3)).shape == (4, 2, 3)
    assert F.sum_to(x, (np.int64(3),)).shape == (3,)
    assert F.transpose(x, (np.int64(1), 0)).shape == (3, 2)
