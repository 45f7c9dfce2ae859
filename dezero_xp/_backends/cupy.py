"""CuPy on CUDA devices: its kernel table and adapter (the only module that imports cupy).

Kernels: ``cupyx.scatter_add``, ``cupy.pad``, a CuPy RandomState per device. The adapter answers
``"cuda[:N]"``, ``"gpu[:N]"``, ``"cupy[:cuda:N]"``, device numbers >= 0, ``Device("cuda", N)`` and
``cupy.cuda.Device`` objects; ``"auto"`` prefers it whenever it is usable. Without CuPy or a
usable GPU it raises ``BackendUnavailable`` with the reason and ``"cpu"`` as the fallback.
CuPy is imported lazily, through :func:`import_cupy` (tests replace it with a fake), so
importing this file never touches CUDA.

Rules every kernel here keeps, because each broken one costs a synchronisation or lands data on
the wrong GPU:

- Everything runs under the table's CUDA device (:meth:`CupyKernels.scope`). CuPy allocates on
  its *current* device, and array-api-compat's CuPy namespace ignores ``device=`` in creation
  functions, so without the scope ``cuda:1`` would get arrays on ``cuda:0``.
- No host values on the GPU path: index arrays and random numbers are made on the device; a
  NumPy index array that reaches a kernel is copied over once, explicitly, before use.
- No hidden device-to-host copies: nothing here calls ``float()``, ``int()``, ``bool()`` or
  ``.item()`` on a device array; :meth:`CupyKernels.to_host` is the one explicit way back.

May import: numpy (host arrays only), dezero_xp._backends.base, dezero_xp._backends.generic and
dezero_xp._install (install hints); cupy, cupyx and array_api_compat.cupy lazily.
"""

from __future__ import annotations

import functools
import operator
import types

import numpy as np

from dezero_xp._backends.base import (
    REGISTRY,
    Adapter,
    Backend,
    BackendUnavailable,
    Device,
    DeviceUnavailableError,
)
from dezero_xp._backends.generic import GenericKernels, normalize_key
from dezero_xp._install import install_command

# dtypes CuPy's RandomState draws directly; others are drawn in float32 and cast.
_RNG_DTYPES = ("float32", "float64")
# dtypes cupy.add.at adds atomically in CuPy 13.0-14.2 (_scatter_op_single in
# cupy/_core/_routines_indexing.pyx); every other dtype raises TypeError there.
_ATOMIC_ADD_DTYPES = frozenset({"int32", "uint32", "uint64", "float16", "float32", "float64"})


class CupyKernels(GenericKernels):
    """Kernels for cupy.ndarray on one CUDA device. Every call runs under that device."""

    def __init__(self, backend, cupy, cupyx):
        super().__init__(backend)
        self._cupy = cupy
        self._cupyx = cupyx
        with self.scope():
            self._random_state = cupy.random.RandomState()

    def scope(self):
        """This device as CuPy's current device, for the duration of a ``with`` block."""
        # The backend's one cupy.cuda.Device: re-entrant (it stacks the previous devices).
        return self.device

    # ------------------------------------------------------------------ creation / transfer
    def asarray(self, obj, dtype=None):
        with self.scope():
            return self._cupy.asarray(obj, dtype=dtype)

    def from_host(self, array):
        # The one host-to-device copy; np.asarray raises on a cupy array (no silent round trip).
        with self.scope():
            return self._cupy.array(np.asarray(array), copy=True)

    def to_host(self, array):
        # The one explicit device-to-host copy (it synchronises with the array's stream).
        return self._cupy.asnumpy(array)

    def owns_memory(self, array):
        return array.base is None  # views and broadcasts of CuPy arrays keep their base

    def from_same_library(self, array):
        # A device-to-device copy onto this GPU (peer copy when the GPUs allow it).
        with self.scope():
            return self._cupy.array(array, copy=True)

    # ------------------------------------------------------------------ random numbers
    def seed(self, value):
        with self.scope():
            value = None if value is None else int(value) % (2**64)  # None: fresh entropy
            self._random_state = self._cupy.random.RandomState(value)

    def uniform(self, shape, dtype):
        with self.scope():
            return self._draw(self._random_state.random_sample, shape, dtype)

    def normal(self, shape, dtype):
        with self.scope():
            return self._draw(self._random_state.standard_normal, shape, dtype)

    def _draw(self, sampler, shape, dtype):
        name = np.dtype(dtype).name
        if name in _RNG_DTYPES:
            return sampler(tuple(shape), dtype=name)
        # float16 and the like: drawn in float32 on the device, cast there.
        return sampler(tuple(shape), dtype="float32").astype(dtype)

    def permutation(self, n):
        with self.scope():
            return self._random_state.permutation(int(n))

    # ------------------------------------------------------------------ scatter-add, pad
    def scatter_add(self, target, key, values):
        key = normalize_key(key)
        with self.scope():
            if len(key) == 1 and getattr(key[0], "dtype", None) == np.bool_:
                return self._mask_add(target, key[0], values)
            if not _has_integer_arrays(key):
                # Basic indexing: each element is selected at most once, so a plain in-place
                # add is exact (and deterministic).
                target[key] += values
                return target
            key = tuple(self._device_index(k) for k in key)
            # cupy.add.at uses atomic adds: where indices repeat, the order of the additions
            # (and so the last bits of a float sum) can change from run to run. Like every
            # CuPy gather/scatter it wraps out-of-range indices instead of raising.
            # (cupyx.scatter_add is the same kernel behind ndarray.scatter_add, deprecated
            # with a DeprecationWarning in CuPy 13 and 14.)
            self._add_at(target, key, values)
        return target

    def _mask_add(self, target, mask, values):
        """``target[mask] += values`` without reading the mask's count back to the host (CuPy's
        masked get/set would): selected positions gather ``values`` by a running count."""
        cupy = self._cupy
        expand = mask.reshape(tuple(mask.shape) + (1,) * (target.ndim - mask.ndim))
        values = cupy.asarray(values)
        if values.ndim > target.ndim - mask.ndim:  # one row of values per selected position
            if values.shape[0] == 0:
                return target
            position = cupy.maximum(cupy.cumsum(mask.reshape(-1)) - 1, 0)
            values = cupy.take(values, position.reshape(mask.shape), axis=0)
        target += cupy.where(expand, values, 0).astype(target.dtype, copy=False)
        return target

    def _add_at(self, target, key, values):
        """``cupy.add.at`` for every dtype: its atomics take only some (CuPy 13-14: int32,
        uint32, uint64, float16/32/64); the others go through one of them exactly."""
        cupy = self._cupy
        name = np.dtype(target.dtype).name
        if name in _ATOMIC_ADD_DTYPES:
            cupy.add.at(target, key, values)
        elif name == "int64":  # two's complement: int64 sums are uint64 sums, bit for bit
            unsigned = values.astype(cupy.int64).view(cupy.uint64)
            cupy.add.at(target.view(cupy.uint64), key, unsigned)
        elif name in ("int8", "int16", "uint8", "uint16"):  # summed in int32, wrapped back
            wide = target.astype(cupy.int32)
            cupy.add.at(wide, key, values.astype(cupy.int32))
            target[...] = wide.astype(target.dtype)
        elif name in ("complex64", "complex128"):  # real and imaginary parts apart
            part = "float32" if name == "complex64" else "float64"
            real, imag = target.real.astype(part), target.imag.astype(part)
            values = values.astype(target.dtype)
            cupy.add.at(real, key, values.real.astype(part))
            cupy.add.at(imag, key, values.imag.astype(part))
            target[...] = real + 1j * imag
        else:
            raise TypeError(
                f"scatter_add: CuPy has no atomic add for {name} arrays (used by x[idx] "
                "gradients and embed_id); cast to a numeric dtype first, e.g. int32 or float32"
            )

    def _device_index(self, k):
        """An index array of the key on this device (host arrays copied over, explicitly)."""
        if isinstance(k, (list, np.ndarray)):
            return self._cupy.asarray(k)
        return k

    def pad(self, x, pad_width, value=0):
        with self.scope():
            return self._cupy.pad(x, pad_width, mode="constant", constant_values=value)

    # ------------------------------------------------------------------ im2col / col2im
    def im2col(self, x, kernel_size, stride, pad, pad_value=0):
        # The generic KH*KW strided slices and one stack: a handful of kernel launches, all on
        # this GPU.
        with self.scope():
            return super().im2col(x, kernel_size, stride, pad, pad_value)

    def col2im(self, col, img_shape, kernel_size, stride, pad):
        # One launch per kernel offset (see GenericKernels._col2im_in_place), on this device.
        with self.scope():
            return self._col2im_in_place(col, img_shape, kernel_size, stride, pad)

    def _add_into(self, view, src):
        self._cupy.add(view, src, out=view)

    @staticmethod
    def _copy_into(view, src):
        view[...] = src

    def _zeros(self, shape, dtype):
        with self.scope():
            return self._cupy.zeros(shape, dtype=dtype)


def _has_integer_arrays(key: tuple) -> bool:
    """True when the key holds integer index arrays (or lists), which may repeat indices."""
    for k in key:
        if isinstance(k, list):
            return True
        dtype = getattr(k, "dtype", None)
        if dtype is not None and not isinstance(k, (int, slice)) and np.dtype(dtype).kind != "b":
            return True
    return False


# --------------------------------------------------------------------------- the adapter


def import_cupy():
    """Import CuPy. A separate function so tests can simulate its absence (or a fake)."""
    import cupy  # noqa: PLC0415 - optional dependency

    return cupy


def import_cupyx():
    import cupyx  # noqa: PLC0415 - optional dependency, ships with cupy

    return cupyx


def import_nccl():
    """``(cupy.cuda, cupy.cuda.nccl)`` for the NCCL transport, or ImportError saying why not."""
    try:
        import cupy.cuda  # noqa: PLC0415 - optional dependency
        from cupy.cuda import nccl  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            f"the nccl transport needs CuPy with NCCL ({exc}); install cupy-cuda12x "
            "(it loads the NCCL library of the nvidia-nccl-cu12 wheel)"
        ) from None
    if not getattr(nccl, "available", True):
        raise ImportError(
            "CuPy cannot load the NCCL library; pip install nvidia-nccl-cu12 (or use "
            "transport='mpi', which stages CuPy arrays through host memory)"
        )
    return cupy.cuda, nccl


def compat_namespace(cupy):
    """array-api-compat's CuPy namespace (tests hand in a fake's model of it).

    Bare ``cupy`` carries most standard names, but not all standard signatures (``reshape`` and
    ``asarray`` without ``copy=``, creation functions without ``device=``), and a GPU op costs
    microseconds of launch anyway, so the thin compat wrapper is the base.
    """
    del cupy  # the compat namespace imports it itself
    import array_api_compat.cupy as compat_cupy  # noqa: PLC0415

    return compat_cupy


_CREATION = ("zeros", "ones", "empty", "full", "arange", "eye", "linspace")
_LIKE = ("zeros_like", "ones_like", "empty_like", "full_like")
_namespaces: dict[int, tuple] = {}  # id(cupy module) -> (module, namespace)


def namespace(cupy):
    """The standard's CuPy namespace: array-api-compat's, mended where it breaks on a GPU.

    - Creation functions honour ``device=`` (compat's accept it and allocate on the current
      device, ``_check_device`` in array_api_compat/common/_helpers.py), and ``*_like`` ones
      allocate on the prototype's device (CuPy's own use the current device).
    - ``clip`` and ``sign`` are CuPy's elementwise kernels: compat's generic ``clip`` does a
      boolean-mask get and set per bound and its ``sign`` a masked set for NaNs, each a
      device-to-host synchronisation (array_api_compat/common/_aliases.py).
    """
    found = _namespaces.get(id(cupy))
    if found is not None and found[0] is cupy:
        return found[1]
    base = compat_namespace(cupy)
    xp = types.SimpleNamespace(**{k: getattr(base, k) for k in dir(base) if not k[:2] == "__"})
    xp.__name__ = getattr(base, "__name__", "array_api_compat.cupy")
    for name in ("__array_api_version__", "__array_namespace_info__"):
        if hasattr(base, name):
            setattr(xp, name, getattr(base, name))
    on = cupy.cuda.Device

    def creation(func):
        def create(*args, device=None, **kwargs):
            if device is None:
                return func(*args, **kwargs)
            with on(getattr(device, "id", device)):
                return func(*args, **kwargs)

        return functools.wraps(func)(create)

    def like(func):
        def create(x, /, *args, device=None, **kwargs):
            with on(getattr(device, "id", device) if device is not None else x.device.id):
                return func(x, *args, **kwargs)

        return functools.wraps(func)(create)

    for name in _CREATION:
        setattr(xp, name, creation(getattr(base, name)))
    for name in _LIKE:
        setattr(xp, name, like(getattr(base, name)))

    def clip(x, /, min=None, max=None):  # noqa: A002 - the standard's names
        out = x if min is None else cupy.maximum(x, min)
        out = out if max is None else cupy.minimum(out, max)
        return out.astype(x.dtype, copy=False) if out is not x else out.copy()

    def sign(x, /):
        if x.dtype.kind == "c":
            return cupy.where(x == 0, x, x / cupy.abs(x))
        out = cupy.sign(x)
        return cupy.where(cupy.isnan(x), x, out) if x.dtype.kind == "f" else out

    xp.clip, xp.sign = clip, sign
    _namespaces[id(cupy)] = (cupy, xp)
    return xp


def _parse_index(text: str, spec) -> int:
    try:
        index = int(text)
    except ValueError:
        raise ValueError(f"device {spec!r}: {text!r} is not a device number") from None
    if index < 0:
        raise ValueError(f"device {spec!r}: device numbers are >= 0")
    return index


class CupyAdapter(Adapter):
    """cupy.ndarray on CUDA device N; one backend per device."""

    name = "cupy"
    words = ("cuda", "gpu", "cupy")
    spec_help = '"cuda", "cuda:N", "gpu", an int N (CUDA N; negative means CPU), a cupy.cuda.Device'
    auto = True

    def __init__(self):
        self._status: tuple[bool, str] | None = None
        self._by_index: dict[int, Backend] = {}

    def status(self) -> tuple[bool, str]:
        """(usable, reason) for CUDA through CuPy, computed once per process."""
        if self._status is None:
            self._status = _probe()
        return self._status

    def reset(self):
        self._status = None
        self._by_index.clear()

    def backend(self, index: int, spec=None) -> Backend:
        """The backend of cuda:``index``; BackendUnavailable when CUDA is not usable."""
        found = self._by_index.get(index)
        if found is not None:
            return found
        usable, reason = self.status()
        if not usable:
            raise BackendUnavailable(reason, "cpu")
        cupy = import_cupy()
        count = cupy.cuda.runtime.getDeviceCount()
        if index >= count:
            raise DeviceUnavailableError(
                f"device {spec if spec is not None else index!r}: CUDA device {index} does not "
                f"exist; this machine has {count} CUDA device(s) (cuda:0 .. cuda:{count - 1})"
            )
        device = Device("cuda", index)

        def build():
            return Backend(
                "cupy",
                namespace(cupy),
                device,
                cupy.cuda.Device(index),
                lambda b: CupyKernels(b, cupy=cupy, cupyx=import_cupyx()),
                cupy.ndarray,
            )

        backend = self._by_index[index] = REGISTRY.make("cupy", device, build)
        return backend

    def from_words(self, word, rest, spec):
        if rest.startswith("cuda:"):
            rest = rest[5:]
        return self.backend(_parse_index(rest, spec) if rest else 0, spec)

    def from_object(self, spec):
        if isinstance(spec, Device):
            return self.backend(int(spec.index or 0), spec) if spec.type == "cuda" else None
        if isinstance(spec, int) or type(spec).__module__ == "numpy":
            try:
                index = operator.index(spec)
            except TypeError:
                return None
            return self.backend(index, spec) if index >= 0 else None
        if type(spec).__module__.split(".")[0] == "cupy":
            return self.backend(int(spec.id), spec)
        return None

    def resolver(self, array):
        known = tuple({b.array_type for b in self._by_index.values()})
        if type(array).__module__.split(".")[0] != "cupy" and not isinstance(array, known):
            return None
        return lambda a: self._by_index.get(a.device.id) or self.backend(a.device.id)


def _probe() -> tuple[bool, str]:
    try:
        cupy = import_cupy()
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return (
            False,
            f"CuPy is not importable ({type(exc).__name__}: {exc}); install it with "
            f"{install_command('cuda12')} (cuda13 for CUDA 13)",
        )
    try:
        available = bool(cupy.cuda.is_available())
    except Exception as exc:  # driver errors surface here
        available, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "cupy.cuda.is_available() is False"
    if available:
        return True, ""
    return False, f"CuPy is installed but no CUDA device is usable ({why})"


ADAPTER = CupyAdapter()
