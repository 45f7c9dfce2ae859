"""Layers refuse what they cannot use (bad sizes, dtypes and inputs) with errors naming the
layer; lazy layers size themselves only from a call that worked; traversal is iterative;
``to`` is all or nothing; a raw array never silently replaces a Parameter."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
import dezero_xp.models as M
from dezero_xp.backend import get_backend

HAS_STRICT = importlib.util.find_spec("array_api_strict") is not None
needs_strict = pytest.mark.skipif(not HAS_STRICT, reason="array-api-strict is not installed")


# --------------------------------------------------------------------------- attributes


def test_assigning_an_array_over_a_parameter_is_refused():
    layer = L.Linear(2, in_size=3)
    W = layer.W
    with pytest.raises(TypeError, match=r"Linear\.W is a Parameter.*layer\.W\.data = array"):
        layer.W = np.zeros((3, 2), np.float32)
    assert layer.W is W and [p.name for p in layer.params()] == ["W", "b"]
    layer.W.data = np.zeros((3, 2), np.float32)  # the way to set its values
    assert np.all(layer.W.data == 0)
    layer.b = None  # None removes a Parameter on purpose (nobias)
    assert [p.name for p in layer.params()] == ["W"]
    layer.extra = np.ones(2)  # a plain array under a new name is a plain attribute
    assert [p.name for p in layer.params()] == ["W"]


def _deep_tree(depth):
    root = layer = L.Layer()
    for i in range(depth):
        layer.p = dz.Parameter(np.full(1, float(i)))
        layer.child = L.Layer()
        layer = layer.child
    return root


def test_params_of_a_very_deep_tree():
    root = _deep_tree(1100)
    params = list(root.params())
    assert len(params) == 1100
    assert [float(p.data[0]) for p in params[:3]] == [0.0, 1.0, 2.0]
    keys = [entry[0] for entry in root._state_entries()]
    assert keys[1] == "child/p" and keys[-1].count("child/") == 1099
    assert len(list(root._walk())) == 1101
    root.cleargrads()
    root.to("cpu")


def test_deep_tree_saves_and_loads(tmp_path):
    root = _deep_tree(1100)
    path = root.save_weights(tmp_path / "deep.npz")
    other = _deep_tree(1100)
    for p in other.params():
        p.data = p.data * 0
    other.load_weights(path)
    assert [float(p.data[0]) for p in other.params()] == [float(i) for i in range(1100)]


def test_shared_and_cyclic_layers_are_still_listed_once():
    shared = L.Linear(2, in_size=2)
    root = L.Layer()
    root.a = shared
    root.b = shared
    shared.back = root  # a cycle
    assert len(list(root.params())) == 2
    keys = [entry[0] for entry in root._state_entries()]
    assert keys == ["a/W", "a/b", "b/W", "b/b"]


# --------------------------------------------------------------------------- constructors


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        (lambda: L.Linear(-1), ValueError, "Linear: out_size must be >= 1, got -1"),
        (lambda: L.Linear(0), ValueError, "Linear: out_size"),
        (lambda: L.Linear("3"), TypeError, "Linear: out_size must be an int"),
        (lambda: L.Linear(2.5), TypeError, "Linear: out_size must be an int"),
        (lambda: L.Linear(True), TypeError, "Linear: out_size"),
        (lambda: L.Linear(3, in_size=-2), ValueError, "Linear: in_size"),
        (lambda: L.Linear(3, dtype="int64"), TypeError, "Linear: dtype must be a floating"),
        (lambda: L.Linear(3, dtype="floaty"), TypeError, "Linear: dtype"),
        (lambda: L.Conv2d(8, 0), ValueError, "Conv2d: kernel_size must be >= 1, got 0"),
        (lambda: L.Conv2d(8, (3,)), ValueError, "Conv2d: kernel_size must be an int or a pair"),
        (lambda: L.Conv2d(8, 3, stride=0), ValueError, "Conv2d: stride"),
        (lambda: L.Conv2d(8, 3, pad=-1), ValueError, "Conv2d: pad must be >= 0"),
        (lambda: L.Conv2d(-8, 3), ValueError, "Conv2d: out_channels"),
        (lambda: L.Conv2d(8, 3, dtype="int32"), TypeError, "Conv2d: dtype"),
        (lambda: L.Deconv2d(8, 3, stride=(1, 0)), ValueError, "Deconv2d: stride"),
        (lambda: L.EmbedID(-1, 3), ValueError, "EmbedID: in_size"),
        (lambda: L.EmbedID(3, 3, dtype="bool"), TypeError, "EmbedID: dtype"),
        (lambda: L.RNN(0), ValueError, "RNN: hidden_size"),
        (lambda: L.LSTM("4"), TypeError, "LSTM: hidden_size"),
        (lambda: L.BatchNorm(decay=2), ValueError, "BatchNorm: decay"),
        (lambda: L.BatchNorm(eps=0), ValueError, "BatchNorm: eps"),
        (lambda: L.BatchNorm(dtype="int64"), TypeError, "BatchNorm: dtype"),
        (lambda: M.MLP([]), ValueError, "MLP: fc_output_sizes is empty"),
        (lambda: M.MLP(5), TypeError, "MLP: fc_output_sizes must be a sequence"),
        (
            lambda: M.MLP([3, -1]),
            ValueError,
            r"MLP: layer l1 .fc_output_sizes\[1\]=-1.: Linear: out_",
        ),
        (
            lambda: M.MLP([2.5]),
            TypeError,
            r"MLP: layer l0 .fc_output_sizes\[0\]=2.5.: Linear: out_",
        ),
        (lambda: M.MLP([3], activation="relu"), TypeError, "MLP: activation"),
    ],
)
def test_bad_constructor_arguments_are_refused(make, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        make()


def test_numpy_integers_and_pairs_are_valid_sizes():
    layer = L.Linear(np.int64(3), in_size=np.int32(2))
    assert layer.W.shape == (2, 3) and type(layer.out_size) is int
    conv = L.Conv2d(4, (3, 2), stride=(1, 2), in_channels=2)
    assert conv.W.shape == (4, 2, 3, 2)


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("layer", "x", "error", "fragment"),
    [
        (lambda: L.Linear(3), [[1.0, 2.0]], TypeError, "Linear: expected a Variable or an array"),
        (lambda: L.Linear(3), None, TypeError, "Linear: expected a Variable or an array"),
        (lambda: L.Linear(3), np.array(1.0), ValueError, "Linear: expected an input of at least 1"),
        (lambda: L.Conv2d(2, 3), np.zeros((2, 3, 5)), ValueError, "Conv2d: expected a 4-D input"),
        (lambda: L.Conv2d(2, 3), [0.0], TypeError, "Conv2d: expected a Variable or an array"),
        (lambda: L.Deconv2d(2, 3), np.zeros(4), ValueError, "Deconv2d: expected a 4-D input"),
        (lambda: L.BatchNorm(), np.zeros(3), ValueError, "BatchNorm: expected an input of at"),
        (
            lambda: L.BatchNorm(),
            np.zeros((2, 3), np.int64),
            TypeError,
            "BatchNorm: expected a float",
        ),
        (lambda: L.BatchNorm(), None, TypeError, "BatchNorm: expected a Variable"),
        (lambda: L.RNN(3), [1.0, 2.0], TypeError, "Linear: expected a Variable or an array"),
    ],
)
def test_bad_inputs_are_refused_and_leave_lazy_layers_lazy(layer, x, error, fragment):
    layer = layer()
    lazy = [p for p in layer.params() if p.data is None]
    assert lazy
    with pytest.raises(error, match=fragment):
        layer(x)
    assert all(p.data is None for p in lazy)


def test_lazy_linear_takes_in_size_from_the_last_axis():
    layer = L.Linear(4)
    y = layer(np.zeros((2, 5, 3), np.float32))
    assert layer.W.shape == (3, 4) and layer.in_size == 3 and y.shape == (2, 5, 4)


def test_lazy_batchnorm_after_a_failed_first_call_takes_the_next_input():
    bn = L.BatchNorm()
    with pytest.raises(TypeError):
        bn(np.zeros((2, 3), np.int64))
    y = bn(np.ones((4, 5), np.float32))
    assert bn.gamma.shape == (5,) and bn.avg_mean.shape == (5,) and y.shape == (4, 5)


def test_a_failure_inside_the_first_call_sizes_nothing(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of device memory")

    bn, linear, conv = L.BatchNorm(), L.Linear(2), L.Conv2d(2, 1)
    monkeypatch.setattr(F, "batch_norm", broken)
    monkeypatch.setattr(F, "linear", broken)
    monkeypatch.setattr(F, "conv2d", broken)
    for layer, x in [
        (bn, np.ones((2, 3), np.float32)),
        (linear, np.ones((2, 3), np.float32)),
        (conv, np.ones((1, 3, 4, 4), np.float32)),
    ]:
        with pytest.raises(RuntimeError, match="out of device memory"):
            layer(x)
    monkeypatch.undo()
    assert bn.gamma.data is None and bn.avg_mean.data is None
    assert linear.W.data is None and linear.in_size is None
    assert conv.W.data is None and conv.in_channels is None
    assert bn(np.ones((2, 7), np.float32)).shape == (2, 7)
    assert linear(np.ones((2, 5), np.float32)).shape == (2, 2)
    assert conv(np.ones((1, 6, 4, 4), np.float32)).shape == (1, 2, 4, 4)


# --------------------------------------------------------------------------- devices


class _FailsToMove(L.Layer):
    def __init__(self):
        super().__init__()
        self.p = dz.Parameter(np.ones(2, np.float32))

    def _move_state(self, target):
        raise RuntimeError("device out of memory")


@needs_strict
def test_model_to_is_all_or_nothing():
    model = M.Model()
    model.fc = L.Linear(2, in_size=3)
    model.bn = L.BatchNorm()
    model.bn(np.ones((4, 2), np.float32))
    model.fc.W.grad = dz.Variable(np.ones((3, 2), np.float32))
    model.last = _FailsToMove()
    cpu = get_backend("cpu")
    placements = [layer._backend for layer in model._walk()]
    with pytest.raises(RuntimeError, match="device out of memory"):
        model.to("strict:device1")
    for p in model.params():
        assert p.backend is cpu, p.name
    assert model.fc.W.grad.backend is cpu
    assert isinstance(model.bn.avg_mean.data, np.ndarray) and model.bn.avg_mean.backend is cpu
    assert [layer._backend for layer in model._walk()] == placements
    y = model.fc(np.ones((1, 3), np.float32))  # still usable where it was
    assert y.backend is cpu


def test_a_linear_whose_weight_was_set_to_none_says_so():
    layer = L.Linear(3, in_size=2)
    layer.W = None
    with pytest.raises(TypeError, match="Linear: W is None"):
        layer(np.ones((1, 2), np.float32))


def test_an_attribute_error_inside_a_layer_becomes_a_type_error_naming_it():
    class Broken(dz.Layer):
        def forward(self, x):
            return x.no_such_attribute

    with pytest.raises(TypeError, match="Broken: .*no_such_attribute"):
        Broken()(np.ones(2))
