"""Reductions (dezero_xp/functions/reduce.py): the declarative checker on every backend, ties in
max/min, numerical stability of logsumexp, Variable's reduction methods and axis errors."""

import re

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp.functions as F


def np_logsumexp(x, axis=None, keepdims=False):
    """Reference: the max-shifted formula, in the input's dtype."""
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis)


def reduction_cases(name, fn, ref, **kwargs):
    """One op over the axis forms: None, int, negative int, tuple, keepdims, 0-d input."""
    return [
        op_case(name, fn, ref, [(), (3, 4)], **kwargs),
        op_case(
            name + "_axis0",
            lambda x: fn(x, axis=0),
            lambda x: ref(x, axis=0),
            [(3,), (3, 4)],
            **kwargs,
        ),
        op_case(
            name + "_axis_neg",
            lambda x: fn(x, axis=-1),
            lambda x: ref(x, axis=-1),
            [(2, 3, 4)],
            **kwargs,
        ),
        op_case(
            name + "_axes",
            lambda x: fn(x, axis=(0, 2)),
            lambda x: ref(x, axis=(0, 2)),
            [(2, 3, 4)],
            **kwargs,
        ),
        op_case(
            name + "_keepdims",
            lambda x: fn(x, axis=(2, -3), keepdims=True),
            lambda x: ref(x, axis=(2, -3), keepdims=True),
            [(2, 3, 4)],
            **kwargs,
        ),
        op_case(
            name + "_all_keepdims",
            lambda x: fn(x, keepdims=True),
            lambda x: ref(x, keepdims=True),
            [(3, 2)],
            **kwargs,
        ),
    ]


CASES = [
    *reduction_cases("sum", F.sum, np.sum),
    *reduction_cases("mean", F.mean, np.mean),
    *reduction_cases("max", F.max, np.max),
    *reduction_cases("min", F.min, np.min),
    *reduction_cases("logsumexp", F.logsumexp, np_logsumexp),
    op_case(
        "sum_list_axis", lambda x: F.sum(x, axis=[0, 1]), lambda x: x.sum(axis=(0, 1)), [(2, 3)]
    ),
    op_case("average", lambda x: F.average(x, 1), lambda x: np.average(x, 1), [(3, 4)]),
    op_case("mean_method", lambda x: x.mean(axis=0), lambda x: x.mean(axis=0), [(3, 4)]),
    op_case("sum_method", lambda x: x.sum(axis=1), lambda x: x.sum(axis=1), [(3, 4)]),
    op_case("max_method", lambda x: x.max(axis=1), lambda x: x.max(axis=1), [(3, 4)]),
    op_case("min_method", lambda x: x.min(), lambda x: x.min(), [(3, 4)]),
    # Second order through a nonlinearity: the reductions' backward is differentiated too.
    op_case("sum_sq", lambda x: F.sum(x * x, axis=1) ** 2, lambda x: (x * x).sum(1) ** 2, [(2, 3)]),
    op_case("mean_sq", lambda x: F.mean(x, axis=0) ** 2, lambda x: x.mean(0) ** 2, [(3, 2)]),
    op_case("max_sq", lambda x: F.max(x, axis=1) ** 2, lambda x: x.max(1) ** 2, [(3, 4)]),
    op_case("min_sq", lambda x: F.min(x, axis=0) ** 2, lambda x: x.min(0) ** 2, [(3, 4)]),
]

test_reduce_ops = make_op_tests(CASES)


# ---------------------------------------------------------------------------------- ties


@pytest.mark.parametrize(
    "op, host, axis, expected",
    [
        (F.max, [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], 1, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]),
        (F.min, [[1.0, 3.0, 1.0], [0.0, 5.0, 4.0]], 1, [[0.5, 0, 0.5], [1, 0, 0]]),
        (F.max, [[4.0, 1.0], [4.0, 4.0]], None, [[1 / 3, 0], [1 / 3, 1 / 3]]),
        (F.min, [[2.0, 2.0], [3.0, 2.0]], 0, [[1, 0.5], [0, 0.5]]),
    ],
)
def test_ties_share_the_gradient_evenly(xb, op, host, axis, expected):
    x = xb.variable(np.asarray(host, dtype=np.float32))
    op(x, axis=axis).backward()
    np.testing.assert_allclose(xb.numpy(x.grad), expected, rtol=1e-6)
    assert x.grad.dtype == xb.dtype("float32")


def test_tie_gradient_scales_with_upstream(xb):
    x = xb.variable(np.array([[5.0, 5.0, 1.0]]))
    y = F.max(x, axis=1, keepdims=True)
    (y * 6.0).sum().backward()
    np.testing.assert_allclose(xb.numpy(x.grad), [[3.0, 3.0, 0.0]])


# ---------------------------------------------------------------------------------- values


def test_logsumexp_does_not_overflow(xb):
    host = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]], dtype=np.float32)
    x = xb.variable(host)
    y = F.logsumexp(x, axis=1)
    np.testing.assert_allclose(xb.numpy(y), [1000 + np.log(2), -1000 + np.log(2)], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(xb.numpy(x.grad), np.full((2, 2), 0.5), rtol=1e-6)


def test_mean_of_float32_stays_float32(xb):
    x = xb.variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    y = x.mean()
    assert y.dtype == xb.dtype("float32")
    np.testing.assert_allclose(xb.numpy(y), 2.5)
    y.backward()
    np.testing.assert_allclose(xb.numpy(x.grad), np.full((2, 3), 1 / 6), rtol=1e-6)


# ---------------------------------------------------------------------------------- errors


def _raises(exc, *fragments):
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    return pytest.raises(exc, match=re.compile(pattern, re.S))


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "logsumexp"])
def test_axis_out_of_range(xb, op):
    fn = getattr(F, op)
    name = "average" if op == "mean" else op
    x = xb.variable(np.zeros((2, 3)))
    with _raises(ValueError, f"{name}:", "axis 2", "(2, 3)"):
        fn(x, axis=2)
    with _raises(ValueError, f"{name}:", "axis -3", "(2, 3)"):
        fn(x, axis=(0, -3))
    with _raises(ValueError, f"{name}:", "twice"):
        fn(x, axis=(1, -1))
    with _raises(ValueError, f"{name}:", "axis 0", "()"):
        fn(xb.variable(np.float64(1.0)), axis=0)


def test_axis_of_wrong_type(xb):
    x = xb.variable(np.zeros((2, 3)))
    with _raises(TypeError, "sum", "axis"):
        F.sum(x, axis=1.0)
