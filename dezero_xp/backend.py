"""The array-namespace layer: devices, backends, resolution, transfers and the kernel table.

Every op reaches its array library through a :class:`Backend` found here. A backend is a
singleton per (library, device) and holds the namespace called on the hot path (``xp``), our own
:class:`Device` value and the kernel table (``ops``) for the few things the Python Array API
standard lacks (scatter-add, pad, random numbers, host transfers, im2col/col2im).

Resolution from an array is a dict lookup keyed on ``type(array)``; device specs (``None``,
``"cpu"``, ``"cuda:1"``, ``"auto"``, ints, library device objects) resolve through
:func:`get_backend`, which also implements the CUDA-to-CPU fallback.

May import: numpy, array_api_compat, and (lazily, inside functions) cupy, torch and
array_api_strict. It imports nothing from dezero_xp except the kernel modules it assembles.
This is the only module of the package that imports cupy.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dezero_xp import _kernels

__all__ = [
    "Backend",
    "Device",
    "DeviceFallbackWarning",
    "DeviceMismatchError",
    "DeviceUnavailableError",
    "backend_of",
    "get_array_module",
    "get_backend",
    "get_default_device",
    "host_rng",
    "uses_numpy_global_rng",
    "Movable",
    "is_array",
    "seed",
    "set_default_device",
    "set_strict_devices",
    "strict_devices",
    "to_host",
    "transfer",
]


# --------------------------------------------------------------------------- errors


class DeviceMismatchError(ValueError):
    """Inputs of one op live on different devices or in different array libraries."""


class DeviceUnavailableError(RuntimeError):
    """A requested device cannot be used and falling back to the CPU is not allowed."""


class DeviceFallbackWarning(RuntimeWarning):
    """A CUDA device was requested but is not usable: the CPU is used instead."""


# --------------------------------------------------------------------------- Device


@dataclass(frozen=True, slots=True)
class Device:
    """Where arrays live: ``cpu``, ``cuda:0``, ``strict:device1``, ...

    Our own small hashable value; library device objects are not reliably hashable, so nothing
    is ever keyed on them.
    """

    type: str
    index: int | str | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"Device('{self}')"

    # A Device also equals its string form, so `x.device == "cpu"` reads naturally.
    def __eq__(self, other) -> bool:
        if isinstance(other, Device):
            return self.type == other.type and self.index == other.index
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


CPU = Device("cpu")


# --------------------------------------------------------------------------- Backend


class Backend:
    """One array library on one device: ``xp`` (namespace), ``device``, ``ops`` (kernel table).

    Backends are singletons: two arrays are on the same device of the same library exactly when
    their backends are the same object, which is the whole device check of ``Function``.
    """

    __slots__ = (
        "name",
        "xp",
        "device",
        "native_device",
        "ops",
        "array_type",
        "coerce",
        "value_types",
        "scoped",
        "__weakref__",
    )

    def __init__(self, name, xp, device, native_device, ops_factory, array_type):
        self.name = name  # library: "numpy", "cupy", "torch", "strict" (array-api-strict), ...
        self.xp = xp
        self.device = device
        self.native_device = native_device  # the library's own device object (or None)
        self.array_type = array_type
        self.ops = ops_factory(self)
        # Turns what an op returned into an array of this backend (NumPy returns scalars for
        # 0-d results): np.asarray itself on NumPy, the kernel table's asarray elsewhere.
        self.coerce = np.asarray if xp is np else self.ops.asarray
        # What an op may return and keep as it is. On NumPy that includes NumPy's scalars, which
        # its ufuncs return for 0-d inputs: arithmetic on them is ~10x faster than on 0-d arrays,
        # so 0-d graphs stay on scalars and `Variable.data` turns them into 0-d arrays on access.
        self.value_types = _NUMPY_VALUE_TYPES if xp is np else frozenset((array_type,))
        # True when ops must run under ``ops.scope()`` (CuPy computes and allocates on its
        # *current* device, so cuda:1 arrays need cuda:1 made current around every op).
        self.scoped = False

    def __repr__(self) -> str:
        return f"<Backend {self}>"

    def __str__(self) -> str:
        # A spec that get_backend() accepts back: "numpy:cpu", "cupy:cuda:0", "strict:device1".
        device = str(self.device)
        return device if device.startswith(self.name + ":") else f"{self.name}:{device}"

    @property
    def is_gpu(self) -> bool:
        """True when the arrays of this backend live in accelerator memory."""
        return self.device.type == "cuda"

    # Thin conveniences over the kernel table, so callers need not know about ``ops``.
    def asarray(self, obj, dtype=None):
        """An array of this backend from ``obj`` (a scalar, a sequence or a host array)."""
        return self.ops.asarray(obj, dtype)

    def from_host(self, array: np.ndarray):
        """Copy a NumPy array onto this backend's device."""
        return self.ops.from_host(array)

    def to_host(self, array) -> np.ndarray:
        """Copy an array of this backend to a NumPy array."""
        return self.ops.to_host(array)


_NUMPY_VALUE_TYPES = frozenset(
    {np.ndarray} | {t for t in set(np.sctypeDict.values()) if issubclass(t, np.generic)}
)


# --------------------------------------------------------------------------- registry

_lock = threading.RLock()
_global_seed: int | None = None  # set by seed(); backends created later derive theirs from it
_backends: dict[tuple[str, str], Backend] = {}
# type(array) -> function(array) -> Backend. NumPy's entry ignores its argument.
_resolvers: dict[type, Callable[[Any], Backend]] = {}


def _register(name, xp, device, native_device, ops_factory, array_type) -> Backend:
    key = (name, str(device))
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = Backend(name, xp, device, native_device, ops_factory, array_type)
            _backends[key] = backend
            if _global_seed is not None:
                backend.ops.seed(_derived_seed(_global_seed, backend))
        return backend


def _numpy_backend() -> Backend:
    return _register("numpy", np, CPU, "cpu", _kernels.NumpyKernels, np.ndarray)


NUMPY = _numpy_backend()


def _numpy_resolver(_array) -> Backend:
    return NUMPY


_resolvers[np.ndarray] = _numpy_resolver


# ---- CuPy (imported lazily; `import cupy` succeeds on machines without a GPU)


def _import_cupy():
    """Import CuPy. A separate function so tests can simulate its absence."""
    import cupy  # noqa: PLC0415 - optional dependency

    return cupy


def _import_cupyx():
    import cupyx  # noqa: PLC0415 - optional dependency, ships with cupy

    return cupyx


def _cupy_namespace(cupy):
    """array-api-compat's CuPy namespace.

    Bare ``cupy`` carries most standard names, but not all standard signatures (``reshape`` and
    ``asarray`` without ``copy=``, creation functions without ``device=``), and a GPU op costs
    microseconds of launch anyway, so the thin compat wrapper is the safe choice here.
    """
    del cupy  # the compat namespace imports it itself
    import array_api_compat.cupy as compat_cupy  # noqa: PLC0415

    return compat_cupy


def _cupy_backend(index: int) -> Backend:
    key = ("cupy", f"cuda:{index}")
    backend = _backends.get(key)
    if backend is not None:
        return backend
    cupy = _import_cupy()
    from dezero_xp._kernels.cupy_kernels import CupyKernels  # noqa: PLC0415

    backend = _register(
        "cupy",
        _cupy_namespace(cupy),
        Device("cuda", index),
        cupy.cuda.Device(index),
        functools.partial(CupyKernels, cupy=cupy, cupyx=_import_cupyx()),
        cupy.ndarray,
    )
    backend.scoped = True
    if cupy.ndarray not in _resolvers:
        _resolvers[cupy.ndarray] = lambda a: _cupy_backend(a.device.id)
    return backend


# ---- array-api-strict (several fake devices)


def _strict_device_name(device) -> str:
    match = re.search(r"'([^']*)'", repr(device))
    return match.group(1) if match else str(device)


def _strict_backend(name: str | None = None) -> Backend:
    import array_api_strict as strict  # noqa: PLC0415 - optional dependency
    from array_api_strict._array_object import Array as StrictArray  # noqa: PLC0415

    name = name or "CPU_DEVICE"
    key = ("strict", f"strict:{name}")
    backend = _backends.get(key)
    if backend is not None:
        return backend
    try:
        native = strict.Device(name)
    except ValueError as exc:
        raise ValueError(f"device 'strict:{name}': {str(exc).rstrip('.')}; {_SPEC_HELP}") from None
    backend = _register(
        "strict",
        strict,
        Device("strict", name),
        native,
        _kernels.GenericKernels,
        StrictArray,
    )
    _resolvers.setdefault(StrictArray, lambda a: _strict_backend(_strict_device_name(a.device)))
    return backend


# ---- PyTorch through array-api-compat


def _torch_backend(device=None) -> Backend:
    import array_api_compat.torch as xp_torch  # noqa: PLC0415
    import torch  # noqa: PLC0415 - optional dependency

    native = torch.device(device if device is not None else "cpu")
    if native.type == "cpu":
        native = torch.device("cpu")  # tensors report "cpu", never "cpu:0": one backend for both
    elif native.type == "cuda":
        if native.index is None:
            native = torch.device("cuda", 0)
        if not torch.cuda.is_available():
            reason = "torch.cuda.is_available() is False"
            return _fall_back_to_cpu(f"torch:{native}", reason, _torch_backend("cpu"))
    ours = Device(native.type, native.index)
    key = ("torch", str(ours))
    backend = _backends.get(key)
    if backend is not None:
        return backend
    backend = _register("torch", xp_torch, ours, native, _kernels.TorchKernels, torch.Tensor)
    _resolvers.setdefault(torch.Tensor, _torch_resolver)
    return backend


# A tensor's backend by its device's (type, index), a str and an int or None (never the device
# object itself): about 0.4 us per lookup, against 4.5 us through _torch_backend.
_torch_by_device: dict[tuple[str, int | None], Backend] = {}


def _torch_resolver(array) -> Backend:
    device = array.device
    key = (device.type, device.index)
    backend = _torch_by_device.get(key)
    if backend is None:
        backend = _torch_by_device[key] = _torch_backend(device)
    return backend


# ---- anything else that array-api-compat understands


def _generic_backend(array) -> Backend:
    import array_api_compat  # noqa: PLC0415

    xp = array_api_compat.array_namespace(array)
    native = array_api_compat.device(array)
    name = getattr(xp, "__name__", type(array).__module__).split(".")[-1]
    return _register(name, xp, Device(str(native)), native, _kernels.GenericKernels, type(array))


def _resolve_new_type(array) -> Backend:
    """First sighting of an array type: find its backend and remember how for next time."""
    kind = type(array)
    module = kind.__module__.split(".")[0]
    if isinstance(array, np.generic):
        # NumPy scalars (np.float64(1.0)) are host values of the NumPy backend.
        _resolvers[kind] = _numpy_resolver
        return NUMPY
    if module == "cupy":
        return _cupy_backend(array.device.id)
    if module == "array_api_strict":
        return _strict_backend(_strict_device_name(array.device))
    if module == "torch":
        return _torch_backend(array.device)
    try:
        import array_api_compat  # noqa: PLC0415

        supported = array_api_compat.is_array_api_obj(array)
    except ImportError:  # pragma: no cover - array-api-compat is a dependency
        supported = False
    if not supported or isinstance(array, (bool, int, float, complex, str, bytes)):
        raise TypeError(
            f"unsupported array type {kind.__module__}.{kind.__qualname__}: dezero_xp works on "
            "numpy.ndarray, cupy.ndarray and Array API arrays (array-api-strict, torch.Tensor, "
            "...). Convert the data first, e.g. numpy.asarray(data)."
        )
    backend = _generic_backend(array)
    _resolvers[kind] = lambda a: _generic_backend(a)
    return backend


def backend_of(array) -> Backend:
    """The backend an array belongs to (a dict lookup on its type after the first call)."""
    resolver = _resolvers.get(type(array))
    if resolver is None:
        return _resolve_new_type(array)
    return resolver(array)


def is_array(obj) -> bool:
    """True for arrays of any supported library (not for Python scalars or lists)."""
    if type(obj) in _resolvers:
        return not isinstance(obj, np.generic)
    if isinstance(obj, (bool, int, float, complex, str, bytes, list, tuple, dict)) or obj is None:
        return False
    try:
        backend_of(obj)
    except TypeError:
        return False
    return not isinstance(obj, np.generic)


def get_array_module(x):
    """DeZero's ``cuda.get_array_module``: the namespace of ``x`` (a Variable or an array)."""
    data = getattr(x, "data", x) if not is_array(x) else x
    if data is None or isinstance(data, (bool, int, float, complex)):
        return np
    return backend_of(data).xp


# --------------------------------------------------------------------------- device specs

_default_spec: Any = os.environ.get("DEZERO_XP_DEVICE") or "cpu"
_strict_devices = os.environ.get("DEZERO_XP_STRICT_DEVICES", "").strip().lower() in (
    "1",
    "true",
    "yes",
    "on",
)
_cuda_status_cache: tuple[bool, str] | None = None
_fallback_warned = False


def set_default_device(spec) -> None:
    """Set the device used where none is given (``None``): ``"cpu"`` unless set."""
    global _default_spec
    get_backend(spec)  # validate now, not at the first use
    _default_spec = spec


def get_default_device() -> Backend:
    """The backend that ``device=None`` means."""
    return get_backend(None)


def set_strict_devices(flag: bool = True) -> None:
    """In strict mode an unusable ``"cuda"`` raises DeviceUnavailableError instead of falling back.

    Also settable with the environment variable ``DEZERO_XP_STRICT_DEVICES=1``.
    """
    global _strict_devices
    _strict_devices = bool(flag)


def strict_devices() -> bool:
    """Whether strict device mode is on."""
    return _strict_devices


def _cuda_status() -> tuple[bool, str]:
    """(usable, reason) for CUDA through CuPy, computed once per process."""
    global _cuda_status_cache
    if _cuda_status_cache is None:
        try:
            cupy = _import_cupy()
        except Exception as exc:  # ImportError, or a broken CUDA install raising at import
            _cuda_status_cache = (
                False,
                f"CuPy is not importable ({type(exc).__name__}: {exc}); install it with "
                "`pip install dezero_xp[cuda12]` (or [cuda13])",
            )
        else:
            try:
                available = bool(cupy.cuda.is_available())
            except Exception as exc:  # driver errors surface here
                available, why = False, f"{type(exc).__name__}: {exc}"
            else:
                why = "cupy.cuda.is_available() is False"
            if available:
                _cuda_status_cache = (True, "")
            else:
                _cuda_status_cache = (
                    False,
                    f"CuPy is installed but no CUDA device is usable ({why})",
                )
    return _cuda_status_cache


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one usable CUDA device."""
    return _cuda_status()[0]


def _reset_device_state() -> None:
    """Forget the cached CUDA probe and the fallback warning (for tests)."""
    global _cuda_status_cache, _fallback_warned
    _cuda_status_cache = None
    _fallback_warned = False


def _cuda_or_fallback(index: int, spec) -> Backend:
    usable, reason = _cuda_status()
    if usable:
        count = _import_cupy().cuda.runtime.getDeviceCount()
        if index >= count:
            raise DeviceUnavailableError(
                f"device {spec!r}: CUDA device {index} does not exist; this machine has "
                f"{count} CUDA device(s) (cuda:0 .. cuda:{count - 1})"
            )
        return _cupy_backend(index)
    return _fall_back_to_cpu(spec, reason, NUMPY)


def _fall_back_to_cpu(spec, reason: str, cpu_backend: Backend) -> Backend:
    """``cpu_backend`` instead of an unusable CUDA device: warn once, or raise in strict mode."""
    if _strict_devices:
        raise DeviceUnavailableError(
            f"device {spec!r} is not usable: {reason}. Strict device mode is on "
            "(DEZERO_XP_STRICT_DEVICES / set_strict_devices), so there is no CPU fallback; "
            'use device="cpu" or "auto", or turn strict mode off.'
        )
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(
            f"device {spec!r} requested but {reason}; using the CPU ({cpu_backend}) instead. "
            'Pass device="cpu" or "auto" to silence this, or set DEZERO_XP_STRICT_DEVICES=1 '
            "to make it an error.",
            DeviceFallbackWarning,
            stacklevel=_caller_stacklevel(),
        )
    return cpu_backend


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside dezero_xp (where the user asked)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == (
        "dezero_xp"
    ):
        frame, level = frame.f_back, level + 1
    return level


_SPEC_HELP = (
    'accepted device specs: None, "cpu", "cuda", "cuda:N", "gpu", "auto", an int N (CUDA N; '
    'negative means CPU), "strict[:NAME]", "torch[:cpu|:cuda:N]", a cupy/torch/array-api-strict '
    "device object, or a Backend"
)


def _parse_index(text: str, spec) -> int:
    try:
        index = int(text)
    except ValueError:
        raise ValueError(
            f"device {spec!r}: {text!r} is not a device number; {_SPEC_HELP}"
        ) from None
    if index < 0:
        raise ValueError(f"device {spec!r}: device numbers are >= 0; {_SPEC_HELP}")
    return index


def _backend_from_string(spec: str) -> Backend:
    text = spec.strip()
    library, _, rest = text.partition(":")
    library = library.lower()
    if library in ("cpu", "numpy") and rest in ("", "cpu"):
        return NUMPY
    if library == "auto" and not rest:
        return _cupy_backend(0) if _cuda_status()[0] else NUMPY
    if library in ("cuda", "gpu", "cupy"):
        if rest.startswith("cuda:"):
            rest = rest[5:]
        return _cuda_or_fallback(_parse_index(rest, spec) if rest else 0, spec)
    if library in ("strict", "array_api_strict"):
        return _strict_backend(rest or None)
    if library == "torch":
        return _torch_backend(rest or "cpu")
    raise ValueError(f"unknown device {spec!r}; {_SPEC_HELP}")


def get_backend(spec=None) -> Backend:
    """Resolve a device spec to its Backend (see ``_SPEC_HELP`` for what is accepted).

    ``"cuda"`` on a machine without CuPy or without a usable GPU returns the NumPy backend and
    warns once with :class:`DeviceFallbackWarning`, or raises in strict device mode.
    """
    if spec is None:
        spec = _default_spec
    if isinstance(spec, Backend):
        return spec
    if isinstance(spec, str):
        return _backend_from_string(spec)
    if isinstance(spec, Device):
        if spec.type == "cpu":
            return NUMPY
        if spec.type == "cuda":
            return _cuda_or_fallback(int(spec.index or 0), spec)
        if spec.type == "strict":
            return _strict_backend(str(spec.index) if spec.index is not None else None)
        raise ValueError(f"no backend for {spec!r}; {_SPEC_HELP}")
    if isinstance(spec, bool):
        raise TypeError(f"device {spec!r}: a bool is not a device; {_SPEC_HELP}")
    if isinstance(spec, (int, np.integer)):
        return NUMPY if spec < 0 else _cuda_or_fallback(int(spec), spec)
    module = type(spec).__module__.split(".")[0]
    if module == "cupy":
        return _cuda_or_fallback(int(spec.id), spec)
    if module == "torch":
        return _torch_backend(spec)
    if module == "array_api_strict":
        return _strict_backend(_strict_device_name(spec))
    raise TypeError(f"cannot interpret {type(spec).__name__} {spec!r} as a device; {_SPEC_HELP}")


# --------------------------------------------------------------------------- transfers


class Movable:
    """DeZero's ``to_cpu()`` / ``to_gpu()`` for anything with a ``to(device)`` method
    (Variable, Layer, DataLoader)."""

    __slots__ = ()

    def to_cpu(self):
        """Move to the CPU (NumPy); DeZero's name. Returns self."""
        return self.to("cpu")

    def to_gpu(self, device=None):
        """Move to a CUDA device (``cuda:0`` unless given: an int N or a spec); returns self."""
        if device is None:
            device = "cuda"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device)


def to_host(array) -> np.ndarray:
    """Copy any supported array to a NumPy array (NumPy arrays are returned as they are)."""
    if type(array) is np.ndarray:
        return array
    return backend_of(array).ops.to_host(array)


def transfer(array, target: Backend):
    """``array`` on ``target``: returned as it is when already there, else copied explicitly."""
    source = backend_of(array)
    if source is target:
        return array
    if source.name == target.name:
        return target.ops.from_same_library(array)
    return target.ops.from_host(source.ops.to_host(array))


# --------------------------------------------------------------------------- random numbers


def _derived_seed(seed_value: int, backend: Backend) -> int:
    # Each backend gets its own stream, reproducible from the global seed and its key.
    key = zlib.crc32(str(backend).encode())
    return int(np.random.SeedSequence([seed_value, key]).generate_state(1)[0])


def seed(value: int) -> None:
    """Seed the random generators of every backend (dropout, initialisers, shuffling).

    Until ``seed`` is called, the NumPy backend and the host draws (DataLoader shuffling,
    datasets, random transforms) use NumPy's global generator exactly as DeZero does, so
    ``np.random.seed(n)`` makes a DeZero script reproducible with DeZero's numbers. After
    ``seed(n)`` each backend has its own stream derived from ``n``, and NumPy's global
    generator is neither read nor changed. ``seed(None)`` returns to the default.
    """
    global _global_seed
    if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
        raise TypeError(f"seed: expected an int or None, got {type(value).__name__}")
    _global_seed = None if value is None else int(value)
    with _lock:
        _host_streams.clear()
        for backend in _backends.values():
            backend.ops.seed(None if value is None else _derived_seed(_global_seed, backend))


def uses_numpy_global_rng() -> bool:
    """True until ``seed`` is called: host draws come from NumPy's global generator."""
    return _global_seed is None


# purpose -> how many host generators were handed out for it since the last seed()
_host_streams: dict[str, int] = {}


def host_rng(purpose: str):
    """The host generator for ``purpose`` (data shuffling, datasets, random transforms).

    Before any ``seed`` call this is NumPy's global generator (the ``np.random`` module, which
    has the Generator methods used here: ``permutation``, ``uniform``, ``random``), so
    ``np.random.seed`` applies. After ``seed(n)`` it is a new Generator, and the k-th one asked
    for a given purpose is the same in every run and on every device.
    """
    with _lock:
        if _global_seed is None:
            return np.random
        k = _host_streams.get(purpose, 0)
        _host_streams[purpose] = k + 1
        return np.random.default_rng([_global_seed, zlib.crc32(purpose.encode()), k])


# --------------------------------------------------------------------------- core helpers

_PYTHON_SCALARS = (bool, int, float, complex)
_scalar_dtype_cache: dict = {}


def is_scalar(value) -> bool:
    """Python and NumPy scalars: host values that meet an array in the array's dtype."""
    return isinstance(value, _PYTHON_SCALARS) or isinstance(value, np.generic)


def as_array_data(obj, where: str):
    """``(array, backend)`` for data given to a Variable; a clear TypeError for anything else.

    NumPy scalars become 0-d NumPy arrays (as NumPy's own ufuncs return them on 0-d input).
    """
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    resolver = _resolvers.get(type(obj))
    if resolver is not None:
        return obj, resolver(obj)
    if isinstance(obj, _PYTHON_SCALARS) or isinstance(obj, (list, tuple)):
        raise TypeError(
            f"{where}: data must be an array, got {type(obj).__name__} {obj!r:.60}. "
            f"Wrap it first, e.g. numpy.array({obj!r:.40})"
        )
    return obj, backend_of(obj)


def scalar_as_array(value, backend: Backend, like_dtype):
    """A Python/NumPy scalar as a 0-d array of ``backend`` in the dtype of ``like_dtype``.

    This is the rule that keeps float32 float32: ``2.0 * x`` never promotes ``x``. A float meeting
    an integer array takes the library's default float instead (as NumPy's NEP 50 does).
    """
    if isinstance(value, np.generic):
        value = value.item()
    key = (backend, like_dtype, type(value))
    dtype = _scalar_dtype_cache.get(key, False)
    if dtype is False:
        dtype = _scalar_dtype(value, backend.xp, like_dtype)
        _scalar_dtype_cache[key] = dtype
    return backend.ops.asarray(value, dtype)


def _scalar_dtype(value, xp, like_dtype):
    if like_dtype is None:
        return None
    if xp.isdtype(like_dtype, "complex floating"):
        return like_dtype
    if xp.isdtype(like_dtype, "real floating"):
        return None if isinstance(value, complex) else like_dtype
    if xp.isdtype(like_dtype, "integral"):
        return like_dtype if isinstance(value, (bool, int)) else None
    return like_dtype if isinstance(value, bool) else None
