"""PyTorch's kernel table: ``index_put_(accumulate=True)`` scatter-add, torch Generators.

May import: numpy and dezero_xp._kernels.generic; torch is imported lazily (optional).
"""

from __future__ import annotations

import numpy as np

from dezero_xp._kernels.generic import GenericKernels, key_has_arrays, normalize_key


class TorchKernels(GenericKernels):
    """Kernels for torch.Tensor on its device (through array-api-compat's namespace)."""

    def __init__(self, backend):
        super().__init__(backend)
        import torch  # noqa: PLC0415 - optional dependency

        self._torch = torch
        self._generator = torch.Generator(device=self.device)
        self._generator.seed()

    def from_host(self, array):
        return self._torch.tensor(np.asarray(array), device=self.device)

    def to_host(self, array):
        return array.detach().cpu().numpy()

    def from_same_library(self, array):
        return array.to(self.device, copy=True)

    def seed(self, value):
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

    def scatter_add(self, target, key, values):
        key = normalize_key(key)
        if not key_has_arrays(key):
            target[key] += values
            return target
        lead = []
        rest = list(key)
        while rest and not isinstance(rest[0], (slice, type(None), type(Ellipsis))):
            k = rest.pop(0)
            lead.append(k if hasattr(k, "shape") else self._torch.tensor(k, device=self.device))
        if all(k is Ellipsis or k == slice(None) for k in rest):
            target.index_put_(tuple(lead), values, accumulate=True)
            return target
        return super().scatter_add(target, key, values)
