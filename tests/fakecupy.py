"""A NumPy-backed stand-in for CuPy, to run dezero_xp's CUDA code paths on a machine without one.

It checks LOGIC, not CUDA: the arithmetic is NumPy's, nothing runs on a GPU, and CuPy's own
behaviour (kernels, streams, atomics, its dtype rules) is not reproduced. What it does model is
what the CUDA path of dezero_xp must get right, and it records every breach in
:class:`Recorder` instead of raising, so a test can assert that none happened:

- a *current device* (``cuda.Device(n)`` as a context manager, like CuPy's); arrays remember the
  device they were allocated on, and an operation whose arrays are not all on the current
  device is a ``wrong_device`` breach (real CuPy raises or needs peer access there);
- a host array (``numpy.ndarray`` or list) turned into a device array is counted as a
  host-to-device copy (``h2d``);
- ``float()``, ``int()``, ``bool()``, ``.item()``, ``.tolist()`` on a device array, and
  boolean-mask indexing (``x[mask]``, ``x[mask] = v``: CuPy reads the mask's count back,
  ``_prepare_mask_indexing_single``), are hidden device-to-host copies (``implicit_d2h``);
  ``.get()`` / ``asnumpy`` are the explicit ones.

What it reproduces of real CuPy (13.0-14.2), because each hid a bug before:

- ``numpy.asarray``/``numpy.array`` on a device array raise TypeError ("Implicit conversion to a
  NumPy array is not allowed") when library code calls them (``install`` gives every dezero_xp
  module that imports numpy a ``np`` that behaves so);
- ``ndarray.scatter_add`` (behind ``cupyx.scatter_add``) warns DeprecationWarning;
  ``cupy.add.at`` does not, and adds atomically only into int32, uint32, uint64 and
  float16/32/64 arrays when the key holds integer arrays (TypeError otherwise);
- out-of-range integer indices wrap (``take`` and the scatter kernels compute
  ``index % size``) instead of raising;
- ``*_like`` and the other creation functions allocate on the *current* device, whatever the
  prototype's device or ``device=`` say.

The array namespace (:attr:`FakeCupy.xp`) models array-api-compat's CuPy namespace: its names
and signatures are those of array-api-compat (``concat``, ``astype``, ``permute_dims``, ...);
its creation functions ignore ``device=`` (only ``asarray`` honours it), and its ``clip`` and
``sign`` are compat's generic ones, with their boolean-mask reads and writes.

``install(monkeypatch, n_devices)`` makes the CuPy adapter (``dezero_xp._backends.cupy``) use it
for ``"cuda:N"``.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings
from dataclasses import dataclass, field

import array_api_compat.numpy as compat_numpy
import numpy as np

_state = threading.local()


def current_device() -> int:
    return getattr(_state, "device", 0)


def _set_current(index: int) -> None:
    _state.device = index


@dataclass
class Recorder:
    """Breaches and transfers seen by the fake, since the last :meth:`reset`."""

    h2d: int = 0
    explicit_d2h: int = 0
    implicit_d2h: list = field(default_factory=list)
    wrong_device: list = field(default_factory=list)

    def reset(self) -> None:
        self.h2d = self.explicit_d2h = 0
        self.implicit_d2h.clear()
        self.wrong_device.clear()


RECORDER = Recorder()


class Device:
    """``cupy.cuda.Device``: a device number and a context manager that makes it current."""

    def __init__(self, device=None):
        self.id = current_device() if device is None else int(getattr(device, "id", device))
        self._previous: list[int] = []

    def __enter__(self):
        self._previous.append(current_device())
        _set_current(self.id)
        return self

    def __exit__(self, *exc):
        _set_current(self._previous.pop())

    def use(self):
        _set_current(self.id)

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("fake-cuda", self.id))

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


# dezero_xp recognises CuPy's arrays and device objects by their module, as CuPy's are.
Device.__module__ = "cupy.cuda.device"


def _check_devices(what: str, arrays) -> None:
    current = current_device()
    for a in arrays:
        if isinstance(a, FakeArray) and a._device_id != current:
            RECORDER.wrong_device.append(f"{what}: array on {a._device_id}, current {current}")


def _flat_arrays(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flat_arrays(v)
        elif isinstance(v, FakeArray):
            yield v


def _to_device(result):
    """NumPy results as device arrays on the current device (views stay views)."""
    if isinstance(result, FakeArray):
        return result
    if isinstance(result, np.ndarray):
        return result.view(FakeArray)
    if isinstance(result, np.generic):
        return np.asarray(result).view(FakeArray)
    if isinstance(result, tuple):
        return tuple(_to_device(r) for r in result)
    if isinstance(result, list):
        return [_to_device(r) for r in result]
    return result


class FakeArray(np.ndarray):
    """``cupy.ndarray``: a NumPy array that remembers its device and reports hidden syncs."""

    def __array_finalize__(self, obj):
        parent = getattr(obj, "_device_id", None)
        self._device_id = current_device() if parent is None else parent

    @property
    def device(self):
        return Device(self._device_id)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        _check_devices(f"{ufunc.__name__}.{method}", list(_flat_arrays(inputs + tuple(out))))
        args = [x.view(np.ndarray) if isinstance(x, FakeArray) else x for x in inputs]
        if out:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, FakeArray) else o for o in out
            )
        result = getattr(ufunc, method)(*args, **kwargs)
        if out:
            return out[0] if len(out) == 1 else out
        return _to_device(result)

    def __array_function__(self, func, types_, args, kwargs):
        _check_devices(func.__name__, list(_flat_arrays(args + tuple(kwargs.values()))))
        return _to_device(super().__array_function__(func, types_, args, kwargs))

    # Indexing: boolean masks synchronise; integer arrays wrap (CuPy's take/scatter kernels).
    def __getitem__(self, key):
        return np.ndarray.__getitem__(self, _device_key(self, key, "getitem"))

    def __setitem__(self, key, value):
        np.ndarray.__setitem__(self, _device_key(self, key, "setitem"), value)

    def scatter_add(self, slices, value):
        warnings.warn(
            "`ndarray.scatter_add` is deprecated. Please use `cupy.add.at` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        _add_at(self, slices, value, check_dtype=False)

    # The one explicit way back to the host.
    def get(self):
        RECORDER.explicit_d2h += 1
        return np.array(self.view(np.ndarray), copy=True)

    # Hidden device-to-host copies (each a synchronisation on a real GPU).
    def _sync(self, how):
        RECORDER.implicit_d2h.append(f"{how} of an array of shape {self.shape}")

    def __float__(self):
        self._sync("float()")
        return float(self.view(np.ndarray))

    def __int__(self):
        self._sync("int()")
        return int(self.view(np.ndarray))

    def __index__(self):
        self._sync("operator.index()")
        return self.view(np.ndarray).__index__()

    def __bool__(self):
        self._sync("bool()")
        return bool(self.view(np.ndarray))

    def item(self, *args):
        self._sync(".item()")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        self._sync(".tolist()")
        return self.view(np.ndarray).tolist()


def _normalize_key(key):
    return key if isinstance(key, tuple) else (key,)


def _device_key(array, key, what):
    """``key`` with CuPy's semantics: masks recorded as syncs, integer arrays wrapped."""
    parts = _normalize_key(key)
    if not any(isinstance(k, (np.ndarray, list)) for k in parts):
        return key
    out, axis = [], 0
    for k in parts:
        if k is None:
            out.append(k)
            continue
        if k is Ellipsis:
            axis = array.ndim - sum(1 for p in parts if p is not None and p is not Ellipsis)
            axis += len(out) - sum(1 for p in out if p is None)
            out.append(k)
            continue
        if isinstance(k, list):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) and k.dtype == bool:
            if k.ndim:
                RECORDER.implicit_d2h.append(
                    f"boolean-mask {what} of an array of shape {array.shape}"
                )
            out.append(k.view(np.ndarray))
            axis += k.ndim
            continue
        if isinstance(k, np.ndarray) and k.dtype.kind in "iu" and axis < array.ndim:
            k = k.view(np.ndarray) % array.shape[axis] if array.shape[axis] else k.view(np.ndarray)
        out.append(k)
        axis += 1
    return tuple(out)


# dtypes CuPy 13-14's atomic add accepts (cupy/_core/_routines_indexing.pyx, _scatter_op_single)
ATOMIC_ADD_DTYPES = frozenset({"int32", "uint32", "uint64", "float16", "float32", "float64"})


def _add_at(target, key, values, check_dtype=True):
    parts = _normalize_key(key)
    _check_devices("add.at", [target, *_flat_arrays(parts), *_flat_arrays([values])])
    integer = any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in parts)
    if integer and np.dtype(target.dtype).name not in ATOMIC_ADD_DTYPES:
        raise TypeError(
            "cupy.add.at only supports int32, float16, float32, float64, uint32, uint64, as "
            "data type"
        )
    hosts = [k for k in parts if isinstance(k, np.ndarray) and not isinstance(k, FakeArray)]
    if hosts:
        RECORDER.wrong_device.append("add.at: a host (NumPy) index array in the key")
    wrapped = _device_key(target, key, "scatter")
    values = np.asarray(values.view(np.ndarray) if isinstance(values, FakeArray) else values)
    np.add.at(target.view(np.ndarray), wrapped, values.astype(target.dtype))


class _Add:
    """``cupy.add``: the ufunc, and its ``at`` (the scatter-add kernel, no warning)."""

    __name__ = "add"

    def __call__(self, x1, x2, out=None):
        return np.add(x1, x2, out=out)

    @staticmethod
    def at(a, indices, b=None):
        _add_at(a, indices, b)


FakeArray.__module__ = "cupy"


class RandomState:
    """``cupy.random.RandomState``: bound to the device current when it was made."""

    def __init__(self, seed=None):
        self._device_id = current_device()
        self._rng = np.random.default_rng(seed)

    def _check(self, what):
        if current_device() != self._device_id:
            RECORDER.wrong_device.append(
                f"RandomState.{what}: made on {self._device_id}, used on {current_device()}"
            )

    def random_sample(self, size=None, dtype=float):
        self._check("random_sample")
        return _to_device(self._rng.random(size, dtype=np.dtype(dtype)))

    def standard_normal(self, size=None, dtype=float):
        self._check("standard_normal")
        return _to_device(self._rng.standard_normal(size, dtype=np.dtype(dtype)))

    def permutation(self, n):
        self._check("permutation")
        return _to_device(self._rng.permutation(n))


def _host_to_device(obj, dtype=None, copy=True):
    """``cupy.array``/``asarray``: a device array on the current device.

    A host array (or list) is a counted host-to-device copy. A device array comes back as it is
    when no copy is asked for (as CuPy's ``asarray`` does, whatever its device); a copy is made
    on the current device (a peer copy when the source is on another one).
    """
    if isinstance(obj, FakeArray):
        host = obj.view(np.ndarray)
        if not copy and (dtype is None or host.dtype == np.dtype(dtype)):
            return obj
        return np.array(host, dtype=dtype, copy=True).view(FakeArray)
    if isinstance(obj, (np.ndarray, list, tuple)):
        RECORDER.h2d += 1
    return np.array(obj, dtype=dtype, copy=True).view(FakeArray)


class FakeCupy(types.SimpleNamespace):
    """The ``cupy`` module as far as dezero_xp uses it, plus ``xp`` and ``cupyx``."""

    ndarray = FakeArray

    def __init__(self, n_devices: int = 1, available: bool = True):
        super().__init__()
        self.__version__ = "0.0-fake"
        self.cuda = types.SimpleNamespace(
            Device=Device,
            is_available=lambda: available,
            runtime=types.SimpleNamespace(getDeviceCount=lambda: n_devices),
        )
        self.random = types.SimpleNamespace(RandomState=RandomState)
        self.cupyx = types.SimpleNamespace(
            scatter_add=lambda a, slices, v: a.scatter_add(slices, v)
        )
        self.add = _Add()
        self.take = _wrapping_take
        for name in _BARE:  # bare CuPy's elementwise functions, results on the current device
            setattr(self, name, _on_current_device(getattr(np, name)))
        for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
            setattr(self, name, getattr(np, name))
        self.xp = _namespace()
        self.recorder = RECORDER

    # --- what CupyKernels calls
    @staticmethod
    def asarray(obj, dtype=None):
        return _host_to_device(obj, dtype, copy=False)

    @staticmethod
    def array(obj, dtype=None, copy=True):
        return _host_to_device(obj, dtype, copy=copy)

    @staticmethod
    def asnumpy(array):
        return array.get() if isinstance(array, FakeArray) else np.asarray(array)

    @staticmethod
    def zeros(shape, dtype=float):
        return np.zeros(shape, dtype=dtype).view(FakeArray)

    @staticmethod
    def pad(x, pad_width, mode="constant", constant_values=0):
        _check_devices("pad", [x])
        padded = np.pad(x.view(np.ndarray), pad_width, mode=mode, constant_values=constant_values)
        return _to_device(padded)


_BARE = ("maximum", "minimum", "where", "sign", "isnan", "abs", "clip", "cumsum", "any")
_CREATION = ("zeros", "ones", "empty", "full", "arange", "eye", "linspace")
_LIKE = ("zeros_like", "ones_like", "empty_like", "full_like")


def _host(value):
    return value.view(np.ndarray) if isinstance(value, FakeArray) else value


def _on_current_device(func):
    """A NumPy function as CuPy runs it: inputs checked against, result on, the current device."""

    def run(*args, **kwargs):
        _check_devices(func.__name__, list(_flat_arrays(args + tuple(kwargs.values()))))
        args = [_host(a) for a in args]
        kwargs = {k: _host(v) for k, v in kwargs.items()}
        return _to_device(func(*args, **kwargs))

    run.__name__ = getattr(func, "__name__", "function")
    return run


def _ignoring_device(func):
    # array-api-compat's CuPy creation functions accept device= and ignore it
    # (_check_device only validates NumPy's and Dask's): the current device it is.
    def create(*args, device=None, **kwargs):
        return _on_current_device(func)(*args, **kwargs)

    create.__name__ = func.__name__
    return create


def _wrapping_take(x, indices, /, *, axis=None):
    """``take`` as CuPy's kernel does it: ``index % size`` (no IndexError out of range)."""
    _check_devices("take", [x, indices])
    size = x.size if axis is None else x.shape[axis]
    indices = np.asarray(_host(indices))
    if size:
        indices = indices % size
    return _to_device(np.take(_host(x), indices, axis=axis))


def _compat_clip(x, /, min=None, max=None):  # noqa: A002
    """array-api-compat's generic clip (common/_aliases.py): masked reads and writes per bound."""
    out = x.copy()
    if min is not None:
        a = np.broadcast_to(np.asarray(_host(min), dtype=x.dtype), x.shape).view(FakeArray)
        ia = (out < a) | np.isnan(a)
        out[ia] = a[ia]
    if max is not None:
        b = np.broadcast_to(np.asarray(_host(max), dtype=x.dtype), x.shape).view(FakeArray)
        ib = (out > b) | np.isnan(b)
        out[ib] = b[ib]
    return out


def _compat_sign(x, /):
    """array-api-compat's sign on CuPy: CuPy's sign, then a masked write for the NaNs."""
    out = _to_device(np.sign(_host(x)))
    if x.dtype.kind == "f":
        out[np.isnan(_host(x)).view(FakeArray)] = np.nan
    return out


def _asarray(obj, /, *, dtype=None, device=None, copy=None):
    # array-api-compat's cupy.asarray: the one creation function that honours device=.
    with Device(device):
        return _host_to_device(obj, dtype, copy=bool(copy))


def _namespace():
    """array-api-compat's CuPy namespace, played by array-api-compat's NumPy one (the same
    wrappers over the same names), with CuPy's device rules and compat's CuPy-only gaps."""
    names = {k: getattr(compat_numpy, k) for k in dir(compat_numpy) if not k.startswith("__")}
    xp = types.SimpleNamespace()
    for name, value in names.items():
        if callable(value) and not isinstance(value, type) and not name[0].isupper():
            value = _on_current_device(value)
        setattr(xp, name, value)
    for name in _CREATION + _LIKE:
        setattr(xp, name, _ignoring_device(getattr(np, name)))
    xp.asarray = _asarray
    xp.take = _wrapping_take
    xp.clip, xp.sign = _compat_clip, _compat_sign
    xp.__name__ = "fakecupy"
    return xp


class _HostOnlyNumpy(types.ModuleType):
    """``numpy`` as library code sees it next to real CuPy: ``asarray``/``array`` refuse device
    arrays (cupy.ndarray.__array__ raises TypeError); everything else is NumPy's."""

    def __init__(self):
        super().__init__("numpy")

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def _refuse(obj):
        if isinstance(obj, FakeArray):
            raise TypeError(
                "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                "construct a NumPy array explicitly."
            )

    def asarray(self, obj, *args, **kwargs):
        self._refuse(obj)
        return np.asarray(obj, *args, **kwargs)

    def array(self, obj, *args, **kwargs):
        self._refuse(obj)
        return np.array(obj, *args, **kwargs)


HOST_ONLY_NUMPY = _HostOnlyNumpy()


def install(monkeypatch, n_devices: int = 2) -> FakeCupy:
    """Make ``"cuda:N"`` resolve to the fake (undone by monkeypatch)."""
    from dezero_xp import backend as B
    from dezero_xp._backends import base
    from dezero_xp._backends import cupy as adapter

    fake = FakeCupy(n_devices)
    monkeypatch.setattr(adapter, "import_cupy", lambda: fake)
    monkeypatch.setattr(adapter, "import_cupyx", lambda: fake.cupyx)
    monkeypatch.setattr(adapter, "compat_namespace", lambda cupy: cupy.xp)
    for name, module in list(sys.modules.items()):
        if name.startswith("dezero_xp") and getattr(module, "np", None) is np:
            monkeypatch.setattr(module, "np", HOST_ONLY_NUMPY)
    # Backends and resolvers made with the fake vanish with it.
    monkeypatch.setattr(base.REGISTRY, "backends", dict(base.REGISTRY.backends))
    monkeypatch.setattr(B, "_resolvers", dict(B._resolvers))
    B._reset_device_state()
    _set_current(0)
    RECORDER.reset()
    return fake
