"""Linear algebra: matmul (with batch broadcasting) and DeZero's ``dot`` alias.

May import: dezero_xp.core and the shape family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dezero_xp.core import Function, as_variable
from dezero_xp.functions.shape import reshape

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import VariableLike

__all__ = ["dot", "matmul"]


class MatMul(Function):
    """``x @ W`` for operands of rank >= 2 (leading axes broadcast)."""

    def forward(self, x, W):
        return self.xp.matmul(x, W)

    def vjp(self, F, gy, y, x, W):
        gx = gW = None  # inputs that need no gradient (plain arrays) cost nothing
        if self.inputs[0].requires_grad:
            gx = F.sum_to(F.matmul(gy, F.matrix_transpose(W)), x.shape)
        if self.inputs[1].requires_grad:
            gW = F.sum_to(F.matmul(F.matrix_transpose(x), gy), W.shape)
        return gx, gW


def _check_matmul_shapes(x_shape, W_shape):
    """NumPy's matmul rules on shapes, with an error that names both shapes."""
    if not x_shape or not W_shape:
        raise ValueError(
            f"matmul: operands must be at least 1-D, got shapes {x_shape} and {W_shape}"
        )
    inner_x = x_shape[-1]
    inner_W = W_shape[0] if len(W_shape) == 1 else W_shape[-2]
    if inner_x != inner_W:
        raise ValueError(
            f"matmul: shapes {x_shape} and {W_shape} are not aligned: the last axis of x "
            f"({inner_x}) must equal the {'only' if len(W_shape) == 1 else 'second-to-last'} "
            f"axis of W ({inner_W})"
        )
    batch_x, batch_W = x_shape[:-2], W_shape[:-2]
    for a, b in zip(batch_x[::-1], batch_W[::-1]):
        if a != b and a != 1 and b != 1:
            raise ValueError(
                f"matmul: the batch axes of shapes {x_shape} and {W_shape} do not broadcast "
                f"({batch_x} vs {batch_W})"
            )


def matmul(x: VariableLike, W: VariableLike) -> Variable:
    """Matrix product ``x @ W`` with NumPy's rules: leading (batch) axes broadcast, and a 1-D
    operand is a vector (a row for ``x``, a column for ``W``) whose axis is dropped afterwards.
    """
    x, W = as_variable(x), as_variable(W)
    _check_matmul_shapes(x.shape, W.shape)
    if x.ndim >= 2 and W.ndim >= 2:
        return MatMul()(x, W)
    x2 = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    W2 = reshape(W, W.shape + (1,)) if W.ndim == 1 else W
    y = MatMul()(x2, W2)
    rows = y.shape[-2:-1] if x.ndim > 1 else ()
    cols = y.shape[-1:] if W.ndim > 1 else ()
    return reshape(y, y.shape[:-2] + rows + cols)


dot = matmul
