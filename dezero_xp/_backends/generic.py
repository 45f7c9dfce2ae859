"""Any Array API library: the standard-only kernel table and the catch-all adapter.

``GenericKernels`` calls only names of the Python Array API standard on ``self.xp``, so it runs
on array-api-strict (which proves it) and on any conforming library; every other kernel table
extends it. Random numbers come from a host NumPy Generator and are copied to the device: the
standard has no RNG. ``ADAPTER`` takes any array array-api-compat understands and no other
adapter claimed (it comes last in ``dezero_xp._backends.ADAPTERS``).

May import: numpy (host-side RNG and host transfers), array_api_compat and
dezero_xp._backends.base.
"""

from __future__ import annotations

import math

import numpy as np

from dezero_xp._backends.base import _NO_SCOPE, REGISTRY, Adapter, Backend, Device

# Bound on the elements of the one-hot matrix the standard-only scatter-add builds per chunk.
_ONE_HOT_CHUNK_ELEMENTS = 1 << 22


def normalize_key(key) -> tuple:
    """An indexing key as a tuple (``x[i]`` and ``x[i,]`` mean the same)."""
    return key if isinstance(key, tuple) else (key,)


def key_has_arrays(key: tuple) -> bool:
    """True when an indexing key holds integer arrays (advanced indexing)."""
    return any(
        not isinstance(k, (int, slice, type(None), type(Ellipsis))) and hasattr(k, "shape")
        for k in key
    )


class GenericKernels:
    """Kernels written with the standard only; subclasses override the faster ones."""

    def __init__(self, backend):
        self.backend = backend
        self.xp = backend.xp
        self.device = backend.native_device
        self._rng = np.random.default_rng()

    # ------------------------------------------------------------------ device scope
    def scope(self):
        """A context manager under which new arrays land on this device (a no-op here).

        CuPy allocates on its *current* device whatever ``device=`` says, so its table returns
        the device's context; libraries that honour ``device=`` need nothing.
        """
        return _NO_SCOPE

    # ------------------------------------------------------------------ gradients
    def owns_memory(self, array) -> bool:
        """Whether ``array`` is its own writable memory (no view, no broadcast): a gradient the
        engine may hand to one leaf as it is. The standard cannot tell, so: no (copy)."""
        return False

    # ------------------------------------------------------------------ creation / transfer
    def asarray(self, obj, dtype=None):
        """An array on this device from a scalar, a nested sequence or a host array."""
        if isinstance(obj, (np.ndarray, np.generic)):
            array = self.from_host(np.asarray(obj))
            return array if dtype is None else self.xp.astype(array, dtype)
        return self.xp.asarray(obj, dtype=dtype, device=self.device)

    def from_host(self, array: np.ndarray):
        """Copy a NumPy array onto this device (never shares the host buffer)."""
        return self.xp.asarray(np.asarray(array), copy=True, device=self.device)

    def to_host(self, array) -> np.ndarray:
        """Copy an array of this backend to a NumPy array."""
        try:
            return np.from_dlpack(array)
        except (TypeError, RuntimeError, BufferError, AttributeError):
            return np.asarray(array)

    def from_same_library(self, array):
        """An array of this library on another device, copied onto this one."""
        import array_api_compat  # noqa: PLC0415

        return array_api_compat.to_device(array, self.device)

    # ------------------------------------------------------------------ random numbers
    def seed(self, value: int | None) -> None:
        """Restart this backend's random stream from ``value`` (None: the default stream)."""
        self._rng = np.random.default_rng(value)

    def uniform(self, shape, dtype):
        """Samples of U[0, 1) with the given shape and floating dtype."""
        # Drawn in float32 for float32: a float64 sample just below 1 would round up to 1.0.
        host_dtype = np.float32 if dtype == self.xp.float32 else np.float64
        return self.xp.astype(self.from_host(self._rng.random(shape, dtype=host_dtype)), dtype)

    def normal(self, shape, dtype):
        """Samples of N(0, 1) with the given shape and floating dtype."""
        return self.xp.astype(self.from_host(self._rng.standard_normal(shape)), dtype)

    def keep_mask(self, shape, ratio, dtype):
        """A boolean array, True where a U[0, 1) sample of ``dtype`` exceeds ``ratio``."""
        return self.uniform(shape, dtype) > ratio

    def permutation(self, n: int):
        """A random permutation of ``range(n)`` as an integer array on this device."""
        return self.from_host(self._rng.permutation(n))

    def check_index_range(self, index, size: int, where: str) -> None:
        """IndexError when an integer index array leaves ``[-size, size)`` (before a gather).

        Only on GPU backends with eager checks on (``backend.checks_values``): host libraries
        raise on their own, and on a GPU the check costs a device synchronisation, so by
        default CuPy wraps such an index around (its kernels compute ``index % size``) and
        torch on CUDA stops with its device-side assertion.
        """
        backend = self.backend
        if not (backend.is_gpu and backend.checks_values):
            return
        with backend:
            bad = self.xp.any((index < -size) | (index >= size))
            if bool(bad):  # the one synchronisation, asked for by eager checks
                raise IndexError(
                    f"{where}: an index is out of range for an axis of size {size} (valid: "
                    f"-{size} .. {size - 1}); checked on the GPU because eager checks are on"
                )

    def getitem(self, x, key):
        """``x[key]`` for a key holding a slice with a negative step (the others index
        directly); libraries without negative steps (torch) override it."""
        return x[key]

    # ------------------------------------------------------------------ scatter-add, pad
    def scatter_add(self, target, key, values):
        """``target[key] += values`` with repeated indices accumulated; returns the result.

        May update ``target`` in place. The key may hold ints, slices, ``None``, ``...``,
        integer arrays (advanced indexing on leading axes) or a boolean mask.
        """
        key = normalize_key(key)
        arrays = [k for k in key if hasattr(k, "shape") and not isinstance(k, int)]
        if not arrays or all(self.xp.isdtype(k.dtype, "bool") for k in arrays):
            # Basic indexing or a mask selects each element at most once: a plain add-assign
            # is exact. The standard allows no ``None`` in assignments: drop those length-1
            # axes from the key and from ``values``.
            if any(k is None for k in key):
                key = tuple(k for k in key if k is not None)
                values = self.xp.reshape(values, tuple(target[key].shape))
            # A lone mask goes in bare: array-api-strict assigns through a tuple holding an
            # array only on its default device.
            index = key[0] if len(key) == 1 else key
            target[index] = target[index] + values
            return target
        return self._scatter_add_arrays(target, key, values)

    def _scatter_add_arrays(self, target, key, values):
        """Standard-only advanced-index scatter-add: a one-hot matrix product, in chunks."""
        xp = self.xp
        lead = _split_advanced_key(key, target.ndim)
        lead_shape = target.shape[: len(lead)]
        index_arrays = [
            xp.asarray(k, device=self.device) if isinstance(k, int) else k for k in lead
        ]
        index_arrays = xp.broadcast_arrays(*index_arrays)
        linear = None
        for axis, (idx, size) in enumerate(zip(index_arrays, lead_shape)):
            idx = xp.astype(idx, xp.int64)
            idx = xp.where(idx < 0, idx + size, idx)
            linear = idx if axis == 0 else linear * size + idx
        n_rows = math.prod(lead_shape)
        trailing = target.shape[len(lead) :]
        n_cols = math.prod(trailing)
        linear = xp.reshape(linear, (-1,))
        values = xp.broadcast_to(values, tuple(index_arrays[0].shape) + tuple(trailing))
        values = xp.reshape(values, (linear.shape[0], n_cols))
        flat = xp.reshape(target, (n_rows, n_cols))
        rows = xp.arange(n_rows, device=self.device)
        chunk = max(1, _ONE_HOT_CHUNK_ELEMENTS // max(n_rows, 1))
        for start in range(0, linear.shape[0], chunk):
            stop = min(start + chunk, linear.shape[0])
            one_hot = xp.astype(linear[start:stop, None] == rows[None, :], values.dtype)
            flat = flat + xp.matmul(xp.matrix_transpose(one_hot), values[start:stop, ...])
        return xp.reshape(flat, target.shape)

    def pad(self, x, pad_width, value=0):
        """Constant padding; ``pad_width`` is one ``(before, after)`` pair per axis."""
        xp = self.xp
        shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pad_width))
        out = xp.full(shape, value, dtype=x.dtype, device=self.device)
        inner = tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, pad_width))
        out[inner] = x
        return out

    # ------------------------------------------------------------------ im2col / col2im
    def im2col(self, x, kernel_size, stride, pad, pad_value=0):
        """Patches of an NCHW image as an ``(N, C, KH, KW, OH, OW)`` array.

        ``kernel_size``, ``stride`` and ``pad`` are (h, w) pairs; the border is filled with
        ``pad_value``. The result may be a read-only view of ``x``: never write into it.
        This version gathers one strided slice per kernel offset (KH*KW slices in all).
        """
        (kh, kw), (sh, sw) = kernel_size, stride
        img = self._pad_image(x, pad, pad_value)
        n, c, h, w = img.shape
        oh, ow = _window_count(h, kh, sh), _window_count(w, kw, sw)
        windows = [
            img[:, :, _window_slice(j, sh, oh), _window_slice(i, sw, ow)]
            for j in range(kh)
            for i in range(kw)
        ]
        return self.xp.reshape(self.xp.stack(windows, axis=2), (n, c, kh, kw, oh, ow))

    def col2im(self, col, img_shape, kernel_size, stride, pad):
        """The adjoint of :meth:`im2col`: patches ``(N, C, KH, KW, OH, OW)`` summed into NCHW.

        Every patch element is added to the pixel it was taken from; padding is cropped away.
        """
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, pad
        n, c, h, w = img_shape
        oh, ow = col.shape[4], col.shape[5]
        img = self._zeros((n, c, h + 2 * ph, w + 2 * pw), col.dtype)
        for j in range(kh):
            for i in range(kw):
                key = (slice(None), slice(None), _window_slice(j, sh, oh), _window_slice(i, sw, ow))
                img[key] = img[key] + col[:, :, j, i, :, :]
        return img[:, :, ph : ph + h, pw : pw + w]

    def _col2im_in_place(self, col, img_shape, kernel_size, stride, pad):
        """col2im for libraries with views and in-place writes (NumPy, CuPy, torch).

        KH*KW strided slice-adds into one zero image, each over the whole batch. Offsets whose
        windows cannot overlap what is already written (the first one; all of them when the
        stride is at least the kernel, as in pooling) are plain copies, several times cheaper.
        Subclasses supply ``_add_into(view, src)`` and ``_copy_into(view, src)``.
        """
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, pad
        n, c, h, w = img_shape
        oh, ow = col.shape[4], col.shape[5]
        img = self._zeros((n, c, h + 2 * ph, w + 2 * pw), col.dtype)
        overlapping = sh < kh or sw < kw
        for j in range(kh):
            rows = slice(j, j + sh * (oh - 1) + 1, sh)
            for i in range(kw):
                view = img[:, :, rows, i : i + sw * (ow - 1) + 1 : sw]
                if overlapping and (j or i):
                    self._add_into(view, col[:, :, j, i])
                else:
                    self._copy_into(view, col[:, :, j, i])
        return img[:, :, ph : ph + h, pw : pw + w]

    def sigmoid(self, x):
        """``1 / (1 + exp(-x))``, exact in both tails and never overflowing.

        With ``e = exp(-|x|)`` (at most 1): ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)``
        for ``x < 0``. The tanh form ``0.5 * tanh(x / 2) + 0.5`` cancels to 0 in the left tail
        (float32 sigmoid(-20) gave 0, not 2.06e-9). Complex inputs have no sign to branch on:
        they keep the tanh form.
        """
        xp = self.xp
        if x.dtype == xp.complex64 or x.dtype == xp.complex128:
            y = xp.tanh(x * 0.5)
            y *= 0.5
            y += 0.5
            return y
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)

    def _zeros(self, shape, dtype):
        """A zero-filled array on this device (col2im's accumulator)."""
        return self.xp.zeros(shape, dtype=dtype, device=self.device)

    def _pad_image(self, x, pad, value):
        """``x`` (NCHW) with ``pad`` = (ph, pw) rows/columns of ``value`` on each side."""
        ph, pw = pad
        if ph == 0 and pw == 0:
            return x
        return self.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), value)


def _window_count(size: int, kernel: int, stride: int) -> int:
    """How many windows of ``kernel`` fit in ``size`` (already padded) with ``stride``."""
    return (size - kernel) // stride + 1


def _window_slice(offset: int, stride: int, count: int) -> slice:
    """The ``count`` positions ``offset, offset + stride, ...`` (stop kept in bounds)."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _split_advanced_key(key: tuple, ndim: int):
    """The index part of ``(arrays/ints..., full slices...)`` (the trailing part is checked).

    The standard-only scatter-add handles integer arrays (and ints) on leading axes followed by
    full slices or an ellipsis; anything else names the supported form in its error.
    """
    lead = []
    rest = list(key)
    while rest and not isinstance(rest[0], (slice, type(None), type(Ellipsis))):
        lead.append(rest.pop(0))
    trailing_ok = all(k is Ellipsis or (isinstance(k, slice) and k == slice(None)) for k in rest)
    if not lead or not trailing_ok or len(lead) > ndim:
        raise NotImplementedError(
            f"scatter_add: the standard-only kernel supports integer-array keys on leading axes "
            f"followed by ':' or '...', got {key!r}; this backend has no faster kernel for it"
        )
    return lead


# --------------------------------------------------------------------------- the adapter

_BUILTIN_VALUES = (bool, int, float, complex, str, bytes)


class GenericAdapter(Adapter):
    """Arrays of any library array-api-compat knows, on the device they report."""

    name = "generic"

    def resolver(self, array):
        import array_api_compat  # noqa: PLC0415

        if isinstance(array, _BUILTIN_VALUES) or not array_api_compat.is_array_api_obj(array):
            return None
        return self.backend_of

    @staticmethod
    def backend_of(array) -> Backend:
        import array_api_compat  # noqa: PLC0415

        xp = array_api_compat.array_namespace(array)
        native = array_api_compat.device(array)
        name = getattr(xp, "__name__", type(array).__module__).split(".")[-1]
        device = Device(str(native))
        return REGISTRY.make(
            name,
            device,
            lambda: Backend(name, xp, device, native, GenericKernels, type(array)),
        )


ADAPTER = GenericAdapter()
