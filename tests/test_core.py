"""The autodiff core (dezero_xp/core.py): Variable, Parameter, Function and the backward engine.

Graph order and accumulation, retain_grad, higher-order derivatives, no_grad, memory (graphs are
freed by reference counting alone), deep chains, device checks before any compute, input
validation, the Variable API (metadata, repr, operators, transfers).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import Function, Parameter, Variable
from dezero_xp import backend as backend_module
from dezero_xp.core import wrap_array


def host(x):
    """A Variable or array of any backend as a NumPy array."""
    return np.asarray(backend_module.to_host(x.data if isinstance(x, Variable) else x))


class RecordingDouble(Function):
    """``2 * x0 (+ x1 ...)``; records every forward call so tests can see whether it ran."""

    calls: list = []

    def forward(self, *xs):
        RecordingDouble.calls.append(len(xs))
        y = xs[0] * 2
        for x in xs[1:]:
            y = y + x
        return y

    def backward(self, gy):
        return tuple([gy * 2] + [gy] * (len(self.inputs) - 1))


@pytest.fixture
def recording():
    RecordingDouble.calls = []
    return RecordingDouble


# --------------------------------------------------------------------------- graph order


def test_diamond_graph_generation_order(xb):
    # DeZero step 16: y = (x^2)^2 + (x^2)^2 = 2 x^4, dy/dx = 8 x^3: 32 and 64 at x = 2.
    x = xb.variable(np.array(2.0))
    a = F.square(x)
    y = F.add(F.square(a), F.square(a))
    y.backward()
    assert host(y) == 32.0
    assert host(x.grad) == 64.0


def test_generation_numbers_follow_the_longest_path(xb):
    x = xb.variable(np.array(1.5))
    a = F.exp(x)
    b = F.sin(F.cos(a))  # two steps on one branch
    c = F.square(a)  # one step on the other
    y = b + c
    assert (x.generation, a.generation, c.generation, b.generation) == (0, 1, 2, 3)
    assert y.generation == 4
    y.backward()
    # dy/dx = (cos(cos(e^x)) * -sin(e^x) + 2 e^x) * e^x: only right if a's grad is complete
    # (both branches summed) before Exp's backward runs.
    ex = np.exp(1.5)
    expected = (np.cos(np.cos(ex)) * -np.sin(ex) + 2 * ex) * ex
    np.testing.assert_allclose(host(x.grad), expected, rtol=1e-12)


def test_reused_variable_accumulates_within_one_backward(xb):
    x = xb.variable(np.array(3.0))
    y = x + x + x
    y.backward()
    assert host(x.grad) == 3.0
    x2 = xb.variable(np.array(3.0))
    z = x2 * x2
    z.backward()
    assert host(x2.grad) == 6.0


def test_gradients_accumulate_across_backward_calls_until_cleargrad(xb):
    # DeZero step 14: add(x, x) twice gives 2 then 4; with cleargrad in between, 2 again.
    x = xb.variable(np.array(3.0))
    F.add(x, x).backward()
    assert host(x.grad) == 2.0
    F.add(x, x).backward()
    assert host(x.grad) == 4.0
    x.cleargrad()
    assert x.grad is None
    F.add(x, x).backward()
    assert host(x.grad) == 2.0


def test_retain_grad(xb):
    x = xb.variable(np.array(0.5))
    a = F.square(x)
    b = F.exp(a)
    y = F.square(b)
    y.backward()
    assert a.grad is None and b.grad is None
    assert x.grad is not None

    x = xb.variable(np.array(0.5))
    a = F.square(x)
    b = F.exp(a)
    y = F.square(b)
    y.backward(retain_grad=True)
    eb = np.exp(0.25)
    np.testing.assert_allclose(host(b.grad), 2 * eb, rtol=1e-14)
    np.testing.assert_allclose(host(a.grad), 2 * eb * eb, rtol=1e-14)
    assert host(y.grad) == 1.0


def test_backward_seed_is_ones_of_the_output_shape_and_dtype(xb):
    x = xb.variable(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    y = x * 3.0
    y.backward(retain_grad=True)
    assert y.grad.dtype == xb.dtype("float32") and y.grad.shape == (3,)
    np.testing.assert_array_equal(host(x.grad), [3.0, 3.0, 3.0])


def test_backward_on_leaf_sets_grad_and_stops(xb):
    x = xb.variable(np.array([2.0, 5.0]))
    x.backward()
    np.testing.assert_array_equal(host(x.grad), [1.0, 1.0])


# --------------------------------------------------------------------------- higher order


def _nth_derivatives(x, y, n):
    """[dy/dx, d2y/dx2, ...] (n of them) by repeated backward(create_graph=True)."""
    y.backward(create_graph=True)
    out = []
    for i in range(n):
        gx = x.grad
        out.append(host(gx))
        if i == n - 1:
            break
        x.cleargrad()
        gx.backward(create_graph=True)
    return out


@pytest.mark.parametrize(
    "fn, closed_forms",
    [
        (F.sin, [np.cos, lambda t: -np.sin(t), lambda t: -np.cos(t), np.sin]),
        (
            F.tanh,
            [
                lambda t: 1 - np.tanh(t) ** 2,
                lambda t: -2 * np.tanh(t) * (1 - np.tanh(t) ** 2),
                lambda t: -2 + 8 * np.tanh(t) ** 2 - 6 * np.tanh(t) ** 4,
                lambda t: 16 * np.tanh(t) - 40 * np.tanh(t) ** 3 + 24 * np.tanh(t) ** 5,
            ],
        ),
        (
            lambda x: x**4 - 2 * x**2,
            [
                lambda t: 4 * t**3 - 4 * t,
                lambda t: 12 * t**2 - 4,
                lambda t: 24 * t,
                lambda t: np.full_like(t, 24.0),
            ],
        ),
    ],
    ids=["sin", "tanh", "quartic"],
)
def test_create_graph_to_fourth_derivative(xb, fn, closed_forms):
    t = np.linspace(-1.7, 1.9, 7)
    x = xb.variable(t)
    derivatives = _nth_derivatives(x, fn(x), 4)
    for order, (got, form) in enumerate(zip(derivatives, closed_forms), start=1):
        np.testing.assert_allclose(got, form(t), rtol=1e-10, atol=1e-10, err_msg=f"order {order}")


def test_without_create_graph_the_gradient_has_no_graph(xb):
    x = xb.variable(np.array(2.0))
    (x**3).backward()
    assert x.grad.creator is None
    x2 = xb.variable(np.array(2.0))
    (x2**3).backward(create_graph=True)
    assert x2.grad.creator is not None


def test_double_backprop_gradient_penalty_shape(xb):
    # z = (dy/dx)^3 + y with y = x^2: dz/dx = 3 (2x)^2 * 2 + 2x = 24 x^2 + 2x = 100 at x=2.
    x = xb.variable(np.array(2.0))
    y = x**2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx**3 + y
    z.backward()
    assert host(x.grad) == 100.0


# --------------------------------------------------------------------------- no_grad, config


def test_no_grad_builds_no_graph(xb, recording):
    x = xb.variable(np.array([1.0, 2.0]))
    with dz.no_grad():
        f = recording()
        f_ref = weakref.ref(f)
        y = f(x)
        del f
    assert recording.calls == [1]
    assert y.creator is None and y.generation == 0
    assert f_ref() is None, "no_grad must not keep the Function alive"
    np.testing.assert_array_equal(host(y), [2.0, 4.0])
    # and outside the block the graph is built again
    z = recording()(x)
    assert isinstance(z.creator, recording)


def test_config_is_thread_local():
    """no_grad in one thread leaves graph building on in another running at the same time."""
    inside = threading.Barrier(2)
    checked = threading.Barrier(2)
    results = {}

    def worker_without_grad():
        with dz.no_grad():
            inside.wait(timeout=10)  # both threads are now in their blocks
            y = F.exp(Variable(np.array(1.0)))
            results["no_grad_thread"] = (dz.Config.enable_backprop, y.creator is None)
            checked.wait(timeout=10)

    def worker_with_grad():
        inside.wait(timeout=10)
        y = F.exp(Variable(np.array(1.0)))
        results["grad_thread"] = (dz.Config.enable_backprop, y.creator is not None)
        checked.wait(timeout=10)

    threads = [
        threading.Thread(target=worker_without_grad),
        threading.Thread(target=worker_with_grad),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == {"no_grad_thread": (False, True), "grad_thread": (True, True)}
    assert dz.Config.enable_backprop is True


def test_backward_in_another_thread_does_not_change_this_threads_config():
    in_backward = threading.Barrier(2)
    release = threading.Barrier(2)
    seen = {}

    class Pausing(Function):
        def forward(self, x):
            return x

        def backward(self, gy):
            seen["worker_flag_in_backward"] = dz.Config.enable_backprop
            in_backward.wait(timeout=10)
            release.wait(timeout=10)
            return gy

    def worker():
        Pausing()(Variable(np.array(1.0))).backward()  # create_graph=False: flag off there

    t = threading.Thread(target=worker)
    t.start()
    in_backward.wait(timeout=10)
    seen["main_flag"] = dz.Config.enable_backprop
    release.wait(timeout=10)
    t.join(timeout=20)
    assert seen == {"worker_flag_in_backward": False, "main_flag": True}


# --------------------------------------------------------------------------- memory


def test_intermediates_are_freed_without_the_cycle_collector(xb):
    gc.collect()
    gc.disable()
    try:
        x = xb.variable(np.ones(4))
        a = F.exp(x)
        b = F.sin(a)
        y = F.square(b)
        refs = {
            "a": weakref.ref(a),
            "b": weakref.ref(b),
            "Exp": weakref.ref(a.creator),
            "Sin": weakref.ref(b.creator),
            "Square": weakref.ref(y.creator),
        }
        del a, b
        assert all(r() is not None for r in refs.values()), "y keeps its graph alive"
        y.backward()
        assert all(r() is not None for r in refs.values())
        del y
        alive = [name for name, r in refs.items() if r() is not None]
        assert alive == [], f"kept alive by a reference cycle: {alive}"
        assert x.grad is not None  # the leaf and its gradient survive
    finally:
        gc.enable()


def test_outputs_are_held_weakly_by_their_creator(xb):
    x = xb.variable(np.ones(3))
    y = F.exp(x)
    f = y.creator
    assert f.outputs[0]() is y
    del y
    assert f.outputs[0]() is None


def test_long_chain_backpropagates_and_is_freed_without_recursion():
    """A 100,000-op chain: iterative backward, and freed without RecursionError or a crash."""
    script = textwrap.dedent(
        """
        import gc, sys, weakref
        import numpy as np
        import dezero_xp as dz
        import dezero_xp.functions as F
        gc.disable()
        sys.setrecursionlimit(200)
        x = dz.Variable(np.array(0.5))
        y = F.neg(x)
        first = weakref.ref(y)
        for _ in range(100_000):
            y = F.neg(y)
        assert y.generation == 100_001, y.generation
        y.backward()
        assert float(x.grad.data) == -1.0, x.grad  # (-1)^100001
        del y
        assert first() is None, "chain not freed"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    "make_inputs, first, second",
    [
        (
            lambda: (Variable(np.ones(2)), Variable(np.ones(2), device="strict")),
            "numpy:cpu",
            "strict:CPU_DEVICE",
        ),
        (
            lambda: (
                Variable(np.ones(2), device="strict"),
                Variable(np.ones(2), device="strict:device1"),
            ),
            "strict:CPU_DEVICE",
            "strict:device1",
        ),
        (
            lambda: (Variable(np.ones(2), device="strict:device1"), np.ones(2)),
            "strict:device1",
            "numpy:cpu",
        ),
    ],
    ids=["numpy+strict", "strict+strict:device1", "strict:device1+ndarray"],
)
def test_device_mismatch_raises_before_forward(recording, make_inputs, first, second):
    pytest.importorskip("array_api_strict")
    a, b = make_inputs()
    with pytest.raises(dz.DeviceMismatchError) as info:
        recording()(a, b)
    assert recording.calls == [], "forward ran before the device check"
    message = str(info.value)
    assert "RecordingDouble" in message
    assert first in message and second in message
    assert f".to('{first}')" in message  # the fix


def test_device_mismatch_numpy_array_and_torch_tensor(recording):
    torch = pytest.importorskip("torch")
    with pytest.raises(dz.DeviceMismatchError) as info:
        recording()(np.ones(2), torch.ones(2, dtype=torch.float64))
    assert recording.calls == []
    assert "RecordingDouble" in str(info.value)
    assert "numpy:cpu" in str(info.value) and "torch:cpu" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_device_mismatch_through_operators():
    pytest.importorskip("array_api_strict")
    a = Variable(np.ones(2), device="strict:device1")
    b = Variable(np.ones(2), device="strict")
    with pytest.raises(dz.DeviceMismatchError, match="Add"):
        a + b
    with pytest.raises(dz.DeviceMismatchError, match="Mul"):
        b * a


def test_python_scalars_mix_with_any_backend(xb):
    x = xb.variable(np.array([1.0, 2.0]))
    y = 3 * x - 1.5
    assert y.backend is xb.backend
    np.testing.assert_array_equal(host(y), [1.5, 4.5])


def test_backward_returning_a_gradient_on_another_device_is_caught():
    pytest.importorskip("array_api_strict")

    class WrongDevice(Function):
        def forward(self, x):
            return x

        def backward(self, gy):
            return Variable(np.ones(2))  # NumPy, though the input is a strict array

    x = Variable(np.ones(2), device="strict:device1")
    with pytest.raises(dz.DeviceMismatchError, match="WrongDevice.backward"):
        WrongDevice()(x).backward()


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "data, pattern",
    [
        (1.0, r"Variable: data must be an array, got float"),
        ([1, 2], r"Variable: data must be an array, got list"),
        ("x", r"unsupported array type builtins\.str"),
        (object(), r"unsupported array type builtins\.object"),
        ({"a": 1}, r"unsupported array type builtins\.dict"),
    ],
    ids=["float", "list", "str", "object", "dict"],
)
def test_variable_rejects_non_arrays(data, pattern):
    with pytest.raises(TypeError, match=pattern):
        Variable(data)


def test_variable_accepts_none_and_numpy_scalars():
    assert Variable(None).data is None
    v = Variable(np.float64(2.5))
    assert isinstance(v.data, np.ndarray) and v.data.shape == () and v.data == 2.5


def test_data_setter_validates():
    x = Variable(np.array(1.0))
    with pytest.raises(TypeError, match="Variable.data"):
        x.data = 2.0
    x.data = np.array([1.0, 2.0])
    assert x.shape == (2,)


def test_ops_reject_scalars_only():
    with pytest.raises(TypeError, match=r"Exp: needs at least one array or Variable input"):
        F.exp(1.0)


def test_ops_reject_lists():
    with pytest.raises(TypeError, match=r"Add: needs at least one array"):
        F.add([1.0], [2.0])
    x = Variable(np.ones(2))
    with pytest.raises(TypeError, match=r"Add: input 1 is a list, not an array"):
        x + [1.0, 2.0]
    with pytest.raises(TypeError, match=r"Mul: input 1 is a str"):
        F.mul(x, "2")


def test_shape_mismatch_names_op_and_shapes(xb):
    a = xb.variable(np.ones((2, 3)))
    b = xb.variable(np.ones((4,)))
    # ValueError on NumPy and the standard's libraries; torch raises RuntimeError.
    with pytest.raises((ValueError, RuntimeError)) as info:
        a + b
    message = str(info.value)
    assert message.startswith("Add:")
    assert "(2, 3)" in message and "(4,)" in message


def test_matmul_shape_mismatch_names_op_and_shapes(xb):
    a = xb.variable(np.ones((2, 3)))
    b = xb.variable(np.ones((4, 2)))
    with pytest.raises((ValueError, RuntimeError)) as info:
        a @ b
    assert "matmul" in str(info.value).lower()
    assert "(2, 3)" in str(info.value) and "(4, 2)" in str(info.value)


@pytest.mark.parametrize("error", [ValueError, TypeError, IndexError, RuntimeError])
def test_errors_in_forward_name_the_op_and_inputs(error):
    """Library errors (torch raises RuntimeError for bad shapes) gain the op and the inputs."""

    class Raising(Function):
        def forward(self, x):
            raise error("library says no")

    with pytest.raises(error) as info:
        Raising()(Variable(np.ones((2, 3), dtype=np.float32)))
    assert str(info.value) == "Raising: library says no [inputs: (2, 3) float32 on numpy:cpu]"
    assert type(info.value.__cause__) is error


def test_input_variable_without_data():
    with pytest.raises(ValueError, match="Exp: input 0 is a Variable with no data"):
        F.exp(Variable(None))
    with pytest.raises(ValueError, match="Add: input 1 is a Variable with no data"):
        F.add(Variable(np.ones(2)), Variable(None))
    emptied = Variable(np.ones(2))
    emptied.data = None  # keeps its backend, loses its data
    with pytest.raises(ValueError, match="Mul: input 1 is a Variable with no data"):
        F.mul(Variable(np.ones(2)), emptied)
    with pytest.raises(ValueError, match="holds no data"):
        Variable(None).backward()


def test_function_instance_is_single_use(recording):
    f = recording()
    f(Variable(np.array(1.0)))
    with pytest.raises(RuntimeError, match=r"RecordingDouble instance was already called"):
        f(Variable(np.array(1.0)))
    assert recording.calls == [1]


def test_function_without_forward_or_backward():
    class Empty(Function):
        pass

    with pytest.raises(NotImplementedError, match="Empty.forward"):
        Empty()(Variable(np.array(1.0)))


def _bad_backward(result):
    class BadBackward(Function):
        def forward(self, x):
            return x * 1

        def backward(self, gy):
            return result(gy)

    return BadBackward


@pytest.mark.parametrize(
    "result, error, pattern",
    [
        (
            lambda gy: F.concat([gy, gy]),
            RuntimeError,
            r"BadBackward.backward returned a gradient of shape \(6,\) for an input "
            r"of shape \(3,\)",
        ),
        (
            lambda gy: gy.data,
            TypeError,
            r"BadBackward.backward returned ndarray; backward must "
            r"return Variables",
        ),
        (
            lambda gy: (gy, gy),
            RuntimeError,
            r"BadBackward.backward returned 2 gradient\(s\) for "
            r"1 input\(s\)",
        ),
    ],
    ids=["wrong-shape", "raw-array", "wrong-count"],
)
def test_backward_results_are_checked(result, error, pattern):
    x = Variable(np.ones(3))
    y = _bad_backward(result)()(x)
    with pytest.raises(error, match=pattern):
        y.backward()


def test_backward_may_return_parameters_and_none():
    class Mixed(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return Parameter(gy.data * 5), None

    a, b = Variable(np.array(1.0)), Variable(np.array(2.0))
    Mixed()(a, b).backward()
    assert float(a.grad.data) == 5.0
    assert b.grad is None


# --------------------------------------------------------------------------- unchain, names


def test_unchain_stops_backward_there(xb):
    x = xb.variable(np.array(2.0))
    a = F.square(x)
    y = F.exp(a)
    a.unchain()
    assert a.creator is None
    y.backward(retain_grad=True)
    np.testing.assert_allclose(host(a.grad), np.exp(4.0))
    assert x.grad is None


def test_unchain_backward_cuts_the_whole_graph(xb):
    x = xb.variable(np.array(0.3))
    a = F.sin(x)
    b = F.exp(a)
    c = F.cos(a)
    y = b + c
    y.unchain_backward()
    assert [v.creator for v in (y, b, c, a)] == [None, None, None, None]
    y.backward()
    assert x.grad is None and a.grad is None
    assert host(y.grad) == 1.0


def test_unchain_backward_on_a_leaf_is_a_no_op():
    x = Variable(np.array(1.0))
    x.unchain_backward()
    assert x.creator is None


def test_names():
    x = Variable(np.array(1.0), name="x")
    assert x.name == "x"
    assert Variable(np.array(1.0)).name is None
    y = F.exp(x)
    assert y.name is None
    y.name = "y"
    assert y.name == "y"


# --------------------------------------------------------------------------- metadata, repr


def test_metadata(xb):
    x = xb.variable(np.zeros((2, 3, 4), dtype=np.float32))
    assert x.shape == (2, 3, 4) and isinstance(x.shape, tuple)
    assert x.ndim == 3 and x.size == 24 and len(x) == 2
    assert x.dtype == xb.dtype("float32")
    assert x.backend is xb.backend
    assert x.xp is xb.xp
    assert x.device == xb.backend.device


def test_metadata_of_0d_variable(xb):
    x = xb.variable(np.array(1.0))
    assert x.shape == () and x.ndim == 0 and x.size == 1
    with pytest.raises(TypeError, match="len"):
        len(x)


def test_device_compares_equal_to_its_string():
    x = Variable(np.ones(2))
    assert x.device == "cpu"
    assert x.device != "cuda:0"
    assert str(x.device) == "cpu"


def test_repr_like_dezero():
    assert repr(Variable(np.array(1.0))) == "variable(1.0)"
    assert repr(Variable(None)) == "variable(None)"
    assert repr(Variable(np.array([[1, 2, 3], [4, 5, 6]]))) == (
        "variable([[1 2 3]\n          [4 5 6]])"
    )


def test_repr_of_other_backends_names_the_device():
    pytest.importorskip("array_api_strict")
    x = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]), device="strict:device1")
    assert repr(x) == "variable([[1. 2.]\n          [3. 4.]], device='strict:device1')"


# --------------------------------------------------------------------------- operators


class _Probe:
    """Tells whether an expression puts the other operand on the left (a reflected operator)."""

    def _left(self, other):
        return "left"

    def _reflected(self, other):
        return "reflected"

    __add__ = __sub__ = __mul__ = __truediv__ = __pow__ = _left
    __radd__ = __rsub__ = __rmul__ = __rtruediv__ = __rpow__ = _reflected

    def __neg__(self):
        return "left"


@pytest.mark.parametrize(
    "expression, expected",
    [
        (lambda x, c: x + c, lambda x, c: x + c),
        (lambda x, c: c + x, lambda x, c: c + x),
        (lambda x, c: x - c, lambda x, c: x - c),
        (lambda x, c: c - x, lambda x, c: c - x),
        (lambda x, c: x * c, lambda x, c: x * c),
        (lambda x, c: c * x, lambda x, c: c * x),
        (lambda x, c: x / c, lambda x, c: x / c),
        (lambda x, c: c / x, lambda x, c: c / x),
        (lambda x, c: x**c, lambda x, c: x**c),
        (lambda x, c: c**x, lambda x, c: c**x),
        (lambda x, c: -x, lambda x, c: -x),
        (lambda x, c: x**3, lambda x, c: x**3),
    ],
    ids=["add", "radd", "sub", "rsub", "mul", "rmul", "div", "rdiv", "pow", "rpow", "neg", "pow3"],
)
@pytest.mark.parametrize("other", ["variable", "scalar", "ndarray-or-native"])
def test_operators_on_both_sides(xb, expression, expected, other):
    h = np.array([0.5, 1.5, 2.0])
    c_host = np.array([1.25, 0.75, 2.5])
    x = xb.variable(h)
    if other == "variable":
        c = xb.variable(c_host)
    elif other == "scalar":
        c, c_host = 1.25, 1.25
    else:
        c = xb.asarray(c_host)  # an ndarray for numpy, the backend's own array otherwise
        if xb.name.startswith("strict") and expression(_Probe(), None) == "reflected":
            # array-api-strict's operators raise TypeError on unknown operands instead of
            # returning NotImplemented, so Python never tries Variable's reflected method.
            with pytest.raises(TypeError, match="Expected Array or Python scalar"):
                expression(x, c)
            return
    y = expression(x, c)
    assert isinstance(y, Variable)
    assert y.backend is xb.backend
    np.testing.assert_allclose(host(y), expected(h, c_host), rtol=1e-14)
    y.backward()
    assert x.grad.shape == x.shape


def test_ndarray_on_the_left_dispatches_to_variable():
    x = Variable(np.array([1.0, 2.0]))
    for y in (
        np.array(2.0) * x,
        np.array(2.0) + x,
        np.array(2.0) - x,
        np.array(2.0) / x,
        np.array(2.0) ** x,
        np.ones((2, 2)) @ x,
    ):
        assert isinstance(y, Variable), type(y)
    y = np.array(2.0) * x
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    assert Variable.__array_ufunc__ is None
    assert Variable.__array_priority__ > np.ndarray([]).__array_priority__


def test_matmul_operator_both_sides(xb):
    a_h = np.arange(6.0).reshape(2, 3)
    b_h = np.arange(12.0).reshape(3, 4) / 7
    a, b = xb.variable(a_h), xb.variable(b_h)
    np.testing.assert_allclose(host(a @ b), a_h @ b_h)
    np.testing.assert_allclose(host(a @ xb.asarray(b_h)), a_h @ b_h)
    if not xb.name.startswith("strict"):  # strict arrays refuse foreign right operands
        np.testing.assert_allclose(host(xb.asarray(a_h) @ b), a_h @ b_h)
    y = a @ b
    y.backward()
    np.testing.assert_allclose(host(a.grad), np.ones((2, 4)) @ b_h.T)
    np.testing.assert_allclose(host(b.grad), a_h.T @ np.ones((2, 4)))


def test_getitem_operator(xb):
    h = np.arange(12.0).reshape(3, 4)
    x = xb.variable(h)
    y = x[1:, ::2]
    np.testing.assert_array_equal(host(y), h[1:, ::2])
    y.backward()
    expected = np.zeros_like(h)
    expected[1:, ::2] = 1.0
    np.testing.assert_array_equal(host(x.grad), expected)
    x.cleargrad()
    row = x[1, ...]
    np.testing.assert_array_equal(host(row), h[1])


def test_float32_stays_float32(xb):
    x = xb.variable(np.array([1.0, 2.0], dtype=np.float32))
    y = 2.0 * x + 1
    z = (y / 3.0 - 0.5) ** 2
    assert y.dtype == xb.dtype("float32") and z.dtype == xb.dtype("float32")
    z.backward(create_graph=True)
    assert x.grad.dtype == xb.dtype("float32")
    gx = x.grad
    x.cleargrad()
    gx.backward()
    assert x.grad.dtype == xb.dtype("float32")


def test_integer_scalars_keep_integer_arrays_integer(xb):
    x = xb.variable(np.array([1, 2, 3], dtype=np.int64))
    y = x * 2 + 1
    assert y.dtype == xb.dtype("int64")
    np.testing.assert_array_equal(host(y), [3, 5, 7])


# --------------------------------------------------------------------------- transfers


def test_to_moves_data_and_grad_in_place(xb):
    x = Variable(np.array([1.0, 2.0]))
    F.square(x).backward()
    same = x.to(xb.backend)
    assert same is x
    assert x.backend is xb.backend and x.grad.backend is xb.backend
    np.testing.assert_array_equal(host(x), [1.0, 2.0])
    np.testing.assert_array_equal(host(x.grad), [2.0, 4.0])
    x.to_cpu()
    assert type(x.data) is np.ndarray and x.device == "cpu"
    assert type(x.grad.data) is np.ndarray


def test_variable_constructor_device_copies_explicitly(xb):
    h = np.array([1.0, 2.0])
    x = Variable(h, device=xb.backend)
    assert x.backend is xb.backend
    np.testing.assert_array_equal(host(x), h)
    if xb.name != "numpy":
        h[0] = 99.0
        assert host(x)[0] == 1.0, "the device copy must not share the host buffer"


def test_to_gpu_falls_back_with_a_warning_without_cuda():
    if backend_module.cuda_available():
        pytest.skip("a usable CUDA device is present: to_gpu does not fall back here")
    x = Variable(np.array([1.0, 2.0]))
    with pytest.warns(dz.DeviceFallbackWarning, match="using the CPU"):
        assert x.to_gpu() is x
    assert type(x.data) is np.ndarray


@pytest.mark.gpu
def test_to_gpu_moves_to_cuda():
    if not backend_module.cuda_available():
        pytest.skip(f"no usable CUDA device: {backend_module._cuda_status()[1]}")
    x = Variable(np.array([1.0, 2.0])).to_gpu()
    assert x.device == "cuda:0"
    np.testing.assert_array_equal(host(x), [1.0, 2.0])


def test_parameter_is_a_variable(xb):
    p = Parameter(xb.asarray(np.array([1.0, 2.0])), name="W")
    assert isinstance(p, Variable) and p.name == "W"
    y = (p * p).sum()
    y.backward()
    np.testing.assert_array_equal(host(p.grad), [2.0, 4.0])
    assert type(p.grad) is Variable


def test_wrap_array_makes_a_constant(xb):
    c = wrap_array(xb.asarray(np.array([1.0, 2.0])), xb.backend)
    assert c.creator is None and c.backend is xb.backend and not c.requires_grad
    x = xb.variable(np.array([3.0, 4.0]))
    assert x.requires_grad
    (x * c).backward()
    np.testing.assert_array_equal(host(x.grad), [1.0, 2.0])
    assert c.grad is None  # a constant gets no gradient (nobody could read it)
    user = wrap_array(xb.asarray(np.array([1.0, 2.0])), xb.backend, requires_grad=True)
    (x * user).backward()
    np.testing.assert_array_equal(host(user.grad), [3.0, 4.0])


def test_fan_out_gradients_accumulate_exactly_on_both_backward_paths(xb):
    """Several gradients into one Variable, one of them an array Add hands to two inputs:
    the first-order loop (which adds into its own sums in place) matches the Variable loop."""
    host = np.array([0.5, -1.5, 2.0])

    def grads(create_graph):
        x = xb.variable(host)
        a = x * 2.0
        shared = a + a  # Add's backward passes one gradient array to both of its inputs
        y = shared * x + x * 3.0 + x * x + dz.functions.sin(x)
        y.sum().backward(create_graph=create_graph)
        return xb.numpy(x.grad)

    expected = 8 * host + 3.0 + 2 * host + np.cos(host)  # d(4x * x) = 8x
    np.testing.assert_allclose(grads(False), expected, rtol=1e-12)
    np.testing.assert_allclose(grads(True), expected, rtol=1e-12)
    np.testing.assert_array_equal(grads(False), grads(False))  # nothing left mutated between runs


def test_plain_array_inputs_are_constants_without_gradients(xb):
    """A batch passed as a plain array (as DataLoader yields it) gets no gradient, so the
    first-order path skips computing it; Variables given by the user still get theirs."""
    rng = np.random.default_rng(3)
    x_host = rng.standard_normal((4, 3))
    W = xb.variable(rng.standard_normal((3, 2)))
    y = dz.functions.linear(xb.asarray(x_host), W)
    constant_input = y.creator.inputs[0]
    y.sum().backward()
    assert constant_input.grad is None
    assert not constant_input.requires_grad and W.requires_grad
    np.testing.assert_allclose(xb.numpy(W.grad), x_host.T @ np.ones((4, 2)), rtol=1e-12)

    x = xb.variable(x_host)  # the same data as a Variable: its gradient is computed
    dz.functions.linear(x, W).sum().backward()
    np.testing.assert_allclose(xb.numpy(x.grad), np.ones((4, 2)) @ xb.numpy(W.data).T, rtol=1e-12)
