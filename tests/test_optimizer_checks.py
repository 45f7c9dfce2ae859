"""Optimizers refuse what would silently train wrongly: bad hyperparameters, gradients on
another device or library, of another shape, for integer parameters, or not Variables."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.optimizers as O
from dezero_xp.backend import DeviceMismatchError, get_backend

HAS_STRICT = importlib.util.find_spec("array_api_strict") is not None
needs_strict = pytest.mark.skipif(not HAS_STRICT, reason="array-api-strict is not installed")


class Target:
    def __init__(self, *params):
        self.param_list = list(params)

    def params(self):
        yield from self.param_list


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        (lambda: O.SGD(lr=float("nan")), ValueError, "SGD: lr must be finite and >= 0"),
        (lambda: O.SGD(lr=float("inf")), ValueError, "SGD: lr"),
        (lambda: O.SGD(lr=-1), ValueError, "SGD: lr"),
        (lambda: O.SGD(lr="0.1"), TypeError, "SGD: lr must be a real number, got str"),
        (lambda: O.SGD(lr=None), TypeError, "SGD: lr"),
        (lambda: O.SGD(lr=True), TypeError, "SGD: lr"),
        (lambda: O.SGD(lr=np.ones(2)), TypeError, "SGD: lr"),
        (lambda: O.MomentumSGD(momentum=-0.5), ValueError, "MomentumSGD: momentum"),
        (lambda: O.MomentumSGD(momentum=1.0), ValueError, "MomentumSGD: momentum"),
        (lambda: O.AdaGrad(eps=0), ValueError, "AdaGrad: eps must be finite and > 0"),
        (lambda: O.AdaDelta(rho=1.5), ValueError, "AdaDelta: rho must be finite and >= 0.0"),
        (lambda: O.Adam(beta1=1), ValueError, "Adam: beta1 must be finite and >= 0.0 and < 1.0"),
        (lambda: O.Adam(beta2=1.0), ValueError, "Adam: beta2"),
        (lambda: O.Adam(alpha=-0.1), ValueError, "Adam: alpha"),
        (lambda: O.Adam(eps=-1e-8), ValueError, "Adam: eps"),
        (lambda: O.AdamW(weight_decay=float("nan")), ValueError, "AdamW: weight_decay"),
        (lambda: O.WeightDecay(-1e-4), ValueError, "WeightDecay: rate"),
        (lambda: O.ClipGrad(0), ValueError, "ClipGrad: max_norm must be finite and > 0"),
    ],
)
def test_bad_hyperparameters_are_refused(make, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        make()


def test_hyperparameters_are_checked_when_reassigned_too():
    optimizer = O.SGD(lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        optimizer.lr = float("nan")
    assert optimizer.lr == 0.1
    optimizer.lr = np.float32(0.5)  # a schedule may hand NumPy scalars or 0-d arrays
    assert optimizer.lr == 0.5 and type(optimizer.lr) is float
    optimizer.lr = np.asarray(0.25)
    assert optimizer.lr == 0.25
    assert O.SGD(lr=0).lr == 0.0  # a zero step is legal (a frozen phase)


def test_adam_with_valid_betas_still_trains():
    p = dz.Parameter(np.ones(3, np.float32))
    optimizer = O.Adam(beta1=0.0, beta2=0.5).setup(Target(p))
    p.grad = dz.Variable(np.ones(3, np.float32))
    optimizer.update()
    assert np.all(np.isfinite(p.data)) and np.all(p.data < 1)


def _bad_grad_case(param, grad, optimizer_class=O.SGD):
    param.grad = grad
    before = np.array(dz.backend.to_host(param.data), copy=True)
    optimizer = optimizer_class().setup(Target(param))
    return optimizer, before


def _assert_unchanged(param, before):
    np.testing.assert_array_equal(np.asarray(dz.backend.to_host(param.data)), before)


def test_grad_of_another_shape_is_refused():
    W = dz.Parameter(np.zeros((3, 2), np.float32), name="W")
    optimizer, before = _bad_grad_case(W, dz.Variable(np.ones(1, np.float32)))
    with pytest.raises(
        ValueError, match=r"SGD: the grad of parameter 0 'W' \(shape \(3, 2\)\).*\(1,\)"
    ):
        optimizer.update()
    _assert_unchanged(W, before)


@needs_strict
@pytest.mark.parametrize(
    ("param_spec", "grad_spec"),
    [("strict:device1", "strict"), ("cpu", "strict"), ("strict", "cpu")],
    ids=["other-device", "other-library", "numpy-grad-on-strict"],
)
def test_grad_on_another_device_or_library_is_refused(param_spec, grad_spec):
    param_backend, grad_backend = get_backend(param_spec), get_backend(grad_spec)
    p = dz.Parameter(param_backend.from_host(np.zeros(3, np.float32)), name="w")
    optimizer, before = _bad_grad_case(
        p, dz.Variable(grad_backend.from_host(np.ones(3, np.float32)))
    )
    with pytest.raises(DeviceMismatchError, match="nothing is copied implicitly") as info:
        optimizer.update()
    assert str(param_backend) in str(info.value) and str(grad_backend) in str(info.value)
    _assert_unchanged(p, before)


@pytest.mark.parametrize("optimizer_class", [O.SGD, O.MomentumSGD, O.Adam])
def test_integer_parameters_are_refused_clearly(optimizer_class):
    p = dz.Parameter(np.arange(3), name="counts")
    optimizer, before = _bad_grad_case(p, dz.Variable(np.ones(3, np.int64)), optimizer_class)
    with pytest.raises(TypeError, match="has dtype int64; optimizers update floating-point"):
        optimizer.update()
    _assert_unchanged(p, before)


def test_a_raw_array_as_grad_is_refused():
    p = dz.Parameter(np.zeros(3, np.float32))
    optimizer, before = _bad_grad_case(p, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="assign a Variable"):
        optimizer.update()
    _assert_unchanged(p, before)


@needs_strict
def test_a_grad_of_another_float_dtype_is_cast_to_the_parameter_dtype():
    # array-api-strict refuses float32 -= float64 in place; the optimizer casts explicitly.
    backend = get_backend("strict")
    p = dz.Parameter(backend.from_host(np.ones(3, np.float32)))
    p.grad = dz.Variable(backend.from_host(np.ones(3, np.float64)))
    O.SGD(lr=0.5).setup(Target(p)).update()
    assert p.dtype == backend.xp.float32
    np.testing.assert_array_equal(np.asarray(dz.backend.to_host(p.data)), np.full(3, 0.5))
