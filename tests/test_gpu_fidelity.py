"""The CUDA path against real CuPy's (13.0-14.2) and array-api-compat's behaviour, on the CPU.

Each finding of the GPU review has a test here that ran the fixed code path through the fake
CuPy (tests/fakecupy.py), whose model of the real libraries is itself tested first:

- the fake: array-api-compat's namespace (masked ``clip``/``sign``, creation ignoring
  ``device=``), ``np.asarray`` refusing device arrays, ``ndarray.scatter_add``'s
  DeprecationWarning, ``cupy.add.at``'s dtypes, index wrapping, ``*_like`` on the current device;
- scatter-add through ``cupy.add.at`` for every dtype; no hidden synchronisation in clip, abs,
  the losses; work inside the device scope on ``cuda:1``; labels and indices out of range
  (nan / wrap by default on a GPU, IndexError with eager checks);
- torch: no tensor made from a Python number per ``maximum(x, 0)``; the array-api-compat floor;
- a GPU machine: memory-pool bytes flat over 1,000 training steps (skipped elsewhere).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import fakecupy
import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import backend as B

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _cpu_default(monkeypatch):
    monkeypatch.setattr(B, "_default_spec", "cpu")


@pytest.fixture
def fake(monkeypatch):
    return fakecupy.install(monkeypatch, n_devices=2)


@pytest.fixture
def eager():
    B.set_eager_checks(True)
    yield
    B.set_eager_checks(False)


def _on(backend, host):
    return dz.Variable(backend.from_host(np.asarray(host)))


def _host(v):
    return B.to_host(v.data if isinstance(v, dz.Variable) else v)


def _clean(recorder):
    """No hidden synchronisation and nothing computed on the wrong device."""
    assert recorder.implicit_d2h == [], recorder.implicit_d2h
    assert recorder.wrong_device == [], recorder.wrong_device


# --------------------------------------------------------------------------- the fake itself


def test_fake_refuses_numpy_asarray_on_device_arrays_in_library_code(fake):
    a = fake.asarray(np.ones(3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        fakecupy.HOST_ONLY_NUMPY.asarray(a)
    from dezero_xp._backends import numpy as numpy_adapter

    assert numpy_adapter.np is fakecupy.HOST_ONLY_NUMPY  # what library code now calls
    with pytest.raises(TypeError, match="Implicit conversion"):
        B.NUMPY.from_host(a)  # a device array where a host array belongs


def test_fake_scatter_add_warns_as_cupy_13_and_14_do_and_add_at_does_not(fake):
    a = fake.asarray(np.zeros(3, dtype=np.float32))
    idx = fake.asarray(np.array([0, 0, 2]))
    with pytest.warns(DeprecationWarning, match="cupy.add.at"):
        fake.cupyx.scatter_add(a, idx, fake.asarray(np.ones(3, dtype=np.float32)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fake.add.at(a, idx, fake.asarray(np.ones(3, dtype=np.float32)))
    assert _host(a).tolist() == [4.0, 0.0, 2.0]


@pytest.mark.parametrize("dtype", ["int64", "int16", "bool", "complex64"])
def test_fake_add_at_takes_only_cupys_atomic_dtypes(fake, dtype):
    a = fake.asarray(np.zeros(3, dtype=dtype))
    with pytest.raises(TypeError, match="cupy.add.at only supports"):
        fake.add.at(a, fake.asarray(np.array([0, 1])), fake.asarray(np.ones(2, dtype=dtype)))


def test_fake_records_mask_indexing_and_wraps_indices(fake):
    a = fake.asarray(np.arange(4.0))
    fake.recorder.reset()
    _ = a[a > 1]
    a[a > 2] = 0.0
    assert len(fake.recorder.implicit_d2h) == 2
    assert _host(a[fake.asarray(np.array([5, -1]))]).tolist() == [1.0, 0.0]  # 5 % 4, -1 % 4
    assert _host(fake.xp.take(a, fake.asarray(np.array([6])), axis=0)).tolist() == [2.0]


def test_fake_namespace_is_array_api_compats_with_its_device_gaps(fake):
    xp = fake.xp
    assert hasattr(xp, "concat") and hasattr(xp, "permute_dims") and hasattr(xp, "astype")
    with fakecupy.Device(1):
        x = fake.asarray(np.ones(2))
    assert x.device.id == 1
    assert xp.zeros((2,), device=fakecupy.Device(1)).device.id == 0  # device= ignored
    assert xp.zeros_like(x).device.id == 0  # the current device, not the prototype's
    fake.recorder.reset()
    xp.clip(x, 0.0, 0.5)
    xp.sign(x)
    assert len(fake.recorder.implicit_d2h) >= 3  # compat's masked reads and writes


# --------------------------------------------------------------------------- scatter-add


def test_get_item_and_embed_id_gradients_use_add_at_without_warnings(fake):
    gpu = B.get_backend("cuda:1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = _on(gpu, np.arange(12.0).reshape(4, 3))
        idx = gpu.from_host(np.array([0, 2, 2]))
        F.sum(F.get_item(x, idx)).backward()
        W = _on(gpu, np.ones((5, 2)))
        F.sum(F.embed_id(gpu.from_host(np.array([[1, 1], [4, 0]])), W)).backward()
    assert _host(x.grad).tolist() == [[1.0] * 3, [0.0] * 3, [2.0] * 3, [0.0] * 3]
    assert _host(W.grad)[:, 0].tolist() == [1.0, 2.0, 0.0, 0.0, 1.0]
    assert x.grad.data.device.id == 1 and W.grad.data.device.id == 1
    _clean(fake.recorder)


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "int32", "int64", "int16", "uint8", "complex64"]
)
def test_scatter_add_works_for_dtypes_cupys_atomics_lack(fake, dtype):
    gpu, cpu = B.get_backend("cuda:0").ops, B.NUMPY.ops
    target = (np.arange(10) % 7).astype(dtype).reshape(5, 2)
    idx = np.array([4, 0, 4, 1, 4])
    values = (np.arange(10) * 3 % 5).astype(dtype).reshape(5, 2)
    expected = cpu.scatter_add(target.copy(), (idx,), values)
    got = gpu.scatter_add(gpu.from_host(target), (gpu.from_host(idx),), gpu.from_host(values))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(_host(got), expected)


def test_scatter_add_of_bools_is_a_clear_error(fake):
    gpu = B.get_backend("cuda:0").ops
    target = gpu.from_host(np.zeros(3, dtype=bool))
    with pytest.raises(TypeError, match="no atomic add for bool.*cast"):
        gpu.scatter_add(target, (gpu.from_host(np.array([0, 0])),), gpu.from_host(np.ones(2, bool)))


def test_scatter_add_through_a_mask_never_synchronises(fake):
    gpu = B.get_backend("cuda:0")
    x_host = np.array([[-1.0, 2.0], [3.0, -4.0]])
    x = _on(gpu, x_host)
    mask = gpu.from_host(x_host > 0)
    y = F.get_item(x, mask)  # the forward syncs (its shape depends on the mask), as in NumPy
    fake.recorder.reset()
    y.grad = dz.Variable(gpu.from_host(np.array([10.0, 20.0])))
    y.backward()
    assert _host(x.grad).tolist() == [[0.0, 10.0], [20.0, 0.0]]
    _clean(fake.recorder)


# --------------------------------------------------------------------------- hidden syncs


def test_clip_abs_and_the_losses_never_synchronise_on_a_gpu(fake):
    gpu = B.get_backend("cuda:0")
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((4, 3))
    fake.recorder.reset()
    x = _on(gpu, x_host)
    for y in (
        F.clip(x, -0.5, 0.5),
        F.abs(x),
        F.binary_cross_entropy(F.sigmoid(x), gpu.from_host(rng.integers(0, 2, (4, 3)))),
        F.softmax_cross_entropy_simple(x, gpu.from_host(np.array([0, 2, 1, 1]))),
    ):
        x.cleargrad()
        F.sum(y).backward()
        cpu = dz.Variable(x_host.copy())
    _clean(fake.recorder)
    cpu = dz.Variable(x_host.copy())
    F.sum(F.clip(cpu, -0.5, 0.5)).backward()
    x.cleargrad()
    F.sum(F.clip(x, -0.5, 0.5)).backward()
    np.testing.assert_allclose(_host(x.grad), cpu.grad.data)
    nan = _on(gpu, np.array([np.nan, -2.0, 0.0, 3.0]))
    F.sum(F.abs(nan)).backward()
    np.testing.assert_array_equal(_host(nan.grad), [np.nan, -1.0, 0.0, 1.0])  # NaN kept


# --------------------------------------------------------------------------- device scope


def test_losses_accuracy_and_leaf_backward_stay_on_the_second_gpu(fake):
    gpu = B.get_backend("cuda:1")
    x = _on(gpu, np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]]))
    t = gpu.from_host(np.array([1, 2]))
    acc = F.accuracy(x, t)
    assert acc.backend is gpu and acc.data.device.id == 1 and float(_host(acc)) == 0.5
    loss = F.softmax_cross_entropy_simple(x, t)
    loss.backward()
    assert loss.data.device.id == 1 and x.grad.data.device.id == 1
    p = _on(gpu, np.array([0.2, 0.7]))
    for f in (F.binary_cross_entropy, F.sigmoid_cross_entropy):
        y = f(p, gpu.from_host(np.array([0, 1])))  # integer labels cast on the device
        assert y.data.device.id == 1
    leaf = _on(gpu, np.array(3.0))
    leaf.backward()  # the seed gradient (ones_like) on the leaf's own device
    assert leaf.grad.data.device.id == 1
    _clean(fake.recorder)


# --------------------------------------------------------------------------- label / index ranges


@pytest.mark.parametrize("labels", [[0, 3], [0, -1]], ids=["too-large", "negative"])
def test_gpu_labels_out_of_range_give_nan_unless_eager_checks(fake, labels):
    gpu = B.get_backend("cuda:0")
    x = _on(gpu, np.zeros((2, 3)))
    t = gpu.from_host(np.array(labels))
    fake.recorder.reset()
    assert np.isnan(float(_host(F.softmax_cross_entropy(x, t))))
    _clean(fake.recorder)  # the default costs no synchronisation
    B.set_eager_checks(True)
    try:
        with pytest.raises(IndexError, match=r"softmax_cross_entropy.*\[0, 3\)"):
            F.softmax_cross_entropy(x, t)
        with pytest.raises(IndexError, match=r"softmax_cross_entropy_simple.*\[0, 3\)"):
            F.softmax_cross_entropy_simple(x, t)
    finally:
        B.set_eager_checks(False)


def test_simple_loss_refuses_negative_labels_on_the_cpu():
    # NumPy would wrap -1 to the last class silently.
    with pytest.raises(IndexError, match=r"softmax_cross_entropy_simple.*\[0, 3\)"):
        F.softmax_cross_entropy_simple(dz.Variable(np.zeros((2, 3))), np.array([0, -1]))


def test_gpu_indices_out_of_range_wrap_unless_eager_checks(fake, eager):
    B.set_eager_checks(False)
    gpu = B.get_backend("cuda:0")
    x = _on(gpu, np.arange(3.0))
    idx = gpu.from_host(np.array([4, -1]))
    assert _host(F.get_item(x, idx)).tolist() == [1.0, 2.0]  # CuPy: index % size
    ids = gpu.from_host(np.array([5]))
    assert _host(F.embed_id(ids, _on(gpu, np.eye(3)))).tolist() == [[0.0, 0.0, 1.0]]
    B.set_eager_checks(True)
    with pytest.raises(IndexError, match="get_item: an index is out of range.*size 3"):
        F.get_item(x, idx)
    with pytest.raises(IndexError, match="embed_id: an index is out of range"):
        F.embed_id(ids, _on(gpu, np.eye(3)))
    assert _host(F.get_item(x, gpu.from_host(np.array([2, -3])))).tolist() == [2.0, 0.0]


def test_eager_checks_from_the_environment_and_the_api():
    import subprocess
    import sys

    code = "import dezero_xp as dz; print(dz.backend.eager_checks())"
    env = {**__import__("os").environ, "DEZERO_XP_EAGER_CHECKS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "True", out.stderr
    assert B.eager_checks() is False and B.NUMPY.checks_values  # host backends always check


# --------------------------------------------------------------------------- torch


def test_torch_maximum_against_a_number_makes_no_tensor(monkeypatch):
    torch = pytest.importorskip("torch")
    made = []
    real = torch.asarray
    monkeypatch.setattr(torch, "asarray", lambda *a, **k: made.append(a) or real(*a, **k))
    backend = B.get_backend("torch")
    x = dz.Variable(torch.tensor([-1.0, float("nan"), 2.0]))
    y = F.relu(x)
    F.sigmoid_cross_entropy(x, torch.tensor([0.0, 1.0, 1.0]))
    assert made == []  # compat's maximum(x, 0) would copy the 0 to the device every call
    assert torch.isnan(y.data[1]) and y.data[0] == 0 and y.data[2] == 2
    assert backend.xp.minimum(torch.tensor([3, -2]), 1).tolist() == [1, -2]  # ints: compat's


def test_the_array_api_compat_floor_is_the_one_the_floor_session_tests():
    pyproject = (ROOT / "pyproject.toml").read_text()
    floor = re.search(r'"array-api-compat>=([0-9.]+)"', pyproject).group(1)
    noxfile = (ROOT / "noxfile.py").read_text()
    assert 'name="tests-floor"' in noxfile and "ARRAY_API_COMPAT_FLOOR" in noxfile
    assert re.search(rf'ARRAY_API_COMPAT_FLOOR = "{re.escape(floor)}"', noxfile)
    # 1.11-1.15 break maximum(x, 0) and reshape(copy=True) on torch; 1.16 is what is tested.
    assert tuple(int(p) for p in floor.split(".")[:2]) >= (1, 16)


# --------------------------------------------------------------------------- GPU memory


@pytest.mark.gpu
def test_gpu_memory_pool_stays_flat_over_1000_training_steps():
    if not B.cuda_available():
        pytest.skip(f"no usable CUDA GPU: {B._cuda_status()[1]}")
    cupy = __import__("cupy")
    pool = cupy.get_default_memory_pool()
    model = dz.models.MLP((64, 10))
    model.to("cuda")
    opt = dz.optimizers.Adam().setup(model)
    rng = np.random.default_rng(0)
    gpu = B.get_backend("cuda")
    x = gpu.from_host(rng.standard_normal((32, 20)).astype(np.float32))
    t = gpu.from_host(rng.integers(0, 10, 32))

    def step():
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()

    for _ in range(50):  # warm the pool up
        step()
    cupy.cuda.Device().synchronize()
    before = pool.used_bytes()
    for _ in range(1000):
        step()
    cupy.cuda.Device().synchronize()
    assert pool.used_bytes() <= before, (before, pool.used_bytes())


def test_the_examples_accumulate_their_figures_on_the_models_gpu(fake):
    import importlib.util
    import sys

    monkey = pytest.MonkeyPatch()
    monkey.syspath_prepend(str(ROOT / "examples"))
    try:
        spec = importlib.util.spec_from_file_location("_common", ROOT / "examples" / "_common.py")
        common = sys.modules["_common"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(common)
    finally:
        monkey.undo()
        sys.modules.pop("_common", None)
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal(4).astype(np.float32), int(rng.integers(0, 3))) for _ in range(6)]
    model = dz.models.MLP((5, 3))
    model.to("cuda:1")
    loader = dz.DataLoader(data, batch_size=3, shuffle=False, device="cuda:1")
    fake.recorder.reset()
    loss, acc = common.evaluate(model, loader)
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
    assert fake.recorder.wrong_device == []
