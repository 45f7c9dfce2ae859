"""Saving from rank 0 only, loading on every rank.

All ranks hold the same weights in data-parallel training, so one file is written, by rank 0,
with :mod:`dezero_xp.serialization` (atomic: a temporary file renamed over the target). The
other ranks wait for it, so when these functions return the file is complete everywhere (on
a file system the ranks share). If rank 0 fails to write, every rank raises the same error
instead of waiting.

Loading reads the file on every rank (each rank puts the arrays on its own device); a
DistributedOptimizer is unwrapped to the optimizer whose state is saved.

May import: the standard library, dezero_xp.serialization and dezero_xp.distributed.base.
"""

from __future__ import annotations

from dezero_xp import serialization
from dezero_xp.distributed.base import DistributedError

__all__ = ["load_checkpoint", "load_weights", "save_checkpoint", "save_weights"]


def _unwrap(optimizer):
    return getattr(optimizer, "actual_optimizer", optimizer)


def _on_root(comm, write):
    """Run ``write()`` on rank 0; every rank returns its result or raises its error."""
    outcome = None
    if comm.rank == 0:
        try:
            outcome = ("ok", write())
        except Exception as exc:  # reported to every rank, then raised here too
            outcome = ("error", f"{type(exc).__name__}: {exc}")
            error = exc
    outcome = comm.bcast_obj(outcome, root=0)
    if outcome[0] == "error":
        if comm.rank == 0:
            raise error
        raise DistributedError(f"rank 0 could not save: {outcome[1]}")
    return outcome[1]


def save_weights(comm, model, path, compressed: bool = False) -> str:
    """``model.save_weights(path)`` on rank 0; returns the path written, on every rank."""
    return _on_root(comm, lambda: serialization.save_weights(model, path, compressed=compressed))


def save_checkpoint(comm, path, model, optimizer=None, *, compressed: bool = False, **extra):
    """:func:`dezero_xp.serialization.save_checkpoint` on rank 0; the path, on every rank."""
    return _on_root(
        comm,
        lambda: serialization.save_checkpoint(
            path, model, _unwrap(optimizer), compressed=compressed, **extra
        ),
    )


def load_weights(comm, model, path) -> None:
    """Load ``path`` into ``model`` on every rank (after rank 0 has finished writing)."""
    comm.barrier()
    serialization.load_weights(model, path)


def load_checkpoint(comm, path, model, optimizer=None) -> dict:
    """:func:`dezero_xp.serialization.load_checkpoint` on every rank; returns the extras."""
    comm.barrier()
    return serialization.load_checkpoint(path, model, _unwrap(optimizer))
