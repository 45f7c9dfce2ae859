"""Optimizers and hooks: updates against NumPy references written from the algorithms' formulas,
on every backend; hooks; dtype preservation; state that follows its parameter across devices;
checkpoints; convergence on a quadratic; a cross-check against torch.optim where it applies.
"""

from __future__ import annotations

import gc
import importlib.util
import math

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.optimizers as O
from dezero_xp.backend import backend_of, get_backend

HAS_TORCH = importlib.util.find_spec("torch") is not None


class Target:
    """A stand-in for a Layer: anything with ``params()``."""

    def __init__(self, *params):
        self.param_list = list(params)

    def params(self):
        yield from self.param_list


# ----------------------------------------------------------------------------- references
# Each reference takes the initial parameter and the list of gradients of successive steps and
# returns the parameter after all the steps, in float64 NumPy.


def ref_sgd(p, grads, lr=0.1):
    for g in grads:
        p = p - lr * g
    return p


def ref_momentum(p, grads, lr=0.1, momentum=0.9):
    v = np.zeros_like(p)
    for g in grads:
        v = momentum * v - lr * g
        p = p + v
    return p


def ref_adagrad(p, grads, lr=0.1, eps=1e-8):
    h = np.zeros_like(p)
    for g in grads:
        h = h + g**2
        p = p - lr * g / (np.sqrt(h) + eps)
    return p


def ref_adadelta(p, grads, rho=0.9, eps=1e-6):
    eg2 = np.zeros_like(p)  # running mean of g^2
    edx2 = np.zeros_like(p)  # running mean of step^2
    for g in grads:
        eg2 = rho * eg2 + (1 - rho) * g**2
        step = np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * step**2
        p = p - step
    return p


def ref_adam(p, grads, alpha=0.01, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=0.0):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        step_size = alpha * np.sqrt(1 - beta2**t) / (1 - beta1**t)
        p = p * (1 - alpha * weight_decay) - step_size * m / (np.sqrt(v) + eps)
    return p


CASES = {
    "SGD": (lambda: O.SGD(lr=0.1), ref_sgd, 1),
    "SGD-3": (lambda: O.SGD(lr=0.1), ref_sgd, 3),
    "MomentumSGD": (lambda: O.MomentumSGD(lr=0.1, momentum=0.9), ref_momentum, 4),
    "AdaGrad": (lambda: O.AdaGrad(lr=0.1), ref_adagrad, 4),
    "AdaDelta": (lambda: O.AdaDelta(rho=0.9), ref_adadelta, 4),
    "Adam": (lambda: O.Adam(alpha=0.01, beta1=0.8, beta2=0.99), ref_adam, 4),
    "AdamW": (
        lambda: O.Adam(alpha=0.01, beta1=0.8, beta2=0.99, weight_decay=0.1),
        lambda p, gs: ref_adam(p, gs, weight_decay=0.1),
        4,
    ),
}


def run_steps(xb, optimizer, p_host, grads, dtype):
    """Apply ``optimizer`` to one parameter with the given gradients; the parameter afterwards."""
    param = dz.Parameter(xb.asarray(p_host.astype(dtype)))
    optimizer.setup(Target(param))
    for g in grads:
        param.grad = xb.variable(g.astype(dtype))
        optimizer.update()
    return param


@pytest.mark.parametrize("case", list(CASES))
def test_update_matches_reference_float64(xb, rng, case):
    make, ref, steps = CASES[case]
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(steps)]
    param = run_steps(xb, make(), p0, grads, np.float64)
    assert param.backend is xb.backend
    np.testing.assert_allclose(xb.numpy(param), ref(p0, grads), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", list(CASES))
def test_float32_stays_float32(xb, rng, case):
    make, ref, steps = CASES[case]
    p0 = rng.standard_normal((5,)).astype(np.float32)
    grads = [rng.standard_normal((5,)).astype(np.float32) for _ in range(steps)]
    optimizer = make()
    param = run_steps(xb, optimizer, p0, grads, np.float32)
    assert param.dtype == xb.dtype("float32")
    assert param.backend is xb.backend
    for arrays in (slot.arrays for slot in optimizer._slots.values()):
        for array in arrays.values():
            assert array.dtype == xb.dtype("float32")
            assert backend_of(array) is xb.backend
    expected = ref(p0.astype(np.float64), [g.astype(np.float64) for g in grads])
    np.testing.assert_allclose(xb.numpy(param), expected, rtol=2e-5, atol=2e-6)


def test_numpy_scalar_hyperparameters_do_not_upcast(xb):
    param = dz.Parameter(xb.asarray(np.ones(3, np.float32)))
    param.grad = xb.variable(np.ones(3, np.float32))
    O.Adam(alpha=np.float64(0.1), beta1=np.float64(0.9)).setup(Target(param)).update()
    assert param.dtype == xb.dtype("float32")
    O.MomentumSGD(lr=np.float64(0.1)).setup(Target(param)).update()
    assert param.dtype == xb.dtype("float32")


def test_adam_lr_and_t():
    opt = O.Adam(alpha=0.1, beta1=0.5, beta2=0.75)
    param = dz.Parameter(np.zeros(2))
    opt.setup(Target(param))
    assert opt.t == 0
    assert opt.lr == pytest.approx(0.1 * np.sqrt(1 - 0.75) / (1 - 0.5))  # step 1's
    for t in (1, 2, 3):
        param.grad = dz.Variable(np.ones(2))
        opt.update()
        assert opt.t == t
        assert opt.lr == pytest.approx(0.1 * np.sqrt(1 - 0.75**t) / (1 - 0.5**t))


def test_adamw_class_defaults():
    opt = O.AdamW()
    assert isinstance(opt, O.Adam)
    assert opt.weight_decay == 0.01


def test_dezero_state_views(rng):
    p = dz.Parameter(rng.standard_normal(3))
    p.grad = dz.Variable(rng.standard_normal(3))
    adam = O.Adam().setup(Target(p))
    adam.update()
    assert set(adam.ms) == {id(p)} and set(adam.vs) == {id(p)}
    np.testing.assert_allclose(adam.ms[id(p)], 0.1 * p.grad.data)
    mom = O.MomentumSGD(lr=0.5).setup(Target(p))
    mom.update()
    np.testing.assert_allclose(mom.vs[id(p)], -0.5 * p.grad.data)
    ada = O.AdaGrad().setup(Target(p))
    ada.update()
    np.testing.assert_allclose(ada.hs[id(p)], p.grad.data**2)
    delta = O.AdaDelta().setup(Target(p))
    delta.update()
    assert set(delta.msg) == set(delta.msdx) == {id(p)}


# ----------------------------------------------------------------------------- update rules


def test_params_without_grad_are_skipped(xb, rng):
    p = dz.Parameter(xb.asarray(rng.standard_normal(3)))
    q = dz.Parameter(xb.asarray(rng.standard_normal(3)))
    q_before = xb.numpy(q).copy()
    p.grad = xb.variable(np.ones(3))
    opt = O.MomentumSGD(lr=0.1).setup(Target(p, q))
    opt.update()
    np.testing.assert_array_equal(xb.numpy(q), q_before)
    assert id(q) not in opt.vs and id(p) in opt.vs


def test_parameter_listed_twice_is_updated_once():
    p = dz.Parameter(np.zeros(2))
    p.grad = dz.Variable(np.ones(2))
    O.SGD(lr=0.5).setup(Target(p, p)).update()
    np.testing.assert_array_equal(p.data, [-0.5, -0.5])


def test_setup_returns_self_and_checks_target():
    opt = O.SGD()
    target = Target()
    assert opt.setup(target) is opt and opt.target is target
    with pytest.raises(TypeError, match="params"):
        O.SGD().setup([dz.Parameter(np.zeros(1))])
    with pytest.raises(RuntimeError, match="setup"):
        O.SGD().update()


def test_base_optimizer_needs_update_one():
    p = dz.Parameter(np.zeros(1))
    p.grad = dz.Variable(np.ones(1))
    with pytest.raises(NotImplementedError, match="update_one"):
        O.Optimizer().setup(Target(p)).update()


def test_update_is_in_place_on_param_data():
    data = np.zeros(3)
    p = dz.Parameter(data)
    p.grad = dz.Variable(np.ones(3))
    O.SGD(lr=1.0).setup(Target(p)).update()
    assert p.data is data
    np.testing.assert_array_equal(data, [-1.0, -1.0, -1.0])


# ----------------------------------------------------------------------------- hooks


def test_hooks_run_in_order_before_update_on_params_with_grads():
    p = dz.Parameter(np.zeros(2))
    q = dz.Parameter(np.zeros(2))
    p.grad = dz.Variable(np.ones(2))
    calls = []

    def first(params):
        calls.append(("first", [id(x) for x in params], p.data.copy()))

    def second(params):
        calls.append(("second", [id(x) for x in params], p.data.copy()))

    opt = O.SGD(lr=1.0).setup(Target(p, q))
    opt.add_hook(first)
    opt.add_hook(second)
    opt.update()
    assert [c[0] for c in calls] == ["first", "second"]
    assert all(c[1] == [id(p)] for c in calls)  # q has no gradient
    assert all(np.array_equal(c[2], [0, 0]) for c in calls)  # before the update
    np.testing.assert_array_equal(p.data, [-1, -1])


def test_weight_decay(xb, rng):
    p0, g0 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    p = dz.Parameter(xb.asarray(p0))
    p.grad = xb.variable(g0)
    opt = O.SGD(lr=0.1).setup(Target(p))
    opt.add_hook(O.WeightDecay(0.01))
    opt.update()
    np.testing.assert_allclose(xb.numpy(p), p0 - 0.1 * (g0 + 0.01 * p0), rtol=1e-13)


def test_clip_grad_scales_to_max_norm(xb, rng):
    g1, g2 = rng.standard_normal(4) * 3, rng.standard_normal((2, 2)) * 3
    p1, p2 = dz.Parameter(xb.asarray(np.zeros(4))), dz.Parameter(xb.asarray(np.zeros((2, 2))))
    p1.grad, p2.grad = xb.variable(g1), xb.variable(g2)
    norm = np.sqrt(np.sum(g1**2) + np.sum(g2**2))
    assert norm > 1.0
    O.ClipGrad(1.0)([p1, p2])
    rate = 1.0 / (norm + 1e-6)
    np.testing.assert_allclose(xb.numpy(p1.grad), g1 * rate, rtol=1e-13)
    np.testing.assert_allclose(xb.numpy(p2.grad), g2 * rate, rtol=1e-13)
    new_norm = np.sqrt(np.sum(xb.numpy(p1.grad) ** 2) + np.sum(xb.numpy(p2.grad) ** 2))
    assert new_norm == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_leaves_small_gradients_alone(xb):
    p = dz.Parameter(xb.asarray(np.zeros(2)))
    grad = xb.variable(np.array([0.3, 0.4]))  # norm 0.5
    p.grad = grad
    O.ClipGrad(1.0)([p])
    assert p.grad is grad
    np.testing.assert_array_equal(xb.numpy(p.grad), [0.3, 0.4])


def test_hooks_do_not_corrupt_a_shared_gradient():
    # The backward of `a + b` hands one gradient Variable to both inputs.
    a, b = dz.Parameter(np.array([1.0, 2.0])), dz.Parameter(np.array([3.0, 4.0]))
    (a + b).sum().backward()
    shared = a.grad is b.grad
    opt = O.SGD(lr=1.0).setup(Target(a, b))
    opt.add_hook(O.WeightDecay(0.5))
    opt.add_hook(O.ClipGrad(100.0))
    opt.update()
    # Each parameter got exactly its own decayed gradient 1 + 0.5 * p.
    np.testing.assert_allclose(a.data, [1 - 1.5, 2 - 2.0])
    np.testing.assert_allclose(b.data, [3 - 2.5, 4 - 3.0])
    if shared:
        assert a.grad is not b.grad


def test_freeze_param_with_layers_and_parameters(xb, rng):
    frozen_layer = Target(dz.Parameter(xb.asarray(rng.standard_normal(2))))
    frozen_param = dz.Parameter(xb.asarray(rng.standard_normal(2)))
    free = dz.Parameter(xb.asarray(np.zeros(2)))
    model = Target(*frozen_layer.param_list, frozen_param, free)
    before = [xb.numpy(p).copy() for p in model.params()]
    for p in model.params():
        p.grad = xb.variable(np.ones(2))
    opt = O.Adam().setup(model)
    opt.add_hook(O.FreezeParam(frozen_layer, frozen_param))
    opt.update()
    np.testing.assert_array_equal(xb.numpy(model.param_list[0]), before[0])
    np.testing.assert_array_equal(xb.numpy(frozen_param), before[1])
    assert frozen_param.grad is None
    assert not np.array_equal(xb.numpy(free), before[2])


def test_freeze_param_sees_parameters_created_later():
    layer = Target()  # like Linear(out_size) before its first call: no parameters yet
    hook = O.FreezeParam(layer)
    late = dz.Parameter(np.zeros(2))
    layer.param_list.append(late)
    late.grad = dz.Variable(np.ones(2))
    opt = O.SGD().setup(layer)
    opt.add_hook(hook)
    opt.update()
    np.testing.assert_array_equal(late.data, [0, 0])
    assert hook.freeze_params == [late]


def test_freeze_param_rejects_other_objects():
    with pytest.raises(TypeError, match="FreezeParam"):
        O.FreezeParam(np.zeros(2))


def test_weight_decay_after_freeze_param_skips_frozen():
    p = dz.Parameter(np.ones(2))
    p.grad = dz.Variable(np.ones(2))
    opt = O.SGD().setup(Target(p))
    opt.add_hook(O.FreezeParam(p))
    opt.add_hook(O.WeightDecay(0.1))
    opt.add_hook(O.ClipGrad(1.0))
    opt.update()
    np.testing.assert_array_equal(p.data, [1, 1])


# ----------------------------------------------------------------------------- devices


@pytest.mark.parametrize("make", [O.MomentumSGD, O.AdaGrad, O.AdaDelta, O.Adam])
def test_state_follows_parameter_to_another_device(xb, rng, make):
    p0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(4)]

    reference_param = dz.Parameter(p0.copy())
    reference = make().setup(Target(reference_param))
    for g in grads:
        reference_param.grad = dz.Variable(g)
        reference.update()

    cpu = get_backend("cpu")
    param = dz.Parameter(p0.copy())
    opt = make().setup(Target(param))
    for step, g in enumerate(grads):
        if step == 2:
            param.to(xb.backend)  # move mid-training; the state must follow
        param.grad = dz.Variable(xb.backend.from_host(g) if step >= 2 else g)
        opt.update()
        assert param.backend is (xb.backend if step >= 2 else cpu)
    for slot in opt._slots.values():
        assert all(backend_of(a) is xb.backend for a in slot.arrays.values())
    np.testing.assert_allclose(xb.numpy(param), reference_param.data, rtol=1e-12)
    # ... and back again
    param.to("cpu")
    param.grad = dz.Variable(grads[0])
    opt.update()
    assert all(backend_of(a) is cpu for s in opt._slots.values() for a in s.arrays.values())


def test_state_follows_a_dtype_change():
    p = dz.Parameter(np.zeros(2, np.float32))
    opt = O.MomentumSGD(lr=1.0).setup(Target(p))
    p.grad = dz.Variable(np.ones(2, np.float32))
    opt.update()
    p.data = p.data.astype(np.float64)
    p.grad = dz.Variable(np.ones(2))
    opt.update()
    assert opt.vs[id(p)].dtype == np.float64
    np.testing.assert_allclose(p.data, [-1 - 1.9, -1 - 1.9])


def test_state_of_a_dead_parameter_is_dropped():
    opt = O.Adam()
    target = Target(dz.Parameter(np.zeros(3)))
    opt.setup(target)
    target.param_list[0].grad = dz.Variable(np.ones(3))
    opt.update()
    assert len(opt._slots) == 1
    target.param_list.clear()
    gc.collect()
    assert len(opt._slots) == 0


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("make", [O.SGD, O.MomentumSGD, O.AdaGrad, O.AdaDelta, O.Adam])
def test_state_dict_round_trip_resumes_exactly(xb, rng, make):
    inits = [rng.standard_normal((2, 3)), rng.standard_normal(3)]
    grads = [[rng.standard_normal(x.shape) for x in inits] for _ in range(5)]

    def fresh():
        params = [dz.Parameter(xb.asarray(x)) for x in inits]
        return params, make().setup(Target(*params))

    def step(params, opt, gs):
        for p, g in zip(params, gs):
            p.grad = xb.variable(g)
        opt.update()

    params, opt = fresh()
    for gs in grads:
        step(params, opt, gs)

    params2, opt2 = fresh()
    for gs in grads[:3]:
        step(params2, opt2, gs)
    saved = opt2.state_dict()
    values = [xb.numpy(p).copy() for p in params2]
    for value in saved.values():
        assert type(value) is np.ndarray
    expected_keys = {f"state.{i}.{n}" for i in range(2) for n in make.state_names}
    assert set(saved) == expected_keys | set(make.counters)

    # "another process": new objects, so new id()s; resume from the saved values
    params3 = [dz.Parameter(xb.asarray(v)) for v in values]
    opt3 = make().setup(Target(*params3))
    opt3.load_state_dict(saved)
    for gs in grads[3:]:
        step(params3, opt3, gs)
    for p, p3 in zip(params, params3):
        np.testing.assert_allclose(xb.numpy(p3), xb.numpy(p), rtol=1e-13)
        assert p3.backend is xb.backend


def test_state_dict_is_a_copy():
    p = dz.Parameter(np.zeros(2))
    p.grad = dz.Variable(np.ones(2))
    opt = O.MomentumSGD().setup(Target(p))
    opt.update()
    saved = opt.state_dict()
    before = saved["state.0.v"].copy()
    opt.update()
    np.testing.assert_array_equal(saved["state.0.v"], before)
    assert int(O.Adam().setup(Target(p)).state_dict()["t"]) == 0


def test_load_state_dict_errors():
    p = dz.Parameter(np.zeros(2))
    p.grad = dz.Variable(np.ones(2))
    adam = O.Adam().setup(Target(p))
    adam.update()
    saved = adam.state_dict()
    with pytest.raises(KeyError, match="unexpected key"):
        O.MomentumSGD().setup(Target(p)).load_state_dict(saved)
    with pytest.raises(ValueError, match="shape"):
        O.Adam().setup(Target(dz.Parameter(np.zeros(3)))).load_state_dict(saved)
    with pytest.raises(ValueError, match="1 parameters"):
        bad = dict(saved, **{"state.1.m": saved["state.0.m"], "state.1.v": saved["state.0.v"]})
        O.Adam().setup(Target(p)).load_state_dict(bad)
    with pytest.raises(KeyError, match="missing"):
        O.Adam().setup(Target(p)).load_state_dict(
            {"t": saved["t"], "state.0.m": saved["state.0.m"]}
        )
    with pytest.raises(RuntimeError, match="setup"):
        O.Adam().load_state_dict(saved)


# ----------------------------------------------------------------------------- convergence

CONVERGENCE = {
    "SGD": (lambda: O.SGD(lr=0.1), 100),
    "MomentumSGD": (lambda: O.MomentumSGD(lr=0.05), 200),
    "AdaGrad": (lambda: O.AdaGrad(lr=0.5), 200),
    "AdaDelta": (lambda: O.AdaDelta(rho=0.9, eps=1e-2), 300),
    "Adam": (lambda: O.Adam(alpha=0.1), 300),
}


@pytest.mark.parametrize("case", list(CONVERGENCE))
def test_converges_on_a_quadratic(xb, case):
    make, steps = CONVERGENCE[case]
    center = np.array([1.0, -2.0, 0.5], np.float32)
    x = dz.Parameter(xb.asarray(np.zeros(3, np.float32)))
    c = xb.variable(center)
    opt = make().setup(Target(x))
    first = None
    for _ in range(steps):
        x.cleargrad()
        loss = ((x - c) ** 2).sum()
        loss.backward()
        first = float(xb.numpy(loss)) if first is None else first
        opt.update()
    assert first == pytest.approx(5.25)
    assert x.dtype == xb.dtype("float32")
    np.testing.assert_allclose(xb.numpy(x), center, atol=1e-2)


# ----------------------------------------------------------------------------- torch.optim


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("case", ["momentum", "adagrad", "adadelta", "adam", "adamw"])
def test_matches_torch_optim(rng, case):
    import torch

    # Same algorithms, written differently. Adam: DeZero divides by sqrt(v) + eps and folds the
    # bias correction sqrt(1 - beta2^t) into the step size; torch divides by
    # sqrt(v) / sqrt(1 - beta2^t) + eps. The two agree when torch's eps at step t is ours
    # divided by sqrt(1 - beta2^t): torch is given that eps before each step. (eps=0, which
    # made them equal trivially, is no longer a valid eps for ours.)
    make, torch_cls, kwargs = {
        "momentum": (O.MomentumSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
        "adagrad": (O.AdaGrad, torch.optim.Adagrad, dict(lr=0.1, eps=1e-8)),
        "adadelta": (O.AdaDelta, torch.optim.Adadelta, dict(lr=1.0, rho=0.9, eps=1e-6)),
        "adam": (O.Adam, torch.optim.Adam, dict(lr=0.01, eps=1e-3)),
        "adamw": (O.AdamW, torch.optim.AdamW, dict(lr=0.01, eps=1e-3, weight_decay=0.1)),
    }[case]
    p0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    tp = torch.tensor(p0, requires_grad=True)
    topt = torch_cls([tp], **kwargs)
    adam = make in (O.Adam, O.AdamW)
    for t, g in enumerate(grads, start=1):
        if adam:
            beta2 = topt.param_groups[0]["betas"][1]
            topt.param_groups[0]["eps"] = kwargs["eps"] / math.sqrt(1 - beta2**t)
        tp.grad = torch.tensor(g)
        topt.step()
    ours_kwargs = {k: v for k, v in kwargs.items() if k != "lr"}
    if make in (O.Adam, O.AdamW):
        ours_kwargs["alpha"] = kwargs["lr"]
    elif make is not O.AdaDelta:
        ours_kwargs["lr"] = kwargs["lr"]
    p = dz.Parameter(p0.copy())
    opt = make(**ours_kwargs).setup(Target(p))
    for g in grads:
        p.grad = dz.Variable(g)
        opt.update()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- real layers


def linear_problem(xb, rng):
    """A Linear layer, data and a loss function for a small regression on ``xb``."""
    import dezero_xp.functions as F
    import dezero_xp.layers as L

    x = xb.variable(rng.standard_normal((16, 3)).astype(np.float32))
    t = xb.variable(rng.standard_normal((16, 2)).astype(np.float32))
    layer = L.Linear(2, in_size=3, device=xb.backend)

    def loss_of(model, x, t):
        model.cleargrads()
        loss = F.mean_squared_error(model(x), t)
        loss.backward()
        return loss

    return layer, x, t, loss_of


@pytest.mark.parametrize("make", [O.SGD, O.MomentumSGD, O.Adam])
def test_training_a_linear_layer(xb, rng, make):
    layer, x, t, loss_of = linear_problem(xb, rng)
    opt = make().setup(layer)
    losses = [float(xb.numpy(loss_of(layer, x, t)))]
    for _ in range(30):
        opt.update()
        losses.append(float(xb.numpy(loss_of(layer, x, t))))
    assert losses[-1] < losses[0]
    assert all(p.backend is xb.backend and p.dtype == xb.dtype("float32") for p in layer.params())


def test_layer_moving_device_keeps_optimizer_state(xb, rng):
    layer, x, t, loss_of = linear_problem(xb, rng)
    twin = type(layer)(2, in_size=3)  # the same layer on the CPU all along
    for p, q in zip(layer.params(), twin.params()):
        q.data = xb.numpy(p).copy()
    x_cpu, t_cpu = dz.Variable(xb.numpy(x)), dz.Variable(xb.numpy(t))
    opt, twin_opt = O.Adam(alpha=0.05).setup(layer), O.Adam(alpha=0.05).setup(twin)
    for step in range(6):
        if step == 3:
            layer.to("cpu")  # mid-training: the moments must follow the parameters
            x, t = x_cpu, t_cpu
        loss_of(layer, x, t)
        opt.update()
        loss_of(twin, x_cpu, t_cpu)
        twin_opt.update()
    for p, q in zip(layer.params(), twin.params()):
        assert p.backend is get_backend("cpu")
        np.testing.assert_allclose(p.data, q.data, rtol=1e-5, atol=1e-6)


def test_checkpoint_round_trip_with_serialization(tmp_path, rng):
    serialization = pytest.importorskip("dezero_xp.serialization")
    import dezero_xp.layers as L

    class Net(L.Layer):
        def __init__(self):
            super().__init__()
            self.l1 = L.Linear(4, in_size=3)
            self.l2 = L.Linear(2, in_size=4)

        def forward(self, x):
            return self.l2(self.l1(x))

    def run(model, opt, steps, data):
        import dezero_xp.functions as F

        for x, t in data[:steps]:
            model.cleargrads()
            F.mean_squared_error(model(dz.Variable(x)), dz.Variable(t)).backward()
            opt.update()

    data = [
        (
            rng.standard_normal((5, 3)).astype(np.float32),
            rng.standard_normal((5, 2)).astype(np.float32),
        )
        for _ in range(6)
    ]
    dz.seed(0)
    model = Net()
    opt = O.Adam().setup(model)
    dz.seed(0)
    resumed_model = Net()
    resumed_opt = O.Adam().setup(resumed_model)
    run(resumed_model, resumed_opt, 3, data)
    path = serialization.save_checkpoint(tmp_path / "ckpt.npz", resumed_model, resumed_opt)
    restored_model, restored_opt = Net(), O.Adam()
    restored_opt.setup(restored_model)
    serialization.load_checkpoint(path, restored_model, restored_opt)
    assert restored_opt.t == 3
    run(model, opt, 6, data)
    run(restored_model, restored_opt, 3, data[3:])
    for p, q in zip(model.params(), restored_model.params()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6)
