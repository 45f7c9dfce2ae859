"""Zero-copy exchange with other array libraries (PyTorch, JAX, CuPy, NumPy) through DLPack.

- :func:`from_dlpack` wraps another library's array (anything with ``__dlpack__``, e.g. a
  ``torch.Tensor`` or a ``jax.Array``) as a Variable that *shares its memory*: a write on one
  side is seen on the other. It never copies between devices unless you ask (``copy=True``).
- :func:`to_dlpack` hands the array inside a Variable to another library's ``from_dlpack``
  (``torch.from_dlpack``, ``jax.numpy.from_dlpack``, ``cupy.from_dlpack``,
  ``numpy.from_dlpack``), again without a copy where the two sides allow one.

Sharing is what the DLPack protocol offers between libraries on the same device; whether a
given pair really shares (JAX, for one, may copy onto its own allocator) is up to them.

May import: dezero_xp.backend, dezero_xp.core and dezero_xp.typing.
"""

from __future__ import annotations

from typing import Any

from dezero_xp.backend import (
    Backend,
    Device,
    DeviceMismatchError,
    DeviceUnavailableError,
    _cuda_status,
    backend_of,
    get_backend,
    is_array,
    transfer,
)
from dezero_xp.core import Variable, wrap_array
from dezero_xp.typing import Array, DeviceLike, VariableLike

__all__ = ["from_dlpack", "to_dlpack"]

# DLPack device types (dlpack.h, DLDeviceType) that we can map to a device of ours.
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13
_DL_NAMES = {4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm", 14: "oneAPI"}
_CPU = Device("cpu")


def _producer_device(x: Any) -> Device:
    """Where the memory of a DLPack producer lives, as our Device."""
    try:
        kind, index = x.__dlpack_device__()
    except Exception as exc:  # noqa: BLE001 - report whatever the producer raised
        raise TypeError(
            f"from_dlpack: {type(x).__name__}.__dlpack_device__() failed ({exc})"
        ) from exc
    kind = int(kind)
    if kind in (_DL_CPU, _DL_CUDA_HOST):  # pinned host memory is host memory
        return _CPU
    if kind in (_DL_CUDA, _DL_CUDA_MANAGED):
        return Device("cuda", int(index))
    name = _DL_NAMES.get(kind, f"DLPack device type {kind}")
    raise TypeError(
        f"from_dlpack: the data of this {type(x).__name__} lives on a {name} device, which "
        "dezero_xp has no backend for; copy it to the CPU or a CUDA device first"
    )


def _memory_device(backend: Backend) -> Device:
    """Where a backend's arrays live in DLPack's terms (every strict device is host memory)."""
    if backend.device.type == "cuda":
        return backend.device
    return _CPU


def _backend_for(device: Device) -> Backend:
    """The backend that imports memory on ``device`` without a copy: NumPy, or CuPy on cuda:N."""
    if device == _CPU:
        return get_backend("cpu")
    usable, reason = _cuda_status()
    if not usable:
        raise DeviceUnavailableError(
            f"from_dlpack: the data lives on {device}, but dezero_xp cannot use CUDA here: "
            f"{reason}. Pass device='torch:{device}' to keep it a torch tensor, or copy it to "
            "the CPU first"
        )
    return get_backend(str(device))


def _import(backend: Backend, x: Any) -> Array:
    """``backend``'s ``from_dlpack(x)``: the same memory, as an array of that backend."""
    xp = backend.xp
    importer = getattr(xp, "from_dlpack", None)
    if importer is None:
        raise TypeError(f"from_dlpack: the {backend} backend has no from_dlpack")
    try:
        with backend:
            if backend.name == "strict":  # strict arrays carry a (fake) device
                return importer(x, device=backend.native_device)
            return importer(x)
    except BufferError as exc:
        hint = ""
        if type(x).__module__.split(".")[0] == "torch":
            hint = " (a tensor that requires grad: pass tensor.detach())"
        raise BufferError(
            f"from_dlpack: this {type(x).__name__} cannot be shared{hint}: {exc}"
        ) from exc


def from_dlpack(x: Any, device: DeviceLike | None = None, *, copy: bool | None = None) -> Variable:
    """A Variable over the memory of ``x``, another library's array (``torch.Tensor``, ...).

    - ``device=None``: the array's own device, as NumPy (CPU memory) or CuPy (``cuda:N``).
      Name another backend on the same memory to get its arrays instead: ``"torch"``,
      ``"strict:device1"``, ``"torch:cuda:0"``, ...
    - The result shares memory with ``x`` (an in-place write on either side shows on both)
      unless ``copy=True``, which makes a private copy. A ``device`` whose memory is elsewhere
      than ``x``'s is an error unless ``copy=True``: dezero_xp never copies between devices
      behind your back.

    The Variable is a new leaf: gradients do not flow back into the other library.
    """
    if isinstance(x, Variable):
        raise TypeError(
            "from_dlpack: this is already a Variable; use dezero_xp.creation.tensor(v) for a copy"
        )
    if not (hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")):
        raise TypeError(
            f"from_dlpack: {type(x).__name__} does not implement the DLPack protocol "
            "(__dlpack__ and __dlpack_device__); pass a torch.Tensor, a jax.Array, a CuPy or "
            "NumPy array, or make a Variable of plain data with dezero_xp.creation.tensor"
        )
    if copy not in (None, True, False):
        raise TypeError(f"from_dlpack: copy must be None, True or False, got {copy!r}")
    source = _producer_device(x)
    target = _backend_for(source) if device is None else get_backend(device)
    if _memory_device(target) != source:
        if copy is not True:
            raise DeviceMismatchError(
                f"from_dlpack: the data lives on {source} but device={device!r} is {target}; "
                "DLPack shares memory and cannot move it. Pass copy=True to copy it there, or "
                f"import it where it is (from_dlpack(x)) and move it with .to({str(target)!r})"
            )
        return Variable(transfer(_import(_backend_for(source), x), target))
    array = _import(target, x)
    found = backend_of(array)
    if found is not target:  # a library that imported onto another device than asked
        raise DeviceMismatchError(
            f"from_dlpack: importing into {target} gave an array on {found}; pass device={found}"
        )
    if copy is True:
        with target:
            array = target.xp.asarray(array, copy=True)
    return wrap_array(array, target, requires_grad=True)


def to_dlpack(v: VariableLike) -> Array:
    """The array inside ``v`` (a Variable or an array), for another library's ``from_dlpack``.

    ``torch.from_dlpack(to_dlpack(v))`` (or JAX's, CuPy's, NumPy's) then views the same memory:
    writes on either side are seen by both, so do not change it while a graph still needs it.
    """
    data = v.data if isinstance(v, Variable) else v
    if data is None:
        raise ValueError("to_dlpack: the Variable holds no data")
    if not is_array(data):
        raise TypeError(f"to_dlpack: expected a Variable or an array, got {type(v).__name__}")
    if not hasattr(data, "__dlpack__"):
        library = type(data).__module__.split(".")[0]
        raise TypeError(f"to_dlpack: {library} arrays do not implement the DLPack protocol")
    return data
