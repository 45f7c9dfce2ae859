"""What every adapter shares: ``Device``, ``Backend``, the device errors and the registry.

A :class:`Backend` is one array library on one device: the namespace called on the hot path
(``xp``), our own :class:`Device`, the library's kernel table (``ops``), allocation in a dtype
(``zeros``, ``ones``, ``full``, ``normal``, ``uniform``), dtype lookup (``dtype``) and its device
scope (``with backend:``). Backends are singletons kept in :data:`REGISTRY`, so identity of two
backends is the device check.

An :class:`Adapter` teaches ``dezero_xp.backend`` one library: its device-spec words, how to
recognise its arrays and device objects, and how to make its backends. An adapter that cannot
provide a device raises :class:`BackendUnavailable` ("unavailable, because ..."); the policy in
``dezero_xp.backend`` decides whether to fall back or raise.

Also here, for the core: :class:`Movable` (DeZero's ``to_cpu``/``to_gpu``) and
:func:`scalar_as_array` (a Python number in an array's dtype).

May import: numpy (NumPy scalars and dtype names only). It imports nothing from dezero_xp
(but dezero_xp.typing, for type checkers only).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self

    from dezero_xp.typing import Array, DeviceLike, DTypeLike

_NO_SCOPE = contextlib.nullcontext()  # reusable and reentrant


class _Checks:
    """Whether checks that read device values back (label and index ranges) run on GPUs too.

    Off by default: each costs a device-to-host synchronisation per call. On host backends
    these checks always run (they cost nothing there).
    """

    eager = False  # dezero_xp.backend sets it from DEZERO_XP_EAGER_CHECKS (a yes/no value)


CHECKS = _Checks()


class DeviceMismatchError(ValueError):
    """Inputs of one op live on different devices or in different array libraries."""


class DeviceUnavailableError(RuntimeError):
    """A requested device cannot be used and falling back to the CPU is not allowed."""


class DeviceFallbackWarning(RuntimeWarning):
    """A CUDA device was requested but is not usable: the CPU is used instead."""


class BackendUnavailable(Exception):  # noqa: N818 - a signal between adapter and policy
    """An adapter cannot provide the device asked for, because of ``reason``.

    ``fallback`` is the device spec the fallback policy may use instead (None: no fallback, the
    policy raises :class:`DeviceUnavailableError`); ``device`` names what was asked for in the
    adapter's own words (``"torch:cuda:0"``), when that reads better than the spec given.
    """

    def __init__(self, reason: str, fallback: str | None = None, device: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fallback = fallback
        self.device = device


@dataclass(frozen=True, slots=True)
class Device:
    """Where arrays live: ``cpu``, ``cuda:0``, ``strict:device1``, ...

    Our own small hashable value; library device objects are not reliably hashable, so nothing
    is ever keyed on them.
    """

    type: str
    index: int | str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type.isidentifier():
            raise TypeError(
                f"Device: type must be a non-empty str such as 'cuda', got {self.type!r}"
            )
        if self.index is not None and not isinstance(self.index, (int, str)):
            raise TypeError(f"Device: index must be an int, a str or None, got {self.index!r}")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"Device('{self}')"

    # A Device also equals its string form, so `x.device == "cpu"` reads naturally.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Device):
            return self.type == other.type and self.index == other.index
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


CPU = Device("cpu")

_DTYPE_KINDS = ("bool", "integral", "real floating", "complex floating")


def dtype_name(dtype: DTypeLike) -> str:
    """The standard name of a dtype of any library: ``"float32"``, ``"int64"``, ``"bool"``, ...

    Also accepts dtype names and NumPy scalar types (``numpy.float32``), as DeZero code passes.
    """
    if isinstance(dtype, str):
        return dtype
    name = getattr(dtype, "__name__", None)  # numpy.float32 (a scalar type)
    if isinstance(name, str) and "." not in name:
        return name
    name = getattr(dtype, "name", None)  # numpy.dtype("float32")
    if isinstance(name, str):
        return name
    return str(dtype).rsplit(".", 1)[-1]  # torch.float32, array_api_strict.float32


class Backend:
    """One array library on one device: ``xp`` (namespace), ``device``, ``ops`` (kernel table).

    Backends are singletons: two arrays are on the same device of the same library exactly when
    their backends are the same object, which is the whole device check of ``Function``.
    ``with backend:`` makes its device current for libraries that compute on a current device
    (CuPy); allocation helpers run under it themselves.
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
        "_scope",
        "_dtypes",
        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        xp: Any,
        device: Device,
        native_device: Any,
        ops_factory: Callable[[Backend], Any],
        array_type: type,
        *,
        value_types: Iterable[type] | None = None,
        coerce: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name = name  # library: "numpy", "cupy", "torch", "strict" (array-api-strict), ...
        self.xp = xp
        self.device = device
        self.native_device = native_device  # the library's own device object (or None)
        self.array_type = array_type
        self.ops = ops_factory(self)
        # Turns what an op returned into an array of this backend (the adapter may pass a
        # faster one: NumPy's returns scalars for 0-d results and np.asarray fixes that).
        self.coerce = coerce or self.ops.asarray
        # What an op may return and keep as it is (the NumPy adapter adds NumPy's scalars).
        self.value_types = frozenset(value_types or (array_type,))
        self._scope = self.ops.scope()
        # True when ops must run under the device scope (CuPy computes and allocates on its
        # *current* device, so cuda:1 arrays need cuda:1 made current around every op).
        self.scoped = self._scope is not _NO_SCOPE
        self._dtypes: dict = {}

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

    @property
    def checks_values(self) -> bool:
        """Whether value checks (label ranges, index ranges) run here: always on host backends,
        on GPUs only with eager checks on (``dezero_xp.set_eager_checks``)."""
        return CHECKS.eager or self.device.type != "cuda"

    # ------------------------------------------------------------------ device scope
    def __enter__(self) -> Self:
        self._scope.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)

    # ------------------------------------------------------------------ dtypes
    def dtype(self, dtype: DTypeLike, where: str = "dtype") -> Any:
        """This library's dtype object for ``dtype``: a name, a NumPy dtype or scalar type, or
        another library's dtype. A TypeError naming ``where`` for anything else."""
        key = dtype if isinstance(dtype, str) else None
        found = self._dtypes.get(key) if key is not None else None
        if found is not None:
            return found
        name = dtype_name(dtype)
        found = getattr(self.xp, name, None)
        try:
            valid = found is not None and self.xp.isdtype(found, _DTYPE_KINDS)
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise TypeError(
                f"{where}: {dtype!r} is not a dtype of {self}; use a name such as 'float32', "
                "'float64', 'int64' or 'bool'"
            )
        if key is not None:
            self._dtypes[key] = found
        return found

    # ------------------------------------------------------------------ allocation
    def full(self, shape: Sequence[int], fill_value: Any, dtype: DTypeLike = "float32") -> Array:
        """``fill_value`` everywhere, in ``dtype``, allocated on this device."""
        dtype = self.dtype(dtype)
        with self._scope:
            return self.xp.full(tuple(shape), fill_value, dtype=dtype, device=self.native_device)

    def zeros(self, shape: Sequence[int], dtype: DTypeLike = "float32") -> Array:
        """Zeros of ``shape`` in ``dtype`` on this device."""
        dtype = self.dtype(dtype)
        with self._scope:
            return self.xp.zeros(tuple(shape), dtype=dtype, device=self.native_device)

    def ones(self, shape: Sequence[int], dtype: DTypeLike = "float32") -> Array:
        """Ones of ``shape`` in ``dtype`` on this device."""
        dtype = self.dtype(dtype)
        with self._scope:
            return self.xp.ones(tuple(shape), dtype=dtype, device=self.native_device)

    def normal(
        self, shape: Sequence[int], dtype: DTypeLike = "float32", scale: float = 1.0
    ) -> Array:
        """N(0, scale^2) samples from this backend's generator (seeded by ``dezero_xp.seed``)."""
        sample = self.ops.normal(tuple(shape), self.dtype(dtype))
        if scale == 1.0:
            return sample
        with self._scope:
            return sample * scale

    def uniform(self, shape: Sequence[int], dtype: DTypeLike = "float32") -> Array:
        """U[0, 1) samples from this backend's generator."""
        return self.ops.uniform(tuple(shape), self.dtype(dtype))

    # ------------------------------------------------------------------ transfers
    def asarray(self, obj: Any, dtype: DTypeLike | None = None) -> Array:
        """An array of this backend from ``obj`` (a scalar, a sequence or a host array)."""
        return self.ops.asarray(obj, dtype)

    def from_host(self, array: Any) -> Array:
        """Copy a NumPy array onto this backend's device."""
        return self.ops.from_host(array)

    def to_host(self, array: Any) -> np.ndarray:
        """Copy an array of this backend to a NumPy array."""
        return self.ops.to_host(array)


class Movable:
    """DeZero's ``to_cpu()`` / ``to_gpu()`` for anything with a ``to(device)`` method
    (Variable, Layer, DataLoader)."""

    __slots__ = ()

    if TYPE_CHECKING:

        def to(self, device: DeviceLike) -> Self: ...

    def to_cpu(self) -> Self:
        """Move to the CPU (NumPy); DeZero's name. Returns self."""
        return self.to("cpu")

    def to_gpu(self, device: DeviceLike | None = None) -> Self:
        """Move to a CUDA device (``cuda:0`` unless given: an int N or a spec); returns self."""
        if device is None:
            device = "cuda"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device)


_scalar_dtype_cache: dict = {}


def python_scalar(value: Any) -> Any:
    """A NumPy scalar as the Python scalar it holds, anything else unchanged: the dtype rule for
    scalars (a Python scalar is weak, it takes the array's dtype; NumPy 2 would promote float32
    against a NumPy float64 scalar). Scalar inputs, hyperparameters and ``x ** c`` go through
    it (``dezero_xp.backend`` re-exports it)."""
    if isinstance(value, np.generic) and not isinstance(value, (np.datetime64, np.timedelta64)):
        return value.item()
    return value


def scalar_as_array(value: Any, backend: Backend, like_dtype: Any) -> Array:
    """A Python/NumPy scalar as a 0-d array of ``backend`` in the dtype of ``like_dtype``.

    This is the rule that keeps float32 float32: ``2.0 * x`` never promotes ``x``. A float meeting
    an integer array takes the library's default float instead (as NumPy's NEP 50 does).
    """
    value = python_scalar(value)
    key = (backend, like_dtype, type(value))
    dtype = _scalar_dtype_cache.get(key, False)
    if dtype is False:
        dtype = _scalar_dtype(value, backend.xp, like_dtype)
        _scalar_dtype_cache[key] = dtype
    return backend.ops.asarray(value, dtype)


def _scalar_dtype(value: Any, xp: Any, like_dtype: Any) -> Any:
    if like_dtype is None:
        return None
    if xp.isdtype(like_dtype, "complex floating"):
        return like_dtype
    if xp.isdtype(like_dtype, "real floating"):
        return None if isinstance(value, complex) else like_dtype
    if xp.isdtype(like_dtype, "integral"):
        return like_dtype if isinstance(value, (bool, int)) else None
    return like_dtype if isinstance(value, bool) else None


class Registry:
    """The backend singletons by (library, device), made once each under a lock.

    ``on_create`` (set by ``dezero_xp.backend``) sees each new backend, e.g. to seed it.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.backends: dict[tuple[str, str], Backend] = {}
        self.on_create: Callable[[Backend], None] = lambda backend: None

    def get(self, name: str, device: Device) -> Backend | None:
        return self.backends.get((name, str(device)))

    def make(self, name: str, device: Device, build: Callable[[], Backend]) -> Backend:
        """The backend of ``name`` on ``device``, built by ``build()`` the first time."""
        key = (name, str(device))
        backend = self.backends.get(key)
        if backend is not None:
            return backend
        with self.lock:
            backend = self.backends.get(key)
            if backend is None:
                backend = build()
                self.backends[key] = backend
                self.on_create(backend)
            return backend


REGISTRY = Registry()


class Adapter:
    """One array library as ``dezero_xp.backend`` sees it. Subclasses fill in what they offer.

    - ``words``: the first words of device specs this library answers (``"cuda"``, ``"torch"``);
      ``from_words(word, rest, spec)`` makes the backend for ``"<word>:<rest>"``; ``spec_help``
      says how such specs read (for error messages).
    - ``from_object(spec)``: a backend for a non-string spec this library knows (its device
      objects, ints, our :class:`Device` values), or None.
    - ``resolver(array)``: on the first sighting of ``type(array)``, a function array -> Backend
      when the type is this library's, else None.
    - ``auto``: True when ``"auto"`` should prefer this library whenever it is usable.
    - ``status()``: (usable, reason) of the library's accelerator, for probes; ``reset()``
      forgets cached probes (for tests).
    """

    name = ""
    words: tuple[str, ...] = ()
    spec_help = ""  # how its specs read, for the error listing every accepted spec
    auto = False

    def from_words(self, word: str, rest: str, spec: DeviceLike) -> Backend:
        raise NotImplementedError

    def from_object(self, spec: DeviceLike) -> Backend | None:
        return None

    def resolver(self, array: Any) -> Callable[[Any], Backend] | None:
        return None

    def status(self) -> tuple[bool, str]:
        return True, ""

    def reset(self) -> None:
        """Forget cached probes (tests simulate machines with and without a library)."""
