"""Activation functions: sigmoid, relu, leaky_relu, softmax and log_softmax (stable forms), plus
DeZero's ``*_simple`` variants composed from elementwise ops.

The stable forms never overflow: sigmoid is the kernel table's (exact in both tails), softmax
and log_softmax shift by the maximum along ``axis``. Each op writes its derivative once
(``vjp``), so derivatives of any order work. ``tanh`` lives with the elementwise ops.

May import: dezero_xp.core, dezero_xp.functions._checks and the elementwise/reduce families
of dezero_xp.functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dezero_xp.core import Function, as_variable
from dezero_xp.functions._checks import real_hyperparameter, refuse_complex
from dezero_xp.functions.elementwise import exp
from dezero_xp.functions.reduce import sum as _sum

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import VariableLike

__all__ = [
    "leaky_relu",
    "log_softmax",
    "relu",
    "sigmoid",
    "sigmoid_simple",
    "softmax",
    "softmax_simple",
]


class Sigmoid(Function):
    def forward(self, x):
        # The kernel table's sigmoid: from exp(-|x|) (no overflow, exact in both tails), with
        # NumPy's tanh-based fast path, or the library's own where it has one (torch.sigmoid).
        return self.ops.sigmoid(x)

    def vjp(self, F, gy, y, x):
        g = y * -1  # then in place: (1 - y) * y * gy, one new array; d sigmoid = y (1 - y)
        g += 1
        g *= y
        g *= gy
        return g


def sigmoid(x: VariableLike) -> Variable:
    """Logistic function ``1 / (1 + exp(-x))``, computed stably for any magnitude of ``x``."""
    return Sigmoid()(x)


def sigmoid_simple(x: VariableLike) -> Variable:
    """``1 / (1 + exp(-x))`` composed from elementwise ops (DeZero's textbook version)."""
    x = as_variable(x)
    return 1 / (1 + exp(-x))


class ReLU(Function):
    def forward(self, x):
        refuse_complex(self.xp, "relu", x)
        return self.xp.maximum(x, 0)

    def vjp(self, F, gy, y, x):
        return F.where(F.raw(x) > 0, gy, 0.0)  # exactly 0 where x <= 0, whatever gy is


def relu(x: VariableLike) -> Variable:
    """``max(x, 0)`` elementwise; gradient 1 where ``x > 0``, else 0."""
    return ReLU()(x)


class LeakyReLU(Function):
    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        refuse_complex(self.xp, "leaky_relu", x)
        return self.xp.where(x > 0, x, x * self.slope)

    def vjp(self, F, gy, y, x):
        positive = self.xp.astype(F.raw(x) > 0, gy.dtype)
        factor = positive * (1 - self.slope) + self.slope  # 1 where x > 0, else slope
        return gy * F.const(factor)


def leaky_relu(x: VariableLike, slope: float = 0.2) -> Variable:
    """``x`` where ``x > 0``, else ``slope * x``."""
    real_hyperparameter("leaky_relu", "slope", slope)
    return LeakyReLU(slope)(x)


class Softmax(Function):
    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        xp = self.xp
        refuse_complex(xp, "softmax", x, what="shifts by the maximum")
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))  # shifted: exp never overflows
        return e / xp.sum(e, axis=self.axis, keepdims=True)

    def vjp(self, F, gy, y, x):
        gx = y * gy
        return gx - y * F.sum(gx, axis=self.axis, keepdims=True)  # y * (gy - <y, gy>)


def softmax(x: VariableLike, axis: int = 1) -> Variable:
    """``exp(x) / sum(exp(x), axis)``, computed stably (shifted by the maximum along ``axis``)."""
    return Softmax(axis)(x)


def softmax_simple(x: VariableLike, axis: int = 1) -> Variable:
    """``exp(x) / sum(exp(x), axis)`` composed from ops (DeZero's textbook version; overflows
    for large inputs, use :func:`softmax`)."""
    x = as_variable(x)
    y = exp(x)
    return y / _sum(y, axis=axis, keepdims=True)


class LogSoftmax(Function):
    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        xp = self.xp
        refuse_complex(xp, "log_softmax", x, what="shifts by the maximum")
        shifted = x - xp.max(x, axis=self.axis, keepdims=True)
        log_z = xp.log(xp.sum(xp.exp(shifted), axis=self.axis, keepdims=True))
        return shifted - log_z  # x - logsumexp(x)

    def vjp(self, F, gy, y, x):
        return gy - F.exp(y) * F.sum(gy, axis=self.axis, keepdims=True)  # gy - softmax sum(gy)


def log_softmax(x: VariableLike, axis: int = 1) -> Variable:
    """``log(softmax(x, axis))`` computed as ``x - logsumexp(x, axis)``: finite for any input."""
    return LogSoftmax(axis)(x)
