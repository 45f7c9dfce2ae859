"""The workloads written once against DeZero's API, run on DeZero 0.0.13 or on dezero_xp.

The same source code drives both libraries (``import dezero`` or ``import dezero_xp``), so any
difference in the measurements comes from the library, not from the benchmark. Models are
written functionally (``F.linear`` on Parameters) and SGD is the in-place update DeZero's
``SGD.update_one`` does (``p.data -= lr * p.grad.data``), so no Layer, Model or Optimizer
class is needed from either library.

dezero_xp also runs this source on another backend (``DezeroAPI("dezero_xp", "torch:cpu")``):
inputs, weights and batches are moved there once, before anything is timed, so the same graph
code computes on torch tensors and the comparison with PyTorch eager isolates dezero_xp's own
overhead.

Imports: NumPy, the benchmark's ``common`` module, and the library under test (lazily).
"""

from __future__ import annotations

import importlib
import re
import sys
import types

import numpy as np

from .common import CHAIN_ADD, CHAIN_MUL, CHAIN_X0, Pending, chain_groups

# What each workload needs from ``<library>.functions``.
REQUIRED = {
    "mlp": ("linear", "sigmoid", "softmax_cross_entropy"),
    "cnn": ("conv2d", "relu", "pooling", "reshape", "linear", "softmax_cross_entropy"),
    "elementwise": ("tanh",),
    "tanh_3rd": ("tanh",),
    "chain": ("sin",),
}


# DeZero imports these at import time only to plot datasets and to transform images; no
# benchmark uses them. When DeZero's environment lacks them, empty stand-ins let it import.
OPTIONAL_DEZERO_DEPENDENCIES = ("matplotlib", "PIL")


class _Stub(types.ModuleType):
    """A stand-in module: any attribute is another stand-in (``Image.BILINEAR`` works)."""

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Stub(f"{self.__name__}.{attribute}")


def _import_with_stubs(library: str, notes: list):
    """Import ``library``, stubbing missing optional dependencies of DeZero on the way."""
    exc = None
    for _ in range(2 * len(OPTIONAL_DEZERO_DEPENDENCIES) + 1):
        try:
            return importlib.import_module(library)
        except ModuleNotFoundError as exc:
            parts = (exc.name or "").split(".")
            if library != "dezero" or parts[0] not in OPTIONAL_DEZERO_DEPENDENCIES:
                raise
            for i in range(1, len(parts) + 1):  # "matplotlib.pyplot": both levels
                sys.modules.setdefault(".".join(parts[:i]), _Stub(".".join(parts[:i])))
            note = f"{parts[0]} not installed: stubbed (DeZero imports it; unused here)"
            if note not in notes:
                notes.append(note)
    raise ImportError(f"could not import {library}: {exc}")


class DezeroAPI:
    """One DeZero-API library (``"dezero"`` or ``"dezero_xp"``) behind the harness interface.

    ``device``: a dezero_xp device spec (``"torch:cpu"``) to run on instead of NumPy; every
    input, weight and batch is put there once, when a workload is built.
    """

    tracemalloc_sees_all = True  # NumPy buffers and Python objects are all traced

    def __init__(self, library: str, device: str | None = None, name: str | None = None):
        self.name = name or library
        self.library = library
        self.notes = []
        self.dz = _import_with_stubs(library, self.notes)
        self.F = importlib.import_module(f"{library}.functions")
        self.backend = None
        if device is not None:
            self.backend = self.dz.get_backend(device)
            if str(self.backend) != device:  # e.g. a CUDA spec that fell back to the CPU
                raise RuntimeError(f"{device} is not usable here (got {self.backend})")
            # tracemalloc does not see memory that the backend library allocates in C++.
            self.tracemalloc_sees_all = self.backend.name == "numpy"
            self.notes.append(f"{library} on {self.backend}: data and weights moved there once")

    # ------------------------------------------------------------------ harness interface
    def info(self) -> dict:
        """Versions of the library under test (and of the backend library, if not NumPy)."""
        info = {"library": self.name, "version": getattr(self.dz, "__version__", "unknown")}
        if self.backend is not None and self.backend.name == "torch":
            import torch  # noqa: PLC0415 - present: the backend was created

            info.update(
                backend=str(self.backend),
                torch_version=torch.__version__,
                torch_threads=torch.get_num_threads(),
                torch_blas=_torch_blas(torch),
            )
        return info

    def set_threads(self, threads: int):
        """Intra-op threads of the backend library (BLAS threads are set by the worker)."""
        if self.backend is not None and self.backend.name == "torch":
            import torch  # noqa: PLC0415

            torch.set_num_threads(threads)

    def to_host(self, value):
        """A Variable (or array) as a NumPy array."""
        data = getattr(value, "data", value)
        if self.backend is not None:
            return self.backend.to_host(data)
        return np.asarray(data)

    def array(self, host):
        """A host array as an array of the backend (the host array itself on NumPy)."""
        return host if self.backend is None else self.backend.from_host(host)

    def variable(self, host, kind="Variable"):
        """A Variable (or ``kind="Parameter"``) on the backend from a host array (copied)."""
        cls = getattr(self.dz, kind)
        if self.backend is None:
            return cls(host.copy())
        return cls(host, device=self.backend)

    def require(self, workload: str):
        """Raise Pending when the library lacks a function the workload needs."""
        missing = [name for name in REQUIRED[workload] if not hasattr(self.F, name)]
        if missing:
            raise Pending(f"{self.name}.functions has no {', '.join(missing)} yet")

    # ------------------------------------------------------------------ workloads
    def chain(self, ops):
        """A runner: a fresh chain of ``ops`` ops from x0, backward; returns (y, gx)."""
        self.require("chain")
        Variable, sin = self.dz.Variable, self.F.sin
        groups, extra = chain_groups(ops)
        x0 = self.array(np.array(CHAIN_X0))

        def run():
            x = Variable(x0)
            y = x
            for _ in range(groups):
                y = sin(y * CHAIN_MUL + CHAIN_ADD)
            if extra >= 1:
                y = y * CHAIN_MUL
            if extra == 2:
                y = y + CHAIN_ADD
            y.backward()
            return y, x.grad

        return run

    def elementwise(self, x_host):
        """A runner for tanh(x)*x + x**2, forward and backward; returns (y, gx)."""
        self.require("elementwise")
        x = self.variable(x_host)
        tanh = self.F.tanh

        def run():
            x.cleargrad()
            y = tanh(x) * x + x**2
            y.backward()
            return y, x.grad

        return run

    def tanh_3rd(self, x_host):
        """A runner for the third derivative of tanh by double backprop; returns gx3."""
        self.require("tanh_3rd")
        x = self.variable(x_host)
        tanh = self.F.tanh

        def run():
            x.cleargrad()
            y = tanh(x)
            y.backward(create_graph=True)
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)
            gx2 = x.grad
            x.cleargrad()
            gx2.backward()
            return x.grad

        return run

    def mlp(self, params_host, x_host, t_host, lr):
        """An MLP training step split into forward / backward / update."""
        self.require("mlp")
        return _MLP(self, params_host, x_host, t_host, lr)

    def cnn(self, params_host, x_host, t_host):
        """A runner for the small CNN, forward and backward; returns (loss, grads)."""
        self.require("cnn")
        F = self.F
        params = [self.variable(p, "Parameter") for p in params_host]
        W_conv, b_conv, W_fc, b_fc = params
        x = self.array(x_host)  # a plain array, as a DataLoader yields it (see _MLP)
        t = self.array(t_host)
        n = x_host.shape[0]

        def run():
            for p in params:
                p.cleargrad()
            h = F.relu(F.conv2d(x, W_conv, b_conv, stride=1, pad=1))
            h = F.pooling(h, 2, 2)
            h = F.reshape(h, (n, h.shape[1] * h.shape[2] * h.shape[3]))
            loss = F.softmax_cross_entropy(F.linear(h, W_fc, b_fc), t)
            loss.backward()
            return loss, [p.grad for p in params]

        return run


def _torch_blas(torch) -> str:
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return found.group(1) if found else "unknown"


class _MLP:
    """784-1000-1000-10 sigmoid MLP on Parameters, DeZero style."""

    def __init__(self, api, params_host, x_host, t_host, lr):
        self.F = api.F
        self.params = [api.variable(p, "Parameter") for p in params_host]
        # The batch goes in as a plain array, as DeZero's DataLoader yields it: dezero_xp then
        # computes no gradient for it (as torch and the floor); DeZero computes one anyway.
        self.x = api.array(x_host)
        self.t = api.array(t_host)
        self.lr = lr

    def forward(self):
        F = self.F
        W1, b1, W2, b2, W3, b3 = self.params
        h = F.sigmoid(F.linear(self.x, W1, b1))
        h = F.sigmoid(F.linear(h, W2, b2))
        return F.softmax_cross_entropy(F.linear(h, W3, b3), self.t)

    def backward(self, loss):
        for p in self.params:
            p.cleargrad()
        loss.backward()

    def update(self):
        lr = self.lr
        for p in self.params:
            p.data -= lr * p.grad.data

    def grads(self):
        return [p.grad for p in self.params]
