"""The per-backend kernel tables: what the Array API standard lacks, one class per library.

``GenericKernels`` uses only the standard and serves every Array API library; ``NumpyKernels``,
``CupyKernels`` and ``TorchKernels`` override the kernels their library does faster. Ops reach
them as ``self.ops`` (``Function.__call__`` sets it from the input's backend); nothing here is
imported by ops directly.

May import: numpy and the modules of this package. CuPy and torch modules are handed in by
``dezero_xp.backend`` (the only module that imports cupy) or imported lazily.
"""

from dezero_xp._kernels.generic import GenericKernels
from dezero_xp._kernels.numpy_kernels import NumpyKernels
from dezero_xp._kernels.torch_kernels import TorchKernels

__all__ = ["GenericKernels", "NumpyKernels", "TorchKernels"]
