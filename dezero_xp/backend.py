"""The array-namespace layer's public face: device specs, resolution, transfers, seeds, policy.

Every op reaches its array library through a :class:`Backend` found here. A backend is a
singleton per (library, device) and holds the namespace called on the hot path (``xp``), our own
:class:`Device` value, the kernel table (``ops``) for the few things the Python Array API
standard lacks, allocation in a dtype and its device scope (``with backend:``).

This module knows no library by name: each one is an adapter in ``dezero_xp._backends``
(``ADAPTERS``). Device specs (``None``, ``"cpu"``, ``"cuda:1"``, ``"auto"``, ints, library device
objects) go through a table of the adapters' spec words; resolution from an array is a dict
lookup keyed on ``type(array)`` (the first sighting of a type asks each adapter). The policy for
a device an adapter cannot provide lives here: warn once and fall back to the CPU, or raise in
strict device mode.

May import: numpy (seeds and host values), dezero_xp._config (environment flags),
dezero_xp.typing (annotations) and dezero_xp._backends.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from dezero_xp._backends import ADAPTERS
from dezero_xp._backends.base import (
    CHECKS,
    REGISTRY,
    Backend,
    BackendUnavailable,
    Device,
    DeviceFallbackWarning,
    DeviceMismatchError,
    DeviceUnavailableError,
    Movable,
    dtype_name,
    python_scalar,
    scalar_as_array,
)
from dezero_xp._config import env_flag
from dezero_xp._random import host_rng, seed, seed_new_backend, uses_numpy_global_rng
from dezero_xp.typing import Array, ArrayLike, DeviceLike

__all__ = [
    "Backend",
    "Device",
    "DeviceFallbackWarning",
    "DeviceMismatchError",
    "DeviceUnavailableError",
    "backend_of",
    "cuda_available",
    "dtype_name",
    "eager_checks",
    "get_array_module",
    "get_backend",
    "get_default_device",
    "host_rng",
    "uses_numpy_global_rng",
    "Movable",
    "NumpyScalar",
    "is_array",
    "python_scalar",
    "scalar_as_array",
    "seed",
    "set_default_device",
    "set_eager_checks",
    "set_strict_devices",
    "strict_devices",
    "to_host",
    "transfer",
]

# The public classes are defined with the adapters; users meet them here.
for _public in (
    Backend,
    Device,
    DeviceFallbackWarning,
    DeviceMismatchError,
    DeviceUnavailableError,
    Movable,
):
    _public.__module__ = __name__

_SPEC_HELP = "accepted device specs: None, " + ", ".join(
    [*(adapter.spec_help for adapter in ADAPTERS if adapter.spec_help), '"auto"', "a Backend"]
)

# spec word ("cpu", "cuda", "torch", ...) -> the adapter that answers it
_WORDS = {word: adapter for adapter in ADAPTERS for word in adapter.words}
REGISTRY.on_create = seed_new_backend  # backends created after seed(n) derive theirs from n
# The CPU backend: the default device and the fallback of an unusable one.
NUMPY = _WORDS["cpu"].from_words("cpu", "", "cpu")

# --------------------------------------------------------------------------- resolution

# type(array) -> function(array) -> Backend
_resolvers: dict[type, Callable[[Any], Backend]] = {}


def _resolve_new_type(array: Any) -> Backend:
    """First sighting of an array type: find its adapter and remember how for next time."""
    for adapter in ADAPTERS:
        resolver = adapter.resolver(array)
        if resolver is not None:
            _resolvers[type(array)] = resolver
            return resolver(array)
    kind = type(array)
    libraries = ", ".join(adapter.name for adapter in ADAPTERS[:-1])
    raise TypeError(
        f"unsupported array type {kind.__module__}.{kind.__qualname__}: dezero_xp works on "
        f"arrays of {libraries} and any other Array API library. Convert the data first, e.g. "
        "numpy.asarray(data)."
    )


def backend_of(array: ArrayLike) -> Backend:
    """The backend an array belongs to (a dict lookup on its type after the first call)."""
    resolver = _resolvers.get(type(array))
    if resolver is None:
        return _resolve_new_type(array)
    return resolver(array)


_NOT_ARRAYS = (bool, int, float, complex, str, bytes, list, tuple, dict, type(None))


def is_array(obj: Any) -> bool:
    """True for arrays of any supported library (not for Python or NumPy scalars, or lists)."""
    if isinstance(obj, _NOT_ARRAYS) or isinstance(obj, np.generic):
        return False
    if type(obj) in _resolvers:
        return True
    try:
        backend_of(obj)
    except TypeError:
        return False
    return True


def get_array_module(x: Any) -> Any:
    """DeZero's ``cuda.get_array_module``: the namespace of ``x`` (a Variable or an array)."""
    data = getattr(x, "data", x) if not is_array(x) else x
    if data is None or isinstance(data, (bool, int, float, complex)):
        return np
    try:
        return backend_of(data).xp
    except TypeError as exc:
        raise TypeError(f"get_array_module: {exc}") from None


# --------------------------------------------------------------------------- device specs


_default_spec: Any = os.environ.get("DEZERO_XP_DEVICE") or "cpu"
# DEZERO_XP_DEVICE is checked at its first use (resolving it may start CUDA), naming the variable.
_env_device_checked = "DEZERO_XP_DEVICE" not in os.environ
_strict_devices = env_flag("DEZERO_XP_STRICT_DEVICES")
CHECKS.eager = env_flag("DEZERO_XP_EAGER_CHECKS")
_fallback_warned = False


def _check_env_device() -> None:
    global _env_device_checked
    spec = _default_spec
    try:
        get_backend(spec)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"environment variable DEZERO_XP_DEVICE={spec!r} is not a usable device: {exc}"
        ) from None
    _env_device_checked = True


def set_default_device(spec: DeviceLike | None) -> None:
    """Set the device used where none is given (``None``): ``"cpu"`` unless set."""
    global _default_spec, _env_device_checked
    try:
        get_backend(spec)  # validate now, not at the first use
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"set_default_device: {exc}") from None
    _default_spec = spec
    _env_device_checked = True


def get_default_device() -> Backend:
    """The backend that ``device=None`` means."""
    return get_backend(None)


def set_strict_devices(flag: bool = True) -> None:
    """In strict mode an unusable ``"cuda"`` raises DeviceUnavailableError instead of falling back.

    Also settable with the environment variable ``DEZERO_XP_STRICT_DEVICES=1``.
    """
    global _strict_devices
    _strict_devices = _flag(flag, "set_strict_devices")


def strict_devices() -> bool:
    """Whether strict device mode is on."""
    return _strict_devices


def set_eager_checks(flag: bool = True) -> None:
    """Run the checks that read device values back on GPUs too (off by default).

    On a GPU, labels outside ``[0, C)`` make ``softmax_cross_entropy`` nan and out-of-range
    integer indices wrap around (CuPy's gather/scatter kernels compute ``index % size``), because
    checking either costs a device-to-host synchronisation per call. With eager checks on, both
    raise IndexError as they do on the CPU. Also settable with ``DEZERO_XP_EAGER_CHECKS=1``.
    """
    CHECKS.eager = _flag(flag, "set_eager_checks")


def _flag(value: object, where: str) -> bool:
    if isinstance(value, (bool, np.bool_)) or (type(value) is int and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{where}: expected True or False, got {type(value).__name__} {value!r:.40}")


def eager_checks() -> bool:
    """Whether eager value checks run on GPUs (see :func:`set_eager_checks`)."""
    return CHECKS.eager


def _cuda_status() -> tuple[bool, str]:
    """(usable, reason) of whatever answers the spec ``"cuda"``, computed once per process."""
    return _WORDS["cuda"].status()


def cuda_available() -> bool:
    """True when a CUDA device is usable (CuPy imports and sees at least one)."""
    return _cuda_status()[0]


def _reset_device_state() -> None:
    """Forget the cached device probes and the fallback warning (for tests)."""
    global _fallback_warned
    _fallback_warned = False
    for adapter in ADAPTERS:
        adapter.reset()


def _fall_back(spec: DeviceLike, unavailable: BackendUnavailable) -> Backend:
    """The fallback instead of an unusable device: warn once, or raise in strict mode."""
    reason = unavailable.reason
    spec = unavailable.device or spec
    if _strict_devices or unavailable.fallback is None:
        why = (
            "Strict device mode is on (DEZERO_XP_STRICT_DEVICES / set_strict_devices), so there "
            'is no CPU fallback; use device="cpu" or "auto", or turn strict mode off.'
            if unavailable.fallback is not None
            else 'use device="cpu".'
        )
        raise DeviceUnavailableError(f"device {spec!r} is not usable: {reason}. {why}") from None
    cpu_backend = get_backend(unavailable.fallback)
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
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def _auto() -> Backend:
    """The first adapter that prefers itself for ``"auto"`` and is usable, else the CPU."""
    for adapter in ADAPTERS:
        if adapter.auto and adapter.status()[0]:
            try:
                return adapter.from_words("auto", "", "auto")
            except BackendUnavailable:
                continue
    return NUMPY


def _from_string(spec: str) -> Backend:
    word, colon, rest = spec.strip().partition(":")
    word = word.lower()
    if word == "auto" and not colon:
        return _auto()
    adapter = None if colon and not rest.strip() else _WORDS.get(word)  # "torch:" is a typo
    if adapter is None:
        raise ValueError(f"unknown device {spec!r}; {_SPEC_HELP}")
    return adapter.from_words(word, rest, spec)


def _from_object(spec: DeviceLike) -> Backend:
    if isinstance(spec, bool):
        raise TypeError(f"device {spec!r}: a bool is not a device; {_SPEC_HELP}")
    for adapter in ADAPTERS:
        backend = adapter.from_object(spec)
        if backend is not None:
            return backend
    if isinstance(spec, Device):
        raise ValueError(f"no backend for {spec!r}; {_SPEC_HELP}")
    raise TypeError(f"cannot interpret {type(spec).__name__} {spec!r} as a device; {_SPEC_HELP}")


def get_backend(spec: DeviceLike | None = None) -> Backend:
    """Resolve a device spec to its Backend (see ``_SPEC_HELP`` for what is accepted).

    ``"cuda"`` on a machine without CuPy or without a usable GPU returns the NumPy backend and
    warns once with :class:`DeviceFallbackWarning`, or raises in strict device mode.
    """
    if spec is None:
        if not _env_device_checked:
            _check_env_device()
        spec = _default_spec
    if isinstance(spec, Backend):
        return spec
    try:
        if isinstance(spec, str):
            return _from_string(spec)
        return _from_object(spec)
    except BackendUnavailable as unavailable:
        return _fall_back(spec, unavailable)
    except ValueError as exc:
        if _SPEC_HELP in str(exc) or isinstance(exc, DeviceMismatchError):
            raise
        raise ValueError(f"{exc}; {_SPEC_HELP}") from None


# --------------------------------------------------------------------------- transfers


def to_host(array: ArrayLike) -> np.ndarray:
    """Copy any supported array to a NumPy array (NumPy arrays are returned as they are)."""
    if type(array) is np.ndarray:
        return array
    return backend_of(array).ops.to_host(array)


def transfer(array: ArrayLike, target: Backend) -> Array:
    """``array`` on ``target``: returned as it is when already there, else copied explicitly."""
    source = backend_of(array)
    if source is target:
        return array
    if source.name == target.name:
        return target.ops.from_same_library(array)
    return target.ops.from_host(source.ops.to_host(array))


# --------------------------------------------------------------------------- core helpers

_PYTHON_SCALARS = (bool, int, float, complex)


def is_scalar(value: object) -> bool:
    """Python and NumPy scalars: host values that meet an array in the array's dtype."""
    return isinstance(value, _PYTHON_SCALARS) or isinstance(value, np.generic)


NumpyScalar = np.generic  #: for isinstance checks in modules that may not import NumPy


def as_array_data(obj: Any, where: str) -> tuple[Array, Backend]:
    """``(array, backend)`` for data given to a Variable; a clear TypeError for anything else.

    NumPy scalars become 0-d NumPy arrays (as NumPy's ufuncs return them on 0-d input). A torch
    tensor with ``requires_grad=True`` is taken detached (same memory): a second autograd graph
    would only cost memory and make in-place updates of Parameters fail."""
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    resolver = _resolvers.get(type(obj))
    if resolver is not None:
        if getattr(obj, "requires_grad", False):
            obj = obj.detach()
        return obj, resolver(obj)
    if isinstance(obj, _PYTHON_SCALARS) or isinstance(obj, (list, tuple)):
        raise TypeError(
            f"{where}: data must be an array, got {type(obj).__name__} {obj!r:.60}. "
            f"Wrap it first, e.g. numpy.array({obj!r:.40})"
        )
    try:
        backend = backend_of(obj)
    except TypeError as exc:
        raise TypeError(f"{where}: {exc}") from None
    return (obj.detach() if getattr(obj, "requires_grad", False) else obj), backend
