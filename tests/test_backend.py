"""The backend layer (dezero_xp/backend.py): devices, device specs, resolution, the CUDA
fallback and strict mode, transfers, seeding and the default device.

CUDA is simulated where the test is about the fallback (``dezero_xp._backends.cupy.import_cupy``
patched to fail, or to return a fake CuPy that sees no device), so these tests mean the same on
every machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as B
from dezero_xp._backends import cupy as cupy_adapter
from dezero_xp.backend import Device

SPEC_WORDS = ('"cpu"', '"cuda:N"', '"auto"', '"strict[:NAME]"', "Backend")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _cpu_default(monkeypatch):
    """``None`` means the CPU here, whatever DEZERO_XP_DEVICE the session runs with."""
    monkeypatch.setattr(B, "_default_spec", "cpu")


@pytest.fixture
def no_cupy(monkeypatch):
    """CuPy cannot be imported (as on a machine without it)."""

    def failing_import():
        raise ImportError("No module named 'cupy' (simulated)")

    monkeypatch.setattr(cupy_adapter, "import_cupy", failing_import)
    B._reset_device_state()


@pytest.fixture
def cupy_without_gpu(monkeypatch):
    """CuPy imports but sees no usable device (`import cupy` succeeds without a GPU)."""
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setattr(cupy_adapter, "import_cupy", lambda: fake)
    B._reset_device_state()


@pytest.fixture
def strict_mode():
    previous = B.strict_devices()
    B.set_strict_devices(True)
    yield
    B.set_strict_devices(previous)


@pytest.fixture
def restore_default_device():
    saved = B._default_spec
    yield
    B._default_spec = saved


def _fallback_warnings(record):
    return [w for w in record if issubclass(w.category, dz.DeviceFallbackWarning)]


# --------------------------------------------------------------------------- Device


def test_device_values_and_strings():
    assert str(Device("cpu")) == "cpu"
    assert str(Device("cuda", 1)) == "cuda:1"
    assert str(Device("strict", "device1")) == "strict:device1"
    assert repr(Device("cuda", 0)) == "Device('cuda:0')"
    assert Device("cuda", 0) == Device("cuda", 0)
    assert Device("cuda", 0) != Device("cuda", 1)
    assert Device("cpu") == "cpu" and Device("cuda", 1) == "cuda:1"
    assert Device("cpu") != "cuda"
    assert len({Device("cpu"), Device("cpu"), Device("cuda", 0)}) == 2
    assert {Device("cpu"): 1}["cpu"] == 1  # equal values hash alike
    with pytest.raises(AttributeError):
        Device("cpu").type = "cuda"  # frozen


# --------------------------------------------------------------------------- get_backend


@pytest.mark.parametrize("spec", [None, "cpu", "numpy", "numpy:cpu", " CPU ", -1, np.int64(-3)])
def test_cpu_specs(spec):
    assert B.get_backend(spec) is B.NUMPY


def test_backend_objects_and_devices_resolve_to_themselves():
    assert B.get_backend(B.NUMPY) is B.NUMPY
    assert B.get_backend(Device("cpu")) is B.NUMPY
    strict = B.get_backend("strict:device1")
    assert B.get_backend(strict) is strict


@pytest.mark.parametrize(
    "spec, name, device",
    [
        ("strict", "strict", "strict:CPU_DEVICE"),
        ("strict:CPU_DEVICE", "strict", "strict:CPU_DEVICE"),
        ("strict:device1", "strict", "strict:device1"),
        (Device("strict", "device1"), "strict", "strict:device1"),
    ],
)
def test_strict_specs(spec, name, device):
    pytest.importorskip("array_api_strict")
    backend = B.get_backend(spec)
    assert backend.name == name and str(backend.device) == device
    assert backend.xp.__name__ == "array_api_strict"


def test_strict_device_objects():
    strict = pytest.importorskip("array_api_strict")
    assert B.get_backend(strict.Device("device1")) is B.get_backend("strict:device1")
    assert B.get_backend(strict.Device("CPU_DEVICE")) is B.get_backend("strict")


def test_torch_specs():
    torch = pytest.importorskip("torch")
    backend = B.get_backend("torch")
    assert backend.name == "torch" and backend.device == "cpu"
    assert B.get_backend("torch:cpu") is backend
    assert B.get_backend(torch.device("cpu")) is backend
    # torch.device("cpu", 0) is the same device: tensors made there report plain "cpu".
    assert B.get_backend(torch.device("cpu", 0)) is backend
    assert B.backend_of(torch.ones(2, device="cpu:0")) is backend


def test_singletons():
    pytest.importorskip("array_api_strict")
    assert B.get_backend("strict") is B.get_backend("strict:CPU_DEVICE")
    assert B.get_backend("strict:device1") is B.get_backend("strict:device1")
    assert B.get_backend("strict") is not B.get_backend("strict:device1")
    assert B.get_backend("cpu") is B.get_backend("numpy") is B.get_backend(None)


def test_backend_str_is_a_spec_that_resolves_back():
    names = ["cpu"]
    for module, spec in (
        ("array_api_strict", "strict"),
        ("array_api_strict", "strict:device1"),
        ("torch", "torch:cpu"),
    ):
        try:
            __import__(module)
        except ImportError:
            continue
        names.append(spec)
    for spec in names:
        backend = B.get_backend(spec)
        assert B.get_backend(str(backend)) is backend
        assert repr(backend) == f"<Backend {backend}>"
    assert str(B.NUMPY) == "numpy:cpu"


@pytest.mark.parametrize(
    "spec, error",
    [
        ("tpu", ValueError),
        ("", ValueError),
        ("cuda:x", ValueError),
        ("cuda:-1", ValueError),
        ("strict:no_such_device", ValueError),
        (Device("tpu"), ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ([0], TypeError),
        (object(), TypeError),
    ],
    ids=[
        "tpu",
        "empty",
        "cuda-x",
        "cuda-negative",
        "strict-unknown",
        "Device-tpu",
        "float",
        "bool",
        "list",
        "object",
    ],
)
def test_invalid_specs_list_the_accepted_ones(spec, error):
    if spec == "strict:no_such_device":
        pytest.importorskip("array_api_strict")
    with pytest.raises(error) as info:
        B.get_backend(spec)
    message = str(info.value)
    assert type(info.value) is error
    for word in SPEC_WORDS:
        assert word in message, f"{word} missing from: {message}"


# --------------------------------------------------------------------------- backend_of


def test_backend_of_by_type():
    assert B.backend_of(np.ones(2)) is B.NUMPY
    assert B.backend_of(np.float64(1.0)) is B.NUMPY
    assert B.backend_of(np.float32(1.0)) is B.NUMPY
    assert B.backend_of(np.ones((), dtype=np.int8)) is B.NUMPY


def test_backend_of_strict_arrays_tracks_their_device():
    strict = pytest.importorskip("array_api_strict")
    a = strict.ones(2)
    b = strict.ones(2, device=strict.Device("device1"))
    assert B.backend_of(a) is B.get_backend("strict")
    assert B.backend_of(b) is B.get_backend("strict:device1")
    assert B.backend_of(a) is not B.backend_of(b)


def test_backend_of_torch_tensors():
    torch = pytest.importorskip("torch")
    assert B.backend_of(torch.ones(2)) is B.get_backend("torch:cpu")


@pytest.mark.parametrize("obj", [1.0, 3, [1.0], (1,), "x", None, object(), {"a": 1}])
def test_backend_of_unsupported_types(obj):
    with pytest.raises(TypeError, match="unsupported array type"):
        B.backend_of(obj)


def test_is_array_and_get_array_module():
    assert B.is_array(np.ones(2))
    assert not B.is_array(np.float64(1.0))
    assert not any(B.is_array(o) for o in (1.0, [1.0], None, "x", object()))
    assert B.get_array_module(np.ones(2)) is np
    assert B.get_array_module(dz.Variable(np.ones(2))) is np
    assert B.get_array_module(1.0) is np
    strict = pytest.importorskip("array_api_strict")
    assert B.is_array(strict.ones(2))
    assert B.get_array_module(dz.Variable(np.ones(2), device="strict")) is strict


# --------------------------------------------------------------------------- CUDA fallback


@pytest.mark.parametrize("spec", ["cuda", "cuda:1", "gpu", "cupy", 0, 2, Device("cuda", 0)])
def test_cuda_falls_back_without_cupy(no_cupy, spec):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert B.get_backend(spec) is B.NUMPY
        assert B.get_backend(spec) is B.NUMPY  # a second request stays silent
    fallback = _fallback_warnings(record)
    assert len(fallback) == 1, [str(w.message) for w in record]
    message = str(fallback[0].message)
    assert "CuPy is not importable" in message and "simulated" in message  # says why
    assert "using the CPU" in message
    assert fallback[0].filename == __file__  # points at the caller, not into the library


def test_cuda_falls_back_when_cupy_sees_no_device(cupy_without_gpu):
    with pytest.warns(dz.DeviceFallbackWarning) as record:
        assert B.get_backend("cuda") is B.NUMPY
    assert len(_fallback_warnings(record)) == 1
    assert "no CUDA device is usable" in str(record[0].message)
    assert "cupy.cuda.is_available() is False" in str(record[0].message)
    assert B.cuda_available() is False


def test_cuda_probe_errors_are_reported(monkeypatch):
    def broken():
        raise RuntimeError("CUDA driver version is insufficient")

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=broken))
    monkeypatch.setattr(cupy_adapter, "import_cupy", lambda: fake)
    B._reset_device_state()
    with pytest.warns(dz.DeviceFallbackWarning, match="driver version is insufficient"):
        assert B.get_backend("cuda:0") is B.NUMPY


def test_fallback_warning_once_per_process_until_reset(no_cupy):
    with pytest.warns(dz.DeviceFallbackWarning):
        B.get_backend("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any further warning would fail here
        assert B.get_backend("cuda:0") is B.NUMPY
        assert B.get_backend(0) is B.NUMPY
        x = dz.Variable(np.ones(2)).to_gpu()
    assert type(x.data) is np.ndarray
    B._reset_device_state()
    with pytest.warns(dz.DeviceFallbackWarning):
        B.get_backend("cuda")


def test_auto_and_negative_ints_never_warn(no_cupy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert B.get_backend("auto") is B.NUMPY
        assert B.get_backend(-1) is B.NUMPY
        assert B.get_default_device() is B.NUMPY


def test_strict_mode_raises_instead_of_falling_back(no_cupy, strict_mode):
    assert B.strict_devices() is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(dz.DeviceUnavailableError) as info:
            B.get_backend("cuda")
    message = str(info.value)
    assert "'cuda'" in message and "CuPy is not importable" in message
    assert "strict" in message.lower()
    assert isinstance(info.value, RuntimeError)
    assert B.get_backend("auto") is B.NUMPY  # "auto" means "cuda if usable": no error


def test_strict_mode_from_the_environment():
    """DEZERO_XP_STRICT_DEVICES is read when dezero_xp is imported."""
    script = textwrap.dedent(
        """
        import dezero_xp as dz
        from dezero_xp import backend as B
        def no_cupy():
            raise ImportError("simulated")
        from dezero_xp._backends import cupy as cupy_adapter
        cupy_adapter.import_cupy = no_cupy
        B._reset_device_state()
        print(B.strict_devices())
        try:
            B.get_backend("cuda")
        except dz.DeviceUnavailableError as exc:
            print("raised", type(exc).__name__)
        """
    )
    env = dict(os.environ, DEZERO_XP_STRICT_DEVICES="1")
    env.pop("DEZERO_XP_DEVICE", None)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "raised", "DeviceUnavailableError"]
    env["DEZERO_XP_STRICT_DEVICES"] = "0"
    result = subprocess.run(
        [sys.executable, "-c", "from dezero_xp import backend as B; print(B.strict_devices())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_torch_cuda_without_a_gpu_falls_back_to_torch_cpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device here")
    with pytest.warns(dz.DeviceFallbackWarning, match=r"torch\.cuda\.is_available\(\) is False"):
        assert B.get_backend("torch:cuda") is B.get_backend("torch:cpu")


def test_torch_cuda_in_strict_mode_raises(strict_mode):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device here")
    with pytest.raises(dz.DeviceUnavailableError, match="torch:cuda:0"):
        B.get_backend(torch.device("cuda"))


@pytest.mark.gpu
def test_cuda_backend_on_a_gpu_machine():
    if not B.cuda_available():
        pytest.skip(f"no usable CUDA device: {B._cuda_status()[1]}")
    backend = B.get_backend("cuda")
    assert backend.name == "cupy" and backend.device == "cuda:0" and backend.is_gpu
    assert B.get_backend("auto") is backend and B.get_backend(0) is backend
    assert B.get_backend("cuda:0") is backend


# --------------------------------------------------------------------------- transfers

TRANSFER_SPECS = ["cpu", "strict", "strict:device1", "torch"]


def _available(spec):
    module = {"strict": "array_api_strict", "strict:device1": "array_api_strict"}.get(spec, spec)
    if spec == "cpu":
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("source", TRANSFER_SPECS)
@pytest.mark.parametrize("target", TRANSFER_SPECS)
def test_transfer_between_backends(source, target):
    if not (_available(source) and _available(target)):
        pytest.skip("library not installed")
    src, dst = B.get_backend(source), B.get_backend(target)
    host = np.arange(6.0).reshape(2, 3)
    array = src.from_host(host)
    moved = B.transfer(array, dst)
    assert B.backend_of(moved) is dst
    np.testing.assert_array_equal(B.to_host(moved), host)
    if src is dst:
        assert moved is array  # no copy when already there
    back = B.to_host(moved)
    assert type(back) is np.ndarray and back.dtype == np.float64


def test_from_host_copies():
    host = np.arange(3.0)
    for spec in ("cpu", "strict", "torch"):
        if not _available(spec):
            continue
        array = B.get_backend(spec).from_host(host)
        host_before = host.copy()
        host[0] = 42.0
        np.testing.assert_array_equal(B.to_host(array), host_before)
        host[0] = host_before[0]


def test_to_host_returns_numpy_arrays_as_they_are():
    a = np.ones(3)
    assert B.to_host(a) is a


# --------------------------------------------------------------------------- seeding


def _draws(spec):
    backend = B.get_backend(spec)
    ops, xp = backend.ops, backend.xp
    return [
        B.to_host(ops.uniform((4,), xp.float64)),
        B.to_host(ops.normal((3, 2), xp.float32)),
        B.to_host(ops.permutation(7)),
    ]


@pytest.mark.parametrize("spec", TRANSFER_SPECS)
def test_seed_makes_every_backend_reproducible(spec):
    if not _available(spec):
        pytest.skip("library not installed")
    dz.seed(123)
    first = _draws(spec)
    dz.seed(123)
    second = _draws(spec)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    dz.seed(124)
    third = _draws(spec)
    assert not np.array_equal(first[0], third[0])


def test_backends_get_different_streams():
    specs = [s for s in TRANSFER_SPECS if _available(s)]
    dz.seed(7)
    draws = {
        spec: B.to_host(B.get_backend(spec).ops.uniform((6,), B.get_backend(spec).xp.float64))
        for spec in specs
    }
    values = list(draws.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not np.array_equal(values[i], values[j]), (specs[i], specs[j])


def test_seed_rejects_non_integers():
    for bad in (1.5, "1", True):
        with pytest.raises(TypeError, match="seed"):
            dz.seed(bad)


# --------------------------------------------------------------------------- default device


def test_set_default_device(restore_default_device):
    pytest.importorskip("array_api_strict")
    dz.set_default_device("strict:device1")
    assert B.get_backend(None) is B.get_backend("strict:device1")
    assert dz.get_default_device() is B.get_backend("strict:device1")
    x = dz.Variable(np.ones(2), device=None)  # data's own backend: no implicit move
    assert x.backend is B.NUMPY
    dz.set_default_device("cpu")
    assert B.get_backend(None) is B.NUMPY


def test_set_default_device_validates_first(restore_default_device):
    with pytest.raises(ValueError, match="unknown device"):
        dz.set_default_device("tpu")
    assert B.get_backend(None) is B.NUMPY
