"""DeZero's ``dezero.cuda`` under its old names, over :mod:`dezero_xp.backend`.

``gpu_enable`` is computed on first access (importing this module never probes CUDA).
``as_cupy`` asks for the device ``"cuda"``, so it follows the standard rule: on a machine without
CuPy or without a usable GPU it returns a NumPy array and warns once with
``DeviceFallbackWarning``, or raises ``DeviceUnavailableError`` in strict device mode.

May import: dezero_xp.backend and dezero_xp.core (never cupy: only the backend layer does).
"""

from __future__ import annotations

from dezero_xp.backend import (
    cuda_available,
    get_array_module,
    get_backend,
    is_scalar,
    to_host,
    transfer,
)
from dezero_xp.core import Variable

__all__ = ["as_cupy", "as_numpy", "get_array_module", "gpu_enable"]  # noqa: F822 - lazy


def __getattr__(name):
    # Module attribute computed lazily: `dezero_xp.cuda.gpu_enable` probes CUDA when read.
    if name == "gpu_enable":
        return cuda_available()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _data(x):
    return x.data if isinstance(x, Variable) else x


def as_numpy(x):
    """``x`` (a Variable, an array of any backend or a scalar) as a NumPy array."""
    x = _data(x)
    if is_scalar(x):
        return get_backend("cpu").asarray(x)
    return to_host(x)


def as_cupy(x):
    """``x`` (a Variable, an array or a scalar) as an array on the CUDA device ``cuda:0``.

    Without a usable GPU this falls back to the CPU (a NumPy array and one warning), or raises
    in strict device mode, exactly like ``Variable(x, device="cuda")``.
    """
    x = _data(x)
    target = get_backend("cuda")
    if is_scalar(x):
        return target.asarray(x)
    return transfer(x, target)
