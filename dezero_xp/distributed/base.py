"""The communicator interface every transport implements, and the one-process communicator.

A :class:`Communicator` is one process's handle on a group of ``size`` processes: ``rank``
(0 .. size-1), ``local_rank`` (its index among the processes of its machine, which picks its
GPU), the collectives on arrays of any backend (:meth:`~Communicator.allreduce`,
:meth:`~Communicator.broadcast`, :meth:`~Communicator.allgather`), :meth:`~Communicator.barrier`,
and the object collectives used for control (``bcast_obj``, ``allgather_obj``: pickled, never
on the training path).

The public collectives take an array or a Variable and return a new one of the same kind, on
the same backend, with the same shape and dtype; their inputs are left untouched. A transport
implements the *flat-buffer* primitives underneath (``allreduce_buffer``, ``broadcast_buffer``,
``allgather_buffer``): 1-D contiguous arrays of one backend, reduced in place where the library
allows it. The data-parallel optimizer calls those directly, one call per gradient bucket.

May import: numpy (host scalars), the standard library, dezero_xp.backend and dezero_xp.core.
"""

from __future__ import annotations

import numpy as np

from dezero_xp.backend import backend_of, get_backend, is_array
from dezero_xp.core import Variable, wrap_array

__all__ = ["REDUCE_OPS", "Communicator", "DistributedError", "SingleCommunicator"]

REDUCE_OPS = ("sum", "mean", "max", "min")


class DistributedError(RuntimeError):
    """The processes of a job disagree (different models, shapes, dtypes) or a collective failed."""


def _as_array(x, where: str):
    """``(array, is_variable)`` for a Variable or an array of any backend."""
    if isinstance(x, Variable):
        return x.data, True
    if is_array(x):
        return x, False
    if isinstance(x, np.generic):  # NumPy keeps 0-d results as scalars inside graphs
        return np.asarray(x), False
    raise TypeError(f"{where}: expected an array or a Variable, got {type(x).__name__}")


def _flat_copy(array):
    """A 1-D contiguous copy of ``array`` on its own backend (0-d gives shape (1,))."""
    backend = backend_of(array)
    xp = backend.xp
    with backend:
        return xp.reshape(xp.asarray(array, copy=True), (-1,))


class Communicator:
    """One process's view of the job: ``rank``, ``size``, ``local_rank`` and collectives.

    Subclasses set :attr:`transport` and implement the ``*_buffer`` primitives, ``barrier``,
    ``bcast_obj``, ``allgather_obj`` and ``abort``.
    """

    transport = "abstract"

    def __init__(self, rank: int, size: int, local_rank: int = 0, local_size: int = 1):
        self.rank = int(rank)
        self.size = int(size)
        self.local_rank = int(local_rank)
        self.local_size = int(local_size)
        self.reason = ""  # why init("auto") picked this transport
        self.device = get_backend("cpu")  # where this rank's model should live

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} transport={self.transport} rank={self.rank}/{self.size} "
            f"local_rank={self.local_rank} device={self.device}>"
        )

    @property
    def is_root(self) -> bool:
        """True on rank 0 (the rank that saves files and prints)."""
        return self.rank == 0

    # ------------------------------------------------------------------ public collectives
    def allreduce(self, x, op: str = "sum"):
        """The element-wise ``op`` ("sum", "mean", "max", "min") of ``x`` over all ranks.

        ``x`` must have the same shape and dtype on every rank. "mean" needs a floating dtype.
        """
        array, is_variable = _as_array(x, "allreduce")
        backend = backend_of(array)
        op = _check_op(op, array, backend)
        flat = _flat_copy(array)
        reduced = self.allreduce_buffer(flat, "sum" if op == "mean" else op)
        with backend:
            if op == "mean":
                reduced = reduced * (1.0 / self.size)
            out = backend.xp.reshape(reduced, tuple(array.shape))
        return wrap_array(out, backend, requires_grad=True) if is_variable else out

    def broadcast(self, x, root: int = 0):
        """Rank ``root``'s ``x`` on every rank (each rank passes an array of that shape/dtype)."""
        array, is_variable = _as_array(x, "broadcast")
        self._check_root(root, "broadcast")
        backend = backend_of(array)
        out = self.broadcast_buffer(_flat_copy(array), root)
        with backend:
            out = backend.xp.reshape(out, tuple(array.shape))
        return wrap_array(out, backend, requires_grad=True) if is_variable else out

    def allgather(self, x):
        """Every rank's ``x`` stacked along a new first axis: shape ``(size, *x.shape)``.

        Shapes and dtypes are compared first (one small object exchange), so ranks that pass
        different ones get a :class:`DistributedError` on every rank instead of a hang.
        """
        array, is_variable = _as_array(x, "allgather")
        backend = backend_of(array)
        mine = (tuple(int(n) for n in array.shape), str(array.dtype))
        everyone = self.allgather_obj(mine)
        if any(other != mine for other in everyone):
            listed = ", ".join(f"rank {r}: shape {s} {d}" for r, (s, d) in enumerate(everyone))
            raise DistributedError(
                f"allgather: every rank must pass the same shape and dtype; got {listed}"
            )
        out = self.allgather_buffer(_flat_copy(array))
        with backend:
            out = backend.xp.reshape(out, (self.size, *mine[0]))
        return wrap_array(out, backend, requires_grad=True) if is_variable else out

    def _check_root(self, root, where):
        if not isinstance(root, int) or not 0 <= root < self.size:
            raise ValueError(f"{where}: root must be a rank in 0..{self.size - 1}, got {root!r}")

    # ------------------------------------------------------------------ transport primitives
    def allreduce_buffer(self, buffer, op: str = "sum"):
        """Reduce a flat buffer over all ranks; returns the result (``buffer`` if in place)."""
        raise NotImplementedError

    def broadcast_buffer(self, buffer, root: int = 0):
        """Rank ``root``'s flat buffer on every rank; returns it (``buffer`` itself if in place)."""
        raise NotImplementedError

    def allgather_buffer(self, buffer):
        """The flat buffers of all ranks, concatenated in rank order (a new array)."""
        raise NotImplementedError

    def barrier(self) -> None:
        """Wait until every rank has reached this call."""
        raise NotImplementedError

    def bcast_obj(self, obj, root: int = 0):
        """A picklable object from ``root`` on every rank (control messages only)."""
        raise NotImplementedError

    def allgather_obj(self, obj) -> list:
        """Every rank's picklable object, in rank order (control messages only)."""
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        """End every process of the job now, with exit status ``code``."""
        raise NotImplementedError


def _check_op(op, array, backend):
    if op not in REDUCE_OPS:
        raise ValueError(f"allreduce: op must be one of {REDUCE_OPS}, got {op!r}")
    if op == "mean" and not backend.xp.isdtype(array.dtype, ("real floating", "complex floating")):
        raise TypeError(
            f"allreduce: op='mean' needs a floating-point array, got dtype {array.dtype}; "
            "use op='sum' and divide by comm.size yourself"
        )
    return op


class SingleCommunicator(Communicator):
    """A job of one process (run without a launcher): every collective is a copy."""

    transport = "single"

    def __init__(self):
        super().__init__(rank=0, size=1)

    def allreduce_buffer(self, buffer, op: str = "sum"):
        return buffer

    def broadcast_buffer(self, buffer, root: int = 0):
        self._check_root(root, "broadcast")
        return buffer

    def allgather_buffer(self, buffer):
        return buffer

    def barrier(self) -> None:
        pass

    def bcast_obj(self, obj, root: int = 0):
        self._check_root(root, "bcast_obj")
        return obj

    def allgather_obj(self, obj) -> list:
        return [obj]

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)
