"""Neural-network layers' ops: linear (fused and composed), dropout, batch_norm, embed_id.

``dropout`` and ``batch_norm`` read ``Config.train`` (set by ``dezero_xp.test_mode()``):
dropout is the identity in test mode, batch norm then uses its running statistics. Random
masks come from the backend's kernel table (``self.ops.keep_mask``): NumPy's global generator on
NumPy, as DeZero draws them, unless ``dezero_xp.seed`` was called. Each op writes its
derivative once (``vjp``), so double backward works. Non-differentiable arrays (ids, running
statistics) are inputs without gradient, so the one device check of ``Function.__call__``
covers them.

May import: dezero_xp._config, dezero_xp.backend, dezero_xp.core, dezero_xp._shape and the other
families of dezero_xp.functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dezero_xp._config import Config
from dezero_xp.backend import backend_of, is_array
from dezero_xp.core import Function, Variable, as_variable
from dezero_xp.functions._checks import real_hyperparameter
from dezero_xp.functions.linalg import matmul

if TYPE_CHECKING:
    from dezero_xp.typing import ArrayLike, VariableLike

__all__ = [
    "batch_norm",
    "batch_nrom",
    "dropout",
    "embed_id",
    "linear",
    "linear_simple",
]


# --------------------------------------------------------------------------- linear


class Linear(Function):
    """``x @ W + b`` in one op; ``b`` is optional (then the op has two inputs)."""

    def forward(self, x, W, b=None):
        if W.ndim != 2 or x.ndim < 1 or x.shape[-1] != W.shape[0]:
            raise ValueError(
                f"linear: x of shape {tuple(x.shape)} and W of shape {tuple(W.shape)} do not "
                "fit; W must be (in_features, out_features) and x (..., in_features)"
            )
        if b is not None and tuple(b.shape) != (W.shape[1],):
            # Broadcasting would make a (N, 1) bias per-sample and a (K, N, out) one a new
            # output shape: one value per output feature, as conv2d's (OC,).
            raise ValueError(
                f"linear: b has shape {tuple(b.shape)} but W of shape {tuple(W.shape)} needs "
                f"one bias per output feature, shape ({W.shape[1]},); reshape b or pass None"
            )
        y = self.xp.matmul(x, W)
        if b is not None:
            y = y + b
        return y

    def vjp(self, F, gy, y, x, W, b=None):
        inputs = self.inputs
        # A batch passed as a plain array has no observable gradient: skip that matmul.
        gx = F.matmul(gy, F.matrix_transpose(W)) if inputs[0].requires_grad else None
        gW = None
        if inputs[1].requires_grad:
            if x.ndim == 2:
                gW = F.matmul(F.matrix_transpose(x), gy)
            else:  # all leading axes of x are batch axes: fold them into one for x^T gy
                x2 = F.reshape(x, (-1, W.shape[0]))
                gW = F.matmul(F.matrix_transpose(x2), F.reshape(gy, (-1, W.shape[1])))
        if b is None:
            return gx, gW
        return gx, gW, F.sum_to(gy, b.shape)


def linear(x: VariableLike, W: VariableLike, b: VariableLike | None = None) -> Variable:
    """Affine map ``x @ W + b`` (``W``: (in, out), ``b``: (out,) or None) as one fused op.

    ``x`` is (..., in); a ``b`` of another shape than (out,) is a ValueError, not broadcast.
    """
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


def linear_simple(x: VariableLike, W: VariableLike, b: VariableLike | None = None) -> Variable:
    """:func:`linear` composed from ``matmul`` and ``+`` (DeZero's textbook version)."""
    t = matmul(x, W)
    if b is None:
        return t
    return t + b


# --------------------------------------------------------------------------- dropout


class Dropout(Function):
    def __init__(self, dropout_ratio):
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        xp = self.xp
        if not xp.isdtype(x.dtype, "real floating"):
            raise TypeError(f"dropout: x must be a floating array, got dtype {x.dtype}")
        keep = xp.astype(self.ops.keep_mask(tuple(x.shape), self.dropout_ratio, x.dtype), x.dtype)
        # Kept units are scaled by 1 / (1 - ratio) so the expected value is unchanged; the
        # forward divides by the scale in x's dtype, as DeZero's ``x * mask / scale`` does.
        scale = 1.0 - self.dropout_ratio
        self.mask = keep / scale
        return x * keep / scale

    def vjp(self, F, gy, y, x):
        return gy * F.const(self.mask)


def dropout(x: VariableLike, dropout_ratio: float = 0.5) -> Variable:
    """Zero each element with probability ``dropout_ratio`` and scale the rest by
    ``1 / (1 - dropout_ratio)`` (training mode); in test mode return ``x`` unchanged."""
    real_hyperparameter("dropout", "dropout_ratio", dropout_ratio, "in [0, 1)", _unit_open)
    x = as_variable(x)
    if not Config.train:
        return x
    return Dropout(dropout_ratio)(x)


# --------------------------------------------------------------------------- batch norm


def _bn_layout(name, x_shape, params):
    """Reduction axes and the broadcast shape of per-channel values for 2-D or 4-D ``x``."""
    if len(x_shape) not in (2, 4):
        raise ValueError(f"{name}: x must be (N, C) or (N, C, H, W), got shape {tuple(x_shape)}")
    channels = x_shape[1]
    for label, value in params:
        if tuple(value.shape) != (channels,):
            raise ValueError(
                f"{name}: {label} has shape {tuple(value.shape)}, expected ({channels},) for x "
                f"of shape {tuple(x_shape)} (one value per channel, axis 1)"
            )
    if len(x_shape) == 2:
        return (0,), (1, channels)
    return (0, 2, 3), (1, channels, 1, 1)


class BatchNorm(Function):
    """Batch normalization over every axis but the channel axis 1.

    Training mode normalizes with the batch statistics and updates the running ``mean`` and
    ``var`` arrays in place (DeZero's unbiased ``m / (m - 1)`` correction for the variance);
    test mode normalizes with the running statistics. The running statistics are inputs without
    gradient: ``BatchNorm(decay, eps)(x, gamma, beta, mean, var)``.
    """

    op_name = "batch_norm"
    input_names = ("x", "gamma", "beta", "running mean", "running var")

    def __init__(self, decay, eps):
        self.decay = decay
        self.eps = eps
        self.train = Config.train

    def forward(self, x, gamma, beta, mean, var):
        xp = self.xp
        self.avg_mean, self.avg_var = mean, var
        params = (("gamma", gamma), ("beta", beta), ("mean", self.avg_mean), ("var", self.avg_var))
        self.axes, self.param_shape = _bn_layout("batch_norm", x.shape, params)
        self.count = math.prod(x.shape[i] for i in self.axes)  # elements per channel
        if self.train:
            if self.count == 0:
                # The mean of nothing is nan, and the update would write it into the running
                # statistics for good.
                raise ValueError(
                    f"batch_norm: x of shape {tuple(x.shape)} has no elements per channel; an "
                    "empty batch has no statistics to normalize with or to update the running "
                    "mean/var from. Skip empty batches, or run them in dezero_xp.test_mode()"
                )
            batch_mean = xp.mean(x, axis=self.axes, keepdims=True)
            xc = x - batch_mean
            batch_var = xp.mean(xc * xc, axis=self.axes, keepdims=True)
            inv_std = 1 / xp.sqrt(batch_var + self.eps)
            self._update_running(batch_mean, batch_var)
        else:
            mean = xp.reshape(xp.astype(self.avg_mean, x.dtype), self.param_shape)
            var = xp.reshape(xp.astype(self.avg_var, x.dtype), self.param_shape)
            inv_std = 1 / xp.sqrt(var + self.eps)
            xc = x - mean
            self.test_mean = mean  # a copy: later in-place updates do not reach the backward
        self.inv_std = inv_std
        self.x_hat = xc * inv_std
        return xp.reshape(gamma, self.param_shape) * self.x_hat + xp.reshape(beta, self.param_shape)

    def _update_running(self, batch_mean, batch_var):
        xp = self.xp
        channels = self.param_shape[1]
        m = self.count
        s = m - 1.0 if m - 1.0 > 1.0 else 1.0
        adjust = m / s  # unbiased variance estimate for the running average
        batch_mean = xp.astype(xp.reshape(batch_mean, (channels,)), self.avg_mean.dtype)
        batch_var = xp.astype(xp.reshape(batch_var, (channels,)), self.avg_var.dtype)
        # In place, so the caller's arrays (a layer's running statistics) see the update.
        self.avg_mean *= self.decay
        self.avg_mean += (1 - self.decay) * batch_mean
        self.avg_var *= self.decay
        self.avg_var += (1 - self.decay) * adjust * batch_var

    def _normalized(self, F, x):
        """``(x_hat, inv_std)`` rebuilt from ``x`` as functions of it (for create_graph)."""
        if not self.train:
            inv_std = F.const(self.inv_std)
            return (x - F.const(self.test_mean)) * inv_std, inv_std
        xc = x - F.sum(x, axis=self.axes, keepdims=True) * (1.0 / self.count)
        var = F.sum(xc * xc, axis=self.axes, keepdims=True) * (1.0 / self.count)
        inv_std = (var + self.eps) ** -0.5
        return xc * inv_std, inv_std

    def vjp(self, F, gy, y, x, gamma, beta, mean, var):
        channels = x.shape[1]
        x_hat, inv_std = F.saved((self.x_hat, self.inv_std), lambda: self._normalized(F, x))
        gamma_b = F.reshape(gamma, self.param_shape)
        gbeta = F.sum(gy, axis=self.axes, keepdims=True)
        ggamma = F.sum(x_hat * gy, axis=self.axes, keepdims=True)
        if self.train:
            # The batch statistics depend on x: d x_hat / dx projects out the mean and x_hat.
            m = self.count
            gx = (gamma_b * inv_std) * (gy - gbeta * (1.0 / m) - x_hat * (ggamma * (1.0 / m)))
        else:
            gx = gy * (gamma_b * inv_std)
        return gx, F.reshape(ggamma, (channels,)), F.reshape(gbeta, (channels,)), None, None


def _unit_open(v):
    return 0.0 <= v < 1.0


def _check_decay_and_eps(op, decay, eps):
    """The running-average decay in [0, 1] and a finite eps > 0 (a negative one makes nan)."""
    real_hyperparameter(op, "decay", decay, "in [0, 1]", lambda v: 0.0 <= v <= 1.0)
    real_hyperparameter(op, "eps", eps, "finite and > 0", lambda v: math.isfinite(v) and v > 0)


def _running_array(name, value):
    """The running statistic as a raw array (a Variable's array: updated in place too)."""
    data = value.data if isinstance(value, Variable) else value
    if not is_array(data):
        raise TypeError(
            f"batch_norm: {name} must be an array (the running statistic, updated in place), "
            f"got {type(value).__name__}"
        )
    if not backend_of(data).xp.isdtype(data.dtype, "real floating"):
        # Updated in place with a float average: an integer array cannot hold it.
        raise TypeError(
            f"batch_norm: {name} must be a real floating-point array (the running statistic, "
            f"updated in place), got dtype {data.dtype}; cast it, e.g. to float32"
        )
    return data


def batch_norm(
    x: VariableLike,
    gamma: VariableLike,
    beta: VariableLike,
    mean: ArrayLike,
    var: ArrayLike,
    decay: float = 0.9,
    eps: float = 2e-5,
) -> Variable:
    """Batch normalization of (N, C) or (N, C, H, W) ``x`` per channel, then ``gamma * . + beta``.

    ``mean`` and ``var`` are the running statistics (arrays of shape (C,) on ``x``'s device):
    training mode uses the batch statistics and updates them in place,
    ``mean = decay * mean + (1 - decay) * batch_mean`` (and likewise ``var``, with the unbiased
    batch variance); test mode (``dezero_xp.test_mode()``) normalizes with them instead.
    """
    _check_decay_and_eps("batch_norm", decay, eps)
    mean = _running_array("mean", mean)
    var = _running_array("var", var)
    return BatchNorm(decay, eps)(x, gamma, beta, mean, var)


batch_nrom = batch_norm  # DeZero's spelling


# --------------------------------------------------------------------------- embed_id


class EmbedID(Function):
    """Rows of ``W`` picked by integer ``ids`` (any shape): ``W[ids]``; ``EmbedID()(W, ids)``,
    the ids an input without gradient."""

    op_name = "embed_id"
    input_names = ("W", "ids")

    def forward(self, W, ids):
        xp = self.xp
        if not xp.isdtype(ids.dtype, "integral"):
            raise TypeError(
                f"embed_id: ids must be integers, got dtype {ids.dtype} (shape {tuple(ids.shape)})"
            )
        if W.ndim < 1:
            raise ValueError(f"embed_id: W must be at least 1-D, got shape {tuple(W.shape)}")
        self.W_shape = tuple(W.shape)
        self.flat_ids = flat = xp.reshape(ids, (-1,))
        vocabulary = W.shape[0]
        # Every library would wrap a negative id around to a row from the end, and CuPy wraps
        # large ones too: checked as softmax_cross_entropy checks labels, always on host
        # backends, on GPUs (where it costs a sync) only with eager checks on.
        if self.backend.checks_values and not bool(xp.all((flat >= 0) & (flat < vocabulary))):
            raise IndexError(
                f"embed_id: an index is out of range: ids must lie in [0, {vocabulary}) for W of "
                f"shape {self.W_shape} (one row per id), got ids of shape {tuple(ids.shape)} "
                "with values outside that range; negative ids do not count from the end here"
            )
        rows = xp.take(W, self.flat_ids, axis=0)
        return xp.reshape(rows, tuple(ids.shape) + self.W_shape[1:])

    def vjp(self, F, gy, y, W, ids):
        return F.apply(EmbedIDGrad(self.flat_ids, self.W_shape), gy), None


class EmbedIDGrad(Function):
    """Backward of embed_id: scatter-add the rows of ``gy`` into zeros shaped like ``W``."""

    def __init__(self, flat_ids, W_shape):
        self.flat_ids = flat_ids
        self.W_shape = W_shape

    def forward(self, gy):
        xp = self.xp
        gW = xp.zeros(self.W_shape, dtype=gy.dtype, device=self.backend.native_device)
        rows = xp.reshape(gy, (self.flat_ids.shape[0],) + self.W_shape[1:])
        return self.ops.scatter_add(gW, (self.flat_ids,), rows)

    def vjp(self, F, ggW, y, gy):
        # Linear in gy: its derivative picks the same rows again.
        return F.reshape(F.apply(EmbedID(), ggW, self.flat_ids), gy.shape)


def embed_id(x: VariableLike, W: VariableLike) -> Variable:
    """Embedding lookup ``W[x]``: ``x`` holds integer ids (any shape) on ``W``'s device.

    The result has shape ``x.shape + W.shape[1:]``; the gradient scatter-adds into ``W``.
    Ids outside ``[0, len(W))``, negative ones too, raise IndexError on host-side backends; on
    a GPU only with eager checks on (``dezero_xp.set_eager_checks()``), as labels in
    :func:`softmax_cross_entropy`.
    """
    ids = x.data if isinstance(x, Variable) else x
    if not is_array(ids):
        raise TypeError(
            f"embed_id: ids must be an integer array or Variable, got {type(x).__name__}"
        )
    return EmbedID()(W, ids)
