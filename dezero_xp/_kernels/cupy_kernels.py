"""CuPy's kernel table: ``cupyx.scatter_add``, ``cupy.pad``, a CuPy RandomState per device.

The cupy and cupyx modules are handed in by ``dezero_xp.backend`` (the only module that imports
cupy), so importing this file never touches CUDA.

May import: numpy and dezero_xp._kernels.generic.
"""

from __future__ import annotations

import numpy as np

from dezero_xp._kernels.generic import GenericKernels


class CupyKernels(GenericKernels):
    """Kernels for cupy.ndarray on one CUDA device. Every call runs under that device."""

    def __init__(self, backend, cupy, cupyx):
        super().__init__(backend)
        self._cupy = cupy
        self._cupyx = cupyx
        with self.device:
            self._random_state = cupy.random.RandomState()

    def asarray(self, obj, dtype=None):
        with self.device:
            return self._cupy.asarray(obj, dtype=dtype)

    def from_host(self, array):
        with self.device:
            return self._cupy.array(np.asarray(array), copy=True)

    def to_host(self, array):
        return array.get()

    def from_same_library(self, array):
        with self.device:
            return self._cupy.array(array, copy=True)

    def seed(self, value):
        with self.device:
            self._random_state = self._cupy.random.RandomState(int(value) % (2**32))

    def uniform(self, shape, dtype):
        with self.device:
            return self._random_state.random_sample(shape, dtype=dtype)

    def normal(self, shape, dtype):
        with self.device:
            return self._random_state.standard_normal(shape, dtype=dtype)

    def permutation(self, n):
        with self.device:
            return self._random_state.permutation(n)

    def scatter_add(self, target, key, values):
        # Atomic adds: sums over repeated indices are order-dependent in the last bits.
        with self.device:
            self._cupyx.scatter_add(target, key, values)
        return target

    def pad(self, x, pad_width, value=0):
        with self.device:
            return self._cupy.pad(x, pad_width, mode="constant", constant_values=value)

    # im2col/col2im: the generic KH*KW strided-slice loop, every slice and add on the GPU.
    def im2col(self, x, kernel_size, stride, pad, pad_value=0):
        with self.device:
            return super().im2col(x, kernel_size, stride, pad, pad_value)

    def col2im(self, col, img_shape, kernel_size, stride, pad):
        with self.device:
            return super().col2im(col, img_shape, kernel_size, stride, pad)

    def _zeros(self, shape, dtype):
        # Allocated under the device context (col2im holds it), no ``device=`` keyword needed.
        return self._cupy.zeros(shape, dtype=dtype)
