"""The MPI transport (mpi4py): host arrays by buffer, CuPy arrays CUDA-aware or host-staged.

- NumPy arrays go to MPI as buffers (``Allreduce(IN_PLACE, buffer)``): no pickling, no copy.
- Other host arrays (array-api-strict, torch CPU tensors, ...) are copied to a NumPy buffer
  through the backend's ``to_host`` (DLPack) and back through ``from_host``: nothing here
  assumes the array *is* NumPy.
- CuPy arrays go to MPI directly when the MPI library is CUDA-aware (``MPI.Query_cuda_support``
  where mpi4py has it, or ``DEZERO_XP_CUDA_AWARE_MPI=1``), after a device synchronisation;
  otherwise they are staged through host memory (one explicit copy each way).

Pickled object collectives (``bcast_obj``, ``allgather_obj``) are for control messages only.

May import: numpy, the standard library, mpi4py (lazily), dezero_xp.backend,
dezero_xp.distributed.base and dezero_xp._install (the install hint).
"""

from __future__ import annotations

import os

import numpy as np

from dezero_xp._install import install_command
from dezero_xp.backend import backend_of
from dezero_xp.distributed.base import Communicator

__all__ = ["CUDA_AWARE_ENV", "MPICommunicator", "import_mpi"]

CUDA_AWARE_ENV = "DEZERO_XP_CUDA_AWARE_MPI"


def import_mpi():
    """mpi4py's ``MPI`` module (initialising MPI), or ImportError with the install hint."""
    try:
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError(
            f"the mpi transport needs mpi4py and an MPI library ({exc}); install both with "
            f"{install_command('mpi')} (mpi4py and the mpich wheel)"
        ) from None
    return MPI


def cuda_aware(MPI) -> bool:
    """True when CuPy arrays may be handed to this MPI library as device buffers."""
    setting = os.environ.get(CUDA_AWARE_ENV, "").strip().lower()
    if setting in ("1", "true", "yes"):
        return True
    if setting in ("0", "false", "no"):
        return False
    query = getattr(MPI, "Query_cuda_support", None)
    if query is None:
        return False
    try:
        return bool(query())
    except Exception:  # an MPI without the extension answers with an error: not CUDA-aware
        return False


class MPICommunicator(Communicator):
    """Collectives over an mpi4py communicator (``MPI.COMM_WORLD`` unless given)."""

    transport = "mpi"

    def __init__(self, comm=None, cuda_aware_mpi: bool | None = None):
        MPI = import_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        super().__init__(self.comm.Get_rank(), self.comm.Get_size(), local.Get_rank(), local.size)
        local.Free()
        self.cuda_aware = cuda_aware(MPI) if cuda_aware_mpi is None else bool(cuda_aware_mpi)
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    # ------------------------------------------------------------------ buffers
    def _host_or_device(self, buffer):
        """``(what MPI is handed, backend or None)``: the buffer itself, or a host copy."""
        if type(buffer) is np.ndarray:
            return buffer, None
        backend = backend_of(buffer)
        if backend.is_gpu and self.cuda_aware:
            backend.native_device.synchronize()  # MPI reads device memory outside CuPy's stream
            return buffer, None
        return np.array(backend.to_host(buffer)), backend  # a writable host copy

    @staticmethod
    def _back(host, backend):
        if backend is None:
            return host
        with backend:
            return backend.from_host(host)

    def allreduce_buffer(self, buffer, op: str = "sum"):
        data, backend = self._host_or_device(buffer)
        self.comm.Allreduce(self.MPI.IN_PLACE, data, op=self._ops[op])
        return self._back(data, backend)

    def broadcast_buffer(self, buffer, root: int = 0):
        self._check_root(root, "broadcast")
        data, backend = self._host_or_device(buffer)
        self.comm.Bcast(data, root=root)
        return self._back(data, backend)

    def allgather_buffer(self, buffer):
        data, backend = self._host_or_device(buffer)
        if backend is None and type(data) is not np.ndarray:  # CUDA-aware: gather on the device
            source = backend_of(data)
            with source:
                out = source.xp.empty((self.size * data.shape[0],), dtype=data.dtype)
            self.comm.Allgather(data, out)
            return out
        out = np.empty((self.size * data.shape[0],), dtype=data.dtype)
        self.comm.Allgather(data, out)
        return self._back(out, backend)

    # ------------------------------------------------------------------ control
    def barrier(self) -> None:
        self.comm.Barrier()

    def bcast_obj(self, obj, root: int = 0):
        self._check_root(root, "bcast_obj")
        return self.comm.bcast(obj, root=root)

    def allgather_obj(self, obj) -> list:
        return self.comm.allgather(obj)

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)
