"""Loss functions and metrics: mean_squared_error, softmax_cross_entropy, sigmoid_cross_entropy,
binary_cross_entropy (each with DeZero's textbook ``*_simple`` variant where DeZero has one) and
accuracy.

The fused losses compute their forward stably (log-sum-exp, softplus) and write their derivative
once (``vjp``), so double backward works. Integer labels become a one-hot mask built with
standard ops (``t[:, None] == arange(C)``), which runs on every backend. Losses are averaged over
the first axis (the batch), as in DeZero.

May import: dezero_xp.core, dezero_xp.backend and the other families of dezero_xp.functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import zip_longest
from typing import TYPE_CHECKING

from dezero_xp.backend import DeviceMismatchError, backend_of
from dezero_xp.core import Function, Variable, as_variable, wrap_array
from dezero_xp.functions._checks import refuse_complex
from dezero_xp.functions.activation import softmax
from dezero_xp.functions.elementwise import clip, log
from dezero_xp.functions.reduce import sum as _sum
from dezero_xp.functions.shape import get_item, reshape

if TYPE_CHECKING:
    from dezero_xp.typing import VariableLike

__all__ = [
    "accuracy",
    "binary_cross_entropy",
    "mean_squared_error",
    "mean_squared_error_simple",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_simple",
]


_REAL_LOSS = "is a loss to minimize"


def _batch_size(shape: Sequence[int], name: str) -> int:
    """DeZero's ``len(x)``: the length of the first axis (1 for a 0-d array), never 0.

    An empty batch has no average loss: refused here rather than a nan loss whose backward
    divides by zero (a ZeroDivisionError on the 1 / N of the rules).
    """
    n = shape[0] if len(shape) else 1
    if n == 0:
        raise ValueError(
            f"{name}: the batch is empty (shape {tuple(shape)}): a loss averaged over 0 samples "
            "is undefined; skip empty batches (e.g. a DataLoader's last one)"
        )
    return n


# --------------------------------------------------------------------------- mean squared error


def _check_same_shape(name, shape0, shape1):
    """Refuse the silent (N, 1) vs (N,) broadcast that turns a loss into an (N, N) matrix."""
    if tuple(shape0) == tuple(shape1):
        return
    pairs = zip_longest(shape0[::-1], shape1[::-1], fillvalue=1)
    out = tuple(max(a, b) for a, b in pairs)[::-1]
    if out not in (tuple(shape0), tuple(shape1)):
        raise ValueError(
            f"{name}: shapes {tuple(shape0)} and {tuple(shape1)} would broadcast to {out}, larger "
            "than both (a (N, 1) vs (N,) mix-up?); reshape one of them so the shapes match"
        )


class MeanSquaredError(Function):
    broadcasting = True  # one operand may broadcast to the other's shape

    def forward(self, x0, x1):
        _check_same_shape("mean_squared_error", x0.shape, x1.shape)
        # (x0 - x1)^2 is not the squared distance |x0 - x1|^2 of complex numbers.
        refuse_complex(self.xp, "mean_squared_error", x0, x1, what=_REAL_LOSS)
        diff = x0 - x1
        self.count = _batch_size(diff.shape, "mean_squared_error")
        return self.xp.sum(diff * diff) / self.count

    def vjp(self, F, gy, y, x0, x1):
        gx0 = gy * (x0 - x1) * (2.0 / self.count)  # d/dx0 sum(diff^2)/N = 2 diff / N
        return gx0, -gx0 if self.inputs[1].requires_grad else None


def mean_squared_error(x0: VariableLike, x1: VariableLike) -> Variable:
    """``sum((x0 - x1) ** 2) / len(x0)``: squared error summed, averaged over the batch axis."""
    return MeanSquaredError()(x0, x1)


def mean_squared_error_simple(x0: VariableLike, x1: VariableLike) -> Variable:
    """:func:`mean_squared_error` composed from elementwise ops (DeZero's textbook version)."""
    x0, x1 = as_variable(x0), as_variable(x1)
    refuse_complex(x0.xp, "mean_squared_error_simple", x0, x1, what=_REAL_LOSS)
    diff = x0 - x1
    return _sum(diff**2) / _batch_size(diff.shape, "mean_squared_error_simple")


# --------------------------------------------------------------------------- softmax cross entropy


def _raise_label_range(name, classes, x_shape):
    raise IndexError(
        f"{name}: labels must lie in [0, {classes}) for x of shape {tuple(x_shape)}; got labels "
        "outside that range"
    )


def _check_class_labels(name, x, t):
    """(N, C) scores and N integer labels; returns the labels as a 1-D array."""
    xp = backend_of(x).xp
    refuse_complex(xp, name, x, what="compares scores (a softmax shifted by the maximum)")
    if x.ndim != 2:
        raise ValueError(
            f"{name}: x must be 2-D scores of shape (batch, classes), got shape {tuple(x.shape)}"
        )
    if not xp.isdtype(t.dtype, "integral"):
        raise TypeError(
            f"{name}: labels t must be integer class indices, got dtype {t.dtype} (shape "
            f"{tuple(t.shape)}); convert them, e.g. t.astype(int) or xp.astype(t, xp.int64)"
        )
    n = _batch_size(x.shape, name)
    if math.prod(t.shape) != n or t.ndim > 2:
        raise ValueError(
            f"{name}: x has shape {tuple(x.shape)} ({n} rows) but labels t have shape "
            f"{tuple(t.shape)}; expected one integer label per row, shape ({n},)"
        )
    t = t if t.ndim == 1 else xp.reshape(t, (n,))
    # One index dtype for the comparisons with arange (no uint8 wrap-around, no mixed kinds).
    return t if t.dtype == xp.int64 else xp.astype(t, xp.int64)


class SoftmaxCrossEntropy(Function):
    op_name = "softmax_cross_entropy"
    input_names = ("x", "t")

    def forward(self, x, t):
        xp = self.xp
        t = _check_class_labels("softmax_cross_entropy", x, t)
        n, classes = x.shape
        shifted = x - xp.max(x, axis=1, keepdims=True)
        e = xp.exp(shifted)
        z = xp.sum(e, axis=1, keepdims=True)
        log_p = shifted - xp.log(z)  # log softmax, finite for any input
        classes_row = xp.arange(classes, dtype=xp.int64, device=self.backend.native_device)
        onehot = xp.reshape(t, (n, 1)) == classes_row
        valid = xp.any(onehot, axis=1)
        if self.backend.checks_values and not bool(xp.all(valid)):
            # Always on host backends; on GPUs (no sync wanted) only with eager checks, else
            # the loss is nan.
            _raise_label_range("softmax_cross_entropy", classes, x.shape)
        picked = xp.sum(xp.where(onehot, log_p, 0.0), axis=1)
        picked = xp.where(valid, picked, float("nan"))
        self.onehot = onehot
        self.probs = e / z  # softmax, reused by a first-order backward
        return -xp.sum(picked) / n

    def vjp(self, F, gy, y, x, t):
        probs = F.saved(self.probs, lambda: softmax(x))  # on Variables: differentiable again
        onehot = F.const(self.xp.astype(self.onehot, self.probs.dtype))
        return (probs - onehot) * (gy * (1.0 / x.shape[0])), None  # (softmax - onehot) / N


def softmax_cross_entropy(x: VariableLike, t: VariableLike) -> Variable:
    """Mean over the batch of ``-log softmax(x)[i, t[i]]``; ``x`` is (N, C), ``t`` N int labels.

    Stable for any magnitude of ``x``. Labels outside ``[0, C)`` raise IndexError on host-side
    backends; on a GPU (where checking would cost a device sync) they make the loss nan, unless
    eager checks are on (``dezero_xp.set_eager_checks()``), which raise there too.
    """
    return SoftmaxCrossEntropy()(x, t)


def softmax_cross_entropy_simple(x: VariableLike, t: VariableLike) -> Variable:
    """:func:`softmax_cross_entropy` composed from ops (DeZero's textbook version: softmax,
    clip to ``[1e-15, 1]``, log, pick the labels' entries)."""
    x = as_variable(x)
    t_data = t.data if isinstance(t, Variable) else t
    if backend_of(t_data) is not x.backend:
        raise DeviceMismatchError(
            f"softmax_cross_entropy_simple: x is on {x.backend} but t is on {backend_of(t_data)};"
            f" move t first, e.g. t.to('{x.backend}')"
        )
    backend, xp = x.backend, x.xp
    n, classes = x.shape[0], x.shape[-1]
    with backend:  # CuPy computes on its current device
        t_data = _check_class_labels("softmax_cross_entropy_simple", x.data, t_data)
        # The labels index a row each: on a GPU an out-of-range one would wrap around.
        if backend.checks_values and not bool(xp.all((t_data >= 0) & (t_data < classes))):
            _raise_label_range("softmax_cross_entropy_simple", classes, x.shape)
        rows = xp.arange(n, dtype=xp.int64, device=backend.native_device)
    p = clip(softmax(x), 1e-15, 1.0)  # to avoid log(0)
    tlog_p = get_item(log(p), (rows, t_data))
    return -1 * _sum(tlog_p) / n


# --------------------------------------------------------------------------- binary losses


def _squeezed(shape: Sequence[int]) -> tuple:
    return tuple(n for n in shape if n != 1)


def _labels_like(name, x, t):
    """``(t, is_variable)``: ``t`` as a Variable of ``x``'s shape.

    Integer labels become constants in ``x``'s dtype. Floating targets keep their dtype, so a
    float64 ``x`` meets float32 targets by the array library's promotion rule, as ``x - t``
    does in ``mean_squared_error``; a floating Variable stays itself (it gets a gradient, as in
    DeZero), a raw array becomes a constant.
    """
    t_is_variable = isinstance(t, Variable)
    data = t.data if t_is_variable else t
    if not t_is_variable and not hasattr(data, "shape"):
        raise TypeError(f"{name}: t must be an array or a Variable, got {type(t).__name__}")
    if backend_of(data) is not x.backend:
        raise DeviceMismatchError(
            f"{name}: x is on {x.backend} but t is on {backend_of(data)}; dezero_xp never copies "
            f"between devices implicitly, move t first, e.g. t.to('{x.backend}')"
        )
    x_shape, t_shape = tuple(x.shape), tuple(data.shape)
    # t takes x's shape; DeZero reshapes t only when the ranks differ ((N,) labels for (N, 1)
    # scores), and so do we when nothing but length-1 axes differ. (2, 3) against (3, 2) has
    # the right size but pairs the wrong elements: refused.
    if t_shape != x_shape and (
        len(t_shape) == len(x_shape) or _squeezed(t_shape) != _squeezed(x_shape)
    ):
        raise ValueError(
            f"{name}: x has shape {x_shape} but t has shape {t_shape}; t needs x's shape (only "
            f"length-1 axes may differ, as (N,) labels for (N, 1) scores): reshape or transpose "
            f"t to {x_shape}"
        )
    xp = x.xp
    refuse_complex(xp, name, x, data, what=_REAL_LOSS)
    floating = xp.isdtype(data.dtype, "real floating")
    keep = t_is_variable and floating
    if not keep:
        if not floating and data.dtype != x.dtype:  # 0/1 labels
            with x.backend:  # CuPy casts on its current device
                data = xp.astype(data, x.dtype)
        t = wrap_array(data, x.backend)  # labels: a constant
    if tuple(t.shape) != tuple(x.shape):
        t = reshape(t, x.shape)
    return t, keep


class SigmoidCrossEntropy(Function):
    def __init__(self, target_grad):
        self.target_grad = target_grad

    def forward(self, x, t):
        xp = self.xp
        self.count = _batch_size(x.shape, "sigmoid_cross_entropy")
        # -[t log s(x) + (1 - t) log(1 - s(x))] = max(x, 0) - t x + log(1 + exp(-|x|))
        loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return xp.sum(loss) / self.count

    def vjp(self, F, gy, y, x, t):
        scale = gy * (1.0 / self.count)
        gx = (F.sigmoid(x) - t) * scale  # d/dx = (sigmoid(x) - t) / N
        gt = -x * scale if self.target_grad and self.inputs[1].requires_grad else None
        return gx, gt


def sigmoid_cross_entropy(x: VariableLike, t: VariableLike) -> Variable:
    """Binary cross entropy of logits ``x`` against targets ``t`` (0/1 labels or probabilities),
    summed and averaged over the batch axis. Stable for any magnitude of ``x``.

    ``t`` has ``x``'s shape (only length-1 axes may differ: (N,) labels for (N, 1) scores).
    Integer labels are cast to ``x``'s dtype; floating targets given as a Variable get a
    gradient.
    """
    x = as_variable(x)
    t, target_grad = _labels_like("sigmoid_cross_entropy", x, t)
    return SigmoidCrossEntropy(target_grad)(x, t)


def binary_cross_entropy(p: VariableLike, t: VariableLike) -> Variable:
    """Cross entropy of probabilities ``p`` against targets ``t``, averaged over the batch axis.

    DeZero's definition: ``p`` is clipped to ``[1e-15, 0.999]`` before the logs. ``t`` has
    ``p``'s shape (only length-1 axes may differ).
    """
    p = as_variable(p)
    t, _ = _labels_like("binary_cross_entropy", p, t)
    n = _batch_size(p.shape, "binary_cross_entropy")
    p = clip(p, 1e-15, 0.999)
    tlog_p = t * log(p) + (1 - t) * log(1 - p)
    return -1 * _sum(tlog_p) / n


# --------------------------------------------------------------------------- metrics


def accuracy(y: VariableLike, t: VariableLike) -> Variable:
    """Fraction of rows where ``argmax(y, axis=1)`` equals the label ``t`` (not differentiable).

    Returns a 0-d Variable on ``y``'s device in the library's default float (float64 on NumPy,
    as DeZero's); no host transfer. An empty batch raises ValueError (as the losses do); integer
    labels outside ``[0, C)`` raise IndexError where values are checked (as in
    :func:`softmax_cross_entropy`).
    """
    y_data = y.data if isinstance(y, Variable) else y
    t_data = t.data if isinstance(t, Variable) else t
    backend = backend_of(y_data)
    if backend_of(t_data) is not backend:
        raise DeviceMismatchError(
            f"accuracy: y is on {backend} but t is on {backend_of(t_data)}; move t first, "
            f"e.g. t.to('{backend}')"
        )
    xp = backend.xp
    refuse_complex(xp, "accuracy", y_data, what="takes the argmax of the scores")
    if y_data.ndim < 2:
        raise ValueError(
            f"accuracy: y must be scores of shape (batch, classes, ...), got {tuple(y_data.shape)}"
        )
    if math.prod(y_data.shape) == 0:
        # The mean of no hits is nan (and a NumPy RuntimeWarning), as a loss over 0 samples.
        raise ValueError(
            f"accuracy: y of shape {tuple(y_data.shape)} holds no scores (an empty batch, or 0 "
            "classes): the fraction of correct predictions among none is undefined; skip "
            "empty batches (e.g. a DataLoader's last one)"
        )
    with backend:  # CuPy computes on its current device
        if xp.isdtype(t_data.dtype, "integral") and backend.checks_values:
            # A label outside [0, C) is never hit: a silent 0 for the row (as -1 wrapping
            # around would be on the losses); host backends check, GPUs with eager checks.
            classes = y_data.shape[1]
            if not bool(xp.all((t_data >= 0) & (t_data < classes))):
                _raise_label_range("accuracy", classes, y_data.shape)
        return Variable(_accuracy(xp, backend, y_data, t_data))


def _accuracy(xp, backend, y_data, t_data):
    pred = xp.argmax(y_data, axis=1)
    if tuple(pred.shape) != tuple(t_data.shape):
        if math.prod(pred.shape) != math.prod(t_data.shape):
            raise ValueError(
                f"accuracy: y of shape {tuple(y_data.shape)} gives {tuple(pred.shape)} "
                f"predictions but t has shape {tuple(t_data.shape)}"
            )
        pred = xp.reshape(pred, t_data.shape)
    if pred.dtype != t_data.dtype:
        pred = xp.astype(pred, t_data.dtype)  # compare in the labels' dtype (no mixed promotion)
    hits = pred == t_data
    # The library's default float (float64 on NumPy and CuPy), as DeZero's ``result.mean()``.
    dtype = xp.asarray(0.0, device=backend.native_device).dtype
    return xp.mean(xp.astype(hits, dtype))
