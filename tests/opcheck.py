"""The declarative op checker: one ``op_case(...)`` line per op, expanded over every check.

``make_op_tests(CASES)`` returns a test function parametrized over the cases and the checks
below; combined with the ``xb`` fixture it runs each case on every backend:

- ``forward``: float32 and float64 results against the NumPy reference;
- ``grad``: backward against central differences (float64), see dezero_xp.testing, and the
  first-order array path (``backward_data``) against the Variable path (``create_graph=True``);
- ``double``: gradient of the gradient (float64), when the case says the op supports it;
- ``invariants``: float32 stays float32 (output and gradients), results and gradients stay on
  the input's backend, the inputs' data is not mutated by forward or backward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import testing

CHECKS = ("forward", "grad", "double", "invariants")
FORWARD_TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


@dataclass
class OpCase:
    """One op under test: ``fn(*variables, *consts)`` vs ``ref(*numpy_arrays, *consts)``."""

    name: str
    fn: Callable
    ref: Callable
    shapes: list  # one entry per input: a shape tuple
    domain: tuple = (-1.0, 1.0)
    sampler: Callable | None = None  # (rng, shape) -> array; overrides domain
    consts: Callable | None = None  # () -> tuple of extra args; NumPy arrays go to the backend
    double: bool = True
    backends: tuple | None = None  # restrict to these backend names (None: all)
    rtol: float = 1e-5
    atol: float = 1e-6
    forward_rtol: float | None = None  # loosen only for ops whose float32 path differs
    id: str = field(default="")

    def __str__(self):
        return self.id or self.name

    def inputs(self, seed=0):
        rng = np.random.default_rng(seed)
        if self.sampler is not None:
            return [np.asarray(self.sampler(rng, s), dtype=np.float64) for s in self.shapes]
        low, high = self.domain
        return [rng.uniform(low, high, size=s) for s in self.shapes]


def op_case(name, fn, ref, shapes, **kwargs) -> list:
    """Declare cases of one op, one per entry of ``shapes``.

    Each entry lists the input shapes of one case; for a unary op a bare shape is accepted:
    ``shapes=[(), (3, 2)]`` is two cases with one input each.
    """
    cases = []
    for entry in shapes:
        if entry == () or (isinstance(entry, tuple) and all(isinstance(n, int) for n in entry)):
            entry = [entry]
        entry = [tuple(s) for s in entry]
        case_id = f"{name}-" + "-".join("x".join(map(str, s)) or "0d" for s in entry)
        cases.append(OpCase(name, fn, ref, entry, id=case_id, **kwargs))
    return cases


def _to_backend(value, xb):
    """Consts: NumPy arrays (also inside tuples and lists) are copied to the backend."""
    if isinstance(value, np.ndarray):
        return xb.asarray(value)
    if isinstance(value, tuple):
        return tuple(_to_backend(v, xb) for v in value)
    if isinstance(value, list):
        return [_to_backend(v, xb) for v in value]
    return value


def _consts(case, xb):
    raw = case.consts() if case.consts is not None else ()
    return raw, tuple(_to_backend(c, xb) for c in raw)


def _run_forward(case, xb, dtype):
    host_inputs = [x.astype(dtype) for x in case.inputs()]
    raw, consts = _consts(case, xb)
    xs = [dz.Variable(xb.asarray(h)) for h in host_inputs]
    y = case.fn(*xs, *consts)
    expected = np.asarray(case.ref(*host_inputs, *raw))
    got = xb.numpy(y)
    assert got.shape == expected.shape, f"{case}: shape {got.shape} != reference {expected.shape}"
    tolerance = dict(FORWARD_TOLERANCE[dtype])
    if case.forward_rtol is not None and dtype == "float32":
        tolerance["rtol"] = case.forward_rtol
    np.testing.assert_allclose(got, expected, **tolerance, err_msg=str(case))


def _check_invariants(case, xb):
    host_inputs = [x.astype(np.float32) for x in case.inputs()]
    raw, consts = _consts(case, xb)
    arrays = [xb.asarray(h) for h in host_inputs]
    xs = [dz.Variable(a) for a in arrays]
    y = case.fn(*xs, *consts)
    assert y.dtype == xb.dtype("float32"), f"{case}: float32 in, {y.dtype} out"
    assert y.backend is xb.backend, f"{case}: output on {y.backend}, inputs on {xb.backend}"
    y.backward()
    for i, x in enumerate(xs):
        if x.grad is None:
            continue
        assert x.grad.dtype == xb.dtype("float32"), f"{case}: grad {i} is {x.grad.dtype}"
        assert x.grad.backend is xb.backend, f"{case}: grad {i} on {x.grad.backend}"
        assert x.grad.shape == x.shape, f"{case}: grad {i} shape {x.grad.shape} != {x.shape}"
    for i, (a, h) in enumerate(zip(arrays, host_inputs)):
        np.testing.assert_array_equal(xb.numpy(a), h, err_msg=f"{case}: input {i} was mutated")


def _first_order_grads(f, inputs, weights, create_graph):
    xs = [dz.Variable(a) for a in inputs]
    (f(*xs) * weights).sum().backward(create_graph=create_graph)
    return [None if x.grad is None else x.grad.data for x in xs]


def _check_backward_paths_agree(case, f, inputs, xb):
    """The array fast path (backward_data) computes what the Variable backward computes."""
    with dz.no_grad():
        shape = f(*[dz.Variable(a) for a in inputs]).shape
    weights = xb.asarray(np.random.default_rng(7).standard_normal(shape))
    fast = _first_order_grads(f, inputs, weights, create_graph=False)
    graph = _first_order_grads(f, inputs, weights, create_graph=True)
    for i, (a, b) in enumerate(zip(fast, graph)):
        assert (a is None) == (b is None), f"{case}: input {i} has a gradient on one path only"
        if a is not None:
            np.testing.assert_allclose(
                xb.numpy(a),
                xb.numpy(b),
                rtol=1e-10,
                atol=1e-12,
                err_msg=f"{case}: backward_data and backward disagree for input {i}",
            )


def run_check(case: OpCase, check: str, xb) -> None:
    """Run one check of one case on one backend (skips what the case excludes)."""
    if case.backends is not None and xb.name not in case.backends:
        pytest.skip(f"{case} is not defined on {xb.name}")
    if check == "forward":
        _run_forward(case, xb, "float64")
        _run_forward(case, xb, "float32")
        return
    if check == "invariants":
        _check_invariants(case, xb)
        return
    if check == "double" and not case.double:
        pytest.skip(f"{case.name} does not support double backward")
    _, consts = _consts(case, xb)
    inputs = [xb.asarray(h) for h in case.inputs()]

    def f(*xs):
        return case.fn(*xs, *consts)

    kwargs: dict[str, Any] = dict(rtol=case.rtol, atol=case.atol)
    if check == "grad":
        testing.check_backward(f, inputs, **kwargs)
        _check_backward_paths_agree(case, f, inputs, xb)
    else:
        testing.check_double_backward(f, inputs, **kwargs)


def make_op_tests(cases):
    """A pytest test function over ``cases`` x ``CHECKS`` (use with the ``xb`` fixture)."""
    flat = [c for group in cases for c in (group if isinstance(group, list) else [group])]

    @pytest.mark.parametrize("check", CHECKS)
    @pytest.mark.parametrize("case", flat, ids=str)
    def test_op(case, check, xb):
        run_check(case, check, xb)

    return test_op
