"""Elementwise ops: arithmetic (add, sub, mul, div, neg, pow), exp, log, sin, cos, tanh, sqrt,
abs, square, clip, maximum, minimum.

Binary ops broadcast like NumPy and undo it in backward with ``sum_to`` in one place
(``_BinaryFunction._unbroadcast``). Python scalars meet arrays in the array's dtype
(``Function.__call__`` converts them).

May import: dezero_xp.core and dezero_xp.functions.shape.
"""

from __future__ import annotations

from dezero_xp.core import Function, wrap_array
from dezero_xp.functions.shape import sum_to, sum_to_data

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
]


def _check_broadcastable(shape0, shape1):
    """Raise a ValueError naming both shapes unless they broadcast together.

    Checked here because libraries disagree on the error (torch raises a RuntimeError that
    would not name the op); ``Function.__call__`` adds the op's name and inputs to it.
    """
    for a, b in zip(reversed(shape0), reversed(shape1)):
        if a != b and a != 1 and b != 1:
            raise ValueError(
                f"operands of shapes {tuple(shape0)} and {tuple(shape1)} do not broadcast together"
            )


_SAME_SHAPE = None  # class default of x0_shape/x1_shape: the two inputs have equal shapes


class _BinaryFunction(Function):
    """Two broadcasting inputs; remembers their shapes to undo broadcasting in backward."""

    # Input shapes for the backward (unbroadcast). Equal shapes are the common case and need
    # no bookkeeping: the class attributes below say "same shape".
    x0_shape = x1_shape = _SAME_SHAPE

    def _remember_shapes(self, x0, x1):
        """Called by forward when the shapes differ (equal shapes need no bookkeeping)."""
        _check_broadcastable(x0.shape, x1.shape)
        self.x0_shape = x0.shape
        self.x1_shape = x1.shape

    def _unbroadcast(self, gx0, gx1):
        if self.x0_shape != self.x1_shape:
            gx0 = sum_to(gx0, self.x0_shape)
            gx1 = sum_to(gx1, self.x1_shape)
        return gx0, gx1

    def _unbroadcast_data(self, gx0, gx1):
        if self.x0_shape is _SAME_SHAPE:
            return gx0, gx1
        return sum_to_data(self.xp, gx0, self.x0_shape), sum_to_data(self.xp, gx1, self.x1_shape)


class Add(_BinaryFunction):
    def forward(self, x0, x1):
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return x0 + x1

    def backward(self, gy):
        return self._unbroadcast(gy, gy)

    def backward_data(self, gy):
        return self._unbroadcast_data(gy, gy)


def add(x0, x1):
    """``x0 + x1`` with broadcasting."""
    return Add()(x0, x1)


class Sub(_BinaryFunction):
    def forward(self, x0, x1):
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return x0 - x1

    def backward(self, gy):
        return self._unbroadcast(gy, -gy)

    def backward_data(self, gy):
        return self._unbroadcast_data(gy, -gy)


def sub(x0, x1):
    """``x0 - x1`` with broadcasting."""
    return Sub()(x0, x1)


def rsub(x0, x1):
    """``x1 - x0`` (the reflected ``-`` of ``Variable``)."""
    return Sub()(x1, x0)


class Mul(_BinaryFunction):
    def forward(self, x0, x1):
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return self._unbroadcast(gy * x1, gy * x0)

    def backward_data(self, gy):
        x0, x1 = self.inputs
        return self._unbroadcast_data(gy * x1._data, gy * x0._data)


def mul(x0, x1):
    """``x0 * x1`` with broadcasting."""
    return Mul()(x0, x1)


class Div(_BinaryFunction):
    def forward(self, x0, x1):
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = gy * (-x0 / x1**2)  # d(x0/x1)/dx1 = -x0 / x1^2
        return self._unbroadcast(gx0, gx1)

    def backward_data(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1._data
        return self._unbroadcast_data(gx0, -gx0 * (x0._data / x1._data))


def div(x0, x1):
    """``x0 / x1`` with broadcasting."""
    return Div()(x0, x1)


def rdiv(x0, x1):
    """``x1 / x0`` (the reflected ``/`` of ``Variable``)."""
    return Div()(x1, x0)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def backward_data(self, gy):
        return -gy


def neg(x):
    """``-x``."""
    return Neg()(x)


class PowConst(Function):
    """``x ** c`` for a constant (Python scalar) exponent, DeZero's ``Pow``."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x**self.c

    def backward(self, gy):
        (x,) = self.inputs
        c = self.c
        return gy * (c * x ** (c - 1))

    def backward_data(self, gy):
        # One new array, then in-place updates of it (it is ours alone): less memory traffic.
        c = self.c
        x = self.inputs[0]._data
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
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return x0**x1

    def backward(self, gy):
        x0, x1 = self.inputs
        y = self.outputs[0]()
        gx0 = gy * x1 * x0 ** (x1 - 1)
        gx1 = gy * y * log(x0)  # d(a^b)/db = a^b ln a
        return self._unbroadcast(gx0, gx1)


def pow(x, c):  # noqa: A001 - DeZero's public name
    """``x ** c``; ``c`` may be a Python scalar (DeZero) or an array/Variable."""
    if isinstance(c, (int, float)):
        return PowConst(c)(x)
    return PowVar()(x, c)


def rpow(x, c):
    """``c ** x`` (the reflected ``**`` of ``Variable``)."""
    return PowVar()(c, x)


class Exp(Function):
    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, gy):
        return gy * self.outputs[0]()

    def backward_data(self, gy):
        return gy * self.outputs[0]()._data


def exp(x):
    """Elementwise e**x."""
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        return self.xp.log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / x

    def backward_data(self, gy):
        return gy / self.inputs[0]._data


def log(x):
    """Elementwise natural logarithm."""
    return Log()(x)


class Sin(Function):
    def forward(self, x):
        return self.xp.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * cos(x)

    def backward_data(self, gy):
        g = self.xp.cos(self.inputs[0]._data)
        g *= gy
        return g


def sin(x):
    """Elementwise sine."""
    return Sin()(x)


class Cos(Function):
    def forward(self, x):
        return self.xp.cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * -sin(x)

    def backward_data(self, gy):
        g = self.xp.sin(self.inputs[0]._data)
        g *= -1
        g *= gy
        return g


def cos(x):
    """Elementwise cosine."""
    return Cos()(x)


class Tanh(Function):
    def forward(self, x):
        return self.xp.tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)  # d tanh = 1 - y^2

    def backward_data(self, gy):
        y = self.outputs[0]()._data
        g = y * y  # then in place: 1 - y^2, times gy (same rounding as the Variable path)
        g *= -1
        g += 1
        g *= gy
        return g


def tanh(x):
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


class Sqrt(Function):
    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy / (2 * y)  # d sqrt(x) = 1 / (2 sqrt(x))

    def backward_data(self, gy):
        g = gy / self.outputs[0]()._data
        g *= 0.5  # exact: the same value as gy / (2 y)
        return g


def sqrt(x):
    """Elementwise square root."""
    return Sqrt()(x)


class Square(Function):
    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * (2 * x)

    def backward_data(self, gy):
        g = self.inputs[0]._data * 2
        g *= gy
        return g


def square(x):
    """Elementwise ``x * x``."""
    return Square()(x)


class Abs(Function):
    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * wrap_array(self.xp.sign(x.data), self.backend)  # sign(0) = 0


def abs(x):  # noqa: A001 - mirrors the array API name
    """Elementwise absolute value (gradient ``sign(x)``, 0 at 0)."""
    return Abs()(x)


class Clip(Function):
    def __init__(self, x_min, x_max):
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        return self.xp.clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        (x,) = self.inputs
        xp = self.xp
        data = x.data
        inside = xp.ones_like(data, dtype=xp.bool)
        if self.x_min is not None:
            inside = inside & (data >= self.x_min)
        if self.x_max is not None:
            inside = inside & (data <= self.x_max)
        return gy * wrap_array(xp.astype(inside, gy.dtype), self.backend)


def clip(x, x_min, x_max):
    """Clamp to ``[x_min, x_max]`` (either may be None); gradient 1 inside, 0 outside."""
    return Clip(x_min, x_max)(x)


class _Extremum(_BinaryFunction):
    """maximum/minimum: the gradient goes to the chosen input, split evenly on ties."""

    pick_first = None  # set by subclasses: the comparison that makes x0 the winner

    def backward(self, gy):
        x0, x1 = self.inputs
        xp = self.xp
        a, b = x0.data, x1.data
        wins = xp.astype(self.pick_first(a, b), gy.dtype)
        ties = xp.astype(a == b, gy.dtype)
        m0 = wins + ties * 0.5
        m1 = (1 - wins - ties) + ties * 0.5
        gx0 = gy * wrap_array(xp.broadcast_to(m0, gy.shape), self.backend)
        gx1 = gy * wrap_array(xp.broadcast_to(m1, gy.shape), self.backend)
        return self._unbroadcast(gx0, gx1)


class Maximum(_Extremum):
    @staticmethod
    def pick_first(a, b):
        return a > b

    def forward(self, x0, x1):
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return self.xp.maximum(x0, x1)


class Minimum(_Extremum):
    @staticmethod
    def pick_first(a, b):
        return a < b

    def forward(self, x0, x1):
        if x0.shape != x1.shape:
            self._remember_shapes(x0, x1)
        return self.xp.minimum(x0, x1)


def maximum(x0, x1):
    """Elementwise maximum with broadcasting."""
    return Maximum()(x0, x1)


def minimum(x0, x1):
    """Elementwise minimum with broadcasting."""
    return Minimum()(x0, x1)
