"""The NumPy floor: each workload's forward and backward written out by hand, no graph.

What a framework adds on top of the array arithmetic is the gap between it and this floor. The
backward passes are the textbook derivatives with the upstream gradient kept as a factor (as
any op would receive it); the third derivative of tanh is its closed form. Like PyTorch, the
floor does not compute the gradient of input data it does not need.

Imports: NumPy and the benchmark's ``common`` module.
"""

from __future__ import annotations

import numpy as np

from .common import CHAIN_ADD, CHAIN_MUL, CHAIN_X0, chain_groups

name = "numpy"
tracemalloc_sees_all = True
notes: list[str] = []


def info() -> dict:
    """The floor's library is NumPy itself."""
    return {"library": "numpy", "version": np.__version__}


def to_host(value):
    """Already a NumPy value."""
    return np.asarray(value)


def chain(ops):
    """A runner: the chain and its reverse pass, keeping what sin's derivative needs."""
    groups, extra = chain_groups(ops)

    def run():
        y = np.array(CHAIN_X0)
        saved = []
        for _ in range(groups):
            u = y * CHAIN_MUL + CHAIN_ADD
            saved.append(u)
            y = np.sin(u)
        if extra >= 1:
            y = y * CHAIN_MUL
        if extra == 2:
            y = y + CHAIN_ADD
        g = np.ones_like(y)
        if extra >= 1:
            g = g * CHAIN_MUL  # d(+c) = 1, d(*c) = c
        for u in reversed(saved):
            g = g * np.cos(u) * CHAIN_MUL
        return y, g

    return run


def elementwise(x):
    """A runner for y = tanh(x)*x + x**2 and dy/dx * gy."""

    def run():
        t = np.tanh(x)
        y = t * x + x * x
        gy = np.ones_like(y)
        gx = gy * (t + x * (1 - t * t) + 2 * x)
        return y, gx

    return run


def tanh_3rd(x):
    """A runner for tanh''' = (1 - t^2)(6 t^2 - 2), t = tanh(x)."""

    def run():
        t = np.tanh(x)
        t2 = t * t
        return (1 - t2) * (6 * t2 - 2)

    return run


def _sigmoid(a):
    h = np.tanh(a * 0.5)
    h *= 0.5
    h += 0.5
    return h


def _softmax_cross_entropy(a, t):
    """Mean cross-entropy of logits ``a`` (N, K) and labels ``t``, and its gradient."""
    n = a.shape[0]
    m = a.max(axis=1, keepdims=True)
    e = np.exp(a - m)
    s = e.sum(axis=1, keepdims=True)
    log_z = m[:, 0] + np.log(s[:, 0])
    loss = (log_z - a[np.arange(n), t]).sum() / np.float32(n)
    g = e / s
    g[np.arange(n), t] -= 1
    g /= np.float32(n)
    return loss, g


class _MLP:
    def __init__(self, params_host, x, t, lr):
        self.params = [p.copy() for p in params_host]
        self.x, self.t, self.lr = x, t, lr
        self._grads = None

    def forward(self):
        W1, b1, W2, b2, W3, b3 = self.params
        self.h1 = _sigmoid(self.x @ W1 + b1)
        self.h2 = _sigmoid(self.h1 @ W2 + b2)
        loss, self.g3 = _softmax_cross_entropy(self.h2 @ W3 + b3, self.t)
        return loss

    def backward(self, loss):
        W1, b1, W2, b2, W3, b3 = self.params
        x, h1, h2, g3 = self.x, self.h1, self.h2, self.g3
        g2 = (g3 @ W3.T) * h2 * (1 - h2)
        g1 = (g2 @ W2.T) * h1 * (1 - h1)
        self._grads = [x.T @ g1, g1.sum(0), h1.T @ g2, g2.sum(0), h2.T @ g3, g3.sum(0)]

    def update(self):
        for p, g in zip(self.params, self._grads):
            p -= self.lr * g

    def grads(self):
        return self._grads


def mlp(params_host, x, t, lr):
    """An MLP training step split into forward / backward / update."""
    return _MLP(params_host, x, t, lr)


def cnn(params_host, x, t):
    """A runner for the small CNN: im2col + batched GEMM (NCHW out), pooling by reshape."""
    W_conv, b_conv, W_fc, b_fc = (p.copy() for p in params_host)
    windows = np.lib.stride_tricks.sliding_window_view
    n, c, hw, _ = x.shape
    oc, half = W_conv.shape[0], hw // 2
    W_mat = W_conv.reshape(oc, c * 9)

    def run():
        # forward; (OC, C*9) @ (N, C*9, H*W) gives contiguous NCHW, so reshapes are views
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        col = windows(padded, (3, 3), axis=(2, 3)).transpose(0, 1, 4, 5, 2, 3)
        col = col.reshape(n, c * 9, hw * hw)  # im2col: one copy
        a = (W_mat @ col + b_conv[:, None]).reshape(n, oc, half, 2, half, 2)
        h = np.maximum(a, 0)
        # pairwise maxima of the 2x2 windows: several times faster than max(axis=(3, 5))
        pooled = np.maximum(
            np.maximum(h[:, :, :, 0, :, 0], h[:, :, :, 0, :, 1]),
            np.maximum(h[:, :, :, 1, :, 0], h[:, :, :, 1, :, 1]),
        )
        flat = pooled.reshape(n, -1)
        loss, g = _softmax_cross_entropy(flat @ W_fc + b_fc, t)
        # backward
        g_W_fc, g_b_fc = flat.T @ g, g.sum(0)
        g_pooled = (g @ W_fc.T).reshape(n, oc, half, 1, half, 1)
        # Routing to every maximum of a window is exact here: a tie needs equal floats, which
        # after relu only happens at 0, where relu's derivative (a > 0) is 0 anyway.
        route = (h == pooled[:, :, :, None, :, None]) & (a > 0)
        g_a = (route * g_pooled).reshape(n, oc, hw * hw)
        g_b_conv = g_a.sum(axis=(0, 2))
        g_W_conv = (g_a @ col.transpose(0, 2, 1)).sum(axis=0).reshape(W_conv.shape)
        return loss, [g_W_conv, g_b_conv, g_W_fc, g_b_fc]

    return run
