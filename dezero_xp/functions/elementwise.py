"""Elementwise ops: arithmetic (add, sub, mul, div, neg, pow), exp, log, sin, cos, tanh, sqrt,
abs, square, clip, maximum, minimum, where.

Binary ops broadcast like NumPy; the engine undoes the broadcast of every ``broadcasting`` op
in one place. Python scalars meet arrays in the array's dtype (``Function.__call__``
converts them). Each op writes its derivative once, as ``vjp`` against the namespace ``F``
(see ``Function``); augmented assignments (``g *= gy``) there are in place on the arrays a rule
made itself and rebind on Variables, so one rule serves both kinds of pass.

May import: dezero_xp.backend, dezero_xp.core and dezero_xp.functions._checks.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

from dezero_xp.backend import python_scalar
from dezero_xp.core import Function
from dezero_xp.functions._checks import refuse_complex

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import Scalar, VariableLike

__all__ = [
    "abs",
    "add",
    "clip",
    "cos",
    "div",
    "exp",
    "log",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "rdiv",
    "rpow",
    "rsub",
    "sin",
    "sqrt",
    "square",
    "sub",
    "tanh",
    "where",
]


class _BinaryFunction(Function):
    """Two inputs that broadcast together. The engine sums their gradients back to their
    shapes (``broadcasting``), so a rule returns gradients of the output's shape."""

    broadcasting = True


class Add(_BinaryFunction):
    def forward(self, x0, x1):
        return x0 + x1

    def vjp(self, F, gy, y, x0, x1):
        return (gy, gy)


def add(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """``x0 + x1`` with broadcasting."""
    return Add()(x0, x1)


class Sub(_BinaryFunction):
    def forward(self, x0, x1):
        return x0 - x1

    def vjp(self, F, gy, y, x0, x1):
        return (gy, -gy if self.inputs[1].requires_grad else None)


def sub(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """``x0 - x1`` with broadcasting."""
    return Sub()(x0, x1)


def rsub(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """``x1 - x0`` (the reflected ``-`` of ``Variable``)."""
    return Sub()(x1, x0)


class Mul(_BinaryFunction):
    def forward(self, x0, x1):
        return x0 * x1

    def vjp(self, F, gy, y, x0, x1):
        inputs = self.inputs
        return (
            gy * x1 if inputs[0].requires_grad else None,
            gy * x0 if inputs[1].requires_grad else None,
        )


def mul(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """``x0 * x1`` with broadcasting."""
    return Mul()(x0, x1)


class Div(_BinaryFunction):
    def forward(self, x0, x1):
        return x0 / x1

    def vjp(self, F, gy, y, x0, x1):
        gx0 = gy / x1
        gx1 = -gx0 * (x0 / x1) if self.inputs[1].requires_grad else None  # d/dx1 = -x0 / x1^2
        return (gx0, gx1)


def div(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """``x0 / x1`` with broadcasting."""
    return Div()(x0, x1)


def rdiv(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """``x1 / x0`` (the reflected ``/`` of ``Variable``)."""
    return Div()(x1, x0)


class Neg(Function):
    def forward(self, x):
        return -x

    def vjp(self, F, gy, y, x):
        return -gy


def neg(x: VariableLike) -> Variable:
    """``-x``."""
    return Neg()(x)


class PowConst(Function):
    """``x ** c`` for a constant (Python scalar) exponent, DeZero's ``Pow``."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x**self.c

    def vjp(self, F, gy, y, x):
        c = self.c
        if c == 0:
            # x**0 is the constant 1, also at x == 0, where c * x**(c - 1) would be 0 * inf.
            return F.const(self.xp.zeros_like(F.raw(gy)))
        # One new array, then in-place updates of it (it is ours alone): less memory traffic.
        if c == 2:
            g = x * 2
        else:
            g = x ** (c - 1)
            g *= c
        g *= gy
        return g


Pow = PowConst  # DeZero's class name


class PowVar(_BinaryFunction):
    """``x0 ** x1`` where the exponent is itself an array or Variable."""

    def forward(self, x0, x1):
        return x0**x1

    def vjp(self, F, gy, y, x0, x1):
        xp, inputs = self.xp, self.inputs
        base, exponent = F.raw(x0), F.raw(x1)
        gx0 = gx1 = None
        if inputs[0].requires_grad:
            # d a^b/da = b a^(b-1), exactly 0 where b == 0 (a^0 is constant, even at a == 0,
            # where a^(b-1) is inf): the exponent is 1 there, so no 0 * inf is ever formed.
            flat = exponent == 0
            gx0 = F.where(flat, 0.0, gy * x1 * x0 ** (F.where(flat, 1, x1) - 1))
        if inputs[1].requires_grad:
            # d a^b/db = a^b ln a; at a == 0 and b >= 0 it is 0, as in torch (0^b is 0 for b > 0,
            # ln 0 = -inf would make 0 * -inf): there the base is 1, so ln a is 0.
            if xp.isdtype(exponent.dtype, "complex floating"):
                nonnegative = (xp.real(exponent) >= 0) & (xp.imag(exponent) == 0)
            else:
                nonnegative = exponent >= 0
            at_zero = (base == 0) & nonnegative
            gx1 = F.where(at_zero, 0.0, gy * y * F.log(F.where(at_zero, 1, x0)))
        return (gx0, gx1)


def pow(x: VariableLike | Scalar, c: VariableLike | Scalar) -> Variable:  # noqa: A001 - DeZero's public name
    """``x ** c``; ``c`` may be a Python scalar (DeZero) or an array/Variable."""
    if isinstance(c, (int, float)):  # NumPy float64 too: a float subclass
        return PowConst(python_scalar(c))(x)
    return PowVar()(x, c)


def rpow(x: VariableLike | Scalar, c: VariableLike | Scalar) -> Variable:
    """``c ** x`` (the reflected ``**`` of ``Variable``)."""
    return PowVar()(c, x)


class Exp(Function):
    def forward(self, x):
        return self.xp.exp(x)

    def vjp(self, F, gy, y, x):
        return gy * y


def exp(x: VariableLike) -> Variable:
    """Elementwise e**x."""
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        return self.xp.log(x)

    def vjp(self, F, gy, y, x):
        return gy / x


def log(x: VariableLike) -> Variable:
    """Elementwise natural logarithm."""
    return Log()(x)


class Sin(Function):
    def forward(self, x):
        return self.xp.sin(x)

    def vjp(self, F, gy, y, x):
        g = F.cos(x)
        g *= gy
        return g


def sin(x: VariableLike) -> Variable:
    """Elementwise sine."""
    return Sin()(x)


class Cos(Function):
    def forward(self, x):
        return self.xp.cos(x)

    def vjp(self, F, gy, y, x):
        g = F.sin(x)
        g *= -1
        g *= gy
        return g


def cos(x: VariableLike) -> Variable:
    """Elementwise cosine."""
    return Cos()(x)


class Tanh(Function):
    def forward(self, x):
        return self.xp.tanh(x)

    def vjp(self, F, gy, y, x):
        g = y * y  # then in place: (1 - y^2) * gy, d tanh = 1 - y^2
        g *= -1
        g += 1
        g *= gy
        return g


def tanh(x: VariableLike) -> Variable:
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


class Sqrt(Function):
    def forward(self, x):
        return self.xp.sqrt(x)

    def vjp(self, F, gy, y, x):
        g = gy / y  # d sqrt(x) = 1 / (2 sqrt(x)); halving is exact
        g *= 0.5
        return g


def sqrt(x: VariableLike) -> Variable:
    """Elementwise square root."""
    return Sqrt()(x)


class Square(Function):
    def forward(self, x):
        return x * x

    def vjp(self, F, gy, y, x):
        g = x * 2
        g *= gy
        return g


def square(x: VariableLike) -> Variable:
    """Elementwise ``x * x``."""
    return Square()(x)


class Abs(Function):
    def forward(self, x):
        return self.xp.abs(x)

    def vjp(self, F, gy, y, x):
        return gy * F.const(self.xp.sign(F.raw(x)))  # sign(0) = 0


def abs(x: VariableLike) -> Variable:  # noqa: A001 - mirrors the array API name
    """Elementwise absolute value (gradient ``sign(x)``, 0 at 0)."""
    return Abs()(x)


class Clip(Function):
    def __init__(self, x_min, x_max):
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        refuse_complex(self.xp, "clip", x)
        return self.xp.clip(x, self.x_min, self.x_max)

    def vjp(self, F, gy, y, x):
        xp = self.xp
        data = F.raw(x)
        inside = xp.ones_like(data, dtype=xp.bool)
        if self.x_min is not None:
            inside = inside & (data >= self.x_min)
        if self.x_max is not None:
            inside = inside & (data <= self.x_max)
        return F.where(inside, gy, 0.0)  # exactly 0 outside, whatever gy is


def clip(x: VariableLike, x_min: float | None, x_max: float | None) -> Variable:
    """Clamp to ``[x_min, x_max]`` (either may be None); gradient 1 inside, 0 outside."""
    return Clip(x_min, x_max)(x)


class _ElementwiseExtremum(_BinaryFunction):
    """maximum/minimum: the gradient goes to the chosen input, split evenly on ties."""

    pick_first = None  # set by subclasses: the comparison that makes x0 the winner

    def vjp(self, F, gy, y, x0, x1):
        xp = self.xp
        a, b = F.raw(x0), F.raw(x1)
        wins = xp.astype(self.pick_first(a, b), gy.dtype)
        ties = xp.astype(a == b, gy.dtype)
        m0 = wins + ties * 0.5
        m1 = (1 - wins - ties) + ties * 0.5
        return gy * F.const(m0), gy * F.const(m1)


class Maximum(_ElementwiseExtremum):
    pick_first = staticmethod(operator.gt)

    def forward(self, x0, x1):
        refuse_complex(self.xp, "maximum", x0, x1)
        return self.xp.maximum(x0, x1)


class Minimum(_ElementwiseExtremum):
    pick_first = staticmethod(operator.lt)

    def forward(self, x0, x1):
        refuse_complex(self.xp, "minimum", x0, x1)
        return self.xp.minimum(x0, x1)


def maximum(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """Elementwise maximum with broadcasting."""
    return Maximum()(x0, x1)


def minimum(x0: VariableLike | Scalar, x1: VariableLike | Scalar) -> Variable:
    """Elementwise minimum with broadcasting."""
    return Minimum()(x0, x1)


class Where(Function):
    """``x0`` where ``condition`` holds, else ``x1`` (broadcasting); the condition is a
    non-differentiable input. Inputs are ordered ``(x0, x1, condition)``."""

    broadcasting = True

    def forward(self, x0, x1, condition):
        return self.xp.where(condition, x0, x1)

    def vjp(self, F, gy, y, x0, x1, condition):
        cond = F.raw(condition)
        gx0 = F.where(cond, gy, 0.0) if self.inputs[0].requires_grad else None
        gx1 = F.where(cond, 0.0, gy) if self.inputs[1].requires_grad else None
        return gx0, gx1, None


def where(
    condition: VariableLike, x0: VariableLike | Scalar, x1: VariableLike | Scalar
) -> Variable:
    """``x0`` where ``condition`` (a boolean array or Variable) is true, else ``x1``.

    ``x0``/``x1`` may be Variables, arrays or Python scalars; the gradient flows to each where it
    was chosen, and is exactly 0 elsewhere (even for an infinite upstream gradient).
    """
    return Where()(x0, x1, condition)
