"""The per-backend kernel tables (dezero_xp/_backends): scatter_add, pad and random numbers,
on every backend against NumPy (``np.add.at``, ``np.pad``).
"""

from __future__ import annotations

import numpy as np
import pytest

from dezero_xp import backend as B
from dezero_xp._backends import GenericKernels

# (id, target shape, key built on the host, values shape or None for target[key].shape)
SCATTER_CASES = [
    ("repeated-1d", (5,), lambda: np.array([0, 1, 1, 4, 0, 0]), None),
    ("repeated-rows", (4, 3), lambda: (np.array([0, 2, 2, 3, 2]), Ellipsis), None),
    ("negative", (4, 3), lambda: (np.array([-1, 2, -1, 0, -4]), Ellipsis), None),
    ("two-axes", (4, 3), lambda: (np.array([0, 1, 0, 3, 0]), np.array([2, 2, 2, -1, 2])), None),
    ("index-matrix", (5, 2), lambda: (np.array([[0, 1], [1, 4], [4, 4]]), Ellipsis), None),
    ("array-then-int", (4, 3), lambda: (np.array([0, 0, 3]), 1), None),
    ("three-d", (3, 2, 2), lambda: (np.array([2, 0, 2, 2]), Ellipsis), None),
    ("slices", (4, 3), lambda: (slice(1, 3), slice(None, None, 2)), None),
    ("int-ellipsis", (4, 3), lambda: (2, Ellipsis), None),
    ("int-slice", (4, 3), lambda: (1, slice(0, 2)), None),
    ("broadcast-scalar-values", (5,), lambda: np.array([0, 1, 1, 1]), ()),
]


def _key_on_backend(key, xb):
    def convert(k):
        return xb.asarray(k) if isinstance(k, np.ndarray) else k

    return tuple(convert(k) for k in key) if isinstance(key, tuple) else convert(key)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", SCATTER_CASES, ids=[c[0] for c in SCATTER_CASES])
def test_scatter_add_matches_numpy_add_at(xb, case, dtype, rng):
    _, shape, make_key, values_shape = case
    key_host = make_key()
    target_host = rng.standard_normal(shape).astype(dtype)
    if values_shape is None:
        values_shape = target_host[key_host].shape
    values_host = rng.standard_normal(values_shape).astype(dtype)
    expected = target_host.copy()
    np.add.at(expected, key_host, values_host)

    result = xb.backend.ops.scatter_add(
        xb.asarray(target_host), _key_on_backend(key_host, xb), xb.asarray(values_host)
    )
    assert B.backend_of(result) is xb.backend
    assert result.dtype == xb.dtype(dtype)
    tolerance = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(xb.numpy(result), expected, rtol=tolerance, atol=tolerance)


def test_scatter_add_slice_before_array(xb, rng):
    """``x[:, idx]``: NumPy, CuPy and torch accumulate; the standard-only kernel says why not."""
    target = rng.standard_normal((3, 4))
    idx = np.array([0, 3, 0, 0])
    values = rng.standard_normal((3, 4))
    key = (slice(None), xb.asarray(idx))
    if xb.backend.ops.scatter_add.__func__ is GenericKernels.scatter_add:
        with pytest.raises(NotImplementedError, match="scatter_add: the standard-only kernel"):
            xb.backend.ops.scatter_add(xb.asarray(target), key, xb.asarray(values))
        return
    expected = target.copy()
    np.add.at(expected, (slice(None), idx), values)
    result = xb.backend.ops.scatter_add(xb.asarray(target), key, xb.asarray(values))
    np.testing.assert_allclose(xb.numpy(result), expected, rtol=1e-13)


@pytest.mark.parametrize(
    "pad_width, value",
    [(((1, 2), (0, 1)), 0), (((0, 0), (2, 2)), -1.5), (((3, 0), (0, 0)), 7)],
)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_pad_matches_numpy(xb, pad_width, value, dtype):
    host = np.arange(6).reshape(2, 3).astype(dtype)
    if dtype == "int64" and not float(value).is_integer():
        value = 2
    expected = np.pad(host, pad_width, mode="constant", constant_values=value)
    result = xb.backend.ops.pad(xb.asarray(host), pad_width, value)
    assert result.dtype == xb.dtype(dtype)
    assert B.backend_of(result) is xb.backend
    np.testing.assert_array_equal(xb.numpy(result), expected)


def test_pad_4d_image_borders(xb, rng):
    host = rng.standard_normal((2, 3, 4, 5))
    width = ((0, 0), (0, 0), (1, 1), (2, 2))
    result = xb.backend.ops.pad(xb.asarray(host), width, 0)
    np.testing.assert_array_equal(xb.numpy(result), np.pad(host, width))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_dtype_range_and_spread(xb, dtype):
    sample = xb.backend.ops.uniform((200, 50), xb.dtype(dtype))
    assert sample.dtype == xb.dtype(dtype) and tuple(sample.shape) == (200, 50)
    assert B.backend_of(sample) is xb.backend
    host = xb.numpy(sample)
    assert host.min() >= 0.0 and host.max() < 1.0
    assert abs(host.mean() - 0.5) < 0.02  # 10,000 draws: sd of the mean ~0.003
    assert abs(host.var() - 1 / 12) < 0.005


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_dtype_and_moments(xb, dtype):
    sample = xb.backend.ops.normal((100, 100), xb.dtype(dtype))
    assert sample.dtype == xb.dtype(dtype) and tuple(sample.shape) == (100, 100)
    host = xb.numpy(sample).astype(np.float64)
    assert abs(host.mean()) < 0.04  # sd of the mean 0.01
    assert abs(host.std() - 1.0) < 0.03
    assert host.min() < -2.5 and host.max() > 2.5  # tails exist: not a uniform in disguise


def test_permutation_is_a_permutation(xb):
    p = xb.backend.ops.permutation(50)
    assert B.backend_of(p) is xb.backend
    host = xb.numpy(p)
    assert host.dtype.kind == "i"
    assert sorted(host.tolist()) == list(range(50))
    assert host.tolist() != list(range(50))


class _RngNearOne:
    """A stand-in NumPy Generator whose uniform draws are the largest value below 1."""

    def random(self, shape, dtype=np.float64):
        return np.full(shape, np.nextafter(dtype(1.0), dtype(0.0)), dtype=dtype)


def test_standard_only_uniform_float32_never_reaches_one(monkeypatch):
    """A float64 draw just below 1 rounds up to 1.0 in float32: draw float32 directly."""
    pytest.importorskip("array_api_strict")
    backend = B.get_backend("strict")
    monkeypatch.setattr(backend.ops, "_rng", _RngNearOne())
    sample = B.to_host(backend.ops.uniform((3,), backend.xp.float32))
    assert sample.dtype == np.float32
    assert (sample < 1.0).all(), sample


@pytest.mark.parametrize("shape", [(), (5, 4)])
def test_sigmoid_kernel_matches_the_logistic_function_without_overflow(xb, shape):
    host = np.random.default_rng(4).uniform(-30, 30, size=shape)
    host = np.concatenate([host.ravel(), [1000.0, -1000.0]]) if shape else host
    for dtype in ("float32", "float64"):
        x = xb.asarray(host.astype(dtype))
        y = xb.numpy(xb.backend.ops.sigmoid(x))
        assert y.dtype == np.dtype(dtype)
        expected = 0.5 * (1 + np.tanh(0.5 * host))  # = 1 / (1 + exp(-x)), overflow-free
        np.testing.assert_allclose(y, expected.astype(dtype), rtol=2e-6, atol=1e-7)
        np.testing.assert_array_equal(xb.numpy(x), host.astype(dtype))  # input untouched
