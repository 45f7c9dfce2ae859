"""Random numbers: ``seed`` for every backend's generator, and the host generators (data
shuffling, datasets, random transforms) with DeZero's default of NumPy's global generator.

``dezero_xp.backend`` re-exports these names (their public home) and registers
:func:`seed_new_backend` so backends created after ``seed(n)`` derive their stream from ``n``.

May import: the standard library, numpy and dezero_xp._backends.base.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from dezero_xp._backends.base import REGISTRY, Backend

__all__ = ["host_rng", "seed", "seed_new_backend", "uses_numpy_global_rng"]

_global_seed: int | None = None  # set by seed(); backends created later derive theirs from it


def seed_new_backend(backend: Backend) -> None:
    """Seed a backend created after ``seed(n)`` from ``n`` (the registry calls it)."""
    if _global_seed is not None:
        backend.ops.seed(_derived_seed(_global_seed, backend))


def _derived_seed(seed_value: int, backend: Backend) -> int:
    # Each backend gets its own stream, reproducible from the global seed and its key.
    key = zlib.crc32(str(backend).encode())
    return int(np.random.SeedSequence([seed_value, key]).generate_state(1)[0])


def seed(value: int | None) -> None:
    """Seed the random generators of every backend (dropout, initialisers, shuffling).

    Until ``seed`` is called, the NumPy backend and the host draws (DataLoader shuffling,
    datasets, random transforms) use NumPy's global generator exactly as DeZero does, so
    ``np.random.seed(n)`` makes a DeZero script reproducible with DeZero's numbers. After
    ``seed(n)`` each backend has its own stream derived from ``n``, and NumPy's global
    generator is neither read nor changed. ``seed(None)`` returns to the default.
    """
    global _global_seed
    if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
        raise TypeError(f"seed: expected an int or None, got {type(value).__name__}")
    if value is not None and value < 0:
        raise ValueError(f"seed: expected an int >= 0 (or None), got {value}")
    _global_seed = None if value is None else int(value)
    with REGISTRY.lock:
        _host_streams.clear()
        for backend in REGISTRY.backends.values():
            backend.ops.seed(None if value is None else _derived_seed(_global_seed, backend))  # type: ignore[arg-type]


def uses_numpy_global_rng() -> bool:
    """True until ``seed`` is called: host draws come from NumPy's global generator."""
    return _global_seed is None


# purpose -> how many host generators were handed out for it since the last seed()
_host_streams: dict[str, int] = {}


def host_rng(purpose: str) -> Any:
    """The host generator for ``purpose`` (data shuffling, datasets, random transforms).

    Before any ``seed`` call this is NumPy's global generator (the ``np.random`` module, which
    has the Generator methods used here: ``permutation``, ``uniform``, ``random``), so
    ``np.random.seed`` applies. After ``seed(n)`` it is a new Generator, and the k-th one asked
    for a given purpose is the same in every run and on every device.
    """
    with REGISTRY.lock:
        if _global_seed is None:
            return np.random
        k = _host_streams.get(purpose, 0)
        _host_streams[purpose] = k + 1
        return np.random.default_rng([_global_seed, zlib.crc32(purpose.encode()), k])
