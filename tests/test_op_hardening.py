"""Ops refuse bad input clearly and stay exact at the edges of their domain: shape arguments,
pow at 0, target shapes, empty batches, bias shapes, label and id ranges, complex inputs.

Each test names the op's error (type and message) or compares with an oracle (torch autograd
where torch is installed). Backend-specific edges (sigmoid kernels, torch's negative steps and
device specs) are in test_backend_edges.py."""

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


# ----------------------------------------------------------------------------- pow at 0


def _torch_grads(fn, *values):
    """Gradients of ``sum(fn(*values))`` by torch autograd, float64."""
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(np.asarray(v, np.float64), requires_grad=True) for v in values]
    fn(*ts).sum().backward()
    return [t.grad.numpy() for t in ts]


def _our_grads(variable, numpy, fn, *values, create_graph=False):
    vs = [variable(np.asarray(v, np.float64)) for v in values]
    F.sum(fn(*vs)).backward(create_graph=create_graph)
    return [numpy(v.grad) for v in vs]


BASES = [0.0, 0.5, 1.0, 2.0, 3.0]


# Exponents whose derivative is finite at 0: no inf or nan is formed, not even in a branch
# that is masked out later (NumPy warnings are errors in this suite).
@pytest.mark.parametrize("c", [0, 1, 2, 3, 2.5, 0.0])
def test_pow_const_gradient_at_zero_matches_torch(xb, c):
    (ours,) = _our_grads(xb.variable, xb.numpy, lambda x: x**c, BASES)
    (expected,) = _torch_grads(lambda x: x**c, BASES)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)
    assert np.isfinite(ours).all()


def test_pow_const_zero_exponent_has_zero_gradient_even_for_infinite_upstream():
    x = dz.Variable(np.array([0.0, 2.0]))
    y = x**0
    y.grad = dz.Variable(np.array([np.inf, 1.0]))  # the upstream gradient
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


@pytest.mark.parametrize("c", [0.5, -1])
def test_pow_const_infinite_derivative_at_zero_matches_torch(c):
    with np.errstate(divide="ignore"):
        (ours,) = _our_grads(dz.Variable, lambda g: g.data, lambda x: x**c, BASES)
    np.testing.assert_allclose(ours, _torch_grads(lambda x: x**c, BASES)[0], rtol=1e-12)


POW_BASES = [0.0, 0.0, 0.0, 0.0, 2.0, 0.5, 3.0]
POW_EXPONENTS = [0.0, 1.0, 2.0, 3.5, 0.0, 1.5, -1.0]


@pytest.mark.parametrize("create_graph", [False, True])
def test_pow_of_two_variables_at_zero_base_matches_torch(xb, create_graph):
    def fn(a, b):
        return a**b

    ours = _our_grads(
        xb.variable, xb.numpy, fn, POW_BASES, POW_EXPONENTS, create_graph=create_graph
    )
    expected = _torch_grads(fn, POW_BASES, POW_EXPONENTS)
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert np.isfinite(got).all()


@pytest.mark.parametrize("c", [0.0, 2.0, 0.5])
def test_rpow_gradient_matches_torch_also_for_a_zero_base(xb, c):
    exponent = [0.0, 1.0, 2.5, 3.0]
    (ours,) = _our_grads(xb.variable, xb.numpy, lambda x: c**x, exponent)
    (expected,) = _torch_grads(lambda x: c**x, exponent)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- target shapes


@pytest.mark.parametrize("loss", [F.sigmoid_cross_entropy, F.binary_cross_entropy])
@pytest.mark.parametrize("t_shape", [(3, 2), (6,), (2, 3, 1, 2)])
def test_binary_losses_refuse_targets_of_another_shape(loss, t_shape):
    x = dz.Variable(np.full((2, 3), 0.5))
    name = loss.__name__
    with pytest.raises(ValueError, match=rf"{name}: x has shape \(2, 3\) but t has shape"):
        loss(x, np.zeros(t_shape))


@pytest.mark.parametrize("loss", [F.sigmoid_cross_entropy, F.binary_cross_entropy])
def test_binary_losses_take_labels_that_differ_only_by_length_one_axes(loss):
    x = dz.Variable(np.array([[0.2], [0.7], [0.4]]))
    t = np.array([0, 1, 1])
    expected = loss(x, t.reshape(3, 1)).data
    np.testing.assert_array_equal(loss(x, t).data, expected)


# ----------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4, 4), (2, 3, 0, 4)])
def test_batch_norm_refuses_an_empty_batch_in_train_mode_and_keeps_its_statistics(shape):
    mean, var = np.zeros(3), np.ones(3)
    x = dz.Variable(np.zeros(shape))
    with pytest.raises(ValueError, match=r"batch_norm: x of shape \(.*\) has no elements"):
        F.batch_norm(x, np.ones(3), np.zeros(3), mean, var)
    np.testing.assert_array_equal(mean, np.zeros(3))
    np.testing.assert_array_equal(var, np.ones(3))


def test_batch_norm_layer_refuses_an_empty_batch_and_runs_one_in_test_mode():
    bn = dz.layers.BatchNorm()
    bn(dz.Variable(np.ones((2, 3))))  # initialises the running statistics
    before = bn.avg_mean.data.copy()
    with pytest.raises(ValueError, match="batch_norm"):
        bn(dz.Variable(np.zeros((0, 3))))
    np.testing.assert_array_equal(bn.avg_mean.data, before)
    with dz.test_mode():
        assert bn(dz.Variable(np.zeros((0, 3)))).shape == (0, 3)


@pytest.mark.parametrize("which", ["mean", "var"])
def test_batch_norm_refuses_integer_running_statistics(xb, which):
    # Was NumPy's UFuncTypeError "Cannot cast ufunc 'multiply' output" from the in-place update.
    stats = {"mean": xb.asarray(np.zeros(3)), "var": xb.asarray(np.ones(3))}
    stats[which] = xb.asarray(np.ones(3, np.int64))
    x = xb.variable(np.arange(12.0).reshape(4, 3))
    with pytest.raises(TypeError, match=rf"batch_norm: {which} must be a real floating-point"):
        F.batch_norm(x, xb.variable(np.ones(3)), xb.variable(np.zeros(3)), **stats)
    np.testing.assert_array_equal(xb.numpy(stats[which]), np.ones(3))


# ----------------------------------------------------------------------------- windows


def _conv_inputs(xb, channels):
    rng = np.random.default_rng(0)
    x = xb.variable(np.zeros((0, channels, 5, 5)))
    W = xb.variable(rng.standard_normal((4, 3, 3, 3)))
    b = xb.variable(rng.standard_normal(3 if channels == 4 else 4))
    return x, W, b


WINDOW_OPS = {
    "conv2d": (3, lambda x, W, b: F.conv2d(x, W, b, stride=2, pad=1), (0, 4, 3, 3)),
    "deconv2d": (4, lambda x, W, b: F.deconv2d(x, W, b, stride=2, pad=1), (0, 3, 9, 9)),
    "conv2d_simple": (3, lambda x, W, b: F.conv2d_simple(x, W, b, pad=1), (0, 4, 5, 5)),
    "pooling": (3, lambda x, W, b: F.pooling(x, 2, 2), (0, 3, 2, 2)),
    "average_pooling": (3, lambda x, W, b: F.average_pooling(x, 2, 2), (0, 3, 2, 2)),
    "pooling_simple": (3, lambda x, W, b: F.pooling_simple(x, 2, 2), (0, 3, 2, 2)),
}


@pytest.mark.parametrize("name", list(WINDOW_OPS))
def test_window_ops_run_forward_and_backward_on_an_empty_batch(xb, name):
    channels, op, out_shape = WINDOW_OPS[name]
    x, W, b = _conv_inputs(xb, channels)
    y = op(x, W, b)
    assert y.shape == out_shape
    F.sum(y).backward()
    assert x.grad.shape == x.shape
    if W.grad is not None:  # the convolutions: zero gradients for the filter and bias
        np.testing.assert_array_equal(xb.numpy(W.grad), np.zeros(W.shape))
        np.testing.assert_array_equal(xb.numpy(b.grad), np.zeros(b.shape))
    else:
        assert name.startswith(("pooling", "average"))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda x, W: F.deconv2d(x, W, stride=0),
            ValueError,
            "deconv2d: stride must be an int >= 1",
        ),
        (lambda x, W: F.deconv2d(x, W, pad=-1), ValueError, "deconv2d: pad must be an int >= 0"),
        (lambda x, W: F.deconv2d(x, W, stride=1.5), TypeError, "deconv2d: stride"),
        (lambda x, W: F.deconv2d(x, W, pad=(1, 2, 3)), TypeError, "deconv2d: pad"),
        (lambda x, W: F.conv2d(x, W, stride=(1, 0)), ValueError, "conv2d: stride must be"),
        (lambda x, W: F.conv2d(x, W, pad=True), TypeError, "conv2d: pad"),
        (lambda x, W: F.pooling(x, 2, stride=0), ValueError, "pooling: stride must be"),
        (lambda x, W: F.pooling(x, 0), ValueError, "pooling: kernel_size must be an int >= 1"),
        (lambda x, W: F.average_pooling(x, 2, pad="1"), TypeError, "average_pooling: pad"),
        (lambda x, W: F.im2col(x, 2, stride=0), ValueError, "im2col: stride must be"),
        (lambda x, W: F.pooling_simple(x, 2, stride=0), ValueError, "pooling_simple: stride"),
        (lambda x, W: F.conv2d_simple(x, W, stride=0), ValueError, "conv2d_simple: stride"),
    ],
)
def test_window_ops_refuse_strides_and_pads_that_are_not_sizes(call, error, message):
    x = dz.Variable(np.zeros((1, 4, 5, 5)))
    W = dz.Variable(np.zeros((4, 4, 3, 3)))
    with pytest.raises(error, match=message):
        call(x, W)


# ----------------------------------------------------------------------------- linear


@pytest.mark.parametrize("b_shape", [(2, 1), (3, 2, 4), (1, 4), (), (3,)])
def test_linear_refuses_a_bias_that_is_not_one_per_output_feature(xb, b_shape):
    x, W = xb.variable(np.ones((2, 3))), xb.variable(np.ones((3, 4)))
    b = xb.variable(np.ones(b_shape))
    with pytest.raises(ValueError, match=r"linear: b has shape .* shape \(4,\)"):
        F.linear(x, W, b)


def test_linear_names_itself_and_the_shapes_when_x_and_w_do_not_fit(xb):
    x, W = xb.variable(np.ones((2, 5))), xb.variable(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"linear: x of shape \(2, 5\) and W of shape \(3, 4\)"):
        F.linear(x, W)


def test_linear_with_its_bias_matches_matmul_plus_bias(xb):
    rng = np.random.default_rng(1)
    x, W, b = (rng.standard_normal(s) for s in ((2, 5, 3), (3, 4), (4,)))
    y = F.linear(xb.variable(x), xb.variable(W), xb.variable(b))
    np.testing.assert_allclose(xb.numpy(y), x @ W + b, rtol=1e-12)


# ----------------------------------------------------------------------------- labels and ids


@pytest.mark.parametrize("ids", [[0, -1], [3], [[1, 2], [0, -4]]])
def test_embed_id_refuses_ids_outside_the_vocabulary(xb, ids):
    W = xb.variable(np.eye(3))
    with pytest.raises(IndexError, match=r"embed_id: .*ids must lie in \[0, 3\) for W of shape"):
        F.embed_id(xb.asarray(np.array(ids)), W)


def test_embed_id_takes_every_id_of_the_vocabulary(xb):
    W = xb.variable(np.arange(6.0).reshape(3, 2))
    y = F.embed_id(xb.asarray(np.array([2, 0, 1])), W)
    np.testing.assert_array_equal(xb.numpy(y), [[4.0, 5.0], [0.0, 1.0], [2.0, 3.0]])


@pytest.mark.parametrize("loss", [F.softmax_cross_entropy, F.softmax_cross_entropy_simple])
@pytest.mark.parametrize("label", [-1, 3])
def test_class_losses_refuse_labels_outside_the_classes(xb, loss, label):
    x = xb.variable(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=rf"{loss.__name__}: labels must lie in \[0, 3\)"):
        loss(x, xb.asarray(np.array([0, label])))


@pytest.mark.parametrize("label", [-1, 3])
def test_accuracy_refuses_labels_outside_the_classes(xb, label):
    y = xb.variable(np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    with pytest.raises(IndexError, match=r"accuracy: labels must lie in \[0, 3\)"):
        F.accuracy(y, xb.asarray(np.array([2, label])))
    assert float(xb.numpy(F.accuracy(y, xb.asarray(np.array([2, 1]))))) == 0.5


# ----------------------------------------------------------------------------- empty batches

EMPTY_LOSSES = {
    "mean_squared_error": lambda xb, x: F.mean_squared_error(x, xb.asarray(np.zeros((0, 3)))),
    "mean_squared_error_simple": lambda xb, x: F.mean_squared_error_simple(
        x, xb.asarray(np.zeros((0, 3)))
    ),
    "softmax_cross_entropy": lambda xb, x: F.softmax_cross_entropy(
        x, xb.asarray(np.zeros(0, np.int64))
    ),
    "softmax_cross_entropy_simple": lambda xb, x: F.softmax_cross_entropy_simple(
        x, xb.asarray(np.zeros(0, np.int64))
    ),
    "sigmoid_cross_entropy": lambda xb, x: F.sigmoid_cross_entropy(
        x, xb.asarray(np.zeros((0, 3), np.int64))
    ),
    "binary_cross_entropy": lambda xb, x: F.binary_cross_entropy(
        x, xb.asarray(np.zeros((0, 3), np.int64))
    ),
}


@pytest.mark.parametrize("name", list(EMPTY_LOSSES))
def test_losses_refuse_an_empty_batch(xb, name):
    x = xb.variable(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=rf"{name}: the batch is empty \(shape \(0, 3\)\)"):
        EMPTY_LOSSES[name](xb, x)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2), (2, 0)])
def test_accuracy_refuses_an_empty_batch_like_the_losses(xb, shape):
    y = xb.variable(np.zeros(shape))
    t = xb.asarray(np.zeros((shape[0],) + shape[2:], np.int64))
    with pytest.raises(ValueError, match=r"accuracy: y of shape .* holds no scores"):
        F.accuracy(y, t)  # was nan, with a NumPy RuntimeWarning


# ----------------------------------------------------------------------------- complex input

COMPLEX_OPS = {
    "relu": lambda z, r: F.relu(z),
    "leaky_relu": lambda z, r: F.leaky_relu(z),
    "softmax": lambda z, r: F.softmax(z),
    "log_softmax": lambda z, r: F.log_softmax(z),
    "max": lambda z, r: F.max(z),
    "min": lambda z, r: F.min(z, axis=1),
    "logsumexp": lambda z, r: F.logsumexp(z),
    "clip": lambda z, r: F.clip(z, 0.0, 1.0),
    "maximum": lambda z, r: F.maximum(r, z),
    "minimum": lambda z, r: F.minimum(z, r),
    "pooling": lambda z, r: F.pooling(F.reshape(z, (1, 1, 2, 2)), 2),
    "mean_squared_error": lambda z, r: F.mean_squared_error(r, z),
    "mean_squared_error_simple": lambda z, r: F.mean_squared_error_simple(z, r),
    "softmax_cross_entropy": lambda z, r: F.softmax_cross_entropy(z, _labels(r)),
    "softmax_cross_entropy_simple": lambda z, r: F.softmax_cross_entropy_simple(z, _labels(r)),
    "sigmoid_cross_entropy": lambda z, r: F.sigmoid_cross_entropy(z, r.data),
    "binary_cross_entropy": lambda z, r: F.binary_cross_entropy(r, z.data),
    "accuracy": lambda z, r: F.accuracy(z, _labels(r)),
}


def _labels(like):
    return like.backend.from_host(np.array([0, 1]))


@pytest.mark.parametrize("name", list(COMPLEX_OPS))
def test_ordering_ops_and_losses_refuse_complex_input(xb, name):
    z = xb.variable(np.array([[-2 + 5j, 1 + 0j], [0.5 - 1j, 2 + 0j]]))
    r = xb.variable(np.array([[0.2, 0.4], [0.6, 0.8]]))
    with pytest.raises(TypeError, match=rf"{name}: got a complex input \(dtype .*complex128"):
        COMPLEX_OPS[name](z, r)


def test_sigmoid_and_arithmetic_still_take_complex_input():
    z = np.array([1 + 1j, -2j])
    np.testing.assert_allclose(F.sigmoid(dz.Variable(z)).data, 1 / (1 + np.exp(-z)), rtol=1e-14)
    np.testing.assert_array_equal((dz.Variable(z) * 2).data, z * 2)


# ----------------------------------------------------------------------------- oversized scalars


@pytest.mark.parametrize(
    ("dtype", "make", "op", "fragment"),
    [
        (np.int64, lambda x: x + 2**70, "Add", "1180591620717411303424"),
        (np.int32, lambda x: 2**70 - x, "Sub", "1180591620717411303424"),
        (np.int8, lambda x: x * 300, "Mul", "300"),
        (np.float32, lambda x: x * 10**400, "Mul", "1000000000"),
    ],
)
def test_a_scalar_beyond_the_ops_dtype_is_an_overflow_error_naming_the_op(
    xb, dtype, make, op, fragment
):
    # Was NumPy's/torch's bare "Python int too large to convert to C long" (or a ValueError).
    x = xb.variable(np.ones(2, dtype))
    with pytest.raises(
        OverflowError, match=rf"{op}: input \d, the scalar {fragment}.* does not fit"
    ):
        make(x)


def test_a_big_scalar_that_fits_the_dtype_still_works(xb):
    y = xb.variable(np.ones(2, np.float32)) * 2**70
    assert xb.numpy(y).dtype == np.float32 and xb.numpy(y)[0] == 2.0**70


def test_bounds_beyond_an_integer_dtype_name_clip_or_clip_nothing(xb):
    x = xb.variable(np.array([1, -3], np.int8))
    try:
        y = F.clip(x, -(2**70), 2**70)
    except OverflowError as error:  # array-api-strict refuses such a bound
        assert str(error).startswith("Clip: ")
    else:
        np.testing.assert_array_equal(xb.numpy(y), [1, -3])


# ----------------------------------------------------------------------------- hyperparameters


def _bn(xb, **kw):
    x = xb.variable(np.arange(12.0).reshape(4, 3))
    gamma, beta = xb.variable(np.ones(3)), xb.variable(np.zeros(3))
    return F.batch_norm(x, gamma, beta, xb.asarray(np.zeros(3)), xb.asarray(np.ones(3)), **kw)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda xb, x: F.leaky_relu(x, "abc"), TypeError, "leaky_relu: slope must be a real"),
        (lambda xb, x: F.leaky_relu(x, float("nan")), ValueError, "leaky_relu: slope must be fin"),
        (lambda xb, x: F.dropout(x, "abc"), TypeError, "dropout: dropout_ratio must be a real"),
        (lambda xb, x: _bn(xb, eps=-1.0), ValueError, r"batch_norm: eps must be finite and > 0"),
        (lambda xb, x: _bn(xb, eps="abc"), TypeError, "batch_norm: eps must be a real number"),
        (lambda xb, x: _bn(xb, decay=2.0), ValueError, r"batch_norm: decay must be in \[0, 1\]"),
        (lambda xb, x: _bn(xb, decay=True), TypeError, "batch_norm: decay must be a real number"),
    ],
    ids=["slope-str", "slope-nan", "ratio-str", "eps-negative", "eps-str", "decay-2", "decay-bool"],
)
def test_real_hyperparameters_are_refused_by_op_and_name(xb, call, error, message):
    # Were NumPy's "ufunc 'multiply' did not contain a loop", "'<=' not supported", or for a
    # negative eps a silent nan from sqrt.
    with pytest.raises(error, match=message):
        call(xb, xb.variable(np.ones((2, 3))))


def test_valid_hyperparameters_of_every_kind_still_work(xb):
    x = xb.variable(np.array([-1.0, 2.0]))
    np.testing.assert_allclose(xb.numpy(F.leaky_relu(x, -0.5)), [0.5, 2.0])
    np.testing.assert_allclose(xb.numpy(F.leaky_relu(x, np.float32(0.5))), [-0.5, 2.0])
    y = _bn(xb, decay=np.float64(1.0), eps=np.float64(1e-3))
    assert xb.numpy(y).shape == (4, 3)
