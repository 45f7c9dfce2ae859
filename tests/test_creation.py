"""dezero_xp/creation.py: Variables made on a device (zeros, ones, full, arange, rand, randn,
tensor, *_like), on every backend the fixture offers, plus the CUDA fallback and strict mode.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as B
from dezero_xp import creation as C
from dezero_xp._backends import cupy as cupy_adapter


@pytest.fixture
def no_cupy(monkeypatch):
    def failing_import():
        raise ImportError("No module named 'cupy' (simulated)")

    monkeypatch.setattr(cupy_adapter, "import_cupy", failing_import)
    monkeypatch.setattr(B, "_default_spec", "cpu")
    B._reset_device_state()


@pytest.fixture
def strict_mode():
    previous = B.strict_devices()
    B.set_strict_devices(True)
    yield
    B.set_strict_devices(previous)


def _check(v, xb, shape, dtype_name):
    assert isinstance(v, dz.Variable) and v.creator is None
    assert v.backend is xb.backend, (v.backend, xb.backend)
    assert v.shape == shape
    assert v.dtype == xb.dtype(dtype_name)


# --------------------------------------------------------------------------- constant fills


@pytest.mark.parametrize("make", [C.zeros, C.ones])
def test_zeros_and_ones(xb, make):
    value = 0.0 if make is C.zeros else 1.0
    for v in (make(2, 3, device=xb.backend), make((2, 3), device=xb.backend)):
        _check(v, xb, (2, 3), "float32")  # float32 by default
        np.testing.assert_array_equal(xb.numpy(v), np.full((2, 3), value, np.float32))
    v = make([4], dtype="float64", device=xb.backend)
    _check(v, xb, (4,), "float64")
    _check(make((), dtype="int64", device=xb.backend), xb, (), "int64")
    _check(make(0, 2, dtype=np.bool_, device=xb.backend), xb, (0, 2), "bool")


def test_full_and_full_like(xb):
    v = C.full((2, 2), 2.5, device=xb.backend, name="w")
    _check(v, xb, (2, 2), "float32")
    assert v.name == "w"
    np.testing.assert_array_equal(xb.numpy(v), np.full((2, 2), 2.5, np.float32))
    _check(C.full(3, 7, dtype="int32", device=xb.backend), xb, (3,), "int32")
    like = C.full_like(v, -1)
    _check(like, xb, (2, 2), "float32")
    np.testing.assert_array_equal(xb.numpy(like), -np.ones((2, 2), np.float32))


def test_like_helpers_keep_dtype_and_device(xb):
    x = xb.variable(np.arange(6, dtype=np.float64).reshape(2, 3))
    for make, value in ((C.zeros_like, 0.0), (C.ones_like, 1.0)):
        for source in (x, x.data):  # a Variable or a raw array
            v = make(source)
            _check(v, xb, (2, 3), "float64")
            np.testing.assert_array_equal(xb.numpy(v), np.full((2, 3), value))
        _check(make(x, dtype="float32"), xb, (2, 3), "float32")
    moved = C.zeros_like(x, device="cpu")
    assert moved.backend is B.NUMPY and moved.dtype == np.float64


def test_dtype_objects_of_the_backend_are_accepted(xb):
    v = C.zeros(2, dtype=xb.dtype("float64"), device=xb.backend)
    _check(v, xb, (2,), "float64")


# --------------------------------------------------------------------------- arange


def test_arange(xb):
    v = C.arange(5, device=xb.backend)
    _check(v, xb, (5,), "int64")
    np.testing.assert_array_equal(xb.numpy(v), np.arange(5))
    v = C.arange(1, 10, 3, device=xb.backend)
    np.testing.assert_array_equal(xb.numpy(v), [1, 4, 7])
    v = C.arange(0, 1, 0.25, device=xb.backend)
    _check(v, xb, (4,), "float32")  # a float bound: the default float dtype
    np.testing.assert_array_equal(xb.numpy(v), np.array([0, 0.25, 0.5, 0.75], np.float32))
    _check(C.arange(3, dtype="float64", device=xb.backend), xb, (3,), "float64")
    np.testing.assert_array_equal(xb.numpy(C.arange(5, 0, -2, device=xb.backend)), [5, 3, 1])


# --------------------------------------------------------------------------- random


@pytest.mark.parametrize("make", [C.rand, C.randn])
def test_random_helpers_are_seeded_per_backend(xb, make):
    dz.seed(3)
    a = make(50, 4, device=xb.backend)
    b = make(50, 4, device=xb.backend)
    dz.seed(3)
    a2 = make((50, 4), device=xb.backend)
    _check(a, xb, (50, 4), "float32")
    np.testing.assert_array_equal(xb.numpy(a), xb.numpy(a2))  # same seed, same numbers
    assert not np.array_equal(xb.numpy(a), xb.numpy(b))  # the stream moves on
    _check(make(3, dtype="float64", device=xb.backend), xb, (3,), "float64")


def test_rand_range_and_randn_moments(xb):
    u = xb.numpy(C.rand(20000, device=xb.backend))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01
    n = xb.numpy(C.randn(20000, dtype="float64", device=xb.backend))
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03


@pytest.mark.parametrize("make", [C.rand, C.randn])
def test_random_helpers_need_a_floating_dtype(make):
    with pytest.raises(TypeError, match="real floating dtype.*int64"):
        make(2, dtype="int64")


# --------------------------------------------------------------------------- tensor


def test_tensor_from_python_data(xb):
    v = C.tensor([[1.0, 2.0], [3.0, 4.5]], device=xb.backend)
    _check(v, xb, (2, 2), "float32")  # Python floats: the default float dtype
    np.testing.assert_array_equal(xb.numpy(v), np.array([[1, 2], [3, 4.5]], np.float32))
    _check(C.tensor([1, 2, 3], device=xb.backend), xb, (3,), "int64")
    _check(C.tensor([True, False], device=xb.backend), xb, (2,), "bool")
    _check(C.tensor(2.0, device=xb.backend), xb, (), "float32")
    _check(C.tensor([1, 2], dtype="float64", device=xb.backend), xb, (2,), "float64")


def test_tensor_of_an_array_copies_and_keeps_its_dtype(xb):
    source = xb.asarray(np.arange(3, dtype=np.float64))
    v = C.tensor(source)
    _check(v, xb, (3,), "float64")  # a float64 array stays float64
    source[0] = 9.0  # write into the source ...
    assert xb.numpy(v)[0] == 0.0  # ... the tensor is a copy
    w = C.tensor(dz.Variable(source), dtype="float32")
    _check(w, xb, (3,), "float32")
    assert w.creator is None


def test_tensor_moves_arrays_explicitly(xb):
    host = np.arange(4, dtype=np.float32)
    v = C.tensor(host, device=xb.backend)
    _check(v, xb, (4,), "float32")
    back = C.tensor(v, device="cpu")
    assert back.backend is B.NUMPY
    np.testing.assert_array_equal(back.data, host)
    assert back.data is not host


def test_tensor_keeps_numpy_scalars_dtype():
    assert C.tensor(np.float64(1.5)).dtype == np.float64
    assert C.tensor(np.float32(1.5)).dtype == np.float32
    assert C.tensor(1.5).dtype == np.float32


def test_created_variables_take_part_in_graphs(xb):
    w = C.ones(3, device=xb.backend)
    x = C.arange(3, dtype="float32", device=xb.backend)
    y = (w * x).sum()
    y.backward()
    np.testing.assert_array_equal(xb.numpy(w.grad), [0, 1, 2])


def test_default_device_is_used_for_python_data(monkeypatch):
    pytest.importorskip("array_api_strict")
    monkeypatch.setattr(B, "_default_spec", "strict:device1")
    assert C.zeros(2).device == "strict:device1"
    assert C.tensor([1.0]).device == "strict:device1"
    assert C.tensor(np.ones(2)).backend is B.NUMPY  # arrays stay where they are


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: C.zeros(2, -1), ValueError, "negative dimension"),
        (lambda: C.zeros("a"), TypeError, "the shape must be ints"),
        (lambda: C.ones(2.5), TypeError, "the shape must be ints"),
        (lambda: C.zeros(2, dtype="sum"), TypeError, "not a dtype"),
        (lambda: C.zeros(2, dtype="nonsense"), TypeError, "not a dtype"),
        (lambda: C.full((2,), "x"), TypeError, "fill_value must be a number"),
        (lambda: C.arange(0, 5, 0), ValueError, "step must not be zero"),
        (lambda: C.arange(True), TypeError, "real numbers"),
        (lambda: C.tensor("abc"), TypeError, "expected numbers"),
        (lambda: C.tensor(None), TypeError, "expected numbers"),
        (lambda: C.tensor([[1, 2], [3]]), ValueError, "tensor: cannot make an array"),
        (lambda: C.zeros_like([1, 2]), TypeError, "expected a Variable or an array"),
        (lambda: C.zeros(2, device="tpu"), ValueError, "unknown device"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


# --------------------------------------------------------------------------- CUDA fallback

CUDA_CALLS = [
    lambda: C.zeros(2, device="cuda"),
    lambda: C.ones(2, device="cuda:1"),
    lambda: C.full((2,), 3.0, device=0),
    lambda: C.arange(3, device="gpu"),
    lambda: C.rand(2, device="cuda"),
    lambda: C.randn(2, device="cuda"),
    lambda: C.tensor([1.0], device="cuda"),
    lambda: C.zeros_like(np.ones(2), device="cuda"),
]


@pytest.mark.parametrize("call", CUDA_CALLS)
def test_cuda_without_cupy_falls_back_with_one_warning(no_cupy, call):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        v = call()
        call()  # a second request stays silent
    fallback = [w for w in record if issubclass(w.category, dz.DeviceFallbackWarning)]
    assert len(fallback) == 1, [str(w.message) for w in record]
    assert "CuPy is not importable" in str(fallback[0].message)
    assert fallback[0].filename == __file__
    assert v.backend is B.NUMPY


@pytest.mark.parametrize("call", CUDA_CALLS)
def test_cuda_without_cupy_raises_in_strict_mode(no_cupy, strict_mode, call):
    with pytest.raises(dz.DeviceUnavailableError, match="CuPy is not importable"):
        call()


def test_auto_picks_the_cpu_quietly_without_cuda(no_cupy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert C.zeros(2, device="auto").backend is B.NUMPY
