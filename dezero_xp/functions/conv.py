"""Convolution family: conv2d, deconv2d, the im2col/col2im pair and the book's conv2d_simple.

Layout is NCHW. ``conv2d`` takes ``W`` of shape (out_channels, in_channels, KH, KW) and
``deconv2d`` (its transpose) ``W`` of shape (in_channels, out_channels, KH, KW), as DeZero.
Forward passes are one im2col (the backend's kernel table: strided views on NumPy, a KH*KW slice
loop elsewhere) and one batched matmul; backward passes are built from these same
differentiable ops (the gradient of conv2d with respect to ``x`` is deconv2d, and so on), so
derivatives of any order work.

Pooling lives in ``dezero_xp.functions.pooling``. ``conv2d_simple`` is the book's composition
of ``im2col`` with matmul (zero padding).

May import: dezero_xp.core, dezero_xp._shape and the other families of dezero_xp.functions.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dezero_xp._shape import get_conv_outsize, get_deconv_outsize, pair
from dezero_xp.core import Function, as_variable
from dezero_xp.functions.linalg import matmul
from dezero_xp.functions.shape import reshape, transpose

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import VariableLike

__all__ = ["col2im", "conv2d", "conv2d_simple", "deconv2d", "im2col"]


# --------------------------------------------------------------------------- shape checks
# Errors raised inside a Function's forward get the op's class name prepended by
# Function.__call__ (with the inputs' shapes); composite functions pass their own name.


def _prefix(op: str | None) -> str:
    return f"{op}: " if op else ""


def _check_image(op: str | None, name: str, shape: Sequence[int]) -> None:
    if len(shape) != 4:
        raise ValueError(
            f"{_prefix(op)}{name} must be 4-D (N, C, H, W), got shape {tuple(shape)}; add "
            "the missing batch/channel axes with reshape"
        )


def window_arg(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    """A stride, pad or kernel size (an int or an (h, w) pair of ints) as a pair of Python ints
    ``>= minimum``; else a TypeError or ValueError naming ``op``. Checked when the op is made,
    so a zero stride never reaches the size arithmetic (a ZeroDivisionError in deconv2d)."""
    try:
        sizes = pair(value)
    except (TypeError, ValueError):
        sizes = None
    if sizes is None or min(sizes) < minimum:
        error = TypeError if sizes is None and not _all_ints(value) else ValueError
        raise error(
            f"{op}: {name} must be an int >= {minimum} or an (h, w) pair of them, got {value!r}"
        )
    return sizes


def _all_ints(value: Any) -> bool:
    values = value if isinstance(value, (tuple, list)) else (value,)
    return len(values) in (1, 2) and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in values
    )


def _output_size(
    op: str | None,
    in_hw: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    pad: Sequence[int],
) -> tuple[int, ...]:
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


def _check_bias(op: str | None, b: Any, channels: int) -> None:
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
        self.stride = window_arg("conv2d", "stride", stride, 1)
        self.pad = window_arg("conv2d", "pad", pad, 0)

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

    def vjp(self, F, gy, y, x, W, b=None):
        inputs = self.inputs
        gx = gW = None  # images passed as a plain array need no gradient: no deconvolution
        if inputs[0].requires_grad:
            gx = F.apply(Deconv2d(self.stride, self.pad, tuple(x.shape[2:])), gy, W)
        if inputs[1].requires_grad:
            gW = F.apply(Conv2DGradW(W.shape[2:], self.stride, self.pad), x, gy)
        if b is None:
            return gx, gW
        return gx, gW, F.sum(gy, axis=(0, 2, 3))


def conv2d(
    x: VariableLike,
    W: VariableLike,
    b: VariableLike | None = None,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
) -> Variable:
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
        self.stride = window_arg("deconv2d", "stride", stride, 1)
        self.pad = window_arg("deconv2d", "pad", pad, 0)
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

    def _outsize(self, in_hw: Sequence[int], kernel: Sequence[int]) -> tuple[int, ...]:
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

    def vjp(self, F, gy, y, x, W, b=None):
        inputs = self.inputs
        gx = gW = None  # the same skip as conv2d's for inputs without gradient
        if inputs[0].requires_grad:
            gx = F.apply(Conv2d(self.stride, self.pad), gy, W)
        if inputs[1].requires_grad:
            gW = F.apply(Conv2DGradW(W.shape[2:], self.stride, self.pad), gy, x)
        if b is None:
            return gx, gW
        return gx, gW, F.sum(gy, axis=(0, 2, 3))


def deconv2d(
    x: VariableLike,
    W: VariableLike,
    b: VariableLike | None = None,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    outsize: tuple[int, int] | None = None,
) -> Variable:
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
        # Sizes spelled out: with an empty batch there is nothing to infer a -1 from.
        gy = xp.reshape(gy, (n, out_channels, gy.shape[2] * gy.shape[3]))
        # sum over the batch of (OC, OH*OW) @ (OH*OW, C*KH*KW)
        gW = xp.sum(xp.matmul(gy, xp.matrix_transpose(col)), axis=0)
        return xp.reshape(gW, (out_channels, x.shape[1]) + self.kernel_size)

    def vjp(self, F, ggW, y, x, gy):
        inputs = self.inputs
        gx = ggy = None
        if inputs[0].requires_grad:
            gx = F.apply(Deconv2d(self.stride, self.pad, tuple(x.shape[2:])), gy, ggW)
        if inputs[1].requires_grad:
            ggy = F.apply(Conv2d(self.stride, self.pad), x, ggW)
        return gx, ggy


# --------------------------------------------------------------------------- im2col / col2im


class Im2col(Function):
    """Image patches as columns; its backward is col2im (its adjoint)."""

    def __init__(self, kernel_size, stride, pad, to_matrix):
        self.kernel_size = window_arg("im2col", "kernel_size", kernel_size, 1)
        self.stride = window_arg("im2col", "stride", stride, 1)
        self.pad = window_arg("im2col", "pad", pad, 0)
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

    def vjp(self, F, gy, y, x):
        adjoint = Col2im(self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)
        return F.apply(adjoint, gy)


def im2col(
    x: VariableLike,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    to_matrix: bool = True,
) -> Variable:
    """Patches of ``x`` (N, C, H, W), zero padded, as columns (differentiable).

    ``to_matrix=True``: a (N*OH*OW, C*KH*KW) matrix (rows ordered n, oh, ow); else an
    (N, C, KH, KW, OH, OW) array.
    """
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


class Col2im(Function):
    """Sums patches back into an image (the adjoint of im2col); its backward is im2col."""

    def __init__(self, input_shape, kernel_size, stride, pad, to_matrix):
        self.input_shape = tuple(input_shape)
        self.kernel_size = window_arg("col2im", "kernel_size", kernel_size, 1)
        self.stride = window_arg("col2im", "stride", stride, 1)
        self.pad = window_arg("col2im", "pad", pad, 0)
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

    def vjp(self, F, gy, y, col):
        return F.apply(Im2col(self.kernel_size, self.stride, self.pad, self.to_matrix), gy)


def col2im(
    x: VariableLike,
    input_shape: Sequence[int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    to_matrix: bool = True,
) -> Variable:
    """Sum columns (as made by :func:`im2col`) back into an image of ``input_shape``."""
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(x)


# --------------------------------------------------------------------------- book versions


def conv2d_simple(
    x: VariableLike,
    W: VariableLike,
    b: VariableLike | None = None,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
) -> Variable:
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
    stride = window_arg("conv2d_simple", "stride", stride, 1)
    pad = window_arg("conv2d_simple", "pad", pad, 0)
    oh, ow = _output_size("conv2d_simple", (h, w), (kh, kw), stride, pad)
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    t = matmul(col, transpose(reshape(W, (out_channels, -1))))
    if b is not None:
        t = t + b
    return transpose(reshape(t, (n, oh, ow, out_channels)), (0, 3, 1, 2))
