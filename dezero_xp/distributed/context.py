"""``init()``: pick a transport from the launcher and the model's backend, and say which.

``auto`` chooses:

- launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``MASTER_*`` set): **torch**;
- launched by ``mpiexec``/``srun`` (an MPI launcher's variables are set): **torch** for a
  torch-tensor device, **nccl** for a CUDA (CuPy) device when CuPy has NCCL (else **mpi**, which
  stages CuPy arrays through host memory), **mpi** otherwise;
- launched by neither: **single**, a one-process job (the same script runs unchanged).

The choice and its reason are logged (logger ``dezero_xp.distributed``) and kept on the
communicator (``comm.transport``, ``comm.reason``). ``comm.device`` is the device this rank
should train on: a CUDA request becomes ``cuda:<local_rank>`` (one GPU per process).

May import: the standard library, dezero_xp.backend and the dezero_xp.distributed transports.
"""

from __future__ import annotations

import logging
import os

from dezero_xp.backend import get_backend
from dezero_xp.distributed.base import SingleCommunicator
from dezero_xp.distributed.failure import install_abort_handler

__all__ = ["TRANSPORTS", "get_communicator", "init", "launched_by_mpi"]

TRANSPORTS = ("auto", "mpi", "nccl", "torch", "single")
logger = logging.getLogger("dezero_xp.distributed")

# Variables that MPICH/Intel MPI (PMI_*), Open MPI (OMPI_*), PMIx launchers and MVAPICH set.
_MPI_LAUNCHER_ENV = (
    "PMI_RANK",
    "PMI_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_RANK",
    "MV2_COMM_WORLD_SIZE",
)

_current = None


def launched_by_mpi() -> bool:
    """True when this process was started by an MPI launcher (mpiexec, mpirun, srun)."""
    return any(name in os.environ for name in _MPI_LAUNCHER_ENV)


def _requested_backend(device):
    """The Backend a device spec, a Backend or a model (anything with params()) names."""
    if device is None:
        return None
    if callable(getattr(device, "params", None)):
        for param in device.params():
            if param.data is not None:
                return param.backend
        backend = getattr(device, "_backend", None)
        return backend if backend is not None else get_backend(None)
    return get_backend(device)


def _pick(requested):
    """``(transport, reason)`` for ``transport="auto"``."""
    from dezero_xp.distributed.torch_dist import launched_by_torchrun  # noqa: PLC0415

    if launched_by_torchrun():
        return "torch", "launched by torchrun (RANK/WORLD_SIZE/MASTER_ADDR are set)"
    if not launched_by_mpi():
        return "single", "not launched by mpiexec or torchrun: a one-process job"
    if requested is not None and requested.name == "torch":
        return "torch", f"launched by mpiexec with a torch model ({requested})"
    if requested is not None and requested.is_gpu:
        from dezero_xp.distributed.nccl import import_nccl  # noqa: PLC0415

        try:
            import_nccl()
        except ImportError as exc:
            return "mpi", f"launched by mpiexec, CUDA model, but no NCCL ({exc}); host staging"
        return "nccl", f"launched by mpiexec with a CUDA model ({requested}): NCCL"
    return "mpi", "launched by mpiexec with a host model"


def _rank_device(requested, local_rank):
    """The device rank ``local_rank`` trains on: one GPU per process."""
    if requested is None:
        return get_backend(None)
    if requested.is_gpu:
        prefix = "torch:cuda" if requested.name == "torch" else "cuda"
        return get_backend(f"{prefix}:{local_rank}")
    return requested


def init(transport: str = "auto", device=None, *, abort_on_error: bool = True):
    """The communicator of this process (made once; later calls return the same one).

    ``transport``: "auto", "mpi", "nccl", "torch" or "single". ``device``: what the model
    trains on (a spec such as "cuda", a Backend, or the model itself); it steers "auto" and
    sets ``comm.device``. With ``abort_on_error`` an uncaught exception on any rank ends the
    whole job (see :mod:`dezero_xp.distributed.failure`).
    """
    global _current
    if transport not in TRANSPORTS:
        raise ValueError(f"init: transport must be one of {TRANSPORTS}, got {transport!r}")
    if _current is not None and transport in ("auto", _current.transport):
        return _current
    requested = _requested_backend(device)
    reason = f"transport={transport!r} was asked for"
    if transport == "auto":
        transport, reason = _pick(requested)
    comm = _make(transport, requested)
    comm.reason = reason
    logger.info(
        "dezero_xp.distributed: %s transport, rank %d of %d, device %s (%s)",
        transport,
        comm.rank,
        comm.size,
        comm.device,
        reason,
    )
    if abort_on_error:
        install_abort_handler(comm)
    _current = comm
    return comm


def _make(transport, requested):
    if transport == "single":
        comm = SingleCommunicator()
        comm.device = _rank_device(requested, 0)
        return comm
    if transport == "torch":
        from dezero_xp.distributed.torch_dist import TorchCommunicator  # noqa: PLC0415

        device = requested if requested is not None and requested.name == "torch" else None
        return TorchCommunicator(device="torch:cpu" if device is None else str(device))
    from dezero_xp.distributed.mpi import MPICommunicator  # noqa: PLC0415

    mpi = MPICommunicator()
    if transport == "nccl":
        from dezero_xp.distributed.nccl import NCCLCommunicator  # noqa: PLC0415

        return NCCLCommunicator(mpi, device=f"cuda:{mpi.local_rank}")
    mpi.device = _rank_device(requested, mpi.local_rank)
    return mpi


def get_communicator():
    """The communicator :func:`init` made, or None before it was called."""
    return _current
