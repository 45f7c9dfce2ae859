"""What a leaf's ``.grad`` is after ``backward``: its own writable array in the leaf's dtype,
added to the old one atomically (threads), never aliased with another leaf's or the seed.

Also the engine's other promises to users: ``backward`` on a graph built under ``no_grad`` is an
error, a custom Function's outputs must be arrays of its inputs' library and device, the truth
of a Variable is the truth of its data, and the scalar-constant cache keeps ``-0.0``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import Function, Variable


def _scale_in_place(v, factor):
    """``v.data *= factor`` on any backend (the write a user makes into a gradient)."""
    data = v.data
    data[...] = data * factor


# --------------------------------------------------------------------------- aliasing
def test_leaves_fed_by_one_add_get_separate_gradients(xb):
    a, b, c = (xb.variable(np.ones(2)) for _ in range(3))
    F.sum((a + b) * c).backward()
    _scale_in_place(a.grad, 2.0)
    np.testing.assert_array_equal(xb.numpy(a.grad), [2.0, 2.0])
    np.testing.assert_array_equal(xb.numpy(b.grad), [1.0, 1.0])


def test_a_gradient_from_a_broadcast_is_writable(xb):
    x = xb.variable(np.ones((2, 3)))
    F.sum(x).backward()  # Sum's rule broadcasts gy: a read-only view before
    _scale_in_place(x.grad, 3.0)
    np.testing.assert_array_equal(xb.numpy(x.grad), np.full((2, 3), 3.0))


def test_a_leaf_gradient_is_not_the_seed_nor_a_retained_gradient(xb):
    x = xb.variable(np.ones(3))
    y = x + 1.0  # Add hands the seed to x unchanged
    z = F.reshape(y, (3,))
    z.backward(retain_grad=True)
    _scale_in_place(x.grad, 5.0)
    np.testing.assert_array_equal(xb.numpy(z.grad), np.ones(3))
    np.testing.assert_array_equal(xb.numpy(y.grad), np.ones(3))
    np.testing.assert_array_equal(xb.numpy(x.grad), np.full(3, 5.0))


def test_create_graph_gradients_are_separate_too(xb):
    a, b = xb.variable(np.ones(2)), xb.variable(np.ones(2))
    F.sum(a + b).backward(create_graph=True)
    assert a.grad is not b.grad
    assert a.grad.data is not b.grad.data
    _scale_in_place(a.grad, 4.0)
    np.testing.assert_array_equal(xb.numpy(b.grad), [1.0, 1.0])


# --------------------------------------------------------------------------- dtype
def test_a_float32_leaf_gets_a_float32_gradient_from_float64_math(xb):
    w = xb.variable(np.ones(3, dtype=np.float32))
    (w * xb.asarray(np.full(3, 0.1))).sum().backward()  # float64 operand: float64 math
    assert w.grad.dtype == xb.dtype("float32")
    np.testing.assert_allclose(xb.numpy(w.grad), np.full(3, 0.1, dtype=np.float32))
    # and an optimizer step then works on every backend (strict refused float32 -= float64)
    p = dz.Parameter(w.data)
    (p * xb.asarray(np.full(3, 0.1))).sum().backward()
    dz.optimizers.SGD(lr=1.0).setup(_holder(p)).update()
    assert p.dtype == xb.dtype("float32")


def _holder(p):
    model = dz.Model()
    model.p = p
    return model


def test_create_graph_casts_differentiably(xb):
    w = xb.variable(np.array([2.0], dtype=np.float32))
    c = xb.asarray(np.array([3.0]))  # float64
    (w * w * c).sum().backward(create_graph=True)
    gw = w.grad
    assert gw.dtype == xb.dtype("float32")
    np.testing.assert_allclose(xb.numpy(gw), [12.0])
    w.cleargrad()
    gw.sum().backward()  # d/dw (6 w^2)' = 6 * 2 = 12... of 2*w*c: 2*c = 6
    assert w.grad.dtype == xb.dtype("float32")
    np.testing.assert_allclose(xb.numpy(w.grad), [6.0])


def test_an_integer_leaf_keeps_a_float_gradient():
    # Truncating 0.5 to an integer gradient would be wrong; the cast is for floating leaves.
    x = Variable(np.array([3, 4]))
    (x * 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5])


def test_gradients_still_add_up_across_backward_calls(xb):
    x = xb.variable(np.array([1.0, 2.0], dtype=np.float32))
    for _ in range(3):
        F.sum(x * x).backward()
    assert x.grad.dtype == xb.dtype("float32")
    np.testing.assert_allclose(xb.numpy(x.grad), [6.0, 12.0])


# --------------------------------------------------------------------------- threads
def test_concurrent_backward_into_a_shared_parameter_loses_no_update():
    w = dz.Parameter(np.ones(3, dtype=np.float32))
    threads, passes = 8, 200
    start = threading.Barrier(threads)

    def work():
        start.wait(timeout=30)
        for _ in range(passes):
            h = Variable(np.ones(3, dtype=np.float32))
            for _ in range(20):  # a longer graph widens the window between read and write
                h = F.tanh(h)
            (F.sum(h) + F.sum(w * 2.0)).backward()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    np.testing.assert_array_equal(w.grad.data, np.full(3, 2.0 * threads * passes))


# --------------------------------------------------------------------------- no_grad graphs
def test_backward_on_a_no_grad_result_is_an_error(xb):
    x = xb.variable(np.ones(2))
    with dz.no_grad():
        loss = F.sum(x * 2.0)
    assert not loss.requires_grad
    with pytest.raises(RuntimeError, match="no_grad"):
        loss.backward()
    assert x.grad is None


def test_a_users_own_leaf_still_backpropagates_to_itself(xb):
    x = xb.variable(np.array(3.0))
    x.backward()  # DeZero: a leaf's gradient is ones
    np.testing.assert_array_equal(xb.numpy(x.grad), 1.0)


# --------------------------------------------------------------------------- custom outputs
class _Returns(Function):
    def __init__(self, value):
        self.value = value

    def forward(self, x):
        return self.value


@pytest.mark.parametrize(
    "value, kind",
    [([1.0, 2.0], "list"), (None, "NoneType"), (1.5, "float"), ((), "empty tuple")],
)
def test_a_forward_returning_a_non_array_is_refused(value, kind):
    with pytest.raises(TypeError, match=f"_Returns.forward returned.*{kind}|{kind}"):
        _Returns(value)(Variable(np.ones(2)))


def test_a_forward_returning_another_librarys_array_is_refused():
    strict = pytest.importorskip("array_api_strict")
    x = Variable(strict.asarray([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"_Returns.forward returned output 0 on numpy"):
        _Returns(np.ones(2))(x)


def test_a_forward_returning_another_devices_array_is_refused():
    strict = pytest.importorskip("array_api_strict")
    x = Variable(strict.asarray([1.0, 2.0], device=strict.Device("device1")))
    other = strict.asarray([1.0, 2.0])  # CPU_DEVICE
    with pytest.raises(dz.DeviceMismatchError, match="_Returns.forward returned output 0"):
        _Returns(other)(x)


# --------------------------------------------------------------------------- small semantics
def test_truth_of_a_variable_is_the_truth_of_its_data(xb):
    assert not Variable(xb.asarray(np.array([0.0])))
    assert Variable(xb.asarray(np.array([2.0])))
    assert not Variable(xb.asarray(np.array(0.0)))  # 0-d: no "len() of a 0-d Variable"
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        bool(Variable(xb.asarray(np.array([1.0, 2.0]))))  # ambiguous, as in NumPy/torch


def test_minus_zero_is_not_confused_with_zero_by_the_constant_cache():
    x = Variable(np.ones(2))
    _ = x * 0.0  # would cache the constant 0.0
    with np.errstate(divide="ignore"):
        z = 1.0 / (x * -0.0)
    np.testing.assert_array_equal(z.data, [-np.inf, -np.inf])


def test_a_torch_tensor_that_records_its_own_graph_is_taken_detached():
    torch = pytest.importorskip("torch")
    t = torch.ones(3, requires_grad=True)
    w = dz.Parameter(t)
    assert not w.data.requires_grad
    assert w.data.data_ptr() == t.data_ptr()  # the same memory, not a copy
    model = dz.Model()
    model.w = w
    F.sum(w * 2.0).backward()
    dz.optimizers.SGD(lr=0.5).setup(model).update()  # torch refused in-place on a leaf before
    np.testing.assert_array_equal(w.data.numpy(), [0.0, 0.0, 0.0])
    assert t.grad is None  # torch's own autograd never ran


# --------------------------------------------------------------------------- in-place updates
def _model_with(p):
    model = dz.Model()
    model.p = p
    return model


def test_backward_after_an_optimizer_step_on_a_saved_parameter_is_refused(xb):
    p = dz.Parameter(xb.asarray(np.array([1.0, 2.0])), name="w")
    optimizer = dz.optimizers.SGD(lr=0.1).setup(_model_with(p))
    loss = F.sum(p * p)  # Mul saved p's data
    loss.backward(retain_grad=True)
    optimizer.update()
    p.cleargrad()
    with pytest.raises(RuntimeError, match=r"Mul: Parameter 'w'.*updated in place"):
        loss.backward()


def test_replacing_a_saved_parameters_data_is_refused(xb):
    p = dz.Parameter(xb.asarray(np.array([1.0, 2.0])))
    y = F.sum(p * p)
    p.data = xb.asarray(np.array([5.0, 5.0]))
    with pytest.raises(RuntimeError, match="updated in place"):
        y.backward()


@pytest.mark.parametrize("make", [lambda x: x * x, lambda x: x * 2.0, lambda x: F.exp(x)])
def test_giving_a_variable_data_of_another_shape_before_backward_is_refused(xb, make):
    # Was a raw broadcast error without the op, or (x * 2.0 with (1,) data) a silently
    # summed gradient of the wrong shape's data.
    x = Variable(xb.asarray(np.ones(3)), name="x")
    y = F.sum(make(x))
    x.data = xb.asarray(np.ones(1))
    with pytest.raises(RuntimeError, match=r"Variable 'x' \(input 0\) was given data of another"):
        y.backward()


def test_new_data_of_another_shape_before_the_forward_pass_is_fine(xb):
    x = Variable(xb.asarray(np.ones(3)))
    F.sum(x * x).backward()
    x.data = xb.asarray(np.full(4, 2.0))  # e.g. a smaller last batch into a reused Variable
    x.cleargrad()
    F.sum(x * x).backward()
    np.testing.assert_array_equal(xb.numpy(x.grad), [4.0] * 4)


def test_the_usual_loop_is_not_affected(xb):
    p = dz.Parameter(xb.asarray(np.array([1.0, 2.0])))
    optimizer = dz.optimizers.SGD(lr=0.25).setup(_model_with(p))
    for _ in range(3):  # forward, backward, update: each graph is built after the last step
        p.cleargrad()
        F.sum(p * p).backward()
        optimizer.update()
    np.testing.assert_allclose(xb.numpy(p), np.array([1.0, 2.0]) * 0.5**3)


def test_raw_writes_into_an_array_are_not_detected():
    # Documented limit: a write into the array itself bypasses dezero_xp (NumPy has no hook).
    x = Variable(np.array([1.0, 2.0]))
    y = x * x
    x.data[...] = 5.0
    F.sum(y).backward()
    np.testing.assert_array_equal(x.grad.data, [10.0, 10.0])  # uses the new data: not caught
