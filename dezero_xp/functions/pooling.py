"""Pooling family: max pooling (``pooling``), ``average_pooling`` and the book's
``pooling_simple``, NCHW, built on the im2col/col2im kernels of the backend.

Max pooling pads with -inf (as Chainer and PyTorch do, so the padding is never the maximum) and
sends each window's gradient to its first maximum; average pooling pads with zeros and divides
by KH*KW. ``pooling_simple`` is the book's composition of ``im2col`` with max (zero padding).

May import: dezero_xp.core, dezero_xp._shape and the other families of dezero_xp.functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dezero_xp.core import Function, as_variable
from dezero_xp.functions import reduce as _reduce
from dezero_xp.functions._checks import refuse_complex
from dezero_xp.functions.conv import Col2im, _check_image, _output_size, im2col, window_arg
from dezero_xp.functions.shape import reshape, transpose

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import VariableLike

__all__ = ["average_pooling", "pooling", "pooling_simple"]


# --------------------------------------------------------------------------- max pooling


class Pooling(Function):
    """Max pooling; remembers where each maximum was (the first one on ties, as argmax)."""

    def __init__(self, kernel_size, stride=1, pad=0):
        self.kernel_size = window_arg("pooling", "kernel_size", kernel_size, 1)
        self.stride = window_arg("pooling", "stride", stride, 1)
        self.pad = window_arg("pooling", "pad", pad, 0)
        self.input_shape = None
        self.mask = None  # one-hot (N, C, KH*KW, OH, OW) bool: the maximum of each window

    def forward(self, x):
        xp = self.xp
        _check_image(None, "x", x.shape)
        refuse_complex(xp, "pooling", x, what="takes the maximum of each window")
        _output_size(None, x.shape[2:], self.kernel_size, self.stride, self.pad)
        if any(2 * p > k for p, k in zip(self.pad, self.kernel_size)):
            raise ValueError(
                f"pad {self.pad} must be at most half the kernel size "
                f"{self.kernel_size}, else some windows hold only padding"
            )
        self.input_shape = tuple(x.shape)
        return xp.max(self._windows(x), axis=2)

    def _windows(self, x):
        """The (N, C, KH*KW, OH, OW) windows of ``x``, padded with its dtype's lowest value."""
        xp = self.xp
        if xp.isdtype(x.dtype, "real floating"):
            lowest = -math.inf
        else:
            lowest = int(xp.iinfo(x.dtype).min)
        col = self.ops.im2col(x, self.kernel_size, self.stride, self.pad, pad_value=lowest)
        n, c, kh, kw, oh, ow = col.shape
        return xp.reshape(col, (n, c, kh * kw, oh, ow))

    def selection_mask(self, dtype):
        """The one-hot (N, C, KH*KW, OH, OW) of the maxima as ``dtype``."""
        return self.xp.astype(self.mask, dtype)

    def vjp(self, F, gy, y, x):
        if self.mask is None:
            # Made on the first backward only (forward under no_grad never pays for it):
            # equality with the max plus a first-hit pass, the same one-hot as argmax gives and
            # several times faster on NumPy (whose argmax over a short inner axis is slow).
            y_data = F.raw(y)
            n, c, oh, ow = y_data.shape
            hit = self._windows(F.raw(x)) == self.xp.reshape(y_data, (n, c, 1, oh, ow))
            self.mask = _first_true_along_window(self.xp, hit)
        return F.apply(Pooling2DGrad(self), gy)


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

    def vjp(self, F, ggx, y, gy):
        return F.apply(Pooling2DWithIndexes(self.mpool2d), ggx)


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

    def vjp(self, F, gy, y, x):
        return F.apply(Pooling2DGrad(self.mpool2d), gy)


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


def pooling(
    x: VariableLike,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
) -> Variable:
    """2-D max pooling of ``x`` (N, C, H, W); DeZero's name (``max_pooling_2d`` in Chainer).

    The border is padded with -inf, so padding never wins; ``pad`` may be at most half the
    kernel size.
    """
    return Pooling(kernel_size, stride, pad)(x)


# --------------------------------------------------------------------------- average pooling


class AveragePooling(Function):
    """Average pooling; padding counts as zeros in the mean (divisor is always KH*KW)."""

    def __init__(self, kernel_size, stride=1, pad=0):
        self.kernel_size = window_arg("average_pooling", "kernel_size", kernel_size, 1)
        self.stride = window_arg("average_pooling", "stride", stride, 1)
        self.pad = window_arg("average_pooling", "pad", pad, 0)
        self.input_shape = None

    def forward(self, x):
        _check_image(None, "x", x.shape)
        _output_size(None, x.shape[2:], self.kernel_size, self.stride, self.pad)
        self.input_shape = tuple(x.shape)
        col = self.ops.im2col(x, self.kernel_size, self.stride, self.pad)
        return self.xp.mean(col, axis=(2, 3))

    def vjp(self, F, gy, y, x):
        # d mean / dx: every window spreads gy / (KH*KW) back over its pixels (col2im).
        kh, kw = self.kernel_size
        n, c, oh, ow = gy.shape
        gcol = F.reshape(gy * (1.0 / (kh * kw)), (n, c, 1, 1, oh, ow))
        gcol = F.broadcast_to(gcol, (n, c, kh, kw, oh, ow))
        adjoint = Col2im(self.input_shape, self.kernel_size, self.stride, self.pad, False)
        return F.apply(adjoint, gcol)


def average_pooling(
    x: VariableLike,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
) -> Variable:
    """2-D average pooling of ``x`` (N, C, H, W); zero padding is included in each mean."""
    return AveragePooling(kernel_size, stride, pad)(x)


def pooling_simple(
    x: VariableLike,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
) -> Variable:
    """Max pooling as the book first writes it: ``im2col`` + max (padding counts as 0)."""
    x = as_variable(x)
    _check_image("pooling_simple", "x", x.shape)
    n, c, h, w = x.shape
    kh, kw = window_arg("pooling_simple", "kernel_size", kernel_size, 1)
    stride = window_arg("pooling_simple", "stride", stride, 1)
    pad = window_arg("pooling_simple", "pad", pad, 0)
    oh, ow = _output_size("pooling_simple", (h, w), (kh, kw), stride, pad)
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    y = _reduce.max(reshape(col, (-1, kh * kw)), axis=1)
    return transpose(reshape(y, (n, oh, ow, c)), (0, 3, 1, 2))
