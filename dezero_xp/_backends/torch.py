"""PyTorch tensors through array-api-compat: the kernel table and the adapter.

Kernels: ``index_put_(accumulate=True)`` scatter-add, torch Generators, strided im2col. The
adapter answers ``"torch[:cpu|:cuda[:N]]"`` and ``torch.device`` objects, and claims
``torch.Tensor``. ``torch:cuda`` without a usable CUDA device is unavailable, with ``torch:cpu``
as the fallback the policy may take.

May import: numpy, dezero_xp._backends.base, dezero_xp._backends.generic and dezero_xp._install
(the install hint when torch is missing); torch and array_api_compat.torch lazily (optional
dependencies).
"""

from __future__ import annotations

import functools
import re
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
from dezero_xp._backends.generic import GenericKernels, key_has_arrays, normalize_key
from dezero_xp._install import optional_dependency


class TorchKernels(GenericKernels):
    """Kernels for torch.Tensor on its device (through array-api-compat's namespace)."""

    def __init__(self, backend):
        super().__init__(backend)
        import torch  # noqa: PLC0415 - optional dependency

        self._torch = torch
        self._generator = torch.Generator(device=self.device)
        self._generator.seed()

    def from_host(self, array):
        host = np.asarray(array)
        if self.device.type != "cuda":
            return self._torch.tensor(host, device=self.device)
        # To a GPU through pinned memory, asynchronously: a pageable copy would block the host
        # until the device has the data (DataLoader batches, every epoch).
        pinned = self._torch.tensor(host).pin_memory()
        return pinned.to(self.device, non_blocking=True)

    def to_host(self, array):
        return array.detach().cpu().numpy()

    def owns_memory(self, array):
        return array._base is None  # views (expand, slicing, reshape) keep their base

    def from_same_library(self, array):
        return array.to(self.device, copy=True)

    def seed(self, value):
        if value is None:  # fresh entropy
            self._generator.seed()
        else:
            self._generator.manual_seed(int(value) % (2**63))

    def uniform(self, shape, dtype):
        return self._torch.rand(
            tuple(shape), generator=self._generator, dtype=dtype, device=self.device
        )

    def normal(self, shape, dtype):
        return self._torch.randn(
            tuple(shape), generator=self._generator, dtype=dtype, device=self.device
        )

    def permutation(self, n):
        return self._torch.randperm(n, generator=self._generator, device=self.device)

    def getitem(self, x, key):
        """``x[key]``, also for slices with a negative step, which torch refuses ("step must be
        greater than zero") and the standard allows: such axes are flipped (a copy, as torch
        has no negative strides) and indexed with the same positions counted from the end."""
        flips, key = positive_steps(tuple(x.shape), normalize_key(key), self._torch)
        if flips:
            x = self._torch.flip(x, flips)
        return x[key]

    def scatter_add(self, target, key, values):
        key = normalize_key(key)
        flips, key = positive_steps(tuple(target.shape), key, self._torch)
        if flips:  # a negative-step slice: accumulate into the flipped target, flip it back
            flipped = self.scatter_add(self._torch.flip(target, flips), key, values)
            return self._torch.flip(flipped, flips)
        if not key_has_arrays(key):
            target[key] += values
            return target
        lead = []
        rest = list(key)
        while rest and not isinstance(rest[0], (slice, type(None), type(Ellipsis))):
            k = rest.pop(0)
            lead.append(k if hasattr(k, "shape") else self._torch.tensor(k, device=self.device))
        if all(k is Ellipsis or (isinstance(k, slice) and k == slice(None)) for k in rest):
            target.index_put_(tuple(lead), values, accumulate=True)
            return target
        # Any other key (slices before arrays, ...): index a grid of flat positions with the
        # same key, then accumulate into the flattened target at those positions.
        torch = self._torch
        positions = torch.arange(target.numel(), device=target.device).reshape(target.shape)
        positions = positions[key]
        values = torch.broadcast_to(values, positions.shape)
        flat = target.reshape(-1)
        flat.index_add_(0, positions.reshape(-1), values.reshape(-1))
        return flat.reshape(target.shape)

    # im2col/col2im as on NumPy: a strided view, and KH*KW in-place slice-adds. Measured faster
    # than torch's unfold/fold (which copy through their own im2col buffers).
    def im2col(self, x, kernel_size, stride, pad, pad_value=0):
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, pad
        if ph or pw:
            x = self._torch.nn.functional.pad(x, (pw, pw, ph, ph), value=pad_value)
        n, c, h, w = x.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        s_n, s_c, s_h, s_w = x.stride()
        return x.as_strided((n, c, kh, kw, oh, ow), (s_n, s_c, s_h, s_w, s_h * sh, s_w * sw))

    def col2im(self, col, img_shape, kernel_size, stride, pad):
        return self._col2im_in_place(col, img_shape, kernel_size, stride, pad)

    def sigmoid(self, x):
        return self._torch.sigmoid(x)

    def _zeros(self, shape, dtype):
        return self._torch.zeros(shape, dtype=dtype, device=self.device)

    @staticmethod
    def _add_into(view, src):
        view.add_(src)

    @staticmethod
    def _copy_into(view, src):
        view.copy_(src)


def _negative_step(k) -> bool:
    return type(k) is slice and k.step is not None and k.step < 0


def positive_steps(shape: tuple, key: tuple, torch) -> tuple[tuple[int, ...], tuple]:
    """``(axes, key)``: the axes to flip and ``key`` with each negative-step slice rewritten
    as the positive-step slice that picks the same elements of the flipped axis. ``((), key)``
    when the key has no negative step (the common case: one scan)."""
    if not any(_negative_step(k) for k in key):
        return (), key
    ndim = len(shape)

    def consumed(k) -> int:  # how many axes of x a key entry indexes
        if k is None or k is Ellipsis:
            return 0
        if isinstance(k, torch.Tensor) and k.dtype == torch.bool:
            return k.ndim
        return 1

    axis, flips, rewritten = 0, [], []
    for k in key:
        if k is Ellipsis:
            axis += ndim - sum(consumed(e) for e in key)
        elif _negative_step(k):
            size = shape[axis]
            picked = range(*k.indices(size))
            if len(picked):
                first = size - 1 - picked[0]  # the first position, counted on the flipped axis
                step = -picked.step
                k = slice(first, first + (len(picked) - 1) * step + 1, step)
                flips.append(axis)
            else:
                k = slice(0, 0)
        axis += consumed(k)
        rewritten.append(k)
    return tuple(flips), tuple(rewritten)


# --------------------------------------------------------------------------- the adapter


_namespace = []


def namespace(torch):
    """array-api-compat's torch namespace, with ``maximum``/``minimum`` against a Python number
    done by ``clamp_min``/``clamp_max``: compat's turn the number into a new tensor on the
    device first (``_scalar_to_tensor`` in array_api_compat/torch/_aliases.py), a host-to-device
    copy per call on CUDA (ReLU, the losses, ClipGrad)."""
    if _namespace:
        return _namespace[0]
    import array_api_compat.torch as base  # noqa: PLC0415

    xp = types.SimpleNamespace(**{k: getattr(base, k) for k in dir(base) if k[:2] != "__"})
    xp.__name__ = base.__name__
    for name in ("__array_api_version__", "__array_namespace_info__"):
        if hasattr(base, name):
            setattr(xp, name, getattr(base, name))
    numbers = (int, float)

    def against_number(clamp, fallback):
        def f(x1, x2, /):
            if type(x2) in numbers and isinstance(x1, torch.Tensor) and x1.is_floating_point():
                return clamp(x1, x2)
            if type(x1) in numbers and isinstance(x2, torch.Tensor) and x2.is_floating_point():
                return clamp(x2, x1)
            return fallback(x1, x2)

        return functools.wraps(fallback)(f)

    xp.maximum = against_number(torch.clamp_min, base.maximum)
    xp.minimum = against_number(torch.clamp_max, base.minimum)
    _namespace.append(xp)
    return xp


# What follows "torch:" in a device spec: the CPU (cpu:0 is torch's own spelling of it) or a
# CUDA device.
_DEVICE_WORDS = re.compile(r"cpu(:0)?|cuda(:[0-9]+)?")
_DEVICE_TYPES = ("cpu", "cuda")


def _native_device(torch, device, spec):
    """``device`` (a string of _DEVICE_WORDS or a torch.device) as a torch.device on the CPU
    or CUDA; a ValueError for the others (meta tensors hold no data, and mps, xpu, ... have no
    kernels here)."""
    try:
        native = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        native = None
    if native is None or native.type not in _DEVICE_TYPES:
        raise ValueError(
            f"device {spec if spec is not None else device!r}: dezero_xp runs torch tensors on "
            'the CPU and CUDA only; use "torch:cpu", "torch:cuda" or "torch:cuda:N" (N >= 0)'
        )
    return native


class TorchAdapter(Adapter):
    """``torch.Tensor`` on its device; CPU tensors report plain "cpu", so one backend for both."""

    name = "torch"
    words = ("torch",)
    spec_help = '"torch[:cpu|:cuda:N]" or a torch.device'

    def __init__(self):
        # A tensor's backend by its device's (type, index), a str and an int or None (never the
        # device object itself): about 0.4 us per lookup, against 4.5 us through backend().
        self._by_device: dict[tuple[str, int | None], Backend] = {}

    def backend(self, device=None, spec=None) -> Backend:
        with optional_dependency("torch", "torch", 'the "torch" device'):
            import torch  # noqa: PLC0415 - optional dependency

        native = _native_device(torch, "cpu" if device is None else device, spec)
        if native.type == "cpu":
            native = torch.device("cpu")  # tensors report "cpu", never "cpu:0"
        elif native.type == "cuda":
            if native.index is None:
                native = torch.device("cuda", 0)
            if not torch.cuda.is_available():
                raise BackendUnavailable(
                    "torch.cuda.is_available() is False", "torch:cpu", f"torch:{native}"
                )
            count = torch.cuda.device_count()
            if native.index >= count:
                raise DeviceUnavailableError(
                    f"device {spec if spec is not None else f'torch:{native}'!r}: CUDA device "
                    f"{native.index} does not exist; torch sees {count} CUDA device(s) "
                    f"(torch:cuda:0 .. torch:cuda:{count - 1})"
                )
        ours = Device(native.type, native.index)
        return REGISTRY.make(
            "torch",
            ours,
            lambda: Backend("torch", namespace(torch), ours, native, TorchKernels, torch.Tensor),
        )

    def from_words(self, word, rest, spec):
        if rest and not _DEVICE_WORDS.fullmatch(rest):
            # torch.device would give its own RuntimeError ("Invalid device string: 'cuda:-1'",
            # "META device type not an accelerator"): one ValueError with what works instead.
            raise ValueError(
                f"device {spec!r}: {rest!r} is not a torch device dezero_xp runs on; use "
                '"torch" or "torch:cpu", "torch:cuda" or "torch:cuda:N" with N >= 0 (lower case)'
            )
        return self.backend(rest or "cpu", spec)

    def from_object(self, spec):
        if type(spec).__module__.split(".")[0] == "torch":
            return self.backend(spec, spec)
        return None

    def resolver(self, array):
        if type(array).__module__.split(".")[0] != "torch":
            return None
        return self._resolve

    def _resolve(self, array) -> Backend:
        device = array.device
        key = (device.type, device.index)
        backend = self._by_device.get(key)
        if backend is None:
            backend = self._by_device[key] = self.backend(device)
        return backend

    def reset(self):
        self._by_device.clear()


ADAPTER = TorchAdapter()
