"""DeZero's simple core (the book's stage 2, steps 23-32): gradients are raw arrays.

Here ``x.grad`` is an array of the data's library, not a Variable, so the book's update
``x.data -= lr * x.grad`` works as written, and a backward pass builds no graph (no higher-order
derivatives: that is what :mod:`dezero_xp.core` adds in stage 3). The Variables hold arrays of
any backend (NumPy, CuPy, array-api-strict, torch); scalars meet them in the array's dtype.

Only the arithmetic operators come with it (``+ - * / ** neg``), installed on this module's
Variable by :func:`setup_variable`, which runs at import as DeZero's does. The book's scripts use
it as::

    import dezero_xp as dezero
    if not dezero.is_simple_core:
        from dezero_xp.core_simple import Variable, setup_variable
        setup_variable()

May import: dezero_xp._config and dezero_xp.backend.
"""

from __future__ import annotations

import heapq
import itertools
import weakref

from dezero_xp._config import Config, no_grad, using_config
from dezero_xp.backend import (
    DeviceMismatchError,
    as_array_data,
    backend_of,
    get_backend,
    is_scalar,
    scalar_as_array,
)

__all__ = [
    "Add",
    "Config",
    "Div",
    "Function",
    "Mul",
    "Neg",
    "Pow",
    "Sub",
    "Variable",
    "add",
    "as_array",
    "as_variable",
    "div",
    "mul",
    "neg",
    "no_grad",
    "pow",
    "rdiv",
    "rsub",
    "setup_variable",
    "sub",
    "using_config",
]


class Variable:
    """A box for an array; after :meth:`backward`, ``grad`` is an array (or None)."""

    __array_priority__ = 200
    __array_ufunc__ = None  # NumPy defers ``ndarray * Variable`` to Variable.__rmul__

    def __init__(self, data, name=None):
        if data is not None:
            data, _ = as_array_data(data, "Variable")
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        if self.data is None:
            return "variable(None)"
        p = str(self.data).replace("\n", "\n" + " " * 9)
        return "variable(" + p + ")"

    def set_creator(self, func):
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self):
        self.grad = None

    def backward(self, retain_grad=False):
        """Fill ``grad`` of every variable this one depends on; intermediate gradients are
        dropped unless ``retain_grad``."""
        if self.grad is None:
            self.grad = backend_of(self.data).xp.ones_like(self.data)
        heap, seen, order = [], set(), itertools.count()

        def add_func(f):
            if f not in seen:
                seen.add(f)
                heapq.heappush(heap, (-f.generation, next(order), f))

        if self.creator is not None:
            add_func(self.creator)
        while heap:
            f = heapq.heappop(heap)[2]
            gys = [output().grad for output in f.outputs]
            gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for x, gx in zip(f.inputs, gxs):
                x.grad = gx if x.grad is None else x.grad + gx
                if x.creator is not None:
                    add_func(x.creator)
            if not retain_grad:
                for y in f.outputs:
                    y().grad = None


def as_array(x):
    """``x`` as an array: a NumPy scalar becomes a 0-d NumPy array, a Python scalar a 0-d array
    of the default device's library."""
    if isinstance(x, (bool, int, float, complex)):
        return get_backend(None).ops.asarray(x)
    if is_scalar(x):
        return as_array_data(x, "as_array")[0]
    return x


def as_variable(obj):
    """``obj`` if it is a Variable, else a Variable around it."""
    return obj if isinstance(obj, Variable) else Variable(obj)


class Function:
    """An op: subclasses write ``forward(*arrays)`` and ``backward(*grad_arrays)``."""

    def __call__(self, *inputs):
        inputs = [as_variable(x) for x in inputs]
        xs = [x.data for x in inputs]
        backend = backend_of(xs[0])
        for x in xs[1:]:
            if backend_of(x) is not backend:
                raise DeviceMismatchError(
                    f"{type(self).__name__}: inputs on {backend.device} and "
                    f"{backend_of(x).device}; move them to one device first"
                )
        ys = self.forward(*xs)
        if not isinstance(ys, tuple):
            ys = (ys,)
        outputs = [Variable(as_array(y)) for y in ys]  # NumPy gives scalars for 0-d
        if Config.enable_backprop:
            self.generation = max(x.generation for x in inputs)
            for output in outputs:
                output.set_creator(self)
            self.inputs = inputs
            self.outputs = [weakref.ref(output) for output in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs):
        raise NotImplementedError()

    def backward(self, *gys):
        raise NotImplementedError()


# --------------------------------------------------------------------------- the operators


def _other(x1, x0):
    """The second operand as an array of the first one's library (scalars in its dtype)."""
    if isinstance(x1, Variable):
        return x1
    if is_scalar(x1):
        like = x0.data if isinstance(x0, Variable) else x0
        return scalar_as_array(x1, backend_of(like), like.dtype)
    return x1


class Add(Function):
    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy


def add(x0, x1):
    return Add()(x0, _other(x1, x0))


class Mul(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        return gy * x1, gy * x0


def mul(x0, x1):
    return Mul()(x0, _other(x1, x0))


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    return Neg()(x)


class Sub(Function):
    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, -gy


def sub(x0, x1):
    return Sub()(x0, _other(x1, x0))


def rsub(x0, x1):
    return Sub()(_other(x1, x0), x0)


class Div(Function):
    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        gx0 = gy / x1
        gx1 = gy * (-x0 / x1**2)
        return gx0, gx1


def div(x0, x1):
    return Div()(x0, _other(x1, x0))


def rdiv(x0, x1):
    return Div()(_other(x1, x0), x0)


class Pow(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x**self.c

    def backward(self, gy):
        x = self.inputs[0].data
        c = self.c
        return c * x ** (c - 1) * gy


def pow(x, c):
    return Pow(c)(x)


def setup_variable():
    """Install the operators on this module's Variable (done at import, as DeZero does)."""
    Variable.__add__ = add
    Variable.__radd__ = add
    Variable.__mul__ = mul
    Variable.__rmul__ = mul
    Variable.__neg__ = neg
    Variable.__sub__ = sub
    Variable.__rsub__ = rsub
    Variable.__truediv__ = div
    Variable.__rtruediv__ = rdiv
    Variable.__pow__ = pow


setup_variable()
