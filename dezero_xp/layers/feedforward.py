"""Feed-forward layers: Linear, Conv2d, Deconv2d, BatchNorm, EmbedID (DeZero's names).

Linear, Conv2d and Deconv2d create their weights lazily from the first input's size when
``in_size``/``in_channels`` is not given, as DeZero does. Parameters are float32 unless
``dtype`` says otherwise; random initial values come from the backend's generator (seeded by
``dezero_xp.seed``).

May import: dezero_xp._shape, dezero_xp.core, dezero_xp.functions and dezero_xp.layers.base.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dezero_xp.functions as F
from dezero_xp._shape import pair
from dezero_xp.core import Parameter, Variable
from dezero_xp.layers._checks import (
    check_float_dtype,
    check_input,
    check_size,
    check_size_pair,
)
from dezero_xp.layers.base import Layer

if TYPE_CHECKING:
    from dezero_xp.backend import Backend
    from dezero_xp.typing import DeviceLike, DTypeLike, VariableLike

__all__ = ["BatchNorm", "Conv2d", "Deconv2d", "EmbedID", "Linear"]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bias(out_size: int, nobias: bool, dtype: DTypeLike, backend: Backend) -> Parameter | None:
    return None if nobias else Parameter(backend.zeros((out_size,), dtype), name="b")


class Linear(Layer):
    """``y = x W + b``; ``W`` (in_size, out_size) ~ N(0, 1/in_size), created at the first call
    from the input's last axis (``F.linear`` takes ``(..., in_size)``) when ``in_size`` is
    None."""

    def __init__(
        self,
        out_size: int,
        nobias: bool = False,
        dtype: DTypeLike = "float32",
        in_size: int | None = None,
        device: DeviceLike | None = None,
    ) -> None:
        super().__init__(device)
        self.in_size = check_size("Linear", "in_size", in_size, optional=True)
        self.out_size = check_size("Linear", "out_size", out_size)
        self.dtype = check_float_dtype("Linear", dtype, self._creation_backend())
        self.W = Parameter(None, name="W")
        if in_size is not None:
            self._init_W(self._creation_backend())
        self.b = _bias(out_size, nobias, dtype, self._creation_backend())

    def _init_W(self, backend: Backend) -> None:
        scale = math.sqrt(1 / self.in_size)
        self.W.data = backend.normal((self.in_size, self.out_size), self.dtype, scale)

    def forward(self, x: VariableLike) -> Variable:
        shape = check_input("Linear", x, min_ndim=1)
        if self.W is None:
            raise TypeError(
                "Linear: W is None (it was assigned None, which unregisters a Parameter); "
                "assign a Parameter, e.g. layer.W = dz.Parameter(array)"
            )
        if self.W.data is None:
            self.in_size = shape[-1]
            try:
                self._init_W(self._lazy_backend(x))
                return F.linear(x, self.W, self.b)
            except BaseException:
                self.W.data, self.in_size = None, None  # a failed first call sizes nothing
                raise
        return F.linear(x, self.W, self.b)

    def _after_load(self) -> None:
        if self.W.data is not None:
            self.in_size = self.W.shape[0]

    def _expected_shape(self, name: str) -> tuple[Any, ...] | None:
        """What a weights file may hold for a lazy ``W``: (any in_size, out_size)."""
        return (self.in_size, self.out_size) if name == "W" else None


class _ConvBase(Layer):
    """Shared parts of Conv2d and Deconv2d: sizes, lazy ``W`` and the bias."""

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad: int | tuple[int, int] = 0,
        nobias: bool = False,
        dtype: DTypeLike = "float32",
        in_channels: int | None = None,
        device: DeviceLike | None = None,
    ) -> None:
        super().__init__(device)
        where = type(self).__name__
        self.in_channels = check_size(where, "in_channels", in_channels, optional=True)
        self.out_channels = check_size(where, "out_channels", out_channels)
        self.kernel_size = check_size_pair(where, "kernel_size", kernel_size)
        self.stride = check_size_pair(where, "stride", stride)
        self.pad = check_size_pair(where, "pad", pad, minimum=0)
        self.dtype = check_float_dtype(where, dtype, self._creation_backend())
        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._init_W(self._creation_backend())
        self.b = _bias(out_channels, nobias, dtype, self._creation_backend())

    def _w_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def _init_W(self, backend: Backend) -> None:
        C, OC = self.in_channels, self.out_channels
        KH, KW = pair(self.kernel_size)
        scale = math.sqrt(1 / (C * KH * KW))
        self.W.data = backend.normal(self._w_shape(C, OC, KH, KW), self.dtype, scale)

    def _expected_shape(self, name: str) -> tuple[Any, ...] | None:
        """What a weights file may hold for a lazy ``W``: any in_channels, the rest fixed."""
        if name != "W":
            return None
        KH, KW = pair(self.kernel_size)
        return self._w_shape(self.in_channels, self.out_channels, KH, KW)

    def _call(self, op: Callable[..., Variable], x: VariableLike) -> Variable:
        """``op(x, W, b, stride, pad)``, creating ``W`` first when it is lazy."""
        shape = check_input(type(self).__name__, x, ndim=4)
        if self.W.data is not None:
            return op(x, self.W, self.b, self.stride, self.pad)
        self.in_channels = shape[1]
        try:
            self._init_W(self._lazy_backend(x))
            return op(x, self.W, self.b, self.stride, self.pad)
        except BaseException:
            self.W.data, self.in_channels = None, None  # a failed first call sizes nothing
            raise


class Conv2d(_ConvBase):
    """2-D convolution; ``W`` (out, in, kh, kw) ~ N(0, 1/(in*kh*kw)), lazy when
    ``in_channels`` is None."""

    def _w_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        return (OC, C, KH, KW)

    def forward(self, x: VariableLike) -> Variable:
        return self._call(F.conv2d, x)

    def _after_load(self) -> None:
        if self.W.data is not None:
            self.in_channels = self.W.shape[1]


class Deconv2d(_ConvBase):
    """2-D transposed convolution; ``W`` (in, out, kh, kw), lazy when ``in_channels`` is None."""

    def _w_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        return (C, OC, KH, KW)

    def forward(self, x: VariableLike) -> Variable:
        return self._call(F.deconv2d, x)

    def _after_load(self) -> None:
        if self.W.data is not None:
            self.in_channels = self.W.shape[0]


class BatchNorm(Layer):
    """Batch normalization over axis 1; ``gamma``, ``beta`` and the running averages
    ``avg_mean``/``avg_var`` are sized from the first input's channels.

    ``avg_mean``/``avg_var`` are Variables, as DeZero's (``bn.avg_mean.data``), whose arrays
    ``F.batch_norm`` updates in place in training mode and uses in test mode
    (``dezero_xp.test_mode()``). They are saved with the weights but are not among ``params()``:
    nothing trains them. ``dtype`` None means the input's dtype. ``comm`` (a
    ``dezero_xp.distributed`` communicator) makes it synchronised batch normalization: training
    statistics over the global batch of all ranks.
    """

    # State Variables registered with add_persistent (saved, moved, not trained).
    avg_mean: Variable
    avg_var: Variable

    def __init__(
        self,
        decay: float = 0.9,
        eps: float = 2e-5,
        dtype: DTypeLike | None = None,
        device: DeviceLike | None = None,
        comm: Any = None,
    ) -> None:
        super().__init__(device)
        if not _is_real(decay) or not 0 <= decay <= 1:
            raise ValueError(f"BatchNorm: decay must be a number in [0, 1], got {decay!r}")
        if not _is_real(eps) or not eps > 0:
            raise ValueError(f"BatchNorm: eps must be a number > 0, got {eps!r}")
        self.comm = comm
        self.decay = decay
        self.eps = eps
        self.dtype = check_float_dtype("BatchNorm", dtype, self._creation_backend(), optional=True)
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.add_persistent("avg_mean", Variable(None, name="avg_mean"))
        self.add_persistent("avg_var", Variable(None, name="avg_var"))

    def _init_params(self, x: Any) -> None:
        backend = self._lazy_backend(x)
        size = x.shape[1]
        dtype = self.dtype if self.dtype is not None else x.dtype
        if self.gamma.data is None:
            self.gamma.data = backend.ones((size,), dtype)
        if self.beta.data is None:
            self.beta.data = backend.zeros((size,), dtype)
        if self.avg_mean.data is None:
            self.avg_mean.data = backend.zeros((size,), dtype)
        if self.avg_var.data is None:
            self.avg_var.data = backend.ones((size,), dtype)

    def _expected_shape(self, name: str) -> tuple[Any, ...] | None:
        """Lazy gamma, beta and running averages: one channel count, shared by all four."""
        return ("channels",)

    def forward(self, x: VariableLike) -> Variable:
        check_input("BatchNorm", x, min_ndim=2, floating=True)
        lazy = self.avg_mean.data is None or self.gamma.data is None
        before = (self.gamma.data, self.beta.data, self.avg_mean.data, self.avg_var.data)
        if lazy:
            self._init_params(x)
        mean, var = self.avg_mean.data, self.avg_var.data
        try:
            if self.comm is not None:
                return F.sync_batch_norm(
                    x,
                    self.gamma,
                    self.beta,
                    mean,
                    var,
                    self.comm,
                    self.decay,
                    self.eps,
                )
            return F.batch_norm(
                x,
                self.gamma,
                self.beta,
                mean,
                var,
                decay=self.decay,
                eps=self.eps,
            )
        except BaseException:
            if lazy:  # a failed first call keeps no channel count
                self.gamma.data, self.beta.data, self.avg_mean.data, self.avg_var.data = before
            raise


class EmbedID(Layer):
    """A lookup table: row ``x`` of ``W`` (in_size, out_size), ``W`` ~ N(0, 1)."""

    def __init__(
        self,
        in_size: int,
        out_size: int,
        dtype: DTypeLike = "float32",
        device: DeviceLike | None = None,
    ) -> None:
        super().__init__(device)
        self.in_size = check_size("EmbedID", "in_size", in_size)
        self.out_size = check_size("EmbedID", "out_size", out_size)
        self.dtype = check_float_dtype("EmbedID", dtype, self._creation_backend())
        backend = self._creation_backend()
        self.W = Parameter(backend.normal((in_size, out_size), dtype), name="W")

    def forward(self, x: VariableLike) -> Variable:
        return F.embed_id(x, self.W)
