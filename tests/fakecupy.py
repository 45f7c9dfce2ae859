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
- ``float()``, ``int()``, ``bool()``, ``.item()``, ``.tolist()`` on a device array are hidden
  device-to-host copies (``implicit_d2h``); ``.get()`` / ``asnumpy`` are the explicit ones.

The array namespace (:attr:`FakeCupy.xp`) mimics array-api-compat's CuPy namespace, including
its known gap: creation functions ignore ``device=`` and allocate on the current device; only
``asarray`` honours it.

``install(monkeypatch, n_devices)`` makes the CuPy adapter (``dezero_xp._backends.cupy``) use it
for ``"cuda:N"``.
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass, field

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


# dezero_xp.backend recognises library device objects by their module, as CuPy's are.
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
        self.cupyx = types.SimpleNamespace(scatter_add=self._scatter_add)
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
    def add(x1, x2, out=None):
        return np.add(x1, x2, out=out)

    @staticmethod
    def pad(x, pad_width, mode="constant", constant_values=0):
        return np.pad(x, pad_width, mode=mode, constant_values=constant_values)

    @staticmethod
    def _scatter_add(target, key, values):
        key = key if isinstance(key, tuple) else (key,)
        hosts = [k for k in key if isinstance(k, np.ndarray) and not isinstance(k, FakeArray)]
        if hosts:
            RECORDER.wrong_device.append("scatter_add: a host (NumPy) index array in the key")
        np.add.at(target, key, values)


_CREATION = ("zeros", "ones", "empty", "full", "arange", "eye", "linspace")


def _ignoring_device(func):
    # array-api-compat's CuPy creation functions accept device= and ignore it.
    def create(*args, device=None, **kwargs):
        return _to_device(func(*args, **kwargs))

    create.__name__ = func.__name__
    return create


def _asarray(obj, /, *, dtype=None, device=None, copy=None):
    # array-api-compat's cupy.asarray: the one creation function that honours device=.
    with Device(device):
        return _host_to_device(obj, dtype, copy=bool(copy))


def _namespace():
    """array-api-compat's CuPy namespace, played by NumPy's (which carries the same names)."""
    xp = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    for name in _CREATION:
        setattr(xp, name, _ignoring_device(getattr(np, name)))
    xp.asarray = _asarray
    xp.__name__ = "fakecupy"
    return xp


def install(monkeypatch, n_devices: int = 2) -> FakeCupy:
    """Make ``"cuda:N"`` resolve to the fake (undone by monkeypatch)."""
    from dezero_xp import backend as B
    from dezero_xp._backends import base
    from dezero_xp._backends import cupy as adapter

    fake = FakeCupy(n_devices)
    monkeypatch.setattr(adapter, "import_cupy", lambda: fake)
    monkeypatch.setattr(adapter, "import_cupyx", lambda: fake.cupyx)
    monkeypatch.setattr(adapter, "namespace", lambda cupy: cupy.xp)
    # Backends and resolvers made with the fake vanish with it.
    monkeypatch.setattr(base.REGISTRY, "backends", dict(base.REGISTRY.backends))
    monkeypatch.setattr(B, "_resolvers", dict(B._resolvers))
    B._reset_device_state()
    _set_current(0)
    RECORDER.reset()
    return fake
