"""The one backward loop, for first-order passes and for ``create_graph=True`` alike.

:func:`backward` (installed as ``Variable.backward``) walks the graph behind a Variable
iteratively: a heap keyed by ``(-generation, counter)`` (newest generation first, the counter
keeps the order deterministic), skipped along chains where only one creator waits. It never
recurses and never re-sorts, so a 1,000,000-op chain works.

Gradients are *values of a namespace* chosen once per pass: raw arrays of the root's backend in
a first-order pass (no Function or Variable is built per step), Variables when
``create_graph=True`` (the backward is itself a graph, so derivatives of any order work). A
built-in op's one rule, ``vjp(F, gy, y, *xs)``, receives that namespace as ``F`` and the values
positionally; a user's Function with only DeZero's ``backward(gy)`` gets Variables in both
modes. Inputs with ``requires_grad=False`` (wrapped raw arrays, scalars, masks) get no
gradient: the one skip, which also prunes whatever computed them. Sums of several gradients
are added in place only when the loop itself allocated them (one array may be handed to
several inputs: ``Add`` passes ``gy`` to both).

``dezero_xp/__init__.py`` installs :func:`backward` as ``Variable.backward`` and
:func:`function_backward` as ``Function.backward``, and hands in the two namespaces (built in
``dezero_xp.functions.namespace``) through :func:`use_namespaces`.

May import: dezero_xp._config and dezero_xp.core.
"""

from __future__ import annotations

import heapq
import threading

from dezero_xp._config import Config
from dezero_xp.core import (
    Function,
    Variable,
    check_gradient,
    check_not_updated,
    raise_gradient_shape,
    update_clock,
    wrap_array,
)

__all__ = ["backward", "function_backward", "use_namespaces"]

# backend -> namespace of raw-array rules / of Variable rules; filled by use_namespaces().
_array_namespace = None
_graph_namespace = None


def use_namespaces(array_namespace, graph_namespace) -> None:
    """Install the two ``backend -> F`` lookups the rules are handed (done once at import)."""
    global _array_namespace, _graph_namespace
    _array_namespace, _graph_namespace = array_namespace, graph_namespace


def function_backward(self, *gys):
    """DeZero's ``Function.backward(*gys)``: the op's rule on Variables (any order works)."""
    if type(self).vjp is Function.vjp:  # neither a rule nor a backward of its own
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")
    outputs = [ref() for ref in self.outputs]
    F = _graph_namespace(self.backend)
    if len(outputs) == 1:
        gxs = self.vjp(F, gys[0], outputs[0], *self.inputs)
    else:
        gxs = self.vjp(F, gys, tuple(outputs), *self.inputs)
    if not self.broadcasting:
        return gxs
    if type(gxs) is not tuple:
        gxs = tuple(gxs) if type(gxs) is list else (gxs,)
    return tuple(
        gx if gx is None or gx.shape == x.shape else F.sum_to(gx, x.shape)
        for x, gx in zip(self.inputs, gxs)
    )


def backward(self, retain_grad=False, create_graph=False):
    """Backpropagate from this Variable, filling ``.grad`` of every Variable behind it.

    ``retain_grad`` keeps the gradients of intermediate Variables (else they are freed as soon
    as they are used). ``create_graph`` records the backward computation as a graph, so
    ``x.grad`` can itself be differentiated (higher-order derivatives, double backprop).
    """
    if self._data is None:
        raise ValueError("backward: this Variable holds no data")
    if type(retain_grad) is not bool or type(create_graph) is not bool:
        _refuse_flags(retain_grad, create_graph)
    backend = self._backend
    if self.creator is None:
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this Variable has no graph behind it and needs no gradient (it was "
                "computed under no_grad(), or it is a constant or a gradient); compute it "
                "with backprop enabled, or pass create_graph=True to the backward that made a "
                "gradient you want to differentiate"
            )
        if self.grad is None:
            self.grad = _seed(self)
        return
    previous = Config.enable_backprop
    Config.enable_backprop = create_graph
    try:
        if backend.scoped:  # a graph lives on one device: one scope for the pass
            with backend.ops.scope():
                _backprop(self, retain_grad, create_graph)
        else:
            _backprop(self, retain_grad, create_graph)
    finally:
        Config.enable_backprop = previous


def _refuse_flags(retain_grad, create_graph):
    for name, value in (("retain_grad", retain_grad), ("create_graph", create_graph)):
        if not isinstance(value, bool) and not (type(value) is int and value in (0, 1)):
            raise TypeError(
                f"backward: {name} must be True or False, got {type(value).__name__} {value!r:.40}"
            )


def _seed(root):
    """``ones_like(root)`` on root's device (made current for the libraries that need it)."""
    backend = root._backend
    if backend.scoped:
        with backend.ops.scope():
            return wrap_array(backend.xp.ones_like(root._data), backend)
    return wrap_array(backend.xp.ones_like(root._data), backend)


def _backprop(root, retain_grad, graph):
    if root.grad is None:
        root.grad = wrap_array(root._backend.xp.ones_like(root._data), root._backend)
    F = (_graph_namespace if graph else _array_namespace)(root._backend)
    # grads: Variable -> accumulated gradient (a namespace value) of Variables not finished yet.
    grads = {root: root.grad if graph else root.grad._data}
    heap = []
    queued = {root.creator}
    counter = 0
    pop = heapq.heappop
    push = heapq.heappush
    take = grads.pop
    # Variables whose entry in `grads` is an array sum this loop allocated: safe to add into.
    owned = set()
    # ids of gradient values something else holds (the seed, retained gradients).
    shared = {id(grads[root])}
    f = root.creator
    while f is not None:
        # All consumers of f's outputs have run (they have higher generations): their
        # gradients are complete, so they leave `grads` now.
        refs = f.outputs
        if len(refs) == 1:  # nearly every op: no lists
            y = refs[0]()
            if y._clock != update_clock[0]:  # a Parameter was updated since f ran
                check_not_updated(f, y._clock)
            gy = take(y, None)
            if owned:
                owned.discard(y)
            if retain_grad and gy is not None:
                y.grad = gy if graph else wrap_array(gy, y._backend)
                shared.add(id(gy))  # held by y.grad now: a leaf may not get it as its own
            elif y.grad is not None:
                y.grad = None
            inputs = f.inputs
            if graph:
                gxs = f.vjp(F, gy, y, *inputs)
            elif len(inputs) == 1:
                gxs = f.vjp(F, gy, y._data, inputs[0]._data)
            elif len(inputs) == 2:
                gxs = f.vjp(F, gy, y._data, inputs[0]._data, inputs[1]._data)
            else:
                gxs = f.vjp(F, gy, y._data, *[x._data for x in inputs])
        else:
            outputs = [ref() for ref in refs]
            alive = [y for y in outputs if y is not None]
            if alive and alive[0]._clock != update_clock[0]:
                check_not_updated(f, alive[0]._clock)
            gys = tuple(None if y is None else take(y, None) for y in outputs)
            owned.difference_update(outputs)
            for y, gy in zip(outputs, gys):
                if y is not None:
                    keep = retain_grad and gy is not None
                    y.grad = (gy if graph else wrap_array(gy, y._backend)) if keep else None
                    if keep:
                        shared.add(id(gy))
            if graph:
                gxs = f.vjp(F, gys, tuple(outputs), *f.inputs)
            else:
                ys = tuple(None if y is None else y._data for y in outputs)
                gxs = f.vjp(F, gys, ys, *[x._data for x in f.inputs])
        if type(gxs) is not tuple:
            gxs = tuple(gxs) if type(gxs) is list else (gxs,)
        following = None  # a creator found now that may run next without the heap
        for x, gx in zip(f.inputs, gxs):
            if gx is None or not x.requires_grad:
                continue
            if graph:
                if type(gx) is not Variable or gx._backend is not x._backend:
                    check_gradient(f, x, gx)
            if gx.shape != x._data.shape:
                if not f.broadcasting:
                    raise_gradient_shape(f, x, gx)
                gx = F.sum_to(gx, x._data.shape)  # undo the broadcast: the one place
            accumulated = grads.get(x)
            if accumulated is None:
                # DeZero semantics: a gradient left from an earlier backward call adds up; a
                # leaf's is added at the end, under the lock (threads may share the leaf).
                previous = x.grad if x.creator is not None else None
                if previous is None:
                    grads[x] = gx  # may be shared (Add hands one value to both inputs)
                elif graph:
                    grads[x] = previous + gx
                else:
                    grads[x] = previous._data + gx
                    owned.add(x)
            elif x in owned and accumulated.dtype == gx.dtype:
                accumulated += gx  # our own array sum, referenced nowhere else: in place
                grads[x] = accumulated
            else:
                grads[x] = accumulated + gx
                if not graph:
                    owned.add(x)
            c = x.creator
            if c is not None and c not in queued:
                queued.add(c)
                if following is None:
                    following = c
                else:
                    push(heap, (-c.generation, counter, c))
                    counter += 1
        # A chain (one new creator, nothing else waiting) skips the heap; otherwise the newest
        # generation goes first.
        if following is not None:
            if not heap:
                f = following
                continue
            push(heap, (-following.generation, counter, following))
            counter += 1
        f = pop(heap)[2] if heap else None
    # What is left has no creator: the leaves (inputs, parameters).
    _write_leaf_gradients(grads, owned, shared, graph)


# One lock for every leaf's `.grad`: reading the old gradient and writing the sum is one step,
# so backward passes in several threads into shared Parameters lose no update.
_leaf_lock = threading.Lock()


def _write_leaf_gradients(grads, owned, shared, graph):
    """Give each leaf its gradient: its own writable array, in its dtype, added to the old one.

    A value the loop did not allocate may be shared (``Add`` hands one to both inputs, the seed
    is ``root.grad``), a view or a read-only broadcast: such a value is copied, so writing into
    one leaf's ``.grad`` never changes another's. A floating-point leaf's gradient takes the
    leaf's dtype (a float32 weight met by a float64 input gets a float32 gradient), as in
    PyTorch; an integer leaf keeps the gradient's own dtype (truncating it would be wrong).
    """
    given = shared
    with _leaf_lock:
        for x, g in grads.items():
            backend = x._backend
            previous = x.grad
            if graph:
                g = _leaf_variable(x, g, given, previous, backend)
                given.add(id(g))
                given.add(id(g._data))
                x.grad = g
            else:
                g = _leaf_array(x, g, x in owned, given, previous, backend)
                given.add(id(g))
                x.grad = wrap_array(g, backend)


def _leaf_array(x, g, owned, given, previous, backend):
    dtype = x._data.dtype
    if previous is not None:
        g = previous._data + g  # a new array
        owned = True
    if g.dtype != dtype and _is_floating(backend, dtype):
        return backend.xp.astype(g, dtype)  # a new array too
    if not owned and (id(g) in given or not backend.ops.owns_memory(g)):
        return backend.xp.astype(g, g.dtype, copy=True)
    return g


def _leaf_variable(x, g, given, previous, backend):
    """The same rules under ``create_graph``, with a differentiable copy/cast."""
    if previous is not None:
        g = previous + g
    dtype = x._data.dtype
    cast = g._data.dtype != dtype and _is_floating(backend, dtype)
    if cast or id(g) in given or not backend.ops.owns_memory(g._data):
        g = _Copy(dtype if cast else g._data.dtype)(g)
    return g


class _Copy(Function):
    """``astype(x, dtype)`` as a new array, differentiable (the gradient is cast back)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return self.xp.astype(x, self.dtype, copy=True)

    def vjp(self, F, gy, y, x):
        if F.graph:
            return _Copy(x.dtype)(gy)
        return self.xp.astype(gy, x.dtype, copy=True)


_floating: dict = {}


def _is_floating(backend, dtype) -> bool:
    key = (backend, dtype)
    found = _floating.get(key)
    if found is None:
        xp = backend.xp
        found = _floating[key] = bool(xp.isdtype(dtype, ("real floating", "complex floating")))
    return found
