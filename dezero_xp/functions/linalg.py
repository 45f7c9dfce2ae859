"""Linear algebra: matmul (with batch broadcasting) and DeZero's ``dot`` alias.

May import: dezero_xp.core and the shape family.
"""

from __future__ import annotations

from dezero_xp.core import Function, as_variable
from dezero_xp.functions.shape import matrix_transpose, reshape, sum_to

__all__ = ["dot", "matmul"]


class MatMul(Function):
    """``x @ W`` for operands of rank >= 2 (leading axes broadcast)."""

    def forward(self, x, W):
        return self.xp.matmul(x, W)

    def backward(self, gy):
        x, W = self.inputs
        gx = matmul(gy, matrix_transpose(W))
        gW = matmul(matrix_transpose(x), gy)
        if gx.shape != x.shape:
            gx = sum_to(gx, x.shape)
        if gW.shape != W.shape:
            gW = sum_to(gW, W.shape)
        return gx, gW


def matmul(x, W):
    """Matrix product ``x @ W``; 1-D operands are promoted like NumPy's matmul."""
    x, W = as_variable(x), as_variable(W)
    if x.ndim >= 2 and W.ndim >= 2:
        return MatMul()(x, W)
    if x.ndim == 0 or W.ndim == 0:
        raise ValueError(
            f"matmul: operands must be at least 1-D, got shapes {x.shape} and {W.shape}"
        )
    x2 = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    W2 = reshape(W, W.shape + (1,)) if W.ndim == 1 else W
    y = MatMul()(x2, W2)
    if W.ndim == 1:
        y = reshape(y, y.shape[:-1])
    if x.ndim == 1:
        y = reshape(y, y.shape[:-2] + y.shape[-1:])
    return y


dot = matmul
