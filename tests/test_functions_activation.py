"""Activation functions (dezero_xp/functions/activation.py): the declarative checks on every
backend, plus numerical stability on huge inputs."""

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp.functions as F

# ---------------------------------------------------------------- NumPy references


def ref_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_relu(x):
    return np.where(x > 0, x, 0.0).astype(x.dtype)


def ref_leaky_relu(x, slope=0.2):
    return np.where(x > 0, x, slope * x).astype(x.dtype)


def ref_softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _away_from_zero(rng, shape):
    """Values in +-[0.2, 2]: the kink of relu is never within a finite-difference step."""
    return rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


CASES = [
    op_case("sigmoid", F.sigmoid, ref_sigmoid, [(), (3, 4)], domain=(-3.0, 3.0)),
    op_case("sigmoid_simple", F.sigmoid_simple, ref_sigmoid, [(3, 4)], domain=(-3.0, 3.0)),
    op_case("relu", F.relu, ref_relu, [(3, 4), (2, 3, 2)], sampler=_away_from_zero),
    op_case("leaky_relu", F.leaky_relu, ref_leaky_relu, [(3, 4)], sampler=_away_from_zero),
    op_case(
        "leaky_relu_0.05",
        lambda x: F.leaky_relu(x, slope=0.05),
        lambda x: ref_leaky_relu(x, 0.05),
        [(3, 4)],
        sampler=_away_from_zero,
    ),
    op_case("softmax", F.softmax, ref_softmax, [(3, 4), (2, 3, 4)], domain=(-2.0, 2.0)),
    op_case(
        "softmax_axis0",
        lambda x: F.softmax(x, axis=0),
        lambda x: ref_softmax(x, axis=0),
        [(3, 4)],
    ),
    op_case(
        "softmax_axis-1",
        lambda x: F.softmax(x, axis=-1),
        lambda x: ref_softmax(x, axis=-1),
        [(2, 3, 4)],
    ),
    op_case("softmax_simple", F.softmax_simple, ref_softmax, [(3, 4)], domain=(-2.0, 2.0)),
    op_case("log_softmax", F.log_softmax, ref_log_softmax, [(3, 4), (2, 3, 4)], domain=(-2, 2)),
    op_case(
        "log_softmax_axis-1",
        lambda x: F.log_softmax(x, axis=-1),
        lambda x: ref_log_softmax(x, axis=-1),
        [(2, 5)],
    ),
]

test_activation = make_op_tests(CASES)


# ---------------------------------------------------------------- numerical stability

HUGE = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_stable_on_huge_inputs(xb, dtype):
    x = xb.variable(np.array([1000.0, -1000.0, 0.0], dtype=dtype))
    y = F.sigmoid(x)
    y.backward()
    np.testing.assert_array_equal(xb.numpy(y), np.array([1.0, 0.0, 0.5], dtype=dtype))
    np.testing.assert_array_equal(xb.numpy(x.grad), np.array([0.0, 0.0, 0.25], dtype=dtype))
    assert y.dtype == xb.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_is_stable_on_huge_inputs(xb, dtype):
    x = xb.variable(HUGE.astype(dtype))
    y = F.softmax(x)
    (y * xb.variable(np.arange(6.0).reshape(2, 3).astype(dtype))).sum().backward()
    got = xb.numpy(y)
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(xb.numpy(x.grad)))
    np.testing.assert_allclose(got, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_softmax_is_stable_on_huge_inputs(xb, dtype):
    x = xb.variable(HUGE.astype(dtype))
    y = F.log_softmax(x)
    y.sum().backward()
    expected = [[0.0, -1000.0, -2000.0], [-np.log(3.0)] * 3]
    np.testing.assert_allclose(xb.numpy(y), expected, rtol=1e-6)
    # d/dx sum(log_softmax) = 1 - C * softmax
    np.testing.assert_allclose(xb.numpy(x.grad), [[-2.0, 1.0, 1.0], [0.0] * 3], atol=1e-6)


def test_softmax_rows_sum_to_one(xb, rng):
    x = xb.variable(rng.standard_normal((5, 7)).astype(np.float32) * 30)
    np.testing.assert_allclose(xb.numpy(F.softmax(x)).sum(axis=1), np.ones(5), rtol=1e-6)
    np.testing.assert_allclose(np.exp(xb.numpy(F.log_softmax(x))).sum(axis=1), 1.0, rtol=1e-5)


def test_relu_gradient_is_zero_at_and_below_zero(xb):
    x = xb.variable(np.array([-2.0, 0.0, 3.0]))
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [0.0, 0.0, 1.0])


def test_softmax_axis_out_of_range_is_a_clear_error(xb):
    with pytest.raises((ValueError, IndexError), match="Softmax"):
        F.softmax(xb.variable(np.zeros(3)))


def test_sigmoid_float32_stays_float32_through_second_order(xb):
    x = xb.variable(np.array([0.3, -1.2], dtype=np.float32))
    y = F.sigmoid(x)
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.sum().backward()
    assert gx.dtype == xb.dtype("float32") and x.grad.dtype == xb.dtype("float32")
    s = ref_sigmoid(np.array([0.3, -1.2]))
    np.testing.assert_allclose(xb.numpy(x.grad), s * (1 - s) * (1 - 2 * s), rtol=1e-5)


def test_relu_under_an_infinite_upstream_gradient_gives_one_answer_in_both_passes(xb):
    """The derivative of relu where x <= 0 is exactly 0, even against an infinite gradient:
    the first-order pass and the create_graph pass run the same rule."""
    import warnings

    import dezero_xp.functions as F

    for create_graph in (False, True):
        x = xb.variable(np.array([-1.0, 2.0]))
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # 0 * inf in the forward product
            (F.relu(x) * xb.asarray(np.array([np.inf, 1.0]))).sum().backward(
                create_graph=create_graph
            )
        np.testing.assert_array_equal(xb.numpy(x.grad), [0.0, 1.0])
