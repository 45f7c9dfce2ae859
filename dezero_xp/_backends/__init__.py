"""The array libraries dezero_xp knows: one adapter module per library, in one tuple.

Each module holds its library's kernel table (what the Array API standard lacks: scatter-add,
pad, random numbers, host transfers, im2col/col2im, ...) and its ``ADAPTER`` (spec words,
resolver, constructor). ``dezero_xp.backend`` asks the adapters in ``ADAPTERS`` order; the
generic one, which takes any array array-api-compat understands, comes last. Adding a library
is one module here and one entry in ``ADAPTERS``.
"""

from dezero_xp._backends import cupy, generic, numpy, strict, torch
from dezero_xp._backends.generic import GenericKernels

ADAPTERS = (numpy.ADAPTER, cupy.ADAPTER, strict.ADAPTER, torch.ADAPTER, generic.ADAPTER)

__all__ = ["ADAPTERS", "GenericKernels"]
