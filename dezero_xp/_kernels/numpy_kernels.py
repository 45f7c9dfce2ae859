"""NumPy's kernel table: ``np.add.at`` scatter-add, ``np.pad``, a NumPy Generator.

May import: numpy and dezero_xp._kernels.generic.
"""

from __future__ import annotations

import numpy as np

from dezero_xp._kernels.generic import GenericKernels


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

    def uniform(self, shape, dtype):
        dtype = np.dtype(dtype)
        if dtype in (np.float32, np.float64):
            return self._rng.random(shape, dtype=dtype)
        return self._rng.random(shape).astype(dtype)

    def normal(self, shape, dtype):
        dtype = np.dtype(dtype)
        if dtype in (np.float32, np.float64):
            return self._rng.standard_normal(shape, dtype=dtype)
        return self._rng.standard_normal(shape).astype(dtype)

    def permutation(self, n):
        return self._rng.permutation(n)

    def scatter_add(self, target, key, values):
        np.add.at(target, key, values)
        return target

    def pad(self, x, pad_width, value=0):
        return np.pad(x, pad_width, mode="constant", constant_values=value)
