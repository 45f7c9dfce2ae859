"""dezero_xp/cuda.py: DeZero's ``dezero.cuda`` names over the backend layer.

The CPU-only behaviour (fallback with one warning, strict mode raising) is tested everywhere by
simulating a machine without CuPy; the real CuPy round trip runs only on a GPU (marked ``gpu``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as backend_module
from dezero_xp import cuda
from dezero_xp._backends import cupy as cupy_adapter


@pytest.fixture
def no_cupy(monkeypatch):
    """A machine where `import cupy` fails, whatever this one has."""

    def missing():
        raise ImportError("No module named 'cupy' (simulated)")

    monkeypatch.setattr(cupy_adapter, "import_cupy", missing)
    backend_module._reset_device_state()
    strict = backend_module.strict_devices()
    backend_module.set_strict_devices(False)  # fallback, whatever DEZERO_XP_STRICT_DEVICES says
    yield
    backend_module.set_strict_devices(strict)
    backend_module._reset_device_state()


@pytest.fixture
def strict_devices():
    previous = backend_module.strict_devices()
    backend_module.set_strict_devices(True)
    yield
    backend_module.set_strict_devices(previous)


def test_gpu_enable_is_the_backend_probe():
    assert cuda.gpu_enable is backend_module.cuda_available()
    assert "gpu_enable" in cuda.__all__


def test_gpu_enable_is_false_without_cupy(no_cupy):
    assert cuda.gpu_enable is False


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'gpu_enabled'"):
        cuda.gpu_enabled  # noqa: B018 - the attribute access is the test


def test_get_array_module_of_arrays_and_variables(xb):
    x = xb.asarray(np.ones(3))
    assert cuda.get_array_module(x) is xb.xp
    assert cuda.get_array_module(dz.Variable(x)) is xb.xp
    assert cuda.get_array_module(np.ones(2)) is np
    assert cuda.get_array_module(1.5) is np


def test_as_numpy_from_every_backend(xb, rng):
    host = rng.standard_normal((2, 3)).astype(np.float32)
    for value in (xb.asarray(host), xb.variable(host)):
        result = cuda.as_numpy(value)
        assert type(result) is np.ndarray and result.dtype == np.float32
        np.testing.assert_array_equal(result, host)


def test_as_numpy_of_scalars_and_numpy_arrays():
    assert cuda.as_numpy(2.5).shape == () and float(cuda.as_numpy(2.5)) == 2.5
    x = np.arange(3)
    assert cuda.as_numpy(x) is x


def test_as_cupy_without_a_gpu_falls_back_with_one_warning(no_cupy):
    x = np.arange(4.0)
    with pytest.warns(dz.DeviceFallbackWarning, match="CuPy is not importable"):
        y = cuda.as_cupy(x)
    assert y is x  # already on the fallback device: no copy
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call warns no more
        z = cuda.as_cupy(dz.Variable(np.ones(2)))
        s = cuda.as_cupy(3.0)
    assert type(z) is np.ndarray and type(s) is np.ndarray and float(s) == 3.0


def test_as_cupy_without_a_gpu_raises_in_strict_mode(no_cupy, strict_devices):
    with pytest.raises(dz.DeviceUnavailableError, match="Strict device mode"):
        cuda.as_cupy(np.ones(2))


def test_as_cupy_rejects_non_arrays(no_cupy):
    with pytest.warns(dz.DeviceFallbackWarning), pytest.raises(TypeError):
        cuda.as_cupy([1.0, 2.0])


@pytest.mark.gpu
def test_as_cupy_round_trip_on_a_gpu(rng):
    if not backend_module.cuda_available():
        pytest.skip(f"needs a usable CUDA GPU: {backend_module._cuda_status()[1]}")
    host = rng.standard_normal((2, 3)).astype(np.float32)
    on_gpu = cuda.as_cupy(host)
    assert dz.backend.backend_of(on_gpu) is dz.get_backend("cuda:0")
    assert cuda.get_array_module(on_gpu) is dz.get_backend("cuda:0").xp
    np.testing.assert_array_equal(cuda.as_numpy(on_gpu), host)
    np.testing.assert_array_equal(cuda.as_numpy(dz.Variable(on_gpu)), host)
