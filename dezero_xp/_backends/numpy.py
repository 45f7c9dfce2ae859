"""NumPy on the CPU: its kernel table (``np.add.at``, ``np.pad``, random numbers) and adapter.

Random numbers come from NumPy's global generator (``np.random.seed`` applies), drawn exactly as
DeZero draws them (float64 ``rand``/``randn``, then cast), until ``dz.seed()`` gives this backend
a generator of its own.

The adapter answers the spec words ``"cpu"`` and ``"numpy"``, negative device numbers and
``Device("cpu")``, and claims ``numpy.ndarray`` and NumPy's scalar types. Its backend keeps NumPy
scalars as values inside the graph (``value_types``): arithmetic on them is ~10x faster than on
0-d arrays, so 0-d graphs stay on scalars and ``Variable.data`` hands out 0-d arrays.

May import: numpy, dezero_xp._backends.base and dezero_xp._backends.generic.
"""

from __future__ import annotations

import numpy as np

from dezero_xp._backends.base import CPU, REGISTRY, Adapter, Backend, Device
from dezero_xp._backends.generic import GenericKernels


class NumpyKernels(GenericKernels):
    """Kernels for numpy.ndarray on the CPU."""

    def asarray(self, obj, dtype=None):
        return np.asarray(obj, dtype=dtype)

    def from_host(self, array):
        return np.array(array, copy=True)

    def to_host(self, array):
        return np.asarray(array)

    def from_same_library(self, array):
        return array

    def owns_memory(self, array):
        # A 0-d result may be a NumPy scalar: not writable, so it is copied into an array.
        return array.base is None and array.flags.writeable

    def __init__(self, backend):
        super().__init__(backend)
        self._rng = None  # None: NumPy's global generator; dz.seed() sets a Generator

    def seed(self, value):
        self._rng = None if value is None else np.random.default_rng(value)

    def uniform(self, shape, dtype):
        dtype = np.dtype(dtype)
        if self._rng is None:  # DeZero's ``np.random.rand(*shape)``, then the dtype
            sample = np.asarray(np.random.random_sample(shape)).astype(dtype)
            if dtype != np.float64:  # a sample just below 1 may round up to 1.0
                np.minimum(sample, np.nextafter(dtype.type(1), dtype.type(0)), out=sample)
            return sample
        if dtype in (np.float32, np.float64):
            return self._rng.random(shape, dtype=dtype)
        return self._rng.random(shape).astype(dtype)

    def normal(self, shape, dtype):
        dtype = np.dtype(dtype)
        if self._rng is None:  # DeZero's ``np.random.randn(*shape).astype(dtype)``
            return np.asarray(np.random.standard_normal(shape)).astype(dtype)
        if dtype in (np.float32, np.float64):
            return self._rng.standard_normal(shape, dtype=dtype)
        return self._rng.standard_normal(shape).astype(dtype)

    def permutation(self, n):
        if self._rng is None:  # DeZero's ``np.random.permutation(n)``
            return np.random.permutation(n)
        return self._rng.permutation(n)

    def keep_mask(self, shape, ratio, dtype):
        if self._rng is None:  # DeZero's ``np.random.rand(*shape) > ratio``, compared in float64
            return np.asarray(np.random.random_sample(shape)) > ratio
        return super().keep_mask(shape, ratio, dtype)

    def scatter_add(self, target, key, values):
        np.add.at(target, key, values)
        return target

    def pad(self, x, pad_width, value=0):
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    def im2col(self, x, kernel_size, stride, pad, pad_value=0):
        # A zero-copy strided view of the (padded) image: the matmul that consumes it does the
        # one gather. Read-only, so nobody writes through it into ``x``.
        (kh, kw), (sh, sw) = kernel_size, stride
        img = self._pad_image(x, pad, pad_value)
        n, c, h, w = img.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        s_n, s_c, s_h, s_w = img.strides
        return np.lib.stride_tricks.as_strided(
            img,
            shape=(n, c, kh, kw, oh, ow),
            strides=(s_n, s_c, s_h, s_w, s_h * sh, s_w * sw),
            writeable=False,
        )

    def col2im(self, col, img_shape, kernel_size, stride, pad):
        return self._col2im_in_place(col, img_shape, kernel_size, stride, pad)

    def sigmoid(self, x):
        # 0.5 * tanh(x / 2) + 0.5 (in place), except in the left tail, where that sum cancels
        # (float32 sigmoid(-20) would be 0): there exp(x) / (1 + exp(x)), which is exact. The
        # cancellation costs about eps * exp(-x) relative: the tail starts where that would pass
        # ~6e-7 (float32) and ~1e-13 (float64); at -6 and -20 it reached 6e-6 and 2e-8. (The
        # tail's masked path is the slow one: these bounds keep it rare for typical inputs.)
        tail = -8.0 if x.dtype == np.float64 else -3.0
        y = x * 0.5
        if type(y) is not np.ndarray:  # a NumPy scalar (0-d input): no out= for it
            if x < tail:
                e = np.exp(x)
                return e / (1 + e)
            return np.tanh(y) * 0.5 + 0.5
        np.tanh(y, out=y)  # in place: one array for the whole computation
        y *= 0.5
        y += 0.5
        if y.size and x.min() < tail:  # one cheap reduction when there is no tail
            mask = x < tail
            e = np.exp(x[mask])
            y[mask] = e / (1 + e)
        return y

    def _zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def _add_into(view, src):
        np.add(view, src, out=view)

    @staticmethod
    def _copy_into(view, src):
        view[...] = src

    def _pad_image(self, x, pad, value):
        ph, pw = pad
        if ph == 0 and pw == 0:
            return x
        n, c, h, w = x.shape
        img = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
        img[:, :, ph : ph + h, pw : pw + w] = x
        return img


# --------------------------------------------------------------------------- the adapter

_VALUE_TYPES = frozenset(
    {np.ndarray} | {t for t in set(np.sctypeDict.values()) if issubclass(t, np.generic)}
)


def _make() -> Backend:
    return Backend(
        "numpy",
        np,
        CPU,
        "cpu",
        NumpyKernels,
        np.ndarray,
        value_types=_VALUE_TYPES,
        coerce=np.asarray,
    )


class NumpyAdapter(Adapter):
    """``numpy.ndarray`` on the CPU: the default backend and the fallback of CUDA."""

    name = "numpy"
    words = ("cpu", "numpy")
    spec_help = '"cpu"'

    def backend(self) -> Backend:
        return REGISTRY.make("numpy", CPU, _make)

    def from_words(self, word, rest, spec):
        if rest in ("", "cpu"):
            return self.backend()
        raise ValueError(f"device {spec!r}: NumPy arrays live on the CPU only")

    def from_object(self, spec):
        if isinstance(spec, Device) and spec.type == "cpu":
            return self.backend()
        if isinstance(spec, (int, np.integer)) and spec < 0:  # DeZero: a negative id is the CPU
            return self.backend()
        return None

    def resolver(self, array):
        # Exactly ndarray: subclasses (a fake CuPy's arrays, say) go on to the other adapters.
        if type(array) is np.ndarray or isinstance(array, np.generic):
            numpy_backend = self.backend()
            return lambda _array: numpy_backend
        return None


ADAPTER = NumpyAdapter()
