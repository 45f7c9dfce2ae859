"""Convolution family: conv2d, deconv2d, max/average pooling and the im2col/col2im pair.

Layout is NCHW. ``conv2d`` takes ``W`` of shape (out_channels, in_channels, KH, KW) and
``deconv2d`` (its transpose) ``W`` of shape (in_channels, out_channels, KH, KW), as DeZero.
Forward passes are one im2col (the backend's kernel table: strided views on NumPy, a KH*KW slice
loop elsewhere) and one batched matmul; backward passes are built from these same
differentiable ops (the gradient of conv2d with respect to ``x`` is deconv2d, and so on), so
derivatives of any order work.

Max pooling pads with -inf (as Chainer and PyTorch do, so the padding is never the maximum);
average pooling pads with zeros and divides by KH*KW. ``conv2d_simple`` and ``pooling_simple``
are the book's compositions of ``im2col`` with matmul/max (their padding is zeros).

May import: dezero_xp._config, dezero_xp.core, dezero_xp._shape and the other families of
dezero_xp.functions.
"""

from __future__ import annotations

import math

from dezero_xp._config import Config
from dezero_xp._shape import get_conv_outsize, get_deconv_outsize, pair
from dezero_xp.core import Function, as_variable, needs_grad, run_forward
from dezero_xp.functions import reduce as _reduce
from dezero_xp.functions.linalg import matmul
from dezero_xp.functions.shape import broadcast_to, reshape, transpose

__all__ = [
    "average_pooling",
    "col2im",
    "conv2d",
    "conv2d_simple",
    "deconv2d",
    "im2col",
    "pooling",
    "pooling_simple",
]


# --------------------------------------------------------------------------- shape checks
# Errors raised inside a Function's forward get the op's class name prepended by
# Function.__call__ (with the inputs' shapes); composite functions pass their own name.


def _prefix(op: str | None) -> str:
    return f"{op}: " if op else ""


def _check_image(op: str | None, name: str, shape) -> None:
    if len(shape) != 4:
        raise ValueError(
            f"{_prefix(op)}{name} must be 4-D (N, C, H, W), got shape {tuple(shape)}; add "
            "the missing batch/channel axes with reshape"
        )


def _output_size(op: str | None, in_hw, kernel, stride, pad) -> tuple[int, int]:
    """(OH, OW) of a window op, with a clear error when the kernel does not fit."""
    if min(stride) < 1 or min(pad) < 0 or min(kernel) < 1:
        raise ValueError(
            f"{_prefix(op)}need kernel >= 1, stride >= 1 and pad >= 0, got kernel {tuple(kernel)}, "
            f"stride {tuple(stride)}, pad {tuple(pad)}"
        )
    sizes = tuple(get_conv_outsize(n, k, s, p) for n, k, s, p in zip(in_hw, kernel, stride, pad))
    if min(sizes) < 1:
        padded = tuple(n + 2 * p for n, p in zip(in_hw, pad))
        raise ValueError(
            f"{_prefix(op)}kernel {tuple(kernel)} does not fit the padded input of size {padded} "
            f"(input {tuple(in_hw)}, pad {tuple(pad)})"
        )
    return sizes


def _check_bias(op: str | None, b, channels: int) -> None:
    if b is not None and tuple(b.shape) != (channels,):
        raise ValueError(
            f"{_prefix(op)}b must have shape ({channels},) (one value per output channel), "
            f"got {tuple(b.shape)}"
        )


# --------------------------------------------------------------------------- conv2d / deconv2d


def _columns(xp, col):
    """im2col's (N, C, KH, KW, OH, OW) as the (N, C*KH*KW, OH*OW) matrices a matmul takes."""
    n, c, kh, kw, oh, ow = col.shape
    return xp.reshape(col, (n, c * kh * kw, oh * ow))


class Conv2d(Function):
    """2-D convolution (cross-correlation, as every DL framework): im2col + one matmul."""

    def __init__(self, stride=1, pad=0):
        self.stride = pair(stride)
        self.pad = pair(pad)

    def forward(self, x, W, b=None):
        xp = self.xp
        _check_image(None, "x", x.shape)
        _check_image(None, "W", W.shape)
        if x.shape[1] != W.shape[1]:
            raise ValueError(
                f"x has {x.shape[1]} channels (shape {tuple(x.shape)}) but W of shape "
                f"{tuple(W.shape)} expects {W.shape[1]}; W is (out_channels, in_channels, KH, KW)"
            )
        _check_bias(None, b, W.shape[0])
        kernel = tuple(W.shape[2:])
        oh, ow = _output_size(None, x.shape[2:], kernel, self.stride, self.pad)
        n, out_channels = x.shape[0], W.shape[0]
        col = _columns(xp, self.ops.im2col(x, kernel, self.stride, self.pad))
        # (OC, C*KH*KW) @ (N, C*KH*KW, OH*OW): the output comes out contiguous NCHW, so the
        # elementwise ops after it run on matching layouts.
        y = xp.matmul(xp.reshape(W, (out_channels, -1)), col)
        if b is not None:
            y = y + xp.reshape(b, (1, out_channels, 1))
        return xp.reshape(y, (n, out_channels, oh, ow))

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = deconv2d(gy, W, stride=self.stride, pad=self.pad, outsize=x.shape[2:])
        gW = Conv2DGradW(W.shape[2:], self.stride, self.pad)(x, gy)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, _reduce.sum(gy, axis=(0, 2, 3))

    def backward_data(self, gy):
        x, W = self.inputs[0]._data, self.inputs[1]._data
        gx = None  # images passed as a plain array need no gradient: skip the deconvolution
        if needs_grad(self.inputs[0]):
            deconv = Deconv2d(self.stride, self.pad, tuple(x.shape[2:]))
            gx = run_forward(deconv, self.backend, gy, W)
        gW = run_forward(Conv2DGradW(W.shape[2:], self.stride, self.pad), self.backend, x, gy)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, self.xp.sum(gy, axis=(0, 2, 3))


def conv2d(x, W, b=None, stride=1, pad=0):
    """2-D convolution of ``x`` (N, C, H, W) with ``W`` (OC, C, KH, KW) plus ``b`` (OC,).

    ``stride`` and ``pad`` are ints or (h, w) pairs; the result is (N, OC, OH, OW) with
    ``OH = (H + 2 * pad_h - KH) // stride_h + 1``.
    """
    if b is None:
        return Conv2d(stride, pad)(x, W)
    return Conv2d(stride, pad)(x, W, b)


class Deconv2d(Function):
    """Transposed convolution: the gradient of conv2d with respect to its input."""

    def __init__(self, stride=1, pad=0, outsize=None):
        self.stride = pair(stride)
        self.pad = pair(pad)
        if outsize is not None and not isinstance(outsize, int):
            outsize = tuple(int(n) for n in outsize)
        self.outsize = None if outsize is None else pair(outsize)

    def forward(self, x, W, b=None):
        xp = self.xp
        _check_image(None, "x", x.shape)
        _check_image(None, "W", W.shape)
        if x.shape[1] != W.shape[0]:
            raise ValueError(
                f"x has {x.shape[1]} channels (shape {tuple(x.shape)}) but W of shape "
                f"{tuple(W.shape)} expects {W.shape[0]}; W is (in_channels, out_channels, KH, KW)"
            )
        in_channels, out_channels, kh, kw = W.shape
        _check_bias(None, b, out_channels)
        n, _, h, w = x.shape
        kernel = (kh, kw)
        outsize = self._outsize((h, w), kernel)
        # (OC*KH*KW, C) @ (N, C, H*W): every input pixel's contribution to each kernel offset.
        W_t = xp.reshape(xp.permute_dims(W, (1, 2, 3, 0)), (out_channels * kh * kw, in_channels))
        gcol = xp.matmul(W_t, xp.reshape(x, (n, in_channels, h * w)))
        gcol = xp.reshape(gcol, (n, out_channels, kh, kw, h, w))
        y = self.ops.col2im(gcol, (n, out_channels) + outsize, kernel, self.stride, self.pad)
        if b is not None:
            y = y + xp.reshape(b, (1, out_channels, 1, 1))
        return y

    def _outsize(self, in_hw, kernel) -> tuple[int, int]:
        if self.outsize is None:
            outsize = tuple(
                get_deconv_outsize(n, k, s, p)
                for n, k, s, p in zip(in_hw, kernel, self.stride, self.pad)
            )
        else:
            outsize = self.outsize
        # The output must be an image that conv2d (same kernel, stride, pad) maps back to x.
        back = tuple(
            get_conv_outsize(n, k, s, p)
            for n, k, s, p in zip(outsize, kernel, self.stride, self.pad)
        )
        if min(outsize) < 1 or back != tuple(in_hw):
            raise ValueError(
                f"output size {outsize} is not consistent with input size "
                f"{tuple(in_hw)}, kernel {kernel}, stride {self.stride}, pad {self.pad} "
                f"(conv2d of that output would have size {back}); valid outsize per axis: "
                "stride * (in - 1) + kernel - 2 * pad, plus up to stride - 1"
            )
        return outsize

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = conv2d(gy, W, stride=self.stride, pad=self.pad)
        gW = Conv2DGradW(W.shape[2:], self.stride, self.pad)(gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, _reduce.sum(gy, axis=(0, 2, 3))

    def backward_data(self, gy):
        x, W = self.inputs[0]._data, self.inputs[1]._data
        gx = run_forward(Conv2d(self.stride, self.pad), self.backend, gy, W)
        gW = run_forward(Conv2DGradW(W.shape[2:], self.stride, self.pad), self.backend, gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, self.xp.sum(gy, axis=(0, 2, 3))


def deconv2d(x, W, b=None, stride=1, pad=0, outsize=None):
    """Transposed 2-D convolution of ``x`` (N, C, H, W) with ``W`` (C, OC, KH, KW) plus ``b``.

    The output is (N, OC, OH, OW), ``OH = stride_h * (H - 1) + KH - 2 * pad_h`` unless
    ``outsize`` = (OH, OW) asks for one of the larger sizes a strided conv2d maps to H.
    """
    if b is None:
        return Deconv2d(stride, pad, outsize)(x, W)
    return Deconv2d(stride, pad, outsize)(x, W, b)


class Conv2DGradW(Function):
    """Gradient of conv2d with respect to its filter: ``gW = sum_n gy_n @ im2col(x)_n.T``.

    Bilinear in (x, gy), so its own backward is a deconv2d and a conv2d with the incoming
    gradient ``ggW`` as the filter.
    """

    def __init__(self, kernel_size, stride, pad):
        self.kernel_size = pair(tuple(int(k) for k in kernel_size))
        self.stride = pair(stride)
        self.pad = pair(pad)

    def forward(self, x, gy):
        xp = self.xp
        n, out_channels = gy.shape[:2]
        col = _columns(xp, self.ops.im2col(x, self.kernel_size, self.stride, self.pad))
        gy = xp.reshape(gy, (n, out_channels, -1))
        # sum over the batch of (OC, OH*OW) @ (OH*OW, C*KH*KW)
        gW = xp.sum(xp.matmul(gy, xp.matrix_transpose(col)), axis=0)
        return xp.reshape(gW, (out_channels, x.shape[1]) + self.kernel_size)

    def backward(self, ggW):
        x, gy = self.inputs
        gx = deconv2d(gy, ggW, stride=self.stride, pad=self.pad, outsize=x.shape[2:])
        ggy = conv2d(x, ggW, stride=self.stride, pad=self.pad)
        return gx, ggy


# --------------------------------------------------------------------------- max pooling


class Pooling(Function):
    """Max pooling; remembers where each maximum was (the first one on ties, as argmax)."""

    def __init__(self, kernel_size, stride=1, pad=0):
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.input_shape = None
        self.mask = None  # one-hot (N, C, KH*KW, OH, OW) bool: the maximum of each window

    def forward(self, x):
        xp = self.xp
        _check_image(None, "x", x.shape)
        _output_size(None, x.shape[2:], self.kernel_size, self.stride, self.pad)
        if any(2 * p > k for p, k in zip(self.pad, self.kernel_size)):
            raise ValueError(
                f"pad {self.pad} must be at most half the kernel size "
                f"{self.kernel_size}, else some windows hold only padding"
            )
        self.input_shape = tuple(x.shape)
        if xp.isdtype(x.dtype, "real floating"):
            lowest = -math.inf
        else:
            lowest = int(xp.iinfo(x.dtype).min)
        col = self.ops.im2col(x, self.kernel_size, self.stride, self.pad, pad_value=lowest)
        n, c, kh, kw, oh, ow = col.shape
        col = xp.reshape(col, (n, c, kh * kw, oh, ow))
        y = xp.max(col, axis=2)
        if Config.enable_backprop:  # no graph, no backward: skip the mask under no_grad
            # Equality with the max plus a first-hit pass: the same one-hot as argmax gives,
            # several times faster on NumPy (whose argmax over a short inner axis is slow).
            self.mask = _first_true_along_window(xp, col == xp.reshape(y, (n, c, 1, oh, ow)))
        return y

    def selection_mask(self, dtype):
        """The one-hot (N, C, KH*KW, OH, OW) of the maxima as ``dtype``."""
        return self.xp.astype(self.mask, dtype)

    def backward(self, gy):
        return Pooling2DGrad(self)(gy)

    def backward_data(self, gy):
        return run_forward(Pooling2DGrad(self), self.backend, gy)


class Pooling2DGrad(Function):
    """Backward of max pooling: each output gradient goes back to where its maximum was."""

    def __init__(self, mpool2d):
        self.mpool2d = mpool2d

    def forward(self, gy):
        xp = self.xp
        pool = self.mpool2d
        n, c, oh, ow = gy.shape
        kh, kw = pool.kernel_size
        gcol = pool.selection_mask(gy.dtype) * xp.reshape(gy, (n, c, 1, oh, ow))
        gcol = xp.reshape(gcol, (n, c, kh, kw, oh, ow))
        return self.ops.col2im(gcol, pool.input_shape, pool.kernel_size, pool.stride, pool.pad)

    def backward(self, ggx):
        return Pooling2DWithIndexes(self.mpool2d)(ggx)


class Pooling2DWithIndexes(Function):
    """Picks, from each window of its input, the element at the recorded maximum's position."""

    def __init__(self, mpool2d):
        self.mpool2d = mpool2d

    def forward(self, x):
        xp = self.xp
        pool = self.mpool2d
        col = self.ops.im2col(x, pool.kernel_size, pool.stride, pool.pad)
        n, c, kh, kw, oh, ow = col.shape
        col = xp.reshape(col, (n, c, kh * kw, oh, ow))
        return xp.sum(col * pool.selection_mask(x.dtype), axis=2)

    def backward(self, gy):
        return Pooling2DGrad(self.mpool2d)(gy)


def _first_true_along_window(xp, hit):
    """``hit`` (N, C, K, OH, OW) with only the first True of each window kept (K slices)."""
    if hit.shape[2] == 1:
        return hit
    seen = hit[:, :, 0, :, :]
    firsts = [seen]
    for k in range(1, hit.shape[2]):
        current = hit[:, :, k, :, :]
        firsts.append(current & ~seen)
        seen = seen | current
    return xp.stack(firsts, axis=2)


def pooling(x, kernel_size, stride=1, pad=0):
    """2-D max pooling of ``x`` (N, C, H, W); DeZero's name (``max_pooling_2d`` in Chainer).

    The border is padded with -inf, so padding never wins; ``pad`` may be at most half the
    kernel size.
    """
    return Pooling(kernel_size, stride, pad)(x)


# --------------------------------------------------------------------------- average pooling


class AveragePooling(Function):
    """Average pooling; padding counts as zeros in the mean (divisor is always KH*KW)."""

    def __init__(self, kernel_size, stride=1, pad=0):
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.input_shape = None

    def forward(self, x):
        _check_image(None, "x", x.shape)
        _output_size(None, x.shape[2:], self.kernel_size, self.stride, self.pad)
        self.input_shape = tuple(x.shape)
        col = self.ops.im2col(x, self.kernel_size, self.stride, self.pad)
        return self.xp.mean(col, axis=(2, 3))

    def backward(self, gy):
        # d mean / dx: every window spreads gy / (KH*KW) back over its pixels (col2im).
        kh, kw = self.kernel_size
        n, c, oh, ow = gy.shape
        gcol = reshape(gy * (1.0 / (kh * kw)), (n, c, 1, 1, oh, ow))
        gcol = broadcast_to(gcol, (n, c, kh, kw, oh, ow))
        return col2im(
            gcol, self.input_shape, self.kernel_size, self.stride, self.pad, to_matrix=False
        )


def average_pooling(x, kernel_size, stride=1, pad=0):
    """2-D average pooling of ``x`` (N, C, H, W); zero padding is included in each mean."""
    return AveragePooling(kernel_size, stride, pad)(x)


# --------------------------------------------------------------------------- im2col / col2im


class Im2col(Function):
    """Image patches as columns; its backward is col2im (its adjoint)."""

    def __init__(self, kernel_size, stride, pad, to_matrix):
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.to_matrix = to_matrix
        self.input_shape = None

    def forward(self, x):
        xp = self.xp
        _check_image(None, "x", x.shape)
        _output_size(None, x.shape[2:], self.kernel_size, self.stride, self.pad)
        self.input_shape = tuple(x.shape)
        col = self.ops.im2col(x, self.kernel_size, self.stride, self.pad)
        # The kernel may return a read-only view of x: the result always owns its memory.
        if self.to_matrix:
            n, c, kh, kw, oh, ow = col.shape
            col = xp.permute_dims(col, (0, 4, 5, 1, 2, 3))
            return xp.reshape(col, (n * oh * ow, c * kh * kw), copy=True)
        return xp.asarray(col, copy=True)

    def backward(self, gy):
        return col2im(gy, self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)


def im2col(x, kernel_size, stride=1, pad=0, to_matrix=True):
    """Patches of ``x`` (N, C, H, W), zero padded, as columns (differentiable).

    ``to_matrix=True``: a (N*OH*OW, C*KH*KW) matrix (rows ordered n, oh, ow); else an
    (N, C, KH, KW, OH, OW) array.
    """
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


class Col2im(Function):
    """Sums patches back into an image (the adjoint of im2col); its backward is im2col."""

    def __init__(self, input_shape, kernel_size, stride, pad, to_matrix):
        self.input_shape = tuple(input_shape)
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.to_matrix = to_matrix

    def forward(self, col):
        xp = self.xp
        _check_image(None, "input_shape", self.input_shape)
        n, c, h, w = self.input_shape
        kh, kw = self.kernel_size
        oh, ow = _output_size(None, (h, w), self.kernel_size, self.stride, self.pad)
        if self.to_matrix:
            expected = (n * oh * ow, c * kh * kw)
        else:
            expected = (n, c, kh, kw, oh, ow)
        if tuple(col.shape) != expected:
            raise ValueError(
                f"columns of shape {tuple(col.shape)} do not match image "
                f"{self.input_shape} with kernel {self.kernel_size}, stride {self.stride}, "
                f"pad {self.pad} and to_matrix={self.to_matrix}; expected {expected}"
            )
        if self.to_matrix:
            col = xp.permute_dims(xp.reshape(col, (n, oh, ow, c, kh, kw)), (0, 3, 4, 5, 1, 2))
        return self.ops.col2im(col, self.input_shape, self.kernel_size, self.stride, self.pad)

    def backward(self, gy):
        return im2col(gy, self.kernel_size, self.stride, self.pad, self.to_matrix)


def col2im(x, input_shape, kernel_size, stride=1, pad=0, to_matrix=True):
    """Sum columns (as made by :func:`im2col`) back into an image of ``input_shape``."""
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(x)


# --------------------------------------------------------------------------- book versions


def conv2d_simple(x, W, b=None, stride=1, pad=0):
    """conv2d as the book first writes it: ``im2col`` + matmul (same result as conv2d)."""
    x, W = as_variable(x), as_variable(W)
    _check_image("conv2d_simple", "x", x.shape)
    _check_image("conv2d_simple", "W", W.shape)
    n, c, h, w = x.shape
    out_channels, w_channels, kh, kw = W.shape
    if c != w_channels:
        raise ValueError(
            f"conv2d_simple: x has {c} channels (shape {x.shape}) but W of shape {W.shape} "
            f"expects {w_channels}; W is (out_channels, in_channels, KH, KW)"
        )
    oh, ow = _output_size("conv2d_simple", (h, w), (kh, kw), pair(stride), pair(pad))
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    t = matmul(col, transpose(reshape(W, (out_channels, -1))))
    if b is not None:
        t = t + b
    return transpose(reshape(t, (n, oh, ow, out_channels)), (0, 3, 1, 2))


def pooling_simple(x, kernel_size, stride=1, pad=0):
    """Max pooling as the book first writes it: ``im2col`` + max (padding counts as 0)."""
    x = as_variable(x)
    _check_image("pooling_simple", "x", x.shape)
    n, c, h, w = x.shape
    kh, kw = pair(kernel_size)
    oh, ow = _output_size("pooling_simple", (h, w), (kh, kw), pair(stride), pair(pad))
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    y = _reduce.max(reshape(col, (-1, kh * kw)), axis=1)
    return transpose(reshape(y, (n, oh, ow, c)), (0, 3, 1, 2))
