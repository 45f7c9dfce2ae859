"""Failure handling: an uncaught exception on one rank ends the whole job, promptly.

Without it, the other ranks would wait forever in their next collective for a rank that has
died. :func:`install_abort_handler` replaces ``sys.excepthook``: the failing rank prints its
traceback (prefixed with its rank), flushes, and calls ``comm.abort(1)`` (``MPI_Abort`` on the
MPI and NCCL transports), which ends every process of the job with a non-zero status.

Only uncaught exceptions of the main thread are covered (as ``python -m mpi4py script.py``
does); an exception a program catches is its own business.

May import: the standard library and dezero_xp.distributed.base.
"""

from __future__ import annotations

import sys
import traceback

__all__ = ["install_abort_handler", "uninstall_abort_handler"]

_previous_hook = None


def install_abort_handler(comm) -> None:
    """Make an uncaught exception on this rank abort the job through ``comm`` (idempotent)."""
    global _previous_hook
    if comm.size < 2:
        return  # one process: Python's own handling ends the job
    if _previous_hook is None:
        _previous_hook = sys.excepthook

    def abort_job(exc_type, exc, tb):
        try:
            sys.stdout.flush()
            header = f"[rank {comm.rank}/{comm.size}] uncaught {exc_type.__name__}; aborting"
            sys.stderr.write(f"{header} the whole job\n")
            traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
            sys.stderr.flush()
        finally:
            comm.abort(1)

    sys.excepthook = abort_job


def uninstall_abort_handler() -> None:
    """Restore the exception hook that was there before :func:`install_abort_handler`."""
    global _previous_hook
    if _previous_hook is not None:
        sys.excepthook = _previous_hook
        _previous_hook = None
