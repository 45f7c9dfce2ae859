"""Conv family (dezero_xp/functions/conv.py): conv2d, deconv2d, pooling, im2col/col2im.

Forward results are checked against loop references written here (one output position at a
time) through the declarative checker, and against PyTorch's functional ops when torch is
installed; gradients by central differences and, for the ops whose gradient depends on their
inputs, the gradient of the gradient.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from opcheck import make_op_tests, op_case
from test_kernels_conv import col2im_ref, im2col_ref, outsize, padded

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import testing
from dezero_xp._shape import pair

HAS_TORCH = importlib.util.find_spec("torch") is not None

# --------------------------------------------------------------------------- loop references


def conv2d_ref(x, W, b=None, stride=1, pad=0):
    """Direct convolution: each output pixel is a window of x contracted with W."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    n, _, h, w = x.shape
    oc, _, kh, kw = W.shape
    img = padded(x, (ph, pw))
    oh, ow = outsize(h, kh, sh, ph), outsize(w, kw, sw, pw)
    y = np.zeros((n, oc, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = img[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            y[:, :, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += b[None, :, None, None]
    return y


def deconv2d_ref(x, W, b=None, stride=1, pad=0, out=None):
    """Transposed convolution: each input pixel scatters x[n, :, i, j] @ W into the output."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    n, _, h, w = x.shape
    _, oc, kh, kw = W.shape
    oh, ow = out if out is not None else (sh * (h - 1) + kh - 2 * ph, sw * (w - 1) + kw - 2 * pw)
    full = np.zeros((n, oc, oh + 2 * ph + kh, ow + 2 * pw + kw), dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            patch = np.einsum("nc,cokl->nokl", x[:, :, i, j], W)
            full[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += patch
    y = full[:, :, ph : ph + oh, pw : pw + ow]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def pool_ref(x, kernel, stride, pad, reduce, pad_value):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(pad)
    n, c, h, w = x.shape
    img = padded(x, (ph, pw), pad_value)
    oh, ow = outsize(h, kh, sh, ph), outsize(w, kw, sw, pw)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = reduce(img[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], (2, 3))
    return y


def max_pool_ref(x, kernel, stride=1, pad=0, pad_value=-np.inf):
    return pool_ref(x, kernel, stride, pad, lambda a, axes: np.max(a, axis=axes), pad_value)


def avg_pool_ref(x, kernel, stride=1, pad=0):
    return pool_ref(x, kernel, stride, pad, lambda a, axes: np.mean(a, axis=axes), 0.0)


def im2col_matrix_ref(x, kernel, stride, pad):
    col = im2col_ref(x, pair(kernel), pair(stride), pair(pad))
    n, c, kh, kw, oh, ow = col.shape
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)


def col2im_matrix_ref(col, shape, kernel, stride, pad):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(pad)
    n, c, h, w = shape
    oh, ow = outsize(h, kh, sh, ph), outsize(w, kw, sw, pw)
    col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    return col2im_ref(col, shape, (kh, kw), (sh, sw), (ph, pw))


# --------------------------------------------------------------------------- declarative cases


def _conv_case(name, x, W, bias, stride, pad):
    shapes = [[x, W, (W[0],)]] if bias else [[x, W]]
    return op_case(
        name,
        lambda *a: F.conv2d(*a, stride=stride, pad=pad),
        lambda *a: conv2d_ref(*a, stride=stride, pad=pad),
        shapes,
    )


def _deconv_case(name, x, W, bias, stride, pad, out=None):
    shapes = [[x, W, (W[1],)]] if bias else [[x, W]]
    return op_case(
        name,
        lambda *a: F.deconv2d(*a, stride=stride, pad=pad, outsize=out),
        lambda *a: deconv2d_ref(*a, stride=stride, pad=pad, out=out),
        shapes,
    )


def _unary_case(name, fn, ref, shape, **kwargs):
    return op_case(name, fn, ref, [shape], **kwargs)


# (kernel, stride, pad) for the window ops, incl. non-square ones and a stride that skips the
# last row.
POOL_COMBOS = [((2, 2), 2, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))]

CASES = [
    _conv_case("conv2d", (2, 3, 5, 4), (4, 3, 3, 2), True, 1, 0),
    _conv_case("conv2d_s2p1", (2, 2, 5, 5), (3, 2, 3, 3), True, 2, 1),
    _conv_case("conv2d_nosquare", (1, 2, 6, 5), (3, 2, 2, 3), False, (2, 1), (1, 0)),
    _conv_case("conv2d_uneven", (1, 2, 6, 7), (2, 2, 3, 3), False, 2, 1),
    _conv_case("conv2d_1x1", (2, 3, 3, 4), (2, 3, 1, 1), True, 1, 0),
    _deconv_case("deconv2d", (2, 3, 3, 4), (3, 2, 3, 2), True, 1, 0),
    _deconv_case("deconv2d_s2p1", (1, 2, 3, 3), (2, 3, 3, 3), True, 2, 1),
    _deconv_case("deconv2d_outsize", (1, 2, 3, 3), (2, 2, 3, 3), False, (2, 3), (1, 0), (6, 11)),
    op_case(
        "conv2d_simple",
        lambda x, W, b: F.conv2d_simple(x, W, b, stride=2, pad=1),
        lambda x, W, b: conv2d_ref(x, W, b, stride=2, pad=1),
        [[(2, 2, 5, 4), (3, 2, 3, 2), (3,)]],
    ),
]
for _k, _s, _p in POOL_COMBOS:
    _id = f"k{_k}s{_s}p{_p}".replace(" ", "")
    CASES += [
        _unary_case(
            f"pooling_{_id}",
            lambda x, k=_k, s=_s, p=_p: F.pooling(x, k, s, p),
            lambda x, k=_k, s=_s, p=_p: max_pool_ref(x, k, s, p),
            (2, 2, 5, 6),
        ),
        _unary_case(
            f"average_pooling_{_id}",
            lambda x, k=_k, s=_s, p=_p: F.average_pooling(x, k, s, p),
            lambda x, k=_k, s=_s, p=_p: avg_pool_ref(x, k, s, p),
            (2, 2, 5, 6),
        ),
        _unary_case(
            f"im2col_matrix_{_id}",
            lambda x, k=_k, s=_s, p=_p: F.im2col(x, k, s, p, to_matrix=True),
            lambda x, k=_k, s=_s, p=_p: im2col_matrix_ref(x, k, s, p),
            (2, 2, 5, 6),
        ),
    ]
CASES += [
    _unary_case(
        "im2col_6d",
        lambda x: F.im2col(x, (3, 2), (1, 2), (1, 0), to_matrix=False),
        lambda x: im2col_ref(x, (3, 2), (1, 2), (1, 0)),
        (2, 2, 5, 6),
    ),
    _unary_case(
        "col2im_matrix",
        lambda c: F.col2im(c, (2, 2, 5, 6), (3, 2), (1, 2), (1, 0)),
        lambda c: col2im_matrix_ref(c, (2, 2, 5, 6), (3, 2), (1, 2), (1, 0)),
        (2 * 5 * 3, 2 * 3 * 2),
    ),
    _unary_case(
        "col2im_6d",
        lambda c: F.col2im(c, (1, 2, 6, 7), 3, 2, 1, to_matrix=False),
        lambda c: col2im_ref(c, (1, 2, 6, 7), (3, 3), (2, 2), (1, 1)),
        (1, 2, 3, 3, 3, 4),
    ),
    _unary_case(
        "pooling_simple",
        lambda x: F.pooling_simple(x, 2, 2),
        lambda x: max_pool_ref(x, 2, 2),
        (2, 2, 4, 6),
    ),
    _unary_case(
        "pooling_simple_pad",  # the book's version pads with zeros
        lambda x: F.pooling_simple(x, 3, 2, 1),
        lambda x: max_pool_ref(x, 3, 2, 1, pad_value=0.0),
        (1, 2, 5, 5),
        sampler=lambda rng, shape: rng.uniform(0.1, 1.0, shape) * rng.choice([-1, 1], shape),
    ),
]

test_conv_ops = make_op_tests(CASES)


# --------------------------------------------------------------------------- double backward


def _squared(fn):
    """``fn(x) ** 2``: makes the gradient of a (piecewise) linear op depend on x."""
    return lambda x: fn(x) ** 2


@pytest.mark.parametrize(
    "name, fn, shape",
    [
        ("pooling", lambda x: F.pooling(x, 3, 2, 1), (1, 2, 5, 5)),
        ("average_pooling", lambda x: F.average_pooling(x, (3, 2), (1, 2), (1, 0)), (1, 2, 5, 6)),
        ("im2col", lambda x: F.im2col(x, (3, 2), (2, 1), (1, 0)), (1, 2, 5, 4)),
        ("col2im", lambda c: F.col2im(c, (1, 2, 5, 4), (3, 2), (2, 1), (1, 0)), (9, 12)),
    ],
    ids=["pooling", "average_pooling", "im2col", "col2im"],
)
def test_double_backward_of_squared_linear_ops(name, fn, shape, xb, rng):
    x = xb.asarray(rng.uniform(-1.0, 1.0, shape))
    testing.check_double_backward(_squared(fn), [x])


def test_max_pooling_second_order_flows_through_pooling2d_with_indexes(xb, rng):
    x = dz.Variable(xb.asarray(rng.standard_normal((1, 1, 4, 4))))
    y = F.pooling(x, 2, 2)
    (y**2).sum().backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.sum().backward()
    # d/dx sum(2 * y * mask) = 2 at each maximum, 0 elsewhere.
    host = xb.numpy(x)
    windows = host.reshape(1, 1, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 1, 2, 2, 4)
    expected = np.zeros(16)
    for i in range(2):
        for j in range(2):
            k = int(np.argmax(windows[0, 0, i, j]))
            expected[(2 * i + k // 2) * 4 + 2 * j + k % 2] = 2.0
    np.testing.assert_allclose(xb.numpy(x.grad).ravel(), expected)


# --------------------------------------------------------------------------- adjointness


@pytest.mark.parametrize("to_matrix", [True, False])
@pytest.mark.parametrize("combo", [((3, 2), (2, 1), (1, 0)), (3, 1, 1), (2, 3, 0)], ids=str)
def test_col2im_is_the_adjoint_of_im2col(combo, to_matrix, xb, rng):
    kernel, stride, pad = combo
    shape = (2, 3, 6, 5)
    x = rng.standard_normal(shape)
    col = F.im2col(xb.variable(x), kernel, stride, pad, to_matrix=to_matrix)
    c = rng.standard_normal(col.shape)
    img = F.col2im(xb.variable(c), shape, kernel, stride, pad, to_matrix=to_matrix)
    assert img.shape == shape
    np.testing.assert_allclose(np.sum(xb.numpy(col) * c), np.sum(x * xb.numpy(img)), rtol=1e-12)


def test_im2col_result_owns_its_memory(xb, rng):
    host = rng.standard_normal((1, 2, 3, 3))
    x = xb.asarray(host)
    for to_matrix in (True, False):
        col = F.im2col(dz.Variable(x), 1, 1, 0, to_matrix=to_matrix)
        col.data[(0,) * col.ndim] = 100.0
        np.testing.assert_array_equal(xb.numpy(x), host)


# --------------------------------------------------------------------------- vs PyTorch

TORCH_COMBOS = [(1, 0), (2, 1), ((2, 1), (1, 0)), ((1, 3), (0, 1))]


def _torch():
    if not HAS_TORCH:
        pytest.skip("torch is not installed: no PyTorch cross-check")
    import torch

    return torch


def _grads_vs_torch(torch, ours, theirs, hosts, xb, rng):
    """Forward and gradients of ``sum(f(*inputs) * weights)`` against torch autograd."""
    vs = [xb.variable(h) for h in hosts]
    ts = [torch.tensor(h, requires_grad=True) for h in hosts]
    y, yt = ours(*vs), theirs(*ts)
    np.testing.assert_allclose(xb.numpy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = rng.standard_normal(yt.shape)
    (y * xb.asarray(weights)).sum().backward()
    (yt * torch.tensor(weights)).sum().backward()
    for v, t in zip(vs, ts):
        np.testing.assert_allclose(xb.numpy(v.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stride, pad", TORCH_COMBOS, ids=str)
def test_conv2d_matches_torch(stride, pad, xb, rng):
    torch = _torch()
    hosts = [rng.standard_normal(s) for s in [(2, 3, 7, 6), (4, 3, 3, 2), (4,)]]
    _grads_vs_torch(
        torch,
        lambda x, W, b: F.conv2d(x, W, b, stride=stride, pad=pad),
        lambda x, W, b: torch.nn.functional.conv2d(x, W, b, stride=stride, padding=pad),
        hosts,
        xb,
        rng,
    )


# (stride, pad, extra output rows/columns beyond the default size: torch's output_padding)
DECONV_COMBOS = [(s, p, (0, 0)) for s, p in TORCH_COMBOS] + [
    (2, 1, (1, 1)),
    ((2, 3), (1, 0), (1, 2)),
]


@pytest.mark.parametrize("stride, pad, extra", DECONV_COMBOS, ids=str)
def test_deconv2d_matches_torch(stride, pad, extra, xb, rng):
    torch = _torch()
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    hosts = [rng.standard_normal(s) for s in [(2, 3, 4, 3), (3, 2, 3, 2), (2,)]]
    out = (sh * 3 + 3 - 2 * ph + extra[0], sw * 2 + 2 - 2 * pw + extra[1])
    _grads_vs_torch(
        torch,
        lambda x, W, b: F.deconv2d(x, W, b, stride=stride, pad=pad, outsize=out),
        lambda x, W, b: torch.nn.functional.conv_transpose2d(
            x, W, b, stride=stride, padding=pad, output_padding=extra
        ),
        hosts,
        xb,
        rng,
    )


@pytest.mark.parametrize("kernel, stride, pad", POOL_COMBOS + [((2, 3), (2, 3), (1, 1))], ids=str)
def test_pooling_matches_torch(kernel, stride, pad, xb, rng):
    torch = _torch()
    hosts = [rng.standard_normal((2, 3, 7, 6))]
    _grads_vs_torch(
        torch,
        lambda x: F.pooling(x, kernel, stride, pad),
        lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, pad),
        hosts,
        xb,
        rng,
    )
    _grads_vs_torch(
        torch,
        lambda x: F.average_pooling(x, kernel, stride, pad),
        lambda x: torch.nn.functional.avg_pool2d(x, kernel, stride, pad),
        hosts,
        xb,
        rng,
    )


# --------------------------------------------------------------------------- dtypes, errors


def test_conv_float32_stays_float32_through_double_backward(xb, rng):
    x = xb.variable(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    W = xb.variable(rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    b = xb.variable(rng.standard_normal(3).astype(np.float32))
    y = F.pooling(F.conv2d(x, W, b, stride=1, pad=1), 2, 2)
    (y**2).sum().backward(create_graph=True)
    gx, gW = x.grad, W.grad
    x.cleargrad()
    W.cleargrad()
    (gx.sum() + gW.sum()).backward()
    for v in (y, gx, gW, x.grad, W.grad):
        assert v.dtype == xb.dtype("float32")
        assert v.backend is xb.backend


def _raises(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kwargs)


def test_shape_errors_name_the_op_and_shapes(xb):
    x = xb.variable(np.zeros((1, 3, 5, 5)))
    _raises(
        r"Conv2d: x has 3 channels \(shape \(1, 3, 5, 5\)\) but W of shape \(4, 2, 3, 3\)",
        F.conv2d,
        x,
        xb.variable(np.zeros((4, 2, 3, 3))),
    )
    _raises(
        r"conv2d_simple: x has 3 channels",
        F.conv2d_simple,
        x,
        xb.variable(np.zeros((4, 2, 3, 3))),
    )
    _raises(
        r"Deconv2d: x has 3 channels \(shape \(1, 3, 5, 5\)\) but W of shape \(2, 4, 3, 3\)",
        F.deconv2d,
        x,
        xb.variable(np.zeros((2, 4, 3, 3))),
    )
    _raises(
        r"Conv2d: b must have shape \(4,\)",
        F.conv2d,
        x,
        xb.variable(np.zeros((4, 3, 3, 3))),
        xb.variable(np.zeros(3)),
    )
    _raises(
        r"Conv2d: kernel \(7, 7\) does not fit the padded input of size \(7, 5\)",
        F.conv2d,
        x,
        xb.variable(np.zeros((2, 3, 7, 7))),
        pad=(1, 0),
    )
    _raises(r"Conv2d: x must be 4-D", F.conv2d, xb.variable(np.zeros((3, 5, 5))), x)
    _raises(
        r"Deconv2d: output size \(9, 9\) is not consistent with input size \(5, 5\)",
        F.deconv2d,
        x,
        xb.variable(np.zeros((3, 2, 3, 3))),
        outsize=(9, 9),
    )
    _raises(r"Pooling: pad \(2, 2\) must be at most half", F.pooling, x, 3, 1, 2)
    _raises(
        r"Col2im: columns of shape \(4, 4\) do not match image",
        F.col2im,
        xb.variable(np.zeros((4, 4))),
        (1, 3, 5, 5),
        2,
    )
    _raises(r"average_pooling: stride must be an int >= 1", F.average_pooling, x, 2, 0)


def test_max_pooling_ties_send_the_gradient_to_the_first_maximum(xb):
    # Every window is constant: the whole gradient goes to its top-left element, as argmax
    # (DeZero) and PyTorch do, not shared among the ties.
    x = xb.variable(np.zeros((1, 2, 4, 6)))
    y = F.pooling(x, (2, 3), (2, 3))
    (y * xb.asarray(np.arange(1.0, 9.0).reshape(1, 2, 2, 2))).sum().backward()
    expected = np.zeros((1, 2, 4, 6))
    expected[:, :, ::2, ::3] = np.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(xb.numpy(x.grad), expected)


def test_pooling_under_no_grad_and_int_outsize(xb, rng):
    host = rng.standard_normal((2, 3, 6, 5))
    with dz.no_grad():
        y = F.pooling(xb.variable(host), 3, 2, 1)
    np.testing.assert_array_equal(xb.numpy(y), max_pool_ref(host, 3, 2, 1))
    x = rng.standard_normal((1, 2, 3, 3))
    W = rng.standard_normal((2, 1, 3, 3))
    y = F.deconv2d(xb.variable(x), xb.variable(W), stride=2, pad=1, outsize=6)
    np.testing.assert_allclose(
        xb.numpy(y), deconv2d_ref(x, W, stride=2, pad=1, out=(6, 6)), rtol=1e-12, atol=1e-12
    )
