"""The workloads in PyTorch eager mode on the CPU: the mature-framework reference.

Same arithmetic as the DeZero-API version: ``x @ W + b`` with W stored (in, out) (``addmm``,
what ``torch.nn.functional.linear`` runs), the same SGD update written out under ``no_grad``,
gradients cleared by setting them to None (what ``zero_grad`` does by default). As in a real
training loop, the input data does not require grad, so PyTorch skips its gradient (dezero_xp
too, since the batch is a plain array there; DeZero always computes it).

Imports: NumPy, torch, the benchmark's ``common`` module.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from .common import CHAIN_ADD, CHAIN_MUL, CHAIN_X0, chain_groups

name = "torch"
# tracemalloc does not see tensor storage or autograd nodes (C++ allocations).
tracemalloc_sees_all = False
notes = ["memory per op from max-RSS growth; tracemalloc cannot see PyTorch's C++ allocations"]


def info() -> dict:
    """Versions and threading of torch."""
    return {
        "library": "torch",
        "version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_blas": _torch_blas(),
    }


def _torch_blas() -> str:
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return found.group(1) if found else "unknown"


def set_threads(threads: int):
    """Intra-op threads to match NumPy's BLAS threads."""
    torch.set_num_threads(threads)


def to_host(value):
    """A tensor (or a number) as a NumPy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return np.asarray(value)


def _param(host):
    return torch.from_numpy(host.copy()).requires_grad_(True)


def chain(ops):
    """A runner: a fresh chain of ``ops`` ops from x0, backward; returns (y, gx)."""
    groups, extra = chain_groups(ops)

    def run():
        x = torch.tensor(CHAIN_X0, dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(groups):
            y = torch.sin(y * CHAIN_MUL + CHAIN_ADD)
        if extra >= 1:
            y = y * CHAIN_MUL
        if extra == 2:
            y = y + CHAIN_ADD
        y.backward()
        return y, x.grad

    return run


def elementwise(x_host):
    """A runner for tanh(x)*x + x**2, forward and backward; returns (y, gx)."""
    x = _param(x_host)

    def run():
        x.grad = None
        y = torch.tanh(x) * x + x**2
        y.backward(torch.ones_like(y))
        return y, x.grad

    return run


def tanh_3rd(x_host):
    """A runner for the third derivative of tanh by double backprop; returns gx3."""
    x = _param(x_host)
    grad = torch.autograd.grad

    def run():
        y = torch.tanh(x)
        (gx,) = grad(y, x, torch.ones_like(y), create_graph=True)
        (gx2,) = grad(gx, x, torch.ones_like(gx), create_graph=True)
        (gx3,) = grad(gx2, x, torch.ones_like(gx2))
        return gx3

    return run


class _MLP:
    def __init__(self, params_host, x_host, t_host, lr):
        self.params = [_param(p) for p in params_host]
        self.x = torch.from_numpy(x_host)
        self.t = torch.from_numpy(t_host)
        self.lr = lr

    def forward(self):
        W1, b1, W2, b2, W3, b3 = self.params
        h = torch.sigmoid(torch.addmm(b1, self.x, W1))
        h = torch.sigmoid(torch.addmm(b2, h, W2))
        return torch.nn.functional.cross_entropy(torch.addmm(b3, h, W3), self.t)

    def backward(self, loss):
        for p in self.params:
            p.grad = None
        loss.backward()

    def update(self):
        with torch.no_grad():
            for p in self.params:
                p -= self.lr * p.grad

    def grads(self):
        return [p.grad for p in self.params]


def mlp(params_host, x_host, t_host, lr):
    """An MLP training step split into forward / backward / update."""
    return _MLP(params_host, x_host, t_host, lr)


def cnn(params_host, x_host, t_host):
    """A runner for the small CNN, forward and backward; returns (loss, grads)."""
    F = torch.nn.functional
    params = [_param(p) for p in params_host]
    W_conv, b_conv, W_fc, b_fc = params
    x = torch.from_numpy(x_host)
    t = torch.from_numpy(t_host)

    def run():
        for p in params:
            p.grad = None
        h = F.max_pool2d(F.relu(F.conv2d(x, W_conv, b_conv, padding=1)), 2)
        loss = F.cross_entropy(torch.addmm(b_fc, torch.flatten(h, 1), W_fc), t)
        loss.backward()
        return loss, [p.grad for p in params]

    return run
