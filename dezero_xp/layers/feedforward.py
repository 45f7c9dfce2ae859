"""Feed-forward layers: Linear, Conv2d, Deconv2d, BatchNorm, EmbedID (DeZero's names).

Linear, Conv2d and Deconv2d create their weights lazily from the first input's size when
``in_size``/``in_channels`` is not given, as DeZero does. Parameters are float32 unless
``dtype`` says otherwise; random initial values come from the backend's generator (seeded by
``dezero_xp.seed``).

May import: dezero_xp._shape, dezero_xp.core, dezero_xp.functions and dezero_xp.layers.base.
"""

from __future__ import annotations

import math

import dezero_xp.functions as F
from dezero_xp._shape import pair
from dezero_xp.core import Parameter
from dezero_xp.layers.base import Layer

__all__ = ["BatchNorm", "Conv2d", "Deconv2d", "EmbedID", "Linear"]


def _bias(out_size, nobias, dtype, backend):
    return None if nobias else Parameter(backend.zeros((out_size,), dtype), name="b")


class Linear(Layer):
    """``y = x W + b``; ``W`` (in_size, out_size) ~ N(0, 1/in_size), created at the first call
    from ``x.shape[1]`` when ``in_size`` is None."""

    def __init__(self, out_size, nobias=False, dtype="float32", in_size=None, device=None):
        super().__init__(device)
        self.in_size = in_size
        self.out_size = out_size
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if in_size is not None:
            self._init_W(self._creation_backend())
        self.b = _bias(out_size, nobias, dtype, self._creation_backend())

    def _init_W(self, backend):
        scale = math.sqrt(1 / self.in_size)
        self.W.data = backend.normal((self.in_size, self.out_size), self.dtype, scale)

    def forward(self, x):
        if self.W.data is None:
            self.in_size = x.shape[1]
            self._init_W(self._lazy_backend(x))
        return F.linear(x, self.W, self.b)

    def _after_load(self):
        if self.W.data is not None:
            self.in_size = self.W.shape[0]

    def _expected_shape(self, name):
        """What a weights file may hold for a lazy ``W``: (any in_size, out_size)."""
        return (self.in_size, self.out_size) if name == "W" else None


class _ConvBase(Layer):
    """Shared parts of Conv2d and Deconv2d: sizes, lazy ``W`` and the bias."""

    def __init__(
        self,
        out_channels,
        kernel_size,
        stride=1,
        pad=0,
        nobias=False,
        dtype="float32",
        in_channels=None,
        device=None,
    ):
        super().__init__(device)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._init_W(self._creation_backend())
        self.b = _bias(out_channels, nobias, dtype, self._creation_backend())

    def _w_shape(self, C, OC, KH, KW):
        raise NotImplementedError

    def _init_W(self, backend):
        C, OC = self.in_channels, self.out_channels
        KH, KW = pair(self.kernel_size)
        scale = math.sqrt(1 / (C * KH * KW))
        self.W.data = backend.normal(self._w_shape(C, OC, KH, KW), self.dtype, scale)

    def _expected_shape(self, name):
        """What a weights file may hold for a lazy ``W``: any in_channels, the rest fixed."""
        if name != "W":
            return None
        KH, KW = pair(self.kernel_size)
        return self._w_shape(self.in_channels, self.out_channels, KH, KW)

    def _ensure_W(self, x):
        if self.W.data is None:
            self.in_channels = x.shape[1]
            self._init_W(self._lazy_backend(x))


class Conv2d(_ConvBase):
    """2-D convolution; ``W`` (out, in, kh, kw) ~ N(0, 1/(in*kh*kw)), lazy when
    ``in_channels`` is None."""

    def _w_shape(self, C, OC, KH, KW):
        return (OC, C, KH, KW)

    def forward(self, x):
        self._ensure_W(x)
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)

    def _after_load(self):
        if self.W.data is not None:
            self.in_channels = self.W.shape[1]


class Deconv2d(_ConvBase):
    """2-D transposed convolution; ``W`` (in, out, kh, kw), lazy when ``in_channels`` is None."""

    def _w_shape(self, C, OC, KH, KW):
        return (C, OC, KH, KW)

    def forward(self, x):
        self._ensure_W(x)
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad)

    def _after_load(self):
        if self.W.data is not None:
            self.in_channels = self.W.shape[0]


class BatchNorm(Layer):
    """Batch normalization over axis 1; ``gamma``, ``beta`` and the running averages
    ``avg_mean``/``avg_var`` are sized from the first input's channels.

    ``avg_mean``/``avg_var`` are raw arrays (no gradient) that ``F.batch_norm`` updates in place
    in training mode and uses in test mode (``dezero_xp.test_mode()``). ``dtype`` None means the
    input's dtype. ``comm`` (a ``dezero_xp.distributed`` communicator) makes it synchronised
    batch normalization: training statistics over the global batch of all ranks.
    """

    def __init__(self, decay=0.9, eps=2e-5, dtype=None, device=None, comm=None):
        super().__init__(device)
        self.comm = comm
        self.decay = decay
        self.eps = eps
        self.dtype = dtype
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.add_persistent("avg_mean", None)
        self.add_persistent("avg_var", None)

    def _init_params(self, x):
        backend = self._lazy_backend(x)
        size = x.shape[1]
        dtype = self.dtype if self.dtype is not None else x.dtype
        if self.gamma.data is None:
            self.gamma.data = backend.ones((size,), dtype)
        if self.beta.data is None:
            self.beta.data = backend.zeros((size,), dtype)
        if self.avg_mean is None:
            self.avg_mean = backend.zeros((size,), dtype)
        if self.avg_var is None:
            self.avg_var = backend.ones((size,), dtype)

    def _expected_shape(self, name):
        """Lazy gamma, beta and running averages: one channel count, shared by all four."""
        return ("channels",)

    def forward(self, x):
        if self.avg_mean is None or self.gamma.data is None:
            self._init_params(x)
        if self.comm is not None:
            return F.sync_batch_norm(
                x,
                self.gamma,
                self.beta,
                self.avg_mean,
                self.avg_var,
                self.comm,
                self.decay,
                self.eps,
            )
        return F.batch_norm(
            x, self.gamma, self.beta, self.avg_mean, self.avg_var, decay=self.decay, eps=self.eps
        )


class EmbedID(Layer):
    """A lookup table: row ``x`` of ``W`` (in_size, out_size), ``W`` ~ N(0, 1)."""

    def __init__(self, in_size, out_size, dtype="float32", device=None):
        super().__init__(device)
        self.in_size = in_size
        self.out_size = out_size
        self.dtype = dtype
        backend = self._creation_backend()
        self.W = Parameter(backend.normal((in_size, out_size), dtype), name="W")

    def forward(self, x):
        return F.embed_id(x, self.W)
