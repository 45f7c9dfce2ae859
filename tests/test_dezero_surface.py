"""DeZero's public names and behaviours that its own scripts rely on.

Op classes exported from ``functions``, the ``functions_conv`` module, ``SeqDataLoader`` at the
top, float promotion in the binary losses, BatchNorm's running averages as Variables.
"""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L

# The op classes DeZero's ``dezero/functions.py`` defines, by name.
DEZERO_OP_CLASSES = [
    "Sin", "Cos", "Tanh", "Exp", "Log", "Reshape", "Transpose", "GetItem", "GetItemGrad",
    "Sum", "SumTo", "BroadcastTo", "MatMul", "Linear", "Sigmoid", "ReLU", "Softmax",
    "LogSoftmax", "LeakyReLU", "MeanSquaredError", "SoftmaxCrossEntropy", "BatchNorm", "Max",
    "Min", "Clip",
]  # fmt: skip


@pytest.mark.parametrize("name", DEZERO_OP_CLASSES)
def test_op_classes_are_exported_from_functions(name):
    cls = getattr(F, name)
    assert isinstance(cls, type) and issubclass(cls, dz.Function)


def test_op_classes_are_the_ones_the_functions_use():
    x = dz.Variable(np.array([0.5, -1.0]))
    for cls, f in ((F.Exp, F.exp), (F.Sigmoid, F.sigmoid), (F.Tanh, F.tanh), (F.Sin, F.sin)):
        y = f(x)
        assert type(y.creator) is cls
        np.testing.assert_array_equal(cls()(x).data, y.data)
    assert type(F.sum(x).creator) is F.Sum
    assert type(F.matmul(np.ones((1, 2)), dz.Variable(np.ones((2, 1)))).creator) is F.MatMul


def test_a_subclass_of_an_exported_op():
    class LoudExp(F.Exp):
        calls = 0

        def forward(self, x):
            LoudExp.calls += 1
            return super().forward(x)

    x = dz.Variable(np.array(1.0))
    y = LoudExp()(x)
    y.backward()
    assert LoudExp.calls == 1 and float(x.grad.data) == float(np.exp(1.0))


def test_functions_conv_module():
    import dezero_xp.functions_conv as FC

    assert dz.functions_conv is FC
    for name in ("conv2d", "deconv2d", "conv2d_simple", "im2col", "col2im", "pooling"):
        assert getattr(FC, name) is getattr(F, name)
    assert FC.pooling_simple is F.pooling_simple and FC.average_pooling is F.average_pooling
    for name in ("Conv2d", "Deconv2d", "Conv2DGradW", "Pooling", "Im2col", "Col2im"):
        assert issubclass(getattr(FC, name), dz.Function)
    x = np.random.default_rng(0).standard_normal((1, 3, 7, 7))
    col = FC.im2col_array(x, 5, 1, 0)
    assert isinstance(col, np.ndarray) and col.shape == (9, 75)  # the book's step 57 shapes
    np.testing.assert_array_equal(col, F.im2col(x, 5, 1, 0).data)
    back = FC.col2im_array(col, x.shape, 5, 1, 0)
    assert isinstance(back, np.ndarray) and back.shape == x.shape


def test_seq_dataloader_at_the_top():
    from dezero_xp import SeqDataLoader

    assert SeqDataLoader is dz.dataloaders.SeqDataLoader
    ds = dz.datasets.Dataset()
    ds.data, ds.label = np.arange(10.0)[:, None], np.arange(1, 11)
    loader = SeqDataLoader(ds, batch_size=2)
    x, t = next(loader)
    # row k of iteration i is example (k * (N // batch) + i) % N, DeZero's rule
    assert x[:, 0].tolist() == [0.0, 5.0] and t.tolist() == [1, 6]
    x, t = next(loader)
    assert x[:, 0].tolist() == [1.0, 6.0]


# --------------------------------------------------------------------------- loss dtypes


@pytest.mark.parametrize("loss", [F.binary_cross_entropy, F.sigmoid_cross_entropy])
def test_binary_losses_promote_mixed_floats_as_arithmetic_does(loss):
    p64 = dz.Variable(np.array([0.2, 0.7, 0.9]))
    t32 = np.array([0.0, 1.0, 1.0], dtype=np.float32)
    for t in (t32, dz.Variable(t32)):
        y = loss(p64, t)
        assert y.dtype == np.float64 == (p64 - t).dtype == F.mean_squared_error(p64, t).dtype
    p32 = dz.Variable(np.array([0.2, 0.7, 0.9], dtype=np.float32))
    y = loss(p32, t32.astype(np.float64))
    assert y.dtype == np.float64  # NumPy's rule: float32 with float64 is float64
    assert loss(p32, np.array([0, 1, 1])).dtype == np.float32  # 0/1 labels take p's dtype
    assert loss(p32, t32).dtype == np.float32
    # the value is the formula's, in the promoted dtype
    if loss is F.binary_cross_entropy:
        p = p64.data
        expected = -np.sum(t32 * np.log(p) + (1 - t32) * np.log(1 - p)) / 3
    else:
        p = 1 / (1 + np.exp(-p64.data))
        expected = -np.sum(t32 * np.log(p) + (1 - t32) * np.log(1 - p)) / 3
    np.testing.assert_allclose(loss(p64, t32).data, expected, rtol=1e-12)


def test_binary_cross_entropy_gradient_reaches_both_float_inputs():
    p = dz.Variable(np.array([0.2, 0.7]))
    t = dz.Variable(np.array([0.0, 1.0], dtype=np.float32))
    F.binary_cross_entropy(p, t).backward()
    np.testing.assert_allclose(p.grad.data, [1 / 0.8 / 2, -1 / 0.7 / 2], rtol=1e-6)
    assert t.grad is not None


# --------------------------------------------------------------------------- BatchNorm state


def _trained_bn():
    bn = L.BatchNorm()
    bn(np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32))
    return bn


def test_batchnorm_running_averages_are_variables():
    bn = L.BatchNorm()
    assert isinstance(bn.avg_mean, dz.Variable) and bn.avg_mean.data is None
    bn = _trained_bn()
    assert isinstance(bn.avg_mean, dz.Variable) and bn.avg_mean.data.shape == (3,)
    assert bn.avg_var.data.dtype == np.float32
    assert not np.array_equal(bn.avg_mean.data, np.zeros(3))
    assert [p.name for p in bn.params()] == ["gamma", "beta"]  # nothing trains them


@pytest.mark.parametrize("form", ["saved", "raw arrays"])
def test_batchnorm_weights_files_load_in_both_forms(tmp_path, form):
    bn = _trained_bn()
    path = tmp_path / "bn.npz"
    if form == "saved":
        bn.save_weights(str(path))
    else:  # a file of plain arrays under DeZero's keys (what earlier releases wrote too)
        arrays = {k: getattr(bn, k).data for k in ("gamma", "beta", "avg_mean", "avg_var")}
        np.savez(path, **arrays)
    fresh = L.BatchNorm()
    fresh.load_weights(str(path))
    for name in ("avg_mean", "avg_var", "gamma", "beta"):
        np.testing.assert_array_equal(getattr(fresh, name).data, getattr(bn, name).data)
    assert isinstance(fresh.avg_mean, dz.Variable)
    x = np.ones((2, 3), dtype=np.float32)
    with dz.test_mode():
        np.testing.assert_array_equal(fresh(x).data, bn(x).data)


def test_squeezenet_is_dezeros_placeholder():
    from dezero_xp.models import SqueezeNet

    model = SqueezeNet()  # constructing works, as in DeZero
    assert list(model.params()) == []
    with pytest.raises(NotImplementedError, match="SqueezeNet is a placeholder"):
        model(np.zeros((1, 3, 224, 224), dtype=np.float32))
