"""A stand-in for ``cupy.cuda.nccl`` over MPI, to run the NCCL transport's logic without a GPU.

Used with tests/fakecupy.py under ``mpiexec``: device arrays are NumPy arrays there, so the fake
reads and writes them through the raw pointers the transport hands to NCCL (as real NCCL does),
and does the reduction with MPI on the host. It checks what real NCCL would need: the
communicator is built with the group size, this rank and the unique id rank 0 drew; every call
runs with this rank's GPU current; counts and datatypes describe the buffers exactly (a wrong
pointer, count or datatype gives wrong numbers in the tests).

``install(monkeypatch, fake_cupy, comm)`` makes ``dezero_xp.distributed.nccl`` use it and
returns the fake ``cupy.cuda`` (its ``calls`` and ``unique_ids`` record what happened).
"""

from __future__ import annotations

import ctypes
import os
import types
from collections import Counter

import fakecupy
import numpy as np

DTYPES = {
    "NCCL_INT8": "int8",
    "NCCL_UINT8": "uint8",
    "NCCL_INT32": "int32",
    "NCCL_UINT32": "uint32",
    "NCCL_INT64": "int64",
    "NCCL_UINT64": "uint64",
    "NCCL_FLOAT16": "float16",
    "NCCL_FLOAT32": "float32",
    "NCCL_FLOAT64": "float64",
}
OPS = {"NCCL_SUM": "SUM", "NCCL_MAX": "MAX", "NCCL_MIN": "MIN"}


def _view(ptr: int, count: int, dtype: str) -> np.ndarray:
    """The ``count`` elements of ``dtype`` at address ``ptr``, as a writable NumPy array."""
    itemsize = np.dtype(dtype).itemsize
    raw = (ctypes.c_char * (count * itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype, count=count)


def install(monkeypatch, fake_cupy, comm):
    from mpi4py import MPI

    from dezero_xp.distributed import nccl as nccl_transport

    codes = {name: i for i, name in enumerate([*DTYPES, *OPS])}
    names = {i: name for name, i in codes.items()}
    cuda = types.SimpleNamespace(calls=Counter(), unique_ids=[])
    stream = types.SimpleNamespace(ptr=0)

    def get_current_stream():
        return stream

    cuda.get_current_stream = get_current_stream

    class NcclCommunicator:
        def __init__(self, ndev, comm_id, rank):
            assert ndev == comm.size and rank == comm.rank, (ndev, rank)
            assert isinstance(comm_id, tuple) and len(comm_id) == 128, comm_id
            cuda.unique_ids.append(comm_id)
            self.device = fakecupy.current_device()
            assert self.device == comm.local_rank, (self.device, comm.local_rank)

        def _check(self, what, stream_ptr):
            cuda.calls[what] += 1
            assert fakecupy.current_device() == self.device, (what, fakecupy.current_device())
            assert stream_ptr == stream.ptr

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream_ptr):
            self._check("allReduce", stream_ptr)
            dtype = DTYPES[names[datatype]]
            send, recv = _view(sendbuf, count, dtype), _view(recvbuf, count, dtype)
            mpi_op = getattr(MPI, OPS[names[op]])
            if sendbuf == recvbuf:
                comm.comm.Allreduce(MPI.IN_PLACE, recv, op=mpi_op)
            else:
                comm.comm.Allreduce(send, recv, op=mpi_op)

        def bcast(self, buff, count, datatype, root, stream_ptr):
            self._check("bcast", stream_ptr)
            comm.comm.Bcast(_view(buff, count, DTYPES[names[datatype]]), root=root)

        def allGather(self, sendbuf, recvbuf, count, datatype, stream_ptr):
            self._check("allGather", stream_ptr)
            dtype = DTYPES[names[datatype]]
            recv = _view(recvbuf, count * comm.size, dtype)
            comm.comm.Allgather(_view(sendbuf, count, dtype).copy(), recv)

    module = types.SimpleNamespace(
        available=True,
        NcclCommunicator=NcclCommunicator,
        get_unique_id=lambda: tuple(int(b) for b in os.urandom(128)),
        **codes,
    )

    def interface(array):
        return {
            "data": (array.ctypes.data, False),
            "shape": array.shape,
            "typestr": array.dtype.str,
            "version": 3,
        }

    monkeypatch.setattr(
        fakecupy.FakeArray, "__cuda_array_interface__", property(interface), raising=False
    )
    monkeypatch.setattr(nccl_transport, "import_nccl", lambda: (cuda, module))
    del fake_cupy
    return cuda
