"""Layers (dezero_xp/layers.py): registration, lazy sizes, devices, and each layer's forward."""

import importlib.util
import math

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp._backends import cupy as cupy_adapter
from dezero_xp.backend import DeviceMismatchError, get_backend
from dezero_xp.testing import check_backward

HAS_TORCH = importlib.util.find_spec("torch") is not None


def host(x):
    """A Variable, Parameter or array of any backend as a NumPy array."""
    return np.asarray(dz.backend.to_host(x.data if isinstance(x, dz.Variable) else x))


def other_backend(xb):
    """A backend that is not the one under test (for device-mismatch checks)."""
    return get_backend("strict:device1" if xb.name != "strict:device1" else "cpu")


class TwoLayer(L.Layer):
    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(4)
        self.l2 = L.Linear(2)

    def forward(self, x):
        return self.l2(F.sigmoid(self.l1(x)))


# --------------------------------------------------------------------------- Layer base


def test_registration_nested_order_and_keys():
    outer = L.Layer()
    outer.p = dz.Parameter(np.zeros(1), name="p")
    outer.inner = TwoLayer()
    outer.q = dz.Parameter(np.ones(2), name="q")
    outer.not_a_param = dz.Variable(np.zeros(3))
    assert list(outer._params) == ["p", "inner", "q"]
    params = list(outer.params())
    expected = [outer.p, outer.inner.l1.W, outer.inner.l1.b, outer.inner.l2.W, outer.inner.l2.b]
    assert [id(p) for p in params] == [id(p) for p in expected + [outer.q]]
    flat = {}
    outer._flatten_params(flat)
    assert list(flat) == ["p", "inner/l1/W", "inner/l1/b", "inner/l2/W", "inner/l2/b", "q"]
    assert flat["inner/l2/b"] is outer.inner.l2.b


def test_params_have_no_duplicates_for_shared_parameters_and_layers():
    shared = L.Linear(3, in_size=2)
    model = L.Layer()
    model.a = shared
    model.b = shared  # the same layer under two names
    model.w = shared.W  # and one of its parameters directly
    params = list(model.params())
    assert len(params) == 2
    assert {id(p) for p in params} == {id(shared.W), id(shared.b)}


def test_reassigning_an_attribute_unregisters_it():
    layer = L.Linear(3, in_size=2)
    layer.b = None
    assert "b" not in layer._params
    assert [id(p) for p in layer.params()] == [id(layer.W)]
    del layer.W
    assert list(layer.params()) == []


def test_cycle_of_layers_is_walked_once():
    a = L.Linear(2, in_size=2)
    b = L.Layer()
    b.a = a
    a.parent = b  # a cycle a -> b -> a
    assert len(list(b.params())) == 2
    assert len(list(a.params())) == 2


def test_assigning_before_super_init_is_a_clear_error():
    class Broken(L.Layer):
        def __init__(self):
            self.l1 = L.Linear(2)
            super().__init__()

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_cleargrads(xb, rng):
    model = TwoLayer()
    x = xb.asarray(rng.standard_normal((5, 3)).astype(np.float32))
    F.sum(model(x)).backward()
    grads = [p.grad for p in model.params()]
    assert len(grads) == 4 and all(g is not None for g in grads)
    model.cleargrads()
    assert all(p.grad is None for p in model.params())


def test_call_keeps_weak_references_to_inputs_and_outputs(xb, rng):
    layer = L.Linear(2)
    x = xb.variable(rng.standard_normal((3, 4)).astype(np.float32))
    y = layer(x)
    assert layer.inputs[0]() is x and layer.outputs[0]() is y
    del y
    assert layer.outputs[0]() is None  # weak: the layer does not keep the graph alive


def test_layer_without_forward_raises():
    with pytest.raises(NotImplementedError, match="Layer.forward"):
        L.Layer()(np.zeros(1))


# --------------------------------------------------------------------------- Linear


def test_linear_lazy_init_shapes_values_and_device(xb, rng):
    layer = L.Linear(5)
    assert layer.W.data is None and layer.in_size is None
    x_host = rng.standard_normal((4, 3)).astype(np.float32)
    y = layer(xb.asarray(x_host))
    assert layer.in_size == 3 and layer.W.shape == (3, 5) and layer.b.shape == (5,)
    assert y.shape == (4, 5)
    for p in (layer.W, layer.b, y):
        assert p.backend is xb.backend
        assert str(p.dtype).endswith("float32")
    expected = x_host @ host(layer.W) + host(layer.b)
    np.testing.assert_allclose(host(y), expected, rtol=1e-5, atol=1e-6)


def test_linear_eager_init_scale_and_seed(xb):
    dz.seed(3)
    a = L.Linear(400, in_size=100, device=xb.backend)
    dz.seed(3)
    b = L.Linear(400, in_size=100, device=xb.backend)
    assert a.W.backend is xb.backend and a.b.backend is xb.backend
    np.testing.assert_array_equal(host(a.W), host(b.W))  # seeded by dz.seed
    w = host(a.W)
    # W ~ N(0, 1/in_size): 40k samples pin the std to within a few percent of 0.1.
    assert abs(w.std() - math.sqrt(1 / 100)) < 0.005
    assert abs(w.mean()) < 0.005
    np.testing.assert_array_equal(host(a.b), np.zeros(400, np.float32))


def test_linear_float64_and_nobias(xb, rng):
    layer = L.Linear(3, nobias=True, dtype="float64")
    y = layer(xb.asarray(rng.standard_normal((2, 4))))
    assert layer.b is None and [id(p) for p in layer.params()] == [id(layer.W)]
    assert str(layer.W.dtype).endswith("float64") and str(y.dtype).endswith("float64")


def test_linear_accepts_numpy_dtype_objects(xb, rng):
    layer = L.Linear(2, dtype=np.float64, in_size=3, device=xb.backend)
    assert str(layer.W.dtype).endswith("float64") and str(layer.b.dtype).endswith("float64")


def test_unplaced_layer_follows_its_first_input(xb, rng):
    layer = L.Linear(2, in_size=3)  # created on the default device (NumPy)
    assert layer.W.backend is get_backend(None)
    layer(xb.asarray(rng.standard_normal((1, 3)).astype(np.float32)))
    assert layer.W.backend is xb.backend and layer.b.backend is xb.backend


def test_placed_layer_refuses_input_from_another_device(xb, rng):
    other = other_backend(xb)
    lazy = L.Linear(2, device=xb.backend)
    assert lazy.b.backend is xb.backend
    x_other = other.from_host(rng.standard_normal((1, 3)).astype(np.float32))
    with pytest.raises(DeviceMismatchError, match="Linear"):
        lazy(x_other)
    assert lazy.W.data is None  # nothing was created on the wrong device
    used = L.Linear(2)
    used(xb.asarray(rng.standard_normal((1, 3)).astype(np.float32)))
    with pytest.raises(DeviceMismatchError):
        used(x_other)


# --------------------------------------------------------------------------- devices


def _round_trip_specs():
    specs = ["cpu", "strict:device1"]
    if HAS_TORCH:
        specs.append("torch:cpu")
    return specs + ["cpu"]


def test_to_moves_params_grads_and_state_across_backends(rng):
    model = L.Layer()
    model.fc = L.Linear(3)
    model.bn = L.BatchNorm()
    x_host = rng.standard_normal((4, 2)).astype(np.float32)
    F.sum(model.bn(model.fc(x_host))).backward()
    values = {k: host(p) for k, p in _flat(model).items()}
    # _flatten_params holds the running averages too (as DeZero's); they have no gradient
    grads = {k: host(p.grad) for k, p in _flat(model).items() if p.grad is not None}
    assert sorted(set(values) - set(grads)) == ["bn/avg_mean", "bn/avg_var"]
    running = host(model.bn.avg_mean), host(model.bn.avg_var)
    for spec in _round_trip_specs():
        target = get_backend(spec)
        assert model.to(spec) is model
        for key, p in _flat(model).items():
            assert p.backend is target
            if key in grads:  # the running averages change at every call: checked below
                np.testing.assert_array_equal(host(p), values[key])
                assert p.grad.backend is target
                np.testing.assert_array_equal(host(p.grad), grads[key])
        assert model.bn.avg_mean.backend is target
        assert model.bn.avg_var.backend is target
        np.testing.assert_array_equal(host(model.bn.avg_mean), running[0])
        np.testing.assert_array_equal(host(model.bn.avg_var), running[1])
        y = model.bn(model.fc(target.from_host(x_host)))  # runs where it was moved
        assert y.backend is target
        running = host(model.bn.avg_mean), host(model.bn.avg_var)


def test_to_places_lazy_parameters(xb, rng):
    layer = L.Linear(2).to(xb.backend)
    layer(xb.asarray(rng.standard_normal((1, 3)).astype(np.float32)))
    assert layer.W.backend is xb.backend


def test_to_cpu_and_to_gpu_aliases(xb, monkeypatch):
    layer = L.Linear(2, in_size=3, device=xb.backend)
    assert layer.to_cpu() is layer and layer.W.backend is get_backend("cpu")

    def no_cupy():
        raise ImportError("no GPU in this test")

    monkeypatch.setattr(cupy_adapter, "import_cupy", no_cupy)
    dz.backend._reset_device_state()
    with pytest.warns(dz.DeviceFallbackWarning):
        layer.to_gpu()
    assert layer.W.backend is get_backend("cpu")


def _flat(model):
    flat = {}
    model._flatten_params(flat)
    return flat


# --------------------------------------------------------------------------- Conv2d / Deconv2d


def test_conv2d_lazy_shapes_and_values(xb, rng):
    conv = L.Conv2d(4, kernel_size=3, stride=2, pad=1)
    x_host = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    y = conv(xb.asarray(x_host))
    assert conv.in_channels == 3 and conv.W.shape == (4, 3, 3, 3) and conv.b.shape == (4,)
    assert y.shape == (2, 4, 4, 4) and conv.W.backend is xb.backend
    expected = F.conv2d(x_host, host(conv.W), host(conv.b), 2, 1)  # NumPy run of the op
    np.testing.assert_allclose(host(y), host(expected), rtol=1e-5, atol=1e-5)


def test_conv2d_eager_init_scale(xb):
    conv = L.Conv2d(64, kernel_size=(3, 3), in_channels=16, nobias=True, device=xb.backend)
    w = host(conv.W)
    assert conv.b is None and w.shape == (64, 16, 3, 3)
    assert abs(w.std() - math.sqrt(1 / (16 * 9))) < 0.01


def test_deconv2d_shapes(xb, rng):
    deconv = L.Deconv2d(2, kernel_size=4, stride=2, pad=1, dtype="float64")
    y = deconv(xb.asarray(rng.standard_normal((1, 3, 5, 5))))
    assert deconv.W.shape == (3, 2, 4, 4) and deconv.in_channels == 3
    assert y.shape == (1, 2, 10, 10)  # (5 - 1) * 2 - 2 * 1 + 4
    assert str(y.dtype).endswith("float64")


# --------------------------------------------------------------------------- BatchNorm


def test_batchnorm_train_and_test_behaviour(xb, rng):
    bn = L.BatchNorm(decay=0.8)
    x_host = rng.standard_normal((6, 3, 2, 2)) * 3.0 + 1.5
    x = xb.asarray(x_host.astype(np.float32))
    y = bn(x)
    assert bn.gamma.shape == (3,) and bn.avg_mean.shape == (3,)
    # Variables, as DeZero's (bn.avg_mean.data), but not trained: not among params()
    assert isinstance(bn.avg_mean, dz.Variable) and isinstance(bn.avg_var, dz.Variable)
    assert dz.backend.backend_of(bn.avg_mean.data) is xb.backend
    assert [id(p) for p in bn.params()] == [id(bn.gamma), id(bn.beta)]
    y_host = host(y)
    np.testing.assert_allclose(y_host.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y_host.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)
    # running averages updated in place from their start (0 and 1), DeZero's formula
    m = 6 * 2 * 2
    batch_mean = x_host.mean(axis=(0, 2, 3))
    batch_var = x_host.var(axis=(0, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(host(bn.avg_mean), 0.2 * batch_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(host(bn.avg_var), 0.8 + 0.2 * batch_var, rtol=1e-4)
    # test mode: normalise with the running averages, leave them alone
    mean, var = host(bn.avg_mean), host(bn.avg_var)
    with dz.test_mode():
        y_test = bn(x)
    expected = (x_host - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 2e-5)
    np.testing.assert_allclose(host(y_test), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(host(bn.avg_mean), mean)


def test_batchnorm_follows_input_dtype_and_registers_state(xb, rng):
    bn = L.BatchNorm()
    bn(xb.asarray(rng.standard_normal((4, 5))))
    assert str(bn.gamma.dtype).endswith("float64") and str(bn.avg_var.dtype).endswith("float64")
    assert [k for k, *_ in bn._state_entries()] == ["gamma", "beta", "avg_mean", "avg_var"]
    assert len(list(bn.params())) == 2  # running averages are state, not Parameters


# --------------------------------------------------------------------------- EmbedID


def test_embed_id_rows_and_gradient(xb):
    emb = L.EmbedID(7, 3, device=xb.backend)
    ids = xb.asarray(np.array([[1, 4], [4, 6]]))
    y = emb(ids)
    assert emb.W.shape == (7, 3) and y.shape == (2, 2, 3)
    np.testing.assert_array_equal(host(y), host(emb.W)[np.array([[1, 4], [4, 6]])])
    F.sum(y).backward()
    expected = np.zeros((7, 3), np.float32)
    np.add.at(expected, np.array([1, 4, 4, 6]), 1.0)
    np.testing.assert_array_equal(host(emb.W.grad), expected)


# --------------------------------------------------------------------------- RNN / LSTM


def test_rnn_shapes_state_and_backward(xb, rng):
    rnn = L.RNN(4)
    xs = [xb.asarray(rng.standard_normal((2, 3)).astype(np.float32)) for _ in range(3)]
    h1 = rnn(xs[0])
    assert h1.shape == (2, 4) and rnn.h is h1 and rnn.x2h.W.shape == (3, 4)
    assert rnn.h2h.W.data is None  # made at the second step, as DeZero's lazy h2h is
    h2 = rnn(xs[1])
    assert rnn.h2h.W.shape == (4, 4) and rnn.h2h.b is None
    h3 = rnn(xs[2])
    F.sum(h3).backward()
    assert rnn.h2h.W.grad is not None and rnn.h2h.W.backend is xb.backend
    expected = np.tanh(host(xs[2]) @ host(rnn.x2h.W) + host(rnn.x2h.b) + host(h2) @ host(rnn.h2h.W))
    np.testing.assert_allclose(host(h3), expected, rtol=1e-5, atol=1e-6)
    rnn.reset_state()
    assert rnn.h is None


def test_lstm_shapes_and_state(xb, rng):
    lstm = L.LSTM(5, in_size=3, device=xb.backend)
    x = xb.asarray(rng.standard_normal((2, 3)).astype(np.float32))
    h = lstm(x)
    assert h.shape == (2, 5) and lstm.c.shape == (2, 5) and h.backend is xb.backend
    assert len(list(lstm.params())) == 4 * 2 + 4  # x2* with bias, h2* without
    h = lstm(x)
    assert h.shape == (2, 5)
    lstm.reset_state()
    assert lstm.h is None and lstm.c is None


def test_lstm_matches_numpy_reference(xb, rng):
    lstm = L.LSTM(3, in_size=2, dtype="float64", device=xb.backend)
    x1, x2 = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))

    def lin(layer, x):
        y = x @ host(layer.W)
        return y if layer.b is None else y + host(layer.b)

    def gate(name, activation, x, h):
        pre = lin(getattr(lstm, "x2" + name), x)
        if h is not None:
            pre = pre + lin(getattr(lstm, "h2" + name), h)
        return activation(pre)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    h = c = None
    for x in (x1, x2):
        f, i = gate("f", sigmoid, x, h), gate("i", sigmoid, x, h)
        o, u = gate("o", sigmoid, x, h), gate("u", np.tanh, x, h)
        c = i * u if c is None else f * c + i * u
        h = o * np.tanh(c)
    lstm(xb.asarray(x1))
    y = lstm(xb.asarray(x2))
    np.testing.assert_allclose(host(y), h, rtol=1e-10, atol=1e-12)


def test_lstm_two_steps_gradient_check(xb, rng):
    lstm = L.LSTM(3, in_size=2, dtype="float64", device=xb.backend)

    def two_steps(x1, x2, W_hf):
        # W_hf stands in for lstm.h2f.W, so its gradient is checked too.
        original = lstm.h2f.W
        lstm.h2f.W = W_hf
        try:
            lstm.reset_state()
            lstm(x1)
            return lstm(x2)
        finally:
            lstm.h2f.W = original

    inputs = [
        xb.asarray(rng.standard_normal((2, 2))),
        xb.asarray(rng.standard_normal((2, 2))),
        xb.asarray(host(lstm.h2f.W)),
    ]
    check_backward(two_steps, inputs)


def test_rnn_state_follows_to(rng):
    rnn = L.RNN(2)
    rnn(rng.standard_normal((1, 3)).astype(np.float32))
    rnn.to("strict:device1")
    target = get_backend("strict:device1")
    assert rnn.h.backend is target and rnn.h.creator is None
    assert rnn(target.from_host(rng.standard_normal((1, 3)).astype(np.float32))).backend is target
