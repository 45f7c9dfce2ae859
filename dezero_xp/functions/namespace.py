"""The two namespaces ``F`` an op's one derivative rule (``vjp``) is written against.

- :class:`ArrayNamespace` (a first-order pass): raw arrays of one backend. The backend's ``xp``
  names, ``sum_to``, and ``apply(<Op>Grad(...), *arrays)`` that runs a Function's forward
  without building a graph. Built once per backend.
- :class:`GraphNamespace` (``create_graph=True``): the same names as ``dezero_xp.functions``
  ops on Variables, so the backward pass is itself a graph.

Both have exactly the names in :data:`NAMES`, with the same signatures (plus ``backend`` and
``graph``, which says which of the two it is: the default rule of users' Functions needs it).
Besides the ops: ``const(array)`` (an array of the backend as a value without gradient),
``raw(value)`` (the array inside a value, for masks and other constants), ``saved(array,
recompute)`` (a value forward already computed; on Variables ``recompute()`` rebuilds it
differentiably).

May import: dezero_xp._shape, dezero_xp.core and the other families of dezero_xp.functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dezero_xp import _shape
from dezero_xp.core import wrap_array
from dezero_xp.functions import activation, elementwise, linalg, reduce, shape

if TYPE_CHECKING:
    from dezero_xp.backend import Backend

__all__ = ["NAMES", "ArrayNamespace", "GraphNamespace", "array_namespace", "graph_namespace"]

NAMES = (
    "apply",
    "broadcast_to",
    "const",
    "cos",
    "exp",
    "log",
    "matmul",
    "matrix_transpose",
    "raw",
    "reshape",
    "saved",
    "sigmoid",
    "sin",
    "sqrt",
    "sum",
    "sum_to",
    "tanh",
    "transpose",
    "where",
)


def _identity(value):
    return value


def _first(value, _recompute):
    return value


class ArrayNamespace:
    """The rule namespace on raw arrays of ``backend`` (plain attributes: cheap to look up)."""

    def __init__(self, backend):
        xp = backend.xp
        self.backend = backend
        self.graph = False
        for name in ("cos", "exp", "log", "sin", "sqrt", "tanh", "where"):
            setattr(self, name, getattr(xp, name))
        self.matmul = xp.matmul
        self.matrix_transpose = xp.matrix_transpose
        self.reshape = xp.reshape
        self.broadcast_to = xp.broadcast_to
        self.transpose = xp.permute_dims
        self.sigmoid = backend.ops.sigmoid
        self.const = self.raw = _identity
        self.saved = _first

        def sum(x, axis=None, keepdims=False):  # noqa: A001 - the namespace's name
            return xp.sum(x, axis=axis, keepdims=keepdims)

        def sum_to(x, shape):
            shape = tuple(shape)
            if tuple(x.shape) == shape:
                return x
            y = xp.sum(x, axis=_shape.sum_to_axes(tuple(x.shape), shape), keepdims=True)
            return xp.reshape(y, shape) if y.ndim != len(shape) else y

        def apply(func, *arrays):
            # The Function's forward on raw arrays, no graph: what calling it computes.
            func.backend = backend
            func.xp = xp
            return func.forward(*arrays)

        self.sum = sum
        self.sum_to = sum_to
        self.apply = apply


class GraphNamespace:
    """The rule namespace on Variables of ``backend``: ``dezero_xp.functions`` ops."""

    def __init__(self, backend):
        self.backend = backend
        self.graph = True
        for name in ("cos", "exp", "log", "sin", "sqrt", "tanh", "where"):
            setattr(self, name, getattr(elementwise, name))
        self.matmul = linalg.matmul
        self.matrix_transpose = shape.matrix_transpose
        self.reshape = shape.reshape
        self.broadcast_to = shape.broadcast_to
        self.transpose = shape.transpose
        self.sum_to = shape.sum_to
        self.sum = reduce.sum
        self.sigmoid = activation.sigmoid

        def const(array):
            return wrap_array(array, backend)

        self.const = const
        self.raw = _data
        self.saved = _recomputed
        self.apply = _call


def _data(v):
    return v.data


def _recomputed(_value, recompute):
    return recompute()


def _call(func, *args):
    return func(*args)


_array_namespaces: dict = {}
_graph_namespaces: dict = {}


def array_namespace(backend: Backend) -> ArrayNamespace:
    """The (cached) raw-array namespace of ``backend``."""
    ns = _array_namespaces.get(backend)
    if ns is None:
        ns = _array_namespaces[backend] = ArrayNamespace(backend)
    return ns


def graph_namespace(backend: Backend) -> GraphNamespace:
    """The (cached) Variable namespace of ``backend``."""
    ns = _graph_namespaces.get(backend)
    if ns is None:
        ns = _graph_namespaces[backend] = GraphNamespace(backend)
    return ns
