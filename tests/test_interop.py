"""dezero_xp/interop.py: DLPack exchange with torch (CPU here), NumPy and array-api-strict.

Sharing is checked the only way that means anything: an in-place write on one side must show
on the other. CUDA producers are simulated by an object that reports a CUDA DLPack device.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as B
from dezero_xp import interop
from dezero_xp._backends import cupy as cupy_adapter

torch = pytest.importorskip("torch")


@pytest.fixture
def no_cupy(monkeypatch):
    def failing_import():
        raise ImportError("No module named 'cupy' (simulated)")

    monkeypatch.setattr(cupy_adapter, "import_cupy", failing_import)
    B._reset_device_state()


class CudaProducer:
    """Claims to hold CUDA memory (DLPack device type 2) on GPU ``index``."""

    def __init__(self, index=0):
        self.index = index

    def __dlpack__(self, **kwargs):
        raise AssertionError("must not be imported without a usable CUDA backend")

    def __dlpack_device__(self):
        return (2, self.index)


# --------------------------------------------------------------------------- from_dlpack


def test_torch_cpu_tensor_becomes_a_numpy_variable_sharing_memory():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    v = interop.from_dlpack(t)
    assert v.backend is B.NUMPY and v.dtype == np.float32 and v.shape == (2, 3)
    assert v.creator is None
    t[0, 0] = 42.0  # written on the torch side ...
    assert v.data[0, 0] == 42.0  # ... seen on ours
    v.data[1, 2] = -1.0  # and the other way round
    assert t[1, 2].item() == -1.0


@pytest.mark.parametrize("device", ["strict", "strict:device1"])
def test_torch_tensor_into_array_api_strict(device):
    pytest.importorskip("array_api_strict")
    t = torch.zeros(3, dtype=torch.float64)
    v = interop.from_dlpack(t, device=device)
    assert v.backend is B.get_backend(device) and v.dtype == v.xp.float64
    t[1] = 5.0
    assert B.to_host(v.data)[1] == 5.0


def test_torch_tensor_kept_as_torch():
    t = torch.ones(2)
    v = interop.from_dlpack(t, device="torch")
    assert v.backend is B.get_backend("torch:cpu")
    t[0] = 3.0
    assert v.data[0].item() == 3.0


def test_copy_true_gives_private_memory():
    t = torch.zeros(3)
    v = interop.from_dlpack(t, copy=True)
    t[0] = 1.0
    assert v.data[0] == 0.0


def test_gradients_flow_in_the_new_variable_not_back_into_torch():
    t = torch.tensor([1.0, 2.0, 3.0])
    v = interop.from_dlpack(t)
    y = (v * v).sum()
    y.backward()
    np.testing.assert_array_equal(v.grad.data, [2.0, 4.0, 6.0])
    assert t.grad is None


def test_dtypes_survive_the_exchange():
    for dtype, expected in [
        (torch.float64, np.float64),
        (torch.int64, np.int64),
        (torch.bool, np.bool_),
        (torch.float16, np.float16),
    ]:
        v = interop.from_dlpack(torch.zeros(2, dtype=dtype))
        assert v.dtype == expected


def test_a_tensor_that_requires_grad_names_the_fix():
    t = torch.ones(2, requires_grad=True)
    with pytest.raises(BufferError, match=r"detach\(\)"):
        interop.from_dlpack(t)
    v = interop.from_dlpack(t.detach())
    assert v.shape == (2,)


def test_cuda_device_on_a_cpu_tensor_falls_back_once_and_still_shares(no_cupy):
    t = torch.zeros(2)
    with pytest.warns(dz.DeviceFallbackWarning) as record:
        v = interop.from_dlpack(t, device="cuda")
    assert len(record) == 1
    assert v.backend is B.NUMPY
    t[0] = 7.0
    assert v.data[0] == 7.0


def test_cuda_device_in_strict_mode_raises(no_cupy):
    B.set_strict_devices(True)
    try:
        with pytest.raises(dz.DeviceUnavailableError):
            interop.from_dlpack(torch.zeros(2), device="cuda")
    finally:
        B.set_strict_devices(False)


def test_cuda_memory_without_a_usable_cuda_backend_is_an_error(no_cupy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: there is nothing to fall back to
        with pytest.raises(dz.DeviceUnavailableError, match=r"lives on cuda:1.*torch:cuda:1"):
            interop.from_dlpack(CudaProducer(1))


def test_memory_on_another_device_than_asked_needs_copy_true():
    with pytest.raises(dz.DeviceMismatchError, match="copy=True"):
        interop.from_dlpack(CudaProducer(0), device="cpu")


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ([1.0, 2.0], "does not implement the DLPack protocol"),
        (3.0, "does not implement the DLPack protocol"),
        (dz.Variable(np.ones(2)), "already a Variable"),
    ],
)
def test_non_producers_are_rejected(obj, fragment):
    with pytest.raises(TypeError, match=fragment):
        interop.from_dlpack(obj)


def test_unknown_dlpack_device_types_are_named():
    class RocmProducer:
        def __dlpack__(self, **kwargs):
            raise AssertionError

        def __dlpack_device__(self):
            return (10, 0)

    with pytest.raises(TypeError, match="ROCm"):
        interop.from_dlpack(RocmProducer())


# --------------------------------------------------------------------------- to_dlpack


def test_numpy_variable_to_torch_shares_memory():
    v = dz.Variable(np.arange(4, dtype=np.float32))
    t = torch.from_dlpack(interop.to_dlpack(v))
    assert t.dtype == torch.float32
    t[0] = 10.0
    assert v.data[0] == 10.0
    v.data[3] = -2.0
    assert t[3].item() == -2.0


def test_strict_variable_to_torch_shares_memory():
    pytest.importorskip("array_api_strict")
    v = dz.Variable(np.zeros(3), device="strict:device1")
    t = torch.from_dlpack(interop.to_dlpack(v))
    t[2] = 4.0
    assert B.to_host(v.data)[2] == 4.0


def test_round_trip_through_torch_keeps_one_buffer():
    v = dz.Variable(np.zeros((2, 2), dtype=np.float32))
    back = interop.from_dlpack(torch.from_dlpack(interop.to_dlpack(v)))
    back.data[1, 1] = 5.0
    assert v.data[1, 1] == 5.0


def test_to_dlpack_errors():
    with pytest.raises(ValueError, match="holds no data"):
        interop.to_dlpack(dz.Variable(None))
    with pytest.raises(TypeError, match="expected a Variable or an array"):
        interop.to_dlpack([1, 2])


def test_variable_speaks_dlpack_and_shares_memory():
    v = dz.Variable(np.arange(3.0))
    shared = np.from_dlpack(v)
    shared[0] = 7.0
    assert v.data[0] == 7.0
    assert v.__dlpack_device__() == v.data.__dlpack_device__()
