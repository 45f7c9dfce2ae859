"""Backend edges of ops: the sigmoid kernels' accuracy in both tails, negative-step slicing on
torch (get_item and its gradient), and torch device specs that are not devices.

The ops' own bad-input checks are in test_op_hardening.py."""

from __future__ import annotations

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F

# ----------------------------------------------------------------------------- sigmoid tails

SIGMOID_POINTS = {
    "float32": [-100.0, -20.0, -7.0, -1.0, 0.0, 0.5, 7.0, 20.0, 100.0],
    "float64": [-800.0, -40.0, -20.0, -1.0, 0.0, 0.5, 20.0, 40.0, 800.0],
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_exact_in_both_tails_on_every_backend(xb, dtype):
    host = np.array(SIGMOID_POINTS[dtype], dtype)
    with np.errstate(over="ignore"):  # the reference's exp(800) is inf, and 1 / inf is exact
        exact = 1 / (1 + np.exp(-host.astype(np.float64)))
    x = xb.variable(host)
    y = F.sigmoid(x)
    F.sum(y).backward()
    assert y.dtype == xb.dtype(dtype)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    tiny = np.finfo(dtype).tiny  # float32 sigmoid(-100) = 3.7e-44 is subnormal: judged absolutely
    np.testing.assert_allclose(xb.numpy(y), exact, rtol=rtol, atol=tiny)
    # The gradient y (1 - y) is exact where y is (x <= 0); for large x, 1 - y cancels (as in
    # torch), so the right tail is the forward's only.
    left = host <= 0
    grad = xb.numpy(x.grad)[left]
    np.testing.assert_allclose(grad, (exact * (1 - exact))[left], rtol=rtol, atol=tiny)
    assert xb.numpy(y)[1] > 0  # float32 sigmoid(-20) = 2.06e-9 and float64 sigmoid(-40), not 0


@pytest.mark.parametrize(("dtype", "rtol"), [("float32", 1e-6), ("float64", 1e-12)])
def test_sigmoid_has_a_small_relative_error_everywhere_on_every_backend(xb, dtype, rtol):
    # A dense grid: the tanh form's cancellation grows smoothly towards the left tail, so
    # checking a few tail points missed errors of 6e-6 (float32 near -5.8) and 2e-8 (float64
    # near -19.9) just before NumPy's kernel switched formulas.
    host = np.linspace(-30.0, 30.0, 6001).astype(dtype)
    exact = 1 / (1 + np.exp(-host.astype(np.float64)))
    y = xb.numpy(F.sigmoid(xb.variable(host)))
    np.testing.assert_allclose(y, exact, rtol=rtol, atol=0)


# ----------------------------------------------------------------------------- negative steps

NEGATIVE_STEP_KEYS = [
    slice(None, None, -1),
    (slice(None, None, -2), slice(3, 0, -1)),
    (Ellipsis, slice(None, None, -3)),
    (None, 1, slice(4, None, -2)),
    (slice(2, 2, -1), Ellipsis),  # empty
    (slice(None, None, -1), np.int64(2)),
    (slice(-1, -4, -1), slice(None, None, 2)),
]


@pytest.mark.parametrize("key", NEGATIVE_STEP_KEYS, ids=repr)
def test_get_item_takes_negative_steps_on_every_backend(xb, key):
    host = np.arange(20.0).reshape(4, 5)
    weights = np.random.default_rng(3).standard_normal(host[key].shape)
    x, w = xb.variable(host), xb.variable(weights)
    y = F.get_item(x, key)
    np.testing.assert_array_equal(xb.numpy(y), host[key])
    F.sum(y * w).backward(create_graph=True)
    expected = np.zeros_like(host)
    np.add.at(expected, key, weights)
    np.testing.assert_array_equal(xb.numpy(x.grad), expected)
    gx = x.grad
    w.cleargrad()
    # Through GetItemGrad's own backward (get_item again): d/dw sum(gx^2) = 2 gx[key] = 2 w.
    F.sum(gx * gx).backward()
    np.testing.assert_array_equal(xb.numpy(w.grad), 2 * weights)


def test_variable_reversed_by_a_slice_on_torch():
    pytest.importorskip("torch")
    x = dz.Variable(np.arange(6.0), device="torch:cpu")
    y = x[::-1]
    (y * dz.Variable(np.arange(6.0), device="torch:cpu")).sum().backward()
    np.testing.assert_array_equal(y.to_cpu().data, np.arange(6.0)[::-1])
    np.testing.assert_array_equal(x.grad.to_cpu().data, np.arange(6.0)[::-1])


# ----------------------------------------------------------------------------- torch devices


@pytest.mark.parametrize(
    "spec", ["torch:CPU", "torch:cuda:-1", "torch:meta", "torch:mps", "torch:x"]
)
@pytest.mark.parametrize("how", ["get_backend", "Variable", "to"])
def test_torch_device_specs_that_are_not_devices_raise_a_value_error(spec, how):
    pytest.importorskip("torch")
    make = {
        "get_backend": lambda: dz.get_backend(spec),
        "Variable": lambda: dz.Variable(np.zeros(2), device=spec),
        "to": lambda: dz.Variable(np.zeros(2)).to(spec),
    }[how]
    with pytest.raises(ValueError, match=rf"device '{spec}': .*\"torch:cuda:N\"") as info:
        make()
    assert "accepted device specs" in str(info.value)


def test_torch_device_objects_of_other_types_raise_a_value_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"meta.*the CPU and CUDA only"):
        dz.get_backend(torch.device("meta"))
    with pytest.raises(ValueError, match="the CPU and CUDA only"):
        dz.Variable(torch.empty(2, device="meta"))


@pytest.mark.parametrize("spec", ["torch", "torch:cpu", "torch:cpu:0"])
def test_torch_cpu_specs_still_work(spec):
    pytest.importorskip("torch")
    assert str(dz.get_backend(spec)) == "torch:cpu"


def test_a_missing_torch_cuda_device_is_unavailable_not_a_raw_torch_error(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(dz.DeviceUnavailableError, match=r"torch:cuda:3.*torch sees 1 CUDA"):
        dz.get_backend("torch:cuda:3")


@pytest.mark.parametrize("spec", ["torch:", "strict:", "cuda:", "cpu:", "auto:", "torch: "])
def test_a_spec_with_nothing_after_its_colon_is_refused(spec):
    # Was taken as the bare word ("torch:" meant "torch"), hiding a cut-off device name.
    with pytest.raises(ValueError, match=rf"unknown device {spec!r}; accepted device specs"):
        dz.backend.get_backend(spec)
