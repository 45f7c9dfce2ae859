"""The random-number policy: NumPy's global generator, drawn in DeZero's order, until dz.seed().

Each expectation is computed here with plain NumPy calls in the order DeZero's code makes them
(``np.random.randn(I, O).astype(f32) * scale`` for a Linear layer, ``np.random.rand(*shape) >
ratio`` for a dropout mask, ``np.random.permutation(N)`` per epoch for a DataLoader, ...).
The weight scale is applied in float32, as NumPy 1.x (the book's NumPy) computes
``float32_array * np.float64_scalar``; NumPy 2 would promote that product to float64, a dtype
the layer was not asked for.
"""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.datasets as D
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp import DataLoader
from dezero_xp.models import MLP

F32 = np.float32


@pytest.fixture(autouse=True)
def _numpy_global_rng():
    """These tests run in the default mode (the suite's fixture seeds every test with dz.seed)."""
    state = np.random.get_state()
    dz.seed(None)
    yield
    np.random.set_state(state)


def dezero_weights(shape, fan_in):
    """DeZero's initialiser draw: float64 randn, cast, scaled by sqrt(1 / fan_in)."""
    return np.random.randn(*shape).astype(F32) * F32(np.sqrt(1 / fan_in))


def test_np_random_seed_makes_linear_reproducible():
    np.random.seed(0)
    a = L.Linear(3, in_size=2).W.data.copy()
    np.random.seed(0)
    b = L.Linear(3, in_size=2).W.data.copy()
    np.testing.assert_array_equal(a, b)
    np.random.seed(0)
    expected = dezero_weights((2, 3), 2)
    assert a.dtype == F32
    np.testing.assert_array_equal(a, expected)


def test_lazy_layers_draw_in_call_order():
    np.random.seed(3)
    model = MLP((4, 3, 2))
    y = model(np.ones((5, 6)))
    np.random.seed(3)
    w0 = dezero_weights((6, 4), 6)
    w1 = dezero_weights((4, 3), 4)
    w2 = dezero_weights((3, 2), 3)
    for layer, expected in zip(model.layers, (w0, w1, w2)):
        np.testing.assert_array_equal(layer.W.data, expected)
    assert y.shape == (5, 2)
    after = np.random.random()
    np.random.seed(3)
    np.random.randn(6 * 4 + 4 * 3 + 3 * 2)
    assert np.random.random() == after  # exactly the draws DeZero makes, no more


def test_conv_and_deconv_weights():
    np.random.seed(1)
    conv = L.Conv2d(4, kernel_size=3, in_channels=2)
    deconv = L.Deconv2d(5, kernel_size=(2, 3), in_channels=4)
    np.random.seed(1)
    np.testing.assert_array_equal(conv.W.data, dezero_weights((4, 2, 3, 3), 2 * 3 * 3))
    np.testing.assert_array_equal(deconv.W.data, dezero_weights((4, 5, 2, 3), 4 * 2 * 3))


def test_rnn_draws_x2h_then_h2h_like_dezero():
    np.random.seed(2)
    rnn = L.RNN(4)
    x = np.ones((1, 3))
    rnn(x)
    rnn(x)
    np.random.seed(2)
    np.testing.assert_array_equal(rnn.x2h.W.data, dezero_weights((3, 4), 3))
    np.testing.assert_array_equal(rnn.h2h.W.data, dezero_weights((4, 4), 4))


def test_dropout_mask_is_dezeros():
    x = np.arange(1.0, 41.0, dtype=F32).reshape(5, 8)
    for ratio in (0.5, 0.2):
        np.random.seed(0)
        y = F.dropout(x, ratio)
        np.random.seed(0)
        mask = np.random.rand(*x.shape) > ratio
        expected = x * mask / np.array(1.0 - ratio).astype(x.dtype)
        assert y.dtype == F32
        np.testing.assert_array_equal(y.data, expected)


def test_dataloader_shuffles_with_np_random_permutation():
    data = np.arange(20, dtype=F32).reshape(10, 2)
    ds = D.Dataset()
    ds.data, ds.label = data, np.arange(10)
    np.random.seed(5)
    loader = DataLoader(ds, batch_size=4)
    epoch1 = [t.tolist() for _, t in loader]
    epoch2 = [t.tolist() for _, t in loader]
    np.random.seed(5)
    p1, p2 = np.random.permutation(10), np.random.permutation(10)
    assert epoch1 == [p1[:4].tolist(), p1[4:8].tolist(), p1[8:].tolist()]
    assert epoch2 == [p2[:4].tolist(), p2[4:8].tolist(), p2[8:].tolist()]


def test_dataloader_takes_its_own_generator():
    ds = D.Dataset()
    ds.data, ds.label = np.zeros((10, 1), F32), np.arange(10)
    loader = DataLoader(ds, batch_size=10, rng=np.random.default_rng(4))
    before = np.random.get_state()[1].copy()
    ((_, t),) = list(loader)
    np.testing.assert_array_equal(t, np.random.default_rng(4).permutation(10))
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    with pytest.raises(TypeError, match="DataLoader: rng"):
        DataLoader(ds, batch_size=2, rng=7)


def test_spiral_leaves_the_global_generator_where_dezero_does():
    D.get_spiral(train=True)
    after = np.random.random()
    np.random.seed(1984)
    np.random.randn(300)  # one theta noise per point
    np.random.permutation(300)
    assert np.random.random() == after


def test_sin_curve_noise_is_np_random_uniform():
    np.random.seed(8)
    train = D.SinCurve(train=True)
    test = D.SinCurve(train=False)  # DeZero draws the noise for the test set too
    np.random.seed(8)
    noise = np.random.uniform(-0.05, 0.05, size=1000)
    np.random.uniform(-0.05, 0.05, size=1000)
    x = np.linspace(0, 2 * np.pi, 1000)
    expected = (np.sin(x) + noise).astype(F32)
    np.testing.assert_array_equal(train.data[:, 0], expected[:-1])
    np.testing.assert_array_equal(test.data[:, 0], np.cos(x).astype(F32)[:-1])
    after = np.random.random()
    np.random.seed(8)
    np.random.random(2000)
    assert np.random.random() == after


def test_embed_id_and_creation_draw_from_np_random():
    np.random.seed(6)
    emb = L.EmbedID(5, 3)
    r = dz.rand(2, 3)
    n = dz.randn(4)
    np.random.seed(6)
    np.testing.assert_array_equal(emb.W.data, np.random.randn(5, 3).astype(F32))
    np.testing.assert_array_equal(r.data, np.random.rand(2, 3).astype(r.dtype))
    np.testing.assert_array_equal(n.data, np.random.randn(4).astype(n.dtype))


def test_dz_seed_takes_over_and_leaves_np_random_alone():
    dz.seed(11)
    np.random.seed(0)
    a = L.Linear(3, in_size=2).W.data.copy()
    ds = D.Dataset()
    ds.data, ds.label = np.zeros((10, 1), F32), np.arange(10)
    ta = next(iter(DataLoader(ds, batch_size=10)))[1]
    probe = np.random.random()
    dz.seed(11)
    np.random.seed(1)
    b = L.Linear(3, in_size=2).W.data.copy()
    tb = next(iter(DataLoader(ds, batch_size=10)))[1]
    np.testing.assert_array_equal(a, b)  # whatever NumPy's global generator says
    np.testing.assert_array_equal(ta, tb)
    np.random.seed(0)
    assert np.random.random() == probe  # and the global generator was not drawn from
    np.random.seed(0)
    assert not np.array_equal(a, dezero_weights((2, 3), 2))
    dz.seed(None)  # back to NumPy's global generator
    np.random.seed(0)
    c = L.Linear(3, in_size=2).W.data
    np.random.seed(0)
    np.testing.assert_array_equal(c, dezero_weights((2, 3), 2))


def test_uniform_float32_stays_below_one():
    # float64 samples above 1 - 2**-25 round to 1.0 in float32; the kernel keeps U[0, 1).
    ops = dz.backend.get_backend("cpu").ops
    np.random.seed(198)  # sample 46869 of this stream rounds to 1.0 in float32
    assert (np.random.random_sample(100_000).astype(F32) == 1.0).any()
    np.random.seed(198)
    u = ops.uniform((100_000,), F32)
    assert u.max() < 1.0 and u.dtype == F32
