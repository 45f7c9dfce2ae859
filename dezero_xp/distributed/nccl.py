"""The NCCL transport: CuPy arrays reduced GPU to GPU by NCCL, control over MPI.

One process per GPU: rank ``r`` drives ``cuda:<local_rank>``. Rank 0 draws NCCL's unique id,
MPI broadcasts it, and every rank builds its ``cupy.cuda.nccl.NcclCommunicator`` under its own
device. The collectives run on CuPy's current stream of that device, with no host
synchronisation: the result is ready for the next kernel on that stream, as any CuPy result is.
Host arrays (NumPy, array-api-strict, ...) and every control message go through the MPI
communicator underneath.

NCCL's bindings (``cupy.cuda.nccl``) and the stream query (``cupy.cuda``) are handed over by the
CuPy adapter, the one module that imports CuPy; CuPy's array functions stay in its kernel table.

May import: the standard library, dezero_xp.backend, dezero_xp._backends.cupy and
dezero_xp.distributed.base / .mpi.
"""

from __future__ import annotations

from dezero_xp._backends import cupy as cupy_adapter
from dezero_xp.backend import DeviceMismatchError, backend_of, get_backend
from dezero_xp.distributed.base import Communicator
from dezero_xp.distributed.mpi import MPICommunicator

__all__ = ["NCCLCommunicator", "import_nccl"]

# dtype name -> the name of NCCL's constant for it (looked up on the bindings module).
_NCCL_DTYPES = {
    "int8": "NCCL_INT8",
    "uint8": "NCCL_UINT8",
    "int32": "NCCL_INT32",
    "uint32": "NCCL_UINT32",
    "int64": "NCCL_INT64",
    "uint64": "NCCL_UINT64",
    "float16": "NCCL_FLOAT16",
    "float32": "NCCL_FLOAT32",
    "float64": "NCCL_FLOAT64",
    "bfloat16": "NCCL_BFLOAT16",
}
_NCCL_OPS = {"sum": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


def import_nccl():
    """``(cupy.cuda, cupy.cuda.nccl)``, or ImportError saying what is missing."""
    return cupy_adapter.import_nccl()


def _device_pointer(array) -> int:
    return int(array.__cuda_array_interface__["data"][0])


class NCCLCommunicator(Communicator):
    """NCCL for CuPy arrays on ``cuda:<local_rank>``; MPI (``mpi``) for the rest."""

    transport = "nccl"

    def __init__(self, mpi: MPICommunicator | None = None, device=None):
        mpi = MPICommunicator() if mpi is None else mpi
        super().__init__(mpi.rank, mpi.size, mpi.local_rank, mpi.local_size)
        self.mpi = mpi
        self.cuda, self.nccl = import_nccl()
        self.device = get_backend(f"cuda:{mpi.local_rank}" if device is None else device)
        if not self.device.is_gpu:
            raise ValueError(f"the nccl transport needs a CUDA device, got {self.device}")
        unique_id = self.nccl.get_unique_id() if mpi.rank == 0 else None
        unique_id = mpi.bcast_obj(unique_id, root=0)
        with self.device:
            self.handle = self.nccl.NcclCommunicator(mpi.size, unique_id, mpi.rank)

    # ------------------------------------------------------------------ helpers
    def _on_device(self, buffer, where) -> bool:
        backend = backend_of(buffer)
        if not backend.is_gpu:
            return False
        if backend is not self.device:
            raise DeviceMismatchError(
                f"{where}: the array is on {backend} but this rank's NCCL communicator drives "
                f"{self.device}; move the model and data there (model.to(comm.device))"
            )
        return True

    def _dtype(self, dtype, where):
        name = str(dtype).rsplit(".", 1)[-1]
        constant = _NCCL_DTYPES.get(name)
        if constant is None or not hasattr(self.nccl, constant):
            raise TypeError(
                f"{where}: NCCL cannot move dtype {name}; supported: {sorted(_NCCL_DTYPES)}"
            )
        return getattr(self.nccl, constant)

    def _stream(self) -> int:
        return self.cuda.get_current_stream().ptr

    # ------------------------------------------------------------------ buffers
    def allreduce_buffer(self, buffer, op: str = "sum"):
        if not self._on_device(buffer, "allreduce"):
            return self.mpi.allreduce_buffer(buffer, op)
        count = int(buffer.shape[0])
        if count == 0:
            return buffer
        with self.device:
            ptr = _device_pointer(buffer)
            self.handle.allReduce(
                ptr,
                ptr,
                count,
                self._dtype(buffer.dtype, "allreduce"),
                getattr(self.nccl, _NCCL_OPS[op]),
                self._stream(),
            )
        return buffer

    def broadcast_buffer(self, buffer, root: int = 0):
        self._check_root(root, "broadcast")
        if not self._on_device(buffer, "broadcast"):
            return self.mpi.broadcast_buffer(buffer, root)
        count = int(buffer.shape[0])
        if count == 0:
            return buffer
        with self.device:
            self.handle.bcast(
                _device_pointer(buffer),
                count,
                self._dtype(buffer.dtype, "broadcast"),
                root,
                self._stream(),
            )
        return buffer

    def allgather_buffer(self, buffer):
        if not self._on_device(buffer, "allgather"):
            return self.mpi.allgather_buffer(buffer)
        count = int(buffer.shape[0])
        xp = self.device.xp
        with self.device:
            out = xp.empty((self.size * count,), dtype=buffer.dtype)
            if count:
                self.handle.allGather(
                    _device_pointer(buffer),
                    _device_pointer(out),
                    count,
                    self._dtype(buffer.dtype, "allgather"),
                    self._stream(),
                )
        return out

    # ------------------------------------------------------------------ control (over MPI)
    def barrier(self) -> None:
        self.mpi.barrier()

    def bcast_obj(self, obj, root: int = 0):
        return self.mpi.bcast_obj(obj, root)

    def allgather_obj(self, obj) -> list:
        return self.mpi.allgather_obj(obj)

    def abort(self, code: int = 1) -> None:
        self.mpi.abort(code)
