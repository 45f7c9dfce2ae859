"""linear, dropout, batch_norm and embed_id (dezero_xp/functions/nn.py): declarative checks on
every backend, batch norm against NumPy and PyTorch, dropout's train/test behaviour, masks and
statistics, and the errors bad inputs get."""

import importlib.util

import numpy as np
import pytest
from opcheck import make_op_tests, op_case

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import testing

# ---------------------------------------------------------------- NumPy references


def ref_linear(x, W, b=None):
    y = x @ W
    return y if b is None else y + b


def _bn_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _per_channel(v, x):
    return v.reshape((1, -1) if x.ndim == 2 else (1, -1, 1, 1))


def ref_batch_norm_train(x, gamma, beta, mean=None, var=None, eps=2e-5):
    axes = _bn_axes(x)
    mu = x.mean(axis=axes, keepdims=True)
    sigma2 = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    x_hat = (x - mu) / np.sqrt(sigma2 + eps)
    return _per_channel(gamma, x) * x_hat + _per_channel(beta, x)


def ref_batch_norm_test(x, gamma, beta, mean, var, eps=2e-5):
    x_hat = (x - _per_channel(mean, x)) / np.sqrt(_per_channel(var, x) + eps)
    return _per_channel(gamma, x) * x_hat + _per_channel(beta, x)


def ref_running_stats(x, mean, var, decay=0.9):
    axes = _bn_axes(x)
    m = x.size // x.shape[1]
    batch_mean = x.mean(axis=axes)
    batch_var = x.var(axis=axes, ddof=1)  # unbiased, as DeZero's m / (m - 1)
    return decay * mean + (1 - decay) * batch_mean, decay * var + (1 - decay) * batch_var, m


def _running_stats():
    return (np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0]))


def batch_norm_test_mode(x, gamma, beta, mean, var):
    with dz.test_mode():
        return F.batch_norm(x, gamma, beta, mean, var)


IDS_2x3 = np.array([[0, 4, 2], [4, 4, 1]])
IDS_6 = np.array([3, 0, 3, 1, 1, 3])

CASES = [
    op_case("linear", F.linear, ref_linear, [[(4, 3), (3, 2), (2,)], [(2, 4, 3), (3, 2), (2,)]]),
    op_case("linear_nobias", F.linear, ref_linear, [[(4, 3), (3, 2)], [(3,), (3, 2)]]),
    op_case("linear_simple", F.linear_simple, ref_linear, [[(4, 3), (3, 2), (2,)]]),
    op_case(
        "batch_norm_train",
        F.batch_norm,
        ref_batch_norm_train,
        [[(6, 3), (3,), (3,)], [(2, 3, 2, 3), (3,), (3,)]],
        consts=_running_stats,
    ),
    op_case(
        "batch_norm_test",
        batch_norm_test_mode,
        ref_batch_norm_test,
        [[(6, 3), (3,), (3,)], [(2, 3, 2, 2), (3,), (3,)]],
        consts=_running_stats,
    ),
    op_case(
        "batch_nrom",
        F.batch_nrom,
        ref_batch_norm_train,
        [[(5, 3), (3,), (3,)]],
        consts=_running_stats,
    ),
    op_case(
        "embed_id",
        lambda W, ids: F.embed_id(ids, W),
        lambda W, ids: W[ids],
        [(5, 4)],
        consts=lambda: (IDS_2x3,),
    ),
    op_case(
        "embed_id_1d",
        lambda W, ids: F.embed_id(ids, W),
        lambda W, ids: W[ids],
        [(4, 2), (4,)],
        consts=lambda: (IDS_6,),
    ),
    # The gradient of W depends on V here, so double backward goes through the scatter-add's
    # own backward.
    op_case(
        "embed_id_scaled",
        lambda W, V, ids: F.embed_id(ids, W) * V,
        lambda W, V, ids: W[ids] * V,
        [[(5, 4), (2, 3, 4)]],
        consts=lambda: (IDS_2x3,),
    ),
]

test_nn = make_op_tests(CASES)


# ---------------------------------------------------------------- linear


def test_linear_matches_linear_simple_gradients(xb, rng):
    hosts = [rng.standard_normal(s) for s in [(5, 3), (3, 4), (4,)]]
    a = [xb.variable(h) for h in hosts]
    b = [xb.variable(h) for h in hosts]
    F.linear(*a).sum().backward()
    F.linear_simple(*b).sum().backward()
    for va, vb in zip(a, b):
        np.testing.assert_allclose(xb.numpy(va.grad), xb.numpy(vb.grad), rtol=1e-12)


def test_linear_shape_mismatch_names_op_and_shapes(xb):
    with pytest.raises(ValueError, match=r"linear.*\(4, 3\).*\(2, 5\)"):
        F.linear(xb.variable(np.zeros((4, 3))), xb.variable(np.zeros((2, 5))))


# ---------------------------------------------------------------- dropout


def test_dropout_test_mode_is_identity(xb, rng):
    x = xb.variable(rng.standard_normal((50, 40)))
    with dz.test_mode():
        y = F.dropout(x, 0.5)
    assert y is x


def test_dropout_train_mode_zeroes_and_scales(xb, rng):
    x_host = rng.uniform(0.5, 1.5, size=(200, 50)).astype(np.float32)
    y = F.dropout(xb.variable(x_host), dropout_ratio=0.25)
    got = xb.numpy(y)
    kept = got != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(got[kept], x_host[kept] / 0.75, rtol=1e-6)
    assert y.dtype == xb.dtype("float32") and y.backend is xb.backend


def test_dropout_is_reproducible_with_seed(xb):
    x = xb.variable(np.ones((30, 30)))
    dz.seed(123)
    first = xb.numpy(F.dropout(x))
    dz.seed(123)
    again = xb.numpy(F.dropout(x))
    dz.seed(124)
    other = xb.numpy(F.dropout(x))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.8])
def test_dropout_keep_ratio_and_mean(xb, ratio):
    n = 200_000
    y = xb.numpy(F.dropout(xb.variable(np.ones(n)), dropout_ratio=ratio))
    kept = (y != 0).mean()
    sigma = np.sqrt(ratio * (1 - ratio) / n)
    assert abs(kept - (1 - ratio)) < 5 * sigma, (kept, 1 - ratio)
    assert abs(y.mean() - 1.0) < 5 * sigma / (1 - ratio)  # unbiased: E[y] = x


def test_dropout_gradient_is_the_same_mask(xb, rng):
    x_host = rng.uniform(0.5, 1.5, size=(40, 30))
    x = xb.variable(x_host)
    y = F.dropout(x, 0.4)
    y.backward()
    mask = xb.numpy(y) / x_host  # 0 or 1 / (1 - ratio)
    np.testing.assert_allclose(xb.numpy(x.grad), mask, rtol=1e-12)
    assert set(np.round(np.unique(mask), 9)) == {0.0, round(1 / 0.6, 9)}


def _seeded_dropout(x):
    dz.seed(7)  # the same mask on every call, so central differences see one function
    return F.dropout(x, 0.3)


def test_dropout_gradient_and_double_backward_checks(xb, rng):
    inputs = [xb.asarray(rng.standard_normal((4, 5)))]
    testing.check_backward(_seeded_dropout, inputs)
    testing.check_double_backward(_seeded_dropout, inputs)


def test_dropout_rejects_bad_ratio_and_integer_input(xb):
    with pytest.raises(ValueError, match=r"dropout.*\[0, 1\)"):
        F.dropout(xb.variable(np.ones(3)), 1.0)
    with pytest.raises(TypeError, match="dropout.*floating"):
        F.dropout(xb.variable(np.ones(3, dtype=np.int64)))


def test_dropout_ratio_zero_keeps_everything(xb, rng):
    x_host = rng.standard_normal((10, 10))
    np.testing.assert_array_equal(xb.numpy(F.dropout(xb.variable(x_host), 0.0)), x_host)


# ---------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_updates_running_stats_in_place(xb, rng, shape, dtype):
    x_host = rng.standard_normal(shape).astype(dtype) * 2 + 1
    mean_host, var_host = (a.astype(dtype) for a in _running_stats())
    mean, var = xb.asarray(mean_host), xb.asarray(var_host)
    gamma, beta = xb.variable(np.ones(3, dtype)), xb.variable(np.zeros(3, dtype))
    F.batch_norm(xb.variable(x_host), gamma, beta, mean, var, decay=0.9)
    want_mean, want_var, _ = ref_running_stats(
        x_host.astype(np.float64), mean_host.astype(np.float64), var_host.astype(np.float64)
    )
    tol = dict(rtol=1e-5) if dtype == "float32" else dict(rtol=1e-12)
    np.testing.assert_allclose(xb.numpy(mean), want_mean, **tol)
    np.testing.assert_allclose(xb.numpy(var), want_var, **tol)
    assert mean.dtype == xb.dtype(dtype) and var.dtype == xb.dtype(dtype)


def test_batch_norm_test_mode_leaves_running_stats(xb, rng):
    mean_host, var_host = _running_stats()
    mean, var = xb.asarray(mean_host), xb.asarray(var_host)
    with dz.test_mode():
        F.batch_norm(
            xb.variable(rng.standard_normal((4, 3))),
            xb.variable(np.ones(3)),
            xb.variable(np.zeros(3)),
            mean,
            var,
        )
    np.testing.assert_array_equal(xb.numpy(mean), mean_host)
    np.testing.assert_array_equal(xb.numpy(var), var_host)


def test_batch_norm_accepts_variables_as_running_stats(xb, rng):
    mean = dz.Variable(xb.asarray(np.zeros(3)))
    var = dz.Variable(xb.asarray(np.ones(3)))
    x_host = rng.standard_normal((6, 3))
    F.batch_norm(xb.variable(x_host), xb.variable(np.ones(3)), xb.variable(np.zeros(3)), mean, var)
    np.testing.assert_allclose(xb.numpy(mean), 0.1 * x_host.mean(axis=0), rtol=1e-12)


def test_batch_norm_errors_name_op_and_shapes(xb):
    x = xb.variable(np.zeros((4, 3)))
    ones, zeros = xb.variable(np.ones(3)), xb.variable(np.zeros(3))
    mean, var = xb.asarray(np.zeros(3)), xb.asarray(np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm.*gamma.*\(2,\).*\(3,\)"):
        F.batch_norm(x, xb.variable(np.ones(2)), zeros, mean, var)
    with pytest.raises(ValueError, match=r"batch_norm.*mean.*\(4,\)"):
        F.batch_norm(x, ones, zeros, xb.asarray(np.zeros(4)), var)
    with pytest.raises(ValueError, match=r"batch_norm.*\(N, C\).*\(4, 3, 2\)"):
        F.batch_norm(xb.variable(np.zeros((4, 3, 2))), ones, zeros, mean, var)
    with pytest.raises(TypeError, match="batch_norm.*mean must be an array"):
        F.batch_norm(x, ones, zeros, [0.0, 0.0, 0.0], var)


def test_batch_norm_running_stats_on_another_device_are_refused():
    pytest.importorskip("array_api_strict")
    x = dz.Variable(np.zeros((4, 3))).to("strict:device1")
    gamma = dz.Variable(np.ones(3)).to("strict:device1")
    beta = dz.Variable(np.zeros(3)).to("strict:device1")
    with pytest.raises(dz.DeviceMismatchError, match="batch_norm.*running mean"):
        F.batch_norm(x, gamma, beta, np.zeros(3), np.ones(3))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("shape", [(7, 3), (3, 3, 4, 2)])
def test_batch_norm_matches_pytorch(xb, rng, shape):
    import torch

    x_host = rng.standard_normal(shape) * 1.5 + 0.5
    gamma_host = rng.uniform(0.5, 1.5, 3)
    beta_host = rng.standard_normal(3)
    weights = rng.standard_normal(shape)
    mean_host, var_host = _running_stats()

    # PyTorch: momentum = 1 - decay, the same eps, training mode, then eval mode.
    tx = torch.tensor(x_host, requires_grad=True)
    tg = torch.tensor(gamma_host, requires_grad=True)
    tb = torch.tensor(beta_host, requires_grad=True)
    t_mean, t_var = torch.tensor(mean_host), torch.tensor(var_host)
    ty = torch.nn.functional.batch_norm(tx, t_mean, t_var, tg, tb, True, 0.1, 2e-5)
    (ty * torch.tensor(weights)).sum().backward()
    ty_eval = torch.nn.functional.batch_norm(tx, t_mean, t_var, tg, tb, False, 0.1, 2e-5)

    x, gamma, beta = xb.variable(x_host), xb.variable(gamma_host), xb.variable(beta_host)
    mean, var = xb.asarray(mean_host), xb.asarray(var_host)
    y = F.batch_norm(x, gamma, beta, mean, var, decay=0.9, eps=2e-5)
    (y * xb.variable(weights)).sum().backward()
    with dz.test_mode():
        y_eval = F.batch_norm(x, gamma, beta, mean, var, decay=0.9, eps=2e-5)

    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xb.numpy(y), ty.detach().numpy(), **close)
    np.testing.assert_allclose(xb.numpy(mean), t_mean.numpy(), **close)
    np.testing.assert_allclose(xb.numpy(var), t_var.numpy(), **close)
    np.testing.assert_allclose(xb.numpy(x.grad), tx.grad.numpy(), **close)
    np.testing.assert_allclose(xb.numpy(gamma.grad), tg.grad.numpy(), **close)
    np.testing.assert_allclose(xb.numpy(beta.grad), tb.grad.numpy(), **close)
    np.testing.assert_allclose(xb.numpy(y_eval), ty_eval.detach().numpy(), **close)


def test_batch_norm_train_output_is_normalized(xb, rng):
    x_host = rng.standard_normal((64, 4)) * 5 + 3
    y = F.batch_norm(
        xb.variable(x_host),
        xb.variable(np.ones(4)),
        xb.variable(np.zeros(4)),
        xb.asarray(np.zeros(4)),
        xb.asarray(np.ones(4)),
    )
    got = xb.numpy(y)
    np.testing.assert_allclose(got.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(got.var(axis=0), 1.0, rtol=1e-5)


# ---------------------------------------------------------------- embed_id


def test_embed_id_repeated_ids_accumulate_gradient(xb, rng):
    W = xb.variable(rng.standard_normal((5, 3)))
    ids = xb.asarray(IDS_2x3)
    y = F.embed_id(ids, W)
    assert y.shape == (2, 3, 3)
    y.sum().backward()
    counts = np.bincount(IDS_2x3.ravel(), minlength=5)
    np.testing.assert_array_equal(xb.numpy(W.grad), np.repeat(counts[:, None], 3, axis=1))


def test_embed_id_accepts_a_variable_of_ids(xb, rng):
    W_host = rng.standard_normal((5, 3))
    y = F.embed_id(dz.Variable(xb.asarray(IDS_6)), xb.variable(W_host))
    np.testing.assert_array_equal(xb.numpy(y), W_host[IDS_6])


def test_embed_id_errors(xb):
    W = xb.variable(np.zeros((4, 2)))
    with pytest.raises(TypeError, match=r"embed_id.*integers.*float64"):
        F.embed_id(xb.asarray(np.array([0.0, 1.0])), W)
    with pytest.raises(TypeError, match="embed_id.*integer array"):
        F.embed_id(None, W)


def test_embed_id_ids_on_another_device_are_refused():
    pytest.importorskip("array_api_strict")
    W = dz.Variable(np.zeros((4, 2))).to("strict:device1")
    with pytest.raises(dz.DeviceMismatchError, match="embed_id"):
        F.embed_id(np.array([0, 1]), W)
