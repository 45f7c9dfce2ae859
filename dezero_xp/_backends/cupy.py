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

May import: numpy (host arrays only), dezero_xp._backends.base and dezero_xp._backends.generic;
cupy, cupyx and array_api_compat.cupy lazily.
"""

from __future__ import annotations

import operator

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

# dtypes CuPy's RandomState draws directly; others are drawn in float32 and cast.
_RNG_DTYPES = ("float32", "float64")


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
            if not _has_integer_arrays(key):
                # Basic indexing or a mask: each element is selected at most once, so a plain
                # in-place add is exact (and deterministic).
                target[key] += values
                return target
            key = tuple(self._device_index(k) for k in key)
            # cupyx.scatter_add uses atomic adds: where indices repeat, the order of the
            # additions (and so the last bits of a float sum) can change from run to run.
            self._cupyx.scatter_add(target, key, values)
        return target

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


def namespace(cupy):
    """array-api-compat's CuPy namespace.

    Bare ``cupy`` carries most standard names, but not all standard signatures (``reshape`` and
    ``asarray`` without ``copy=``, creation functions without ``device=``), and a GPU op costs
    microseconds of launch anyway, so the thin compat wrapper is the safe choice here.
    """
    del cupy  # the compat namespace imports it itself
    import array_api_compat.cupy as compat_cupy  # noqa: PLC0415

    return compat_cupy


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
            "`pip install dezero_xp[cuda12]` (or [cuda13])",
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
