"""The declarative op checker: one ``op_case(...)`` line per op, expanded over every check.

Usable on your own ops as on the built-in ones::

    from dezero_xp.testing import check_op, op_case
    for case in op_case("my_tanh", my_tanh, np.tanh, shapes=[(3, 2)]):
        check_op(case)                      # every check, on the default (NumPy) backend

In a pytest suite, ``make_op_tests(CASES)`` returns a test function parametrized over the
cases and :data:`CHECKS`; it needs a fixture ``xb`` giving the backend under test (a
:class:`BackendHelper` or anything with the same methods). The checks:

- ``forward``: float32 and float64 results against the NumPy reference;
- ``grad``: backward against central differences (float64, see ``gradcheck``), and the
  first-order pass against the ``create_graph=True`` pass, also for non-finite upstream
  gradients (inf and nan): the one rule gives one answer in both kinds of pass;
- ``double``: gradient of the gradient (float64), when the case says the op supports it;
- ``invariants``: float32 stays float32 (output and gradients), results and gradients stay on
  the input's backend, the inputs' data is not mutated by forward or backward.

A check a case excludes raises ``unittest.SkipTest`` (pytest reports it as skipped).

May import: numpy, dezero_xp._config, dezero_xp.backend, dezero_xp.core and
dezero_xp.testing.gradcheck (pytest only inside :func:`make_op_tests`).
"""

from __future__ import annotations

import unittest
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dezero_xp._config import no_grad
from dezero_xp.backend import get_backend, to_host
from dezero_xp.core import Variable
from dezero_xp.testing.gradcheck import check_backward, check_double_backward

__all__ = ["CHECKS", "BackendHelper", "OpCase", "check_op", "make_op_tests", "op_case", "run_check"]

CHECKS = ("forward", "grad", "double", "invariants")
FORWARD_TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


class BackendHelper:
    """A backend plus what the checks need to feed and read it (``xb`` in the test suite)."""

    def __init__(self, device=None, name: str | None = None):
        self.backend = get_backend(device)
        self.name = name or self.backend.name
        self.xp = self.backend.xp

    def __repr__(self):
        return f"BackendHelper({self.name})"

    def asarray(self, host):
        """A host value (NumPy array, list or scalar) copied onto this backend."""
        return self.backend.from_host(np.asarray(host))

    def variable(self, host, **kwargs):
        """A Variable on this backend from host data."""
        return Variable(self.asarray(host), **kwargs)

    @staticmethod
    def numpy(x):
        """A Variable or array of any backend as a NumPy array."""
        if isinstance(x, Variable):
            x = x.data
        return np.asarray(to_host(x))

    def dtype(self, name: str):
        """The backend's dtype object for a NumPy dtype name ("float32", "int64", ...)."""
        return getattr(self.xp, name)


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


def _check_forward(case, xb, dtype):
    host_inputs = [x.astype(dtype) for x in case.inputs()]
    raw, consts = _consts(case, xb)
    xs = [Variable(xb.asarray(h)) for h in host_inputs]
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
    xs = [Variable(a) for a in arrays]
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
    xs = [Variable(a) for a in inputs]
    (f(*xs) * weights).sum().backward(create_graph=create_graph)
    return [None if x.grad is None else x.grad.data for x in xs]


def _upstream_weights(shape, finite: bool) -> np.ndarray:
    weights = np.random.default_rng(7).standard_normal(shape)
    if not finite:
        flat = weights.reshape(-1)
        flat[0] = np.inf
        if flat.size > 1:
            flat[1] = np.nan
        if flat.size > 2:
            flat[2] = -np.inf
    return weights


def _check_both_passes_agree(case, f, inputs, xb):
    """The first-order pass and the create_graph pass run the same rule: the same gradients,
    for finite and for non-finite (inf, nan) upstream gradients alike."""
    with no_grad():
        shape = tuple(f(*[Variable(a) for a in inputs]).shape)
    for finite in (True, False):
        weights = xb.asarray(_upstream_weights(shape, finite))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # inf * 0 and friends, by design
            fast = _first_order_grads(f, inputs, weights, create_graph=False)
            graph = _first_order_grads(f, inputs, weights, create_graph=True)
        kind = "finite" if finite else "non-finite"
        for i, (a, b) in enumerate(zip(fast, graph)):
            assert (a is None) == (b is None), f"{case}: input {i} has a gradient on one pass only"
            if a is not None:
                np.testing.assert_allclose(
                    xb.numpy(a),
                    xb.numpy(b),
                    rtol=1e-10,
                    atol=1e-12,
                    equal_nan=True,
                    err_msg=f"{case}: first-order and create_graph passes disagree for input "
                    f"{i} ({kind} upstream gradient)",
                )


def run_check(case: OpCase, check: str, xb) -> None:
    """Run one check of one case on one backend (``unittest.SkipTest`` for excluded ones)."""
    if case.backends is not None and xb.name not in case.backends:
        raise unittest.SkipTest(f"{case} is not defined on {xb.name}")
    if check == "forward":
        _check_forward(case, xb, "float64")
        _check_forward(case, xb, "float32")
        return
    if check == "invariants":
        _check_invariants(case, xb)
        return
    if check == "double" and not case.double:
        raise unittest.SkipTest(f"{case.name} does not support double backward")
    _, consts = _consts(case, xb)
    inputs = [xb.asarray(h) for h in case.inputs()]

    def f(*xs):
        return case.fn(*xs, *consts)

    kwargs: dict[str, Any] = dict(rtol=case.rtol, atol=case.atol)
    if check == "grad":
        check_backward(f, inputs, **kwargs)
        _check_both_passes_agree(case, f, inputs, xb)
    elif check == "double":
        check_double_backward(f, inputs, **kwargs)
    else:
        raise ValueError(f"run_check: unknown check {check!r}; the checks are {CHECKS}")


def check_op(case: OpCase, device=None, checks=CHECKS) -> None:
    """Run ``checks`` of ``case`` on ``device`` (any spec ``get_backend`` takes; None: the
    default); skipped checks are left out. Raises AssertionError on the first failure."""
    xb = BackendHelper(device)
    for check in checks:
        try:
            run_check(case, check, xb)
        except unittest.SkipTest:
            continue


def make_op_tests(cases):
    """A pytest test function over ``cases`` x ``CHECKS`` (use with an ``xb`` fixture)."""
    import pytest  # noqa: PLC0415 - only test suites need pytest

    flat = [c for group in cases for c in (group if isinstance(group, list) else [group])]

    @pytest.mark.parametrize("check", CHECKS)
    @pytest.mark.parametrize("case", flat, ids=str)
    def test_op(case, check, xb):
        run_check(case, check, xb)

    return test_op
