"""Ops that span processes: ``all_reduce`` and synchronised batch normalization.

Both take a communicator (anything with ``allreduce(array)`` returning the element-wise sum over
all ranks, and ``size``; see ``dezero_xp.distributed``), so this module needs nothing of the
distributed package itself.

- ``all_reduce(x, comm)``: the sum of ``x`` over all ranks. Its derivative is the sum of the
  upstream gradients over all ranks, so a graph that reduces over ranks differentiates through
  every rank's loss at once.
- ``sync_batch_norm(x, gamma, beta, mean, var, comm)``: batch normalization whose statistics are
  those of the *global* batch (every rank's examples). It is built from ``all_reduce`` and
  ordinary ops, so its backward (any order) is exactly that of batch normalization over the
  global batch once the parameter gradients are averaged over ranks, as the data-parallel
  optimizer does. Every rank must call it the same number of times, in the same order.

May import: dezero_xp.backend, dezero_xp.core and the functions modules beside it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dezero_xp._config import Config
from dezero_xp.backend import DeviceMismatchError, backend_of, get_backend
from dezero_xp.core import Function, as_variable
from dezero_xp.functions.nn import _check_decay_and_eps, _running_array, batch_norm
from dezero_xp.functions.reduce import sum as _sum
from dezero_xp.functions.shape import reshape

if TYPE_CHECKING:
    from dezero_xp.core import Variable
    from dezero_xp.typing import ArrayLike, VariableLike

__all__ = ["AllReduce", "all_reduce", "sync_batch_norm"]


class AllReduce(Function):
    """``y = sum over ranks of x``; ``gx = sum over ranks of gy``."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def forward(self, x: Any) -> Any:
        return self.comm.allreduce(x)

    def backward(self, gy: Variable) -> Variable:
        return all_reduce(gy, self.comm)


def all_reduce(x: VariableLike, comm: Any) -> Variable:
    """The element-wise sum of ``x`` over every rank of ``comm`` (differentiable)."""
    return AllReduce(comm)(x)


def _global_count(comm: Any, count: int) -> int:
    """The number of examples per channel over all ranks (a host exchange, no device sync)."""
    cpu = get_backend("cpu")
    total = comm.allreduce(cpu.asarray([count], dtype=cpu.xp.int64))
    return int(cpu.to_host(total)[0])


def sync_batch_norm(
    x: VariableLike,
    gamma: VariableLike,
    beta: VariableLike,
    mean: ArrayLike,
    var: ArrayLike,
    comm: Any,
    decay: float = 0.9,
    eps: float = 2e-5,
) -> Variable:
    """:func:`batch_norm` with the statistics of the global batch over the ranks of ``comm``.

    Training mode all-reduces the per-channel sums (two small all-reduces and one of the
    example count) and updates the running ``mean``/``var`` in place with the global batch's
    mean and unbiased variance; test mode is plain :func:`batch_norm` with the running ones.
    """
    if not Config.train:
        return batch_norm(x, gamma, beta, mean, var, decay=decay, eps=eps)
    _check_decay_and_eps("sync_batch_norm", decay, eps)
    mean = _running_array("mean", mean)
    var = _running_array("var", var)
    x = as_variable(x)
    if x.ndim not in (2, 4):
        raise ValueError(
            f"sync_batch_norm: x must be (N, C) or (N, C, H, W), got shape {tuple(x.shape)}"
        )
    channels = x.shape[1]
    for label, value in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if tuple(value.shape) != (channels,):
            raise ValueError(
                f"sync_batch_norm: {label} must have shape ({channels},) for x of shape "
                f"{tuple(x.shape)}, got {tuple(value.shape)}"
            )
    for label, value in (("mean", mean), ("var", var)):
        if backend_of(value) is not x.backend:
            raise DeviceMismatchError(
                f"sync_batch_norm: running {label} is on {backend_of(value)} but x is on "
                f"{x.backend}; move the running statistics with x (e.g. layer.to(...))"
            )
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, channels) + (1,) * (x.ndim - 2)
    count = _global_count(comm, math.prod(x.shape[i] for i in axes))
    batch_mean = all_reduce(_sum(x, axis=axes), comm) * (1.0 / count)
    xc = x - reshape(batch_mean, shape)
    batch_var = all_reduce(_sum(xc * xc, axis=axes), comm) * (1.0 / count)
    inv_std = (batch_var + eps) ** -0.5
    _update_running(mean, var, batch_mean.data, batch_var.data, count, decay)
    return xc * reshape(inv_std * gamma, shape) + reshape(beta, shape)


def _update_running(mean, var, batch_mean, batch_var, m, decay):
    """In place, as ``batch_norm`` does: the layer's running statistics see the update."""
    backend = backend_of(mean)
    xp = backend.xp
    adjust = m / max(m - 1.0, 1.0)  # unbiased variance estimate for the running average
    with backend:  # outside any op here: CuPy needs the arrays' device made current
        mean *= decay
        mean += (1 - decay) * xp.astype(batch_mean, mean.dtype)
        var *= decay
        var += (1 - decay) * adjust * xp.astype(batch_var, var.dtype)
