"""Losses and accuracy (dezero_xp/functions/loss.py): declarative checks on every backend,
stability on huge logits, accuracy values and the errors bad labels get."""

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp as dz
import dezero_xp.functions as F

# ---------------------------------------------------------------- NumPy references

LABELS_5 = np.array([0, 3, 1, 3, 2])
LABELS_1 = np.array([2])


def ref_mse(a, b):
    d = a - b
    return np.sum(d * d) / (len(d) if d.ndim else 1)


def ref_log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def ref_softmax_cross_entropy(x, t):
    return -ref_log_softmax(x)[np.arange(len(x)), t].sum() / len(x)


def ref_sigmoid_cross_entropy(x, t):
    t = t.reshape(x.shape).astype(x.dtype)
    s = 1.0 / (1.0 + np.exp(-x))
    return -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s)) / len(x)


def ref_binary_cross_entropy(p, t):
    t = t.reshape(p.shape).astype(p.dtype)
    return -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)) / len(p)


def _binary_labels():
    return (np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]]),)


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, size=shape)


CASES = [
    op_case("mean_squared_error", F.mean_squared_error, ref_mse, [[(5, 3), (5, 3)], [(4,), (4,)]]),
    op_case("mean_squared_error_bcast", F.mean_squared_error, ref_mse, [[(5, 3), (3,)]]),
    op_case("mean_squared_error_simple", F.mean_squared_error_simple, ref_mse, [[(5, 3), (5, 3)]]),
    op_case(
        "softmax_cross_entropy",
        F.softmax_cross_entropy,
        ref_softmax_cross_entropy,
        [(5, 4)],
        consts=lambda: (LABELS_5,),
        domain=(-3.0, 3.0),
    ),
    op_case(
        "softmax_cross_entropy_1row",
        F.softmax_cross_entropy,
        ref_softmax_cross_entropy,
        [(1, 3)],
        consts=lambda: (LABELS_1,),
    ),
    op_case(
        "softmax_cross_entropy_simple",
        F.softmax_cross_entropy_simple,
        ref_softmax_cross_entropy,
        [(5, 4)],
        consts=lambda: (LABELS_5,),
        domain=(-3.0, 3.0),
    ),
    op_case(
        "sigmoid_cross_entropy",
        F.sigmoid_cross_entropy,
        ref_sigmoid_cross_entropy,
        [(4, 3)],
        consts=_binary_labels,
        domain=(-3.0, 3.0),
    ),
    op_case(
        "sigmoid_cross_entropy_column",
        F.sigmoid_cross_entropy,
        ref_sigmoid_cross_entropy,
        [(6, 1)],
        consts=lambda: (np.array([1, 0, 0, 1, 1, 0]),),
    ),
    # Floating targets given as a Variable get a gradient too.
    op_case(
        "sigmoid_cross_entropy_soft",
        F.sigmoid_cross_entropy,
        ref_sigmoid_cross_entropy,
        [[(4, 3), (4, 3)]],
        sampler=_probabilities,
    ),
    op_case(
        "binary_cross_entropy",
        F.binary_cross_entropy,
        ref_binary_cross_entropy,
        [(4, 3)],
        consts=_binary_labels,
        sampler=_probabilities,
    ),
    op_case(
        "binary_cross_entropy_soft",
        F.binary_cross_entropy,
        ref_binary_cross_entropy,
        [[(4, 3), (4, 3)]],
        sampler=_probabilities,
    ),
]

test_loss = make_op_tests(CASES)


# ---------------------------------------------------------------- softmax cross entropy


def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot(xb, rng):
    x_host = rng.standard_normal((4, 3))
    t_host = np.array([2, 0, 0, 1])
    x = xb.variable(x_host)
    loss = F.softmax_cross_entropy(x, xb.asarray(t_host))
    (loss * 3.0).backward()
    e = np.exp(x_host - x_host.max(axis=1, keepdims=True))
    expected = 3.0 * (e / e.sum(axis=1, keepdims=True) - np.eye(3)[t_host]) / 4
    np.testing.assert_allclose(xb.numpy(x.grad), expected, rtol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_is_stable_on_huge_logits(xb, dtype):
    x = xb.variable(np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], dtype=dtype))
    loss = F.softmax_cross_entropy(x, xb.asarray(np.array([0, 2])))
    loss.backward()
    np.testing.assert_allclose(float(xb.numpy(loss)), (0.0 + 2000.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(xb.numpy(x.grad), [[0.0, 0.0, 0.0], [0.5, 0.0, -0.5]], atol=1e-6)
    assert loss.dtype == xb.dtype(dtype) and x.grad.dtype == xb.dtype(dtype)


def test_softmax_cross_entropy_accepts_column_labels(xb, rng):
    x_host = rng.standard_normal((3, 4))
    t_host = np.array([[1], [3], [0]])
    loss = F.softmax_cross_entropy(xb.variable(x_host), xb.asarray(t_host))
    expected = ref_softmax_cross_entropy(x_host, t_host.ravel())
    np.testing.assert_allclose(float(xb.numpy(loss)), expected, rtol=1e-10)


def test_softmax_cross_entropy_wrong_label_count_names_op_and_shapes(xb):
    x = xb.variable(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy.*\(4, 3\).*\(3,\)"):
        F.softmax_cross_entropy(x, xb.asarray(np.array([0, 1, 2])))


def test_softmax_cross_entropy_float_labels_name_op_and_dtype(xb):
    x = xb.variable(np.zeros((3, 3)))
    with pytest.raises(TypeError, match=r"softmax_cross_entropy.*integer.*float64"):
        F.softmax_cross_entropy(x, xb.asarray(np.array([0.0, 1.0, 2.0])))


def test_softmax_cross_entropy_needs_2d_scores(xb):
    with pytest.raises(ValueError, match=r"softmax_cross_entropy.*2-D.*\(2, 3, 4\)"):
        F.softmax_cross_entropy(xb.variable(np.zeros((2, 3, 4))), xb.asarray(np.array([0, 1])))


def _refuses_labels(xb, x, labels):
    """Out-of-range labels: IndexError on host backends; on a GPU nan (no sync), or IndexError
    with eager checks (the documented policy, dezero_xp.set_eager_checks)."""
    t = xb.asarray(np.array(labels))
    if xb.backend.is_gpu:
        assert np.isnan(xb.numpy(F.softmax_cross_entropy(x, t)))
        dz.set_eager_checks(True)
    try:
        with pytest.raises(IndexError, match=r"softmax_cross_entropy.*\[0, 3\)"):
            F.softmax_cross_entropy(x, t)
    finally:
        dz.set_eager_checks(False)


def test_softmax_cross_entropy_label_out_of_range(xb):
    _refuses_labels(xb, xb.variable(np.zeros((2, 3))), [0, 3])


def test_softmax_cross_entropy_simple_matches_fused(xb, rng):
    x_host = rng.standard_normal((6, 5)) * 3
    t = xb.asarray(rng.integers(0, 5, size=6))
    fused, simple = xb.variable(x_host), xb.variable(x_host)
    y1 = F.softmax_cross_entropy(fused, t)
    y2 = F.softmax_cross_entropy_simple(simple, t)
    y1.backward()
    y2.backward()
    np.testing.assert_allclose(xb.numpy(y1), xb.numpy(y2), rtol=1e-12)
    np.testing.assert_allclose(xb.numpy(fused.grad), xb.numpy(simple.grad), rtol=1e-9)


def test_labels_on_another_device_are_refused():
    pytest.importorskip("array_api_strict")
    x = dz.Variable(np.zeros((2, 3))).to("strict:device1")
    with pytest.raises(dz.DeviceMismatchError, match="SoftmaxCrossEntropy"):
        F.softmax_cross_entropy(x, np.array([0, 1]))
    with pytest.raises(dz.DeviceMismatchError, match="softmax_cross_entropy_simple"):
        F.softmax_cross_entropy_simple(x, np.array([0, 1]))
    with pytest.raises(dz.DeviceMismatchError, match="sigmoid_cross_entropy"):
        F.sigmoid_cross_entropy(x, np.array([[0, 1, 1], [1, 0, 0]]))
    with pytest.raises(dz.DeviceMismatchError, match="accuracy"):
        F.accuracy(x, np.array([0, 1]))


# ---------------------------------------------------------------- binary losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_cross_entropy_is_stable_on_huge_logits(xb, dtype):
    x = xb.variable(np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]], dtype=dtype))
    t = xb.asarray(np.array([1, 0, 0, 1]))
    loss = F.sigmoid_cross_entropy(x, t)
    loss.backward()
    # Right answers cost 0, wrong ones cost |x| each: (1000 + 1000) / 4.
    np.testing.assert_allclose(float(xb.numpy(loss)), 500.0, rtol=1e-6)
    np.testing.assert_allclose(xb.numpy(x.grad).ravel(), [0.0, 0.0, 0.25, -0.25], atol=1e-7)
    assert loss.dtype == xb.dtype(dtype)


def test_sigmoid_cross_entropy_integer_labels_get_no_gradient(xb):
    x = xb.variable(np.array([[0.5, -0.5]]))
    t = dz.Variable(xb.asarray(np.array([[1, 0]])))
    F.sigmoid_cross_entropy(x, t).backward()
    assert t.grad is None and x.grad is not None


def test_binary_cross_entropy_clips_like_dezero(xb):
    p = xb.variable(np.array([1.0, 0.0]))
    t = xb.asarray(np.array([0, 1]))
    loss = F.binary_cross_entropy(p, t)
    expected = -(np.log(1 - 0.999) + np.log(1e-15)) / 2
    np.testing.assert_allclose(float(xb.numpy(loss)), expected, rtol=1e-12)


# ---------------------------------------------------------------- mean squared error


def test_mean_squared_error_refuses_the_column_vs_row_trap(xb):
    a = xb.variable(np.zeros((4, 1)))
    b = xb.variable(np.zeros(4))
    with pytest.raises(ValueError, match=r"mean_squared_error.*\(4, 1\).*\(4,\).*\(4, 4\)"):
        F.mean_squared_error(a, b)


def test_mean_squared_error_float32_with_python_scalar_target(xb):
    x = xb.variable(np.array([[1.0], [3.0]], dtype=np.float32))
    y = F.mean_squared_error(x, 2.0)
    y.backward()
    assert y.dtype == xb.dtype("float32") and x.grad.dtype == xb.dtype("float32")
    np.testing.assert_allclose(float(xb.numpy(y)), 1.0)
    np.testing.assert_allclose(xb.numpy(x.grad), [[-1.0], [1.0]])


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accuracy_value_dtype_and_device(xb, rng, dtype):
    y_host = rng.standard_normal((8, 4)).astype(dtype)
    t_host = y_host.argmax(axis=1)
    t_host[[1, 4, 5]] = (t_host[[1, 4, 5]] + 1) % 4  # three wrong predictions
    acc = F.accuracy(xb.variable(y_host), xb.asarray(t_host))
    assert isinstance(acc, dz.Variable) and acc.creator is None
    # The library's default float, whatever y's dtype: float64 on NumPy, as DeZero's.
    default = xb.xp.asarray(0.0, device=xb.backend.native_device).dtype
    assert acc.shape == () and acc.dtype == default and acc.backend is xb.backend
    if xb.name == "numpy":
        assert acc.dtype == np.float64
    assert float(xb.numpy(acc)) == 5 / 8


def test_accuracy_with_column_labels_and_raw_arrays(xb):
    y = xb.asarray(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype=np.float32))
    t = xb.asarray(np.array([[1], [1], [1]], dtype=np.int32))
    np.testing.assert_allclose(float(xb.numpy(F.accuracy(y, t))), 2 / 3, rtol=1e-6)


def test_accuracy_label_count_mismatch(xb):
    with pytest.raises(ValueError, match=r"accuracy.*\(3, 2\).*\(2,\)"):
        F.accuracy(xb.variable(np.zeros((3, 2))), xb.asarray(np.array([0, 1])))


@pytest.mark.parametrize("label_dtype", ["int32", "uint8", "int64"])
def test_softmax_cross_entropy_label_dtypes(xb, rng, label_dtype):
    x_host = rng.standard_normal((4, 3))
    t_host = np.array([2, 0, 1, 1])
    loss = F.softmax_cross_entropy(xb.variable(x_host), xb.asarray(t_host.astype(label_dtype)))
    np.testing.assert_allclose(
        float(xb.numpy(loss)), ref_softmax_cross_entropy(x_host, t_host), rtol=1e-10
    )


def test_softmax_cross_entropy_negative_label_is_refused(xb):
    _refuses_labels(xb, xb.variable(np.zeros((2, 3))), [0, -1])
