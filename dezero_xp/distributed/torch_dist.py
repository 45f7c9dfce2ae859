"""The torch transport: ``torch.distributed`` (gloo for CPU tensors, nccl for CUDA tensors).

For models whose arrays are torch tensors (``device="torch"`` / ``"torch:cuda"``). The process
group is set up from the environment ``torchrun`` exports (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Under ``mpiexec`` instead, rank and size come
from MPI and rank 0 picks the rendezvous port and broadcasts it.

Tensors are reduced in place; NumPy host arrays pass through a tensor that shares their memory
(gloo only). A failure on one rank surfaces on the others as an error in their next
collective (or torchrun's agent stops them); :meth:`TorchCommunicator.abort` ends this process.

May import: numpy, the standard library, torch (lazily), dezero_xp.backend and
dezero_xp.distributed.base / .mpi.
"""

from __future__ import annotations

import os
import socket

import numpy as np

from dezero_xp.backend import backend_of, get_backend
from dezero_xp.distributed.base import Communicator

__all__ = ["TorchCommunicator", "launched_by_torchrun"]


def launched_by_torchrun() -> bool:
    """True when the environment names a torch.distributed job (rank, size and master)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _rendezvous_from_mpi():
    """``(rank, size, local_rank, address)`` from MPI; rank 0 picks the address."""
    from dezero_xp.distributed.mpi import MPICommunicator  # noqa: PLC0415 - only under mpiexec

    mpi = MPICommunicator()
    address = f"tcp://{socket.gethostname()}:{_free_port()}" if mpi.rank == 0 else None
    return mpi.rank, mpi.size, mpi.local_rank, mpi.bcast_obj(address, 0)


class TorchCommunicator(Communicator):
    """Collectives through ``torch.distributed`` (``backend`` "gloo" or "nccl", or None: by
    device: nccl when ``device`` is a torch CUDA device, else gloo)."""

    transport = "torch"

    def __init__(self, device=None, backend: str | None = None):
        import torch  # noqa: PLC0415 - optional dependency
        import torch.distributed as dist  # noqa: PLC0415

        self.torch, self.dist = torch, dist
        if launched_by_torchrun():
            rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            local_rank, init_method = int(os.environ.get("LOCAL_RANK", 0)), "env://"
        else:
            rank, size, local_rank, init_method = _rendezvous_from_mpi()
        super().__init__(rank, size, local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        self.device = get_backend("torch:cpu" if device is None else device)
        if self.device.is_gpu:  # one GPU per process
            torch.cuda.set_device(local_rank)
            self.device = get_backend(f"torch:cuda:{local_rank}")
        if backend is None:
            backend = "nccl" if self.device.is_gpu else "gloo"
        self.group_backend = backend
        if not dist.is_initialized():
            dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=size)
        self._ops = {
            "sum": dist.ReduceOp.SUM,
            "max": dist.ReduceOp.MAX,
            "min": dist.ReduceOp.MIN,
        }

    def _tensor(self, buffer):
        """``(tensor, host backend or None)``: torch tensors as they are, others via the host."""
        if isinstance(buffer, self.torch.Tensor):
            return buffer, None
        backend = backend_of(buffer)
        host = buffer if type(buffer) is np.ndarray else np.array(backend.to_host(buffer))
        return self.torch.from_numpy(host), backend

    @staticmethod
    def _back(tensor, backend):
        if backend is None:
            return tensor
        host = tensor.numpy()
        return host if backend.name == "numpy" else backend.from_host(host)

    def allreduce_buffer(self, buffer, op: str = "sum"):
        tensor, backend = self._tensor(buffer)
        if tensor.numel():
            self.dist.all_reduce(tensor, op=self._ops[op])
        return self._back(tensor, backend)

    def broadcast_buffer(self, buffer, root: int = 0):
        self._check_root(root, "broadcast")
        tensor, backend = self._tensor(buffer)
        if tensor.numel():
            self.dist.broadcast(tensor, src=root)
        return self._back(tensor, backend)

    def allgather_buffer(self, buffer):
        tensor, backend = self._tensor(buffer)
        parts = [self.torch.empty_like(tensor) for _ in range(self.size)]
        if tensor.numel():
            self.dist.all_gather(parts, tensor)
        return self._back(self.torch.cat(parts), backend)

    def barrier(self) -> None:
        self.dist.barrier()

    def bcast_obj(self, obj, root: int = 0):
        self._check_root(root, "bcast_obj")
        box = [obj]
        self.dist.broadcast_object_list(box, src=root)
        return box[0]

    def allgather_obj(self, obj) -> list:
        out = [None] * self.size
        self.dist.all_gather_object(out, obj)
        return out

    def abort(self, code: int = 1) -> None:
        os._exit(code)
