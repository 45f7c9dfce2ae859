"""The CUDA paths: ``device=`` everywhere, the CPU fallback, strict mode, and CupyKernels' logic.

Three kinds of test, and what each proves:

- Fallback (CuPy missing, or importable with no usable device; simulated by patching
  ``dezero_xp._backends.cupy.import_cupy``): a whole training loop asked to run on ``"cuda"``
  warns once and gives exactly the CPU's numbers; strict mode raises instead.
- Fake CUDA (``tests/fakecupy.py``, NumPy playing CuPy): the CUDA code paths run on this CPU,
  with device selection, the kernel table, placement on ``cuda:N`` and the absence of hidden
  host round trips checked. This checks LOGIC, not CUDA: no kernel runs on a GPU here.
- Real GPU (marked ``gpu``): the same checks on CuPy; skipped, with the reason, without one.
"""

from __future__ import annotations

import functools
import types
import warnings

import fakecupy
import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp import backend as B
from dezero_xp import creation as C
from dezero_xp import optimizers
from dezero_xp._backends import cupy as cupy_adapter
from dezero_xp._backends.cupy import CupyKernels
from dezero_xp.dataloaders import DataLoader
from dezero_xp.datasets import Dataset

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _cpu_default(monkeypatch):
    monkeypatch.setattr(B, "_default_spec", "cpu")


def _no_cupy(monkeypatch):
    def failing_import():
        raise ImportError("No module named 'cupy' (simulated)")

    monkeypatch.setattr(cupy_adapter, "import_cupy", failing_import)


def _cupy_without_gpu(monkeypatch):
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setattr(cupy_adapter, "import_cupy", lambda: fake)


NO_CUDA = {"cupy-missing": _no_cupy, "cupy-sees-no-gpu": _cupy_without_gpu}
NO_CUDA_REASONS = {"cupy-missing": "CuPy is not importable", "cupy-sees-no-gpu": "no CUDA device"}


@pytest.fixture(params=sorted(NO_CUDA))
def no_cuda(request, monkeypatch):
    """A machine without usable CUDA, both ways; yields the reason the warning must give."""
    NO_CUDA[request.param](monkeypatch)
    B._reset_device_state()
    return NO_CUDA_REASONS[request.param]


@pytest.fixture
def strict_mode():
    previous = B.strict_devices()
    B.set_strict_devices(True)
    yield
    B.set_strict_devices(previous)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Two fake CUDA devices (NumPy underneath); the recorder is reset before the test."""
    return fakecupy.install(monkeypatch, n_devices=2)


# --------------------------------------------------------------------------- a tiny workload


class ArrayDataset(Dataset):
    def __init__(self, x, t):
        self._arrays = (x, t)
        super().__init__()

    def prepare(self):
        self.data, self.label = self._arrays


def _data(conv: bool):
    rng = np.random.default_rng(1)
    shape = (24, 1, 6, 6) if conv else (24, 5)
    x = rng.standard_normal(shape).astype(np.float32)
    t = rng.integers(0, 3, size=24)
    return ArrayDataset(x, t)


class TinyMLP(dz.Model):
    def __init__(self, device=None):
        super().__init__(device)
        self.l1 = L.Linear(8, in_size=5, device=device)
        self.l2 = L.Linear(3, in_size=8, device=device)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


class TinyCNN(dz.Model):
    def __init__(self, device=None):
        super().__init__(device)
        self.conv = L.Conv2d(4, 3, pad=1, in_channels=1, device=device)
        self.fc = L.Linear(3, in_size=4 * 3 * 3, device=device)

    def forward(self, x):
        h = F.pooling(F.relu(self.conv(x)), 2, 2)
        return self.fc(F.reshape(h, (h.shape[0], -1)))


def _train(
    device, *, conv=False, build_on=None, optimizer="momentum", epochs=2, clip=None, decay=None
):
    """A few epochs of mini-batch training; returns (host losses, host parameters).

    The model is built on ``build_on`` (default: ``device``) and then moved to ``device``, so
    backends with different random streams can start from the same weights. Nothing is read
    back to the host until the end (a GPU run must not synchronise inside the loop).
    """
    dz.seed(0)
    model = (TinyCNN if conv else TinyMLP)(device=build_on or device)
    model.to(device)
    opt = {
        "momentum": optimizers.MomentumSGD(lr=0.1),
        "adam": optimizers.Adam(alpha=0.01),
        "sgd": optimizers.SGD(lr=0.1),
    }[optimizer].setup(model)
    if decay is not None:
        opt.add_hook(optimizers.WeightDecay(decay))
    if clip is not None:
        opt.add_hook(optimizers.ClipGrad(clip))
    loader = DataLoader(_data(conv), batch_size=8, shuffle=True, device=device)
    losses = []
    for _ in range(epochs):
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()
            losses.append(loss)
    host_losses = np.array([float(B.to_host(loss.data)) for loss in losses])
    params = [B.to_host(p.data) for p in model.params()]
    return host_losses, params, model, opt


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "cnn"])
def test_training_on_cuda_without_cuda_warns_once_and_matches_the_cpu(no_cuda, conv):
    expected_losses, expected_params, _, _ = _train("cpu", conv=conv)
    B._reset_device_state()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        losses, params, model, _ = _train("cuda", conv=conv)
        x = dz.Variable(np.ones((2, 5), np.float32), device="cuda:0")  # later requests: silent
        C.zeros(2, device="cuda")
    fallback = [w for w in record if issubclass(w.category, dz.DeviceFallbackWarning)]
    assert len(fallback) == 1, [str(w.message) for w in record]
    assert no_cuda in str(fallback[0].message)
    assert fallback[0].filename == __file__  # points at the user's line
    assert [str(w.message) for w in record if w not in fallback] == []
    assert all(p.backend is B.NUMPY for p in model.params()) and x.backend is B.NUMPY
    np.testing.assert_array_equal(losses, expected_losses)
    for got, want in zip(params, expected_params):
        np.testing.assert_array_equal(got, want)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]  # it did learn


STRICT_CALLS = {
    "Variable": lambda: dz.Variable(np.ones(2), device="cuda"),
    "Variable.to": lambda: dz.Variable(np.ones(2)).to("cuda:0"),
    "Variable.to_gpu": lambda: dz.Variable(np.ones(2)).to_gpu(),
    "Layer": lambda: L.Linear(2, in_size=2, device="cuda"),
    "Layer.to": lambda: L.Linear(2, in_size=2).to("cuda"),
    "Layer.to_gpu": lambda: L.Linear(2, in_size=2).to_gpu(1),
    "Model": lambda: TinyMLP(device="cuda"),
    "DataLoader": lambda: DataLoader(_data(False), 4, device="cuda"),
    "DataLoader.gpu": lambda: DataLoader(_data(False), 4, gpu=True),
    "DataLoader.to_gpu": lambda: DataLoader(_data(False), 4).to_gpu(),
    "creation": lambda: C.randn(2, device="cuda"),
    "int spec": lambda: dz.Variable(np.ones(2), device=0),
}


@pytest.mark.parametrize("call", list(STRICT_CALLS.values()), ids=list(STRICT_CALLS))
def test_strict_mode_raises_everywhere_a_device_is_taken(no_cuda, strict_mode, call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not a warning
        with pytest.raises(dz.DeviceUnavailableError, match=no_cuda):
            call()


def test_auto_is_the_cpu_without_cuda_and_never_warns(no_cuda, strict_mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses, _, model, _ = _train("auto")
    assert all(p.backend is B.NUMPY for p in model.params())
    assert np.all(np.isfinite(losses))


# --------------------------------------------------------------------------- device selection


def test_cuda_specs_select_the_right_fake_gpu(fake_cuda):
    zero, one = B.get_backend("cuda"), B.get_backend("cuda:1")
    assert zero.name == "cupy" and zero.device == "cuda:0" and zero.is_gpu
    assert one.device == "cuda:1" and one.native_device.id == 1
    assert isinstance(one.ops, CupyKernels)
    assert B.get_backend("cuda:0") is zero and B.get_backend(0) is zero
    assert B.get_backend(1) is one and B.get_backend("gpu:1") is one
    assert B.get_backend(B.Device("cuda", 1)) is one
    assert B.get_backend(fakecupy.Device(1)) is one  # a cupy.cuda.Device object
    assert B.get_backend("auto") is zero  # auto: CUDA when usable
    with pytest.raises(dz.DeviceUnavailableError, match="cuda:0 .. cuda:1"):
        B.get_backend("cuda:2")


def test_arrays_resolve_to_the_backend_of_their_device(fake_cuda):
    one = B.get_backend("cuda:1")
    x = one.from_host(np.ones(3))
    assert x.device.id == 1 and B.backend_of(x) is one
    assert dz.Variable(x).backend is one


def test_device_everywhere_places_on_cuda_1(fake_cuda):
    """Variable, creation helpers, Layer(device=), Layer.to, DataLoader all honour cuda:1."""
    one = B.get_backend("cuda:1")
    on_one = [
        dz.Variable(np.ones(2), device="cuda:1"),
        dz.Variable(np.ones(2)).to(1),
        C.zeros(2, 3, device="cuda:1"),
        C.full((2,), 3.0, device="cuda:1"),
        C.arange(4, device="cuda:1"),
        C.rand(3, device="cuda:1"),
        C.randn(3, device="cuda:1"),
        C.tensor([1.0, 2.0], device="cuda:1"),
        C.zeros_like(C.ones(2, device="cuda:1")),
    ]
    layer = L.Linear(4, in_size=3, device="cuda:1")
    moved = L.Linear(4, in_size=3).to("cuda:1")
    on_one += [*layer.params(), *moved.params()]
    x, t = next(iter(DataLoader(_data(False), 4, shuffle=False, device="cuda:1")))
    on_one += [dz.Variable(x), dz.Variable(t)]
    for v in on_one:
        assert v.backend is one, v
        assert v.data.device.id == 1, v  # allocated on GPU 1, not on the current device
    assert x.dtype == np.float32 and t.dtype == np.int64
    assert fake_cuda.recorder.wrong_device == []


def test_layer_to_moves_parameters_grads_and_optimizer_state(fake_cuda):
    dz.seed(0)
    model = TinyMLP()
    opt = optimizers.Adam().setup(model)
    x = np.ones((4, 5), np.float32)
    model(x).sum().backward()
    opt.update()  # state made on the CPU
    model.to("cuda:0")
    zero = B.get_backend("cuda:0")
    assert all(p.backend is zero and p.grad.backend is zero for p in model.params())
    model.cleargrads()
    model(zero.from_host(x)).sum().backward()
    opt.update()  # the state follows the parameters, once, explicitly
    for slot in opt._slots.values():
        assert slot.backend is zero
        assert all(B.backend_of(a) is zero for a in slot.arrays.values())
    model.to_cpu()
    assert all(p.backend is B.NUMPY for p in model.params())
    assert fake_cuda.recorder.wrong_device == []


def test_load_weights_puts_arrays_on_the_models_device(fake_cuda, tmp_path):
    dz.seed(0)
    source = TinyMLP()
    path = source.save_weights(tmp_path / "w.npz")
    target = TinyMLP(device="cuda:1")
    target.load_weights(path)
    one = B.get_backend("cuda:1")
    for got, want in zip(target.params(), source.params()):
        assert got.backend is one and got.data.device.id == 1
        np.testing.assert_array_equal(B.to_host(got.data), want.data)


# --------------------------------------------------------------------------- kernel table


@pytest.fixture
def kernels(fake_cuda):
    """(CupyKernels on fake cuda:1, NumpyKernels, the fake's recorder)."""
    fake_cuda.recorder.reset()
    return B.get_backend("cuda:1").ops, B.NUMPY.ops, fake_cuda.recorder


def _on_one(array):
    assert isinstance(array, fakecupy.FakeArray), type(array)
    assert array._device_id == 1, array._device_id
    return np.asarray(array.view(np.ndarray))


def test_transfers(kernels):
    gpu, _, recorder = kernels
    host = np.arange(6.0).reshape(2, 3)
    x = gpu.from_host(host)
    np.testing.assert_array_equal(_on_one(x), host)
    host[0, 0] = 9.0
    assert _on_one(x)[0, 0] == 0.0  # a copy, not a view of the host buffer
    assert recorder.h2d == 1
    back = gpu.to_host(x)
    assert type(back) is np.ndarray and recorder.explicit_d2h == 1
    np.testing.assert_array_equal(_on_one(gpu.asarray([1.0, 2.0], "float32")), [1.0, 2.0])
    with fakecupy.Device(0):
        on_zero = fakecupy.FakeCupy.array(np.ones(2))
    copied = gpu.from_same_library(on_zero)
    assert _on_one(copied).tolist() == [1.0, 1.0]
    assert recorder.implicit_d2h == [] and recorder.wrong_device == []


@pytest.mark.parametrize(
    "key",
    [
        "ints",
        "ints-2d-key",
        "slice-then-ints",
        "host-ints",
        "basic",
        "mask",
    ],
)
def test_scatter_add_agrees_with_numpy(kernels, key):
    gpu, cpu, recorder = kernels
    rng = np.random.default_rng(0)
    target = rng.standard_normal((5, 4))
    idx = np.array([0, 3, 3, 1, 0])
    keys = {
        "ints": (idx,),
        "ints-2d-key": (idx, np.array([1, 1, 2, 0, 1])),
        "slice-then-ints": (slice(None), np.array([0, 2, 2])),
        "host-ints": (idx,),  # left on the host: the kernel must copy it over itself
        "basic": (slice(1, 3), slice(None)),
        "mask": (target > 0,),
    }
    host_key = keys[key]
    values = rng.standard_normal(target[host_key].shape)
    expected = cpu.scatter_add(target.copy(), host_key, values)
    device_key = tuple(
        gpu.from_host(k) if isinstance(k, np.ndarray) and key != "host-ints" else k
        for k in host_key
    )
    recorder.reset()
    got = gpu.scatter_add(gpu.from_host(target), device_key, gpu.from_host(values))
    np.testing.assert_allclose(_on_one(got), expected, rtol=1e-12)
    assert recorder.wrong_device == [] and recorder.implicit_d2h == []


@pytest.mark.parametrize("pad_width", [((1, 2), (0, 1)), ((0, 0), (3, 3))])
def test_pad_agrees_with_numpy(kernels, pad_width):
    gpu, cpu, recorder = kernels
    x = np.arange(6.0).reshape(2, 3)
    got = gpu.pad(gpu.from_host(x), pad_width, value=-1.5)
    np.testing.assert_array_equal(_on_one(got), cpu.pad(x, pad_width, value=-1.5))
    assert recorder.wrong_device == []


IM2COL_CASES = [  # (input shape, kernel, stride, pad)
    ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1)),
    ((1, 2, 8, 8), (2, 2), (2, 2), (0, 0)),  # pooling: windows never overlap
    ((2, 1, 9, 7), (3, 2), (2, 1), (2, 0)),
    ((1, 1, 5, 5), (5, 5), (1, 1), (0, 0)),
]


@pytest.mark.parametrize(("shape", "kernel", "stride", "pad"), IM2COL_CASES)
def test_im2col_and_col2im_agree_with_numpy(kernels, shape, kernel, stride, pad):
    gpu, cpu, recorder = kernels
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    expected = cpu.im2col(x, kernel, stride, pad, pad_value=-7.0)
    got = gpu.im2col(gpu.from_host(x), kernel, stride, pad, pad_value=-7.0)
    np.testing.assert_array_equal(_on_one(got), expected)
    col = rng.standard_normal(expected.shape)
    expected_img = cpu.col2im(col, shape, kernel, stride, pad)
    got_img = gpu.col2im(gpu.from_host(col), shape, kernel, stride, pad)
    np.testing.assert_allclose(_on_one(got_img), expected_img, rtol=1e-13, atol=1e-13)
    assert recorder.wrong_device == [] and recorder.implicit_d2h == []


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_random_numbers_on_the_device_seeded_by_dz_seed(kernels, dtype):
    gpu, _, recorder = kernels
    dz.seed(5)
    u, n, p = gpu.uniform((400,), dtype), gpu.normal((400,), dtype), gpu.permutation(10)
    dz.seed(5)
    u2, n2, p2 = gpu.uniform((400,), dtype), gpu.normal((400,), dtype), gpu.permutation(10)
    for a, b in ((u, u2), (n, n2), (p, p2)):
        np.testing.assert_array_equal(_on_one(a), _on_one(b))
    assert u.dtype == dtype and n.dtype == dtype
    assert 0 <= _on_one(u).min() and _on_one(u).max() < 1
    assert sorted(_on_one(p).tolist()) == list(range(10))
    dz.seed(6)
    assert not np.array_equal(_on_one(gpu.uniform((400,), dtype)), _on_one(u))
    assert recorder.h2d == 0  # drawn on the device, not copied from a host generator
    assert recorder.wrong_device == []


# --------------------------------------------------------------------------- whole training


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "cnn"])
def test_training_on_fake_cuda_matches_the_cpu_without_host_round_trips(fake_cuda, conv, optimizer):
    expected_losses, expected_params, _, _ = _train("cpu", conv=conv, optimizer=optimizer)
    recorder = fake_cuda.recorder
    recorder.reset()
    losses, params, model, _ = _train("cuda", build_on="cpu", conv=conv, optimizer=optimizer)
    gpu = B.get_backend("cuda:0")
    assert all(p.backend is gpu for p in model.params())
    # Same weights to start (built on the CPU, then moved), same batches: same numbers, up to
    # the summation order of im2col/col2im and the matmuls.
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5, atol=1e-6)
    for got, want in zip(params, expected_params):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert recorder.implicit_d2h == []  # no float()/bool()/.item() on device arrays
    assert recorder.wrong_device == []
    # Host-to-device copies: the parameters once (model.to) and two arrays per batch.
    n_batches = 2 * 3
    assert recorder.h2d == len(params) + 2 * n_batches


def test_clip_grad_on_fake_cuda_clips_like_the_cpu_without_synchronising(fake_cuda):
    # max_norm 0.05 clips every step; 10.0 clips none (the scale is then exactly 1).
    for max_norm in (0.05, 10.0):
        expected_losses, expected_params, _, _ = _train("cpu", clip=max_norm)
        fake_cuda.recorder.reset()
        losses, params, _, _ = _train("cuda", build_on="cpu", clip=max_norm)
        assert fake_cuda.recorder.implicit_d2h == []
        np.testing.assert_allclose(losses, expected_losses, rtol=1e-5, atol=1e-6)
        for got, want in zip(params, expected_params):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    unclipped, _, _, _ = _train("cpu")
    assert not np.allclose(_train("cpu", clip=0.05)[0], unclipped)  # the hook did something


def test_training_on_the_second_fake_gpu_stays_there(fake_cuda):
    """Every op, gradient and update of a model on cuda:1 runs with GPU 1 current.

    CuPy computes and allocates on its *current* device (array-api-compat's ``device=`` does not
    change that), so each op, the backward pass and the optimizer must enter the device's scope.
    """
    hooks = {"decay": 1e-3, "clip": 0.5}
    expected_losses, _, _, _ = _train("cpu", conv=True, optimizer="adam", **hooks)
    recorder = fake_cuda.recorder
    recorder.reset()
    losses, _, model, opt = _train("cuda:1", build_on="cpu", conv=True, optimizer="adam", **hooks)
    assert all(p.data.device.id == 1 and p.grad.data.device.id == 1 for p in model.params())
    assert all(a._device_id == 1 for slot in opt._slots.values() for a in slot.arrays.values())
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5, atol=1e-6)
    assert recorder.wrong_device == []
    assert recorder.implicit_d2h == []
    assert fakecupy.current_device() == 0  # every scope was left again


# --------------------------------------------------------------------------- real GPU


def _require_gpu():
    if not B.cuda_available():
        pytest.skip(f"no usable CUDA GPU: {B._cuda_status()[1]}")


@pytest.mark.gpu
def test_cupy_kernels_agree_with_numpy_on_a_gpu():
    _require_gpu()
    gpu, cpu = B.get_backend("cuda:0").ops, B.NUMPY.ops
    rng = np.random.default_rng(0)
    for shape, kernel, stride, pad in IM2COL_CASES:
        x = rng.standard_normal(shape)
        col = cpu.im2col(x, kernel, stride, pad)
        got = gpu.to_host(gpu.im2col(gpu.from_host(x), kernel, stride, pad))
        np.testing.assert_array_equal(got, col)
        c = rng.standard_normal(col.shape)
        img = gpu.to_host(gpu.col2im(gpu.from_host(c), shape, kernel, stride, pad))
        np.testing.assert_allclose(img, cpu.col2im(c, shape, kernel, stride, pad), rtol=1e-12)
    target, idx = rng.standard_normal((5, 4)), np.array([0, 3, 3, 1, 0])
    values = rng.standard_normal((5, 4))
    got = gpu.scatter_add(gpu.from_host(target), (idx,), gpu.from_host(values))
    expected = cpu.scatter_add(target.copy(), (idx,), values)
    np.testing.assert_allclose(gpu.to_host(got), expected, rtol=1e-12)  # atomics: order varies
    dz.seed(1)
    a = gpu.to_host(gpu.normal((100,), "float32"))
    dz.seed(1)
    np.testing.assert_array_equal(a, gpu.to_host(gpu.normal((100,), "float32")))


@pytest.mark.gpu
@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "cnn"])
def test_training_on_a_gpu_matches_the_cpu(conv):
    _require_gpu()
    expected_losses, expected_params, _, _ = _train("cpu", conv=conv)
    losses, params, model, _ = _train("cuda", build_on="cpu", conv=conv)
    assert all(p.backend.name == "cupy" for p in model.params())
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-4, atol=1e-5)
    for got, want in zip(params, expected_params):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


@pytest.mark.gpu
def test_second_gpu_is_used_when_present():
    _require_gpu()
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two CUDA devices")
    v = C.randn(4, 4, device="cuda:1")
    assert v.data.device.id == 1
    layer = L.Linear(3, in_size=4, device="cuda:1")
    assert all(p.data.device.id == 1 for p in layer.params())


@pytest.mark.gpu
def test_dlpack_with_torch_cuda_shares_memory():
    _require_gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    from dezero_xp import interop

    t = torch.zeros(4, device="cuda:0")
    v = interop.from_dlpack(t)
    assert v.backend.name == "cupy" and v.device == "cuda:0"
    t[1] = 3.0
    torch.cuda.synchronize()
    assert float(B.to_host(v.data)[1]) == 3.0
    back = torch.from_dlpack(interop.to_dlpack(v))
    back[2] = 5.0
    torch.cuda.synchronize()
    assert float(B.to_host(v.data)[2]) == 5.0


class _Stop(Exception):
    pass


@functools.cache
def _noxfile():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "noxfile.py"
    spec = importlib.util.spec_from_file_location("project_noxfile", path)
    noxfile = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        # Loaded elsewhere in the same process, nox warns that sessions are registered again.
        warnings.filterwarnings("ignore", "The session .* already been registered", FutureWarning)
        spec.loader.exec_module(noxfile)
    return noxfile


def _run_gpu_session(monkeypatch, returncode, text, selected=None):
    """Call noxfile's tests-gpu with a faked GPU probe; returns what the session did."""
    pytest.importorskip("nox")
    noxfile = _noxfile()
    if selected is None:
        monkeypatch.delenv("DEZERO_XP_TEST_BACKENDS", raising=False)
    else:
        monkeypatch.setenv("DEZERO_XP_TEST_BACKENDS", selected)
    probe = types.SimpleNamespace(returncode=returncode, stdout=text, stderr="")
    monkeypatch.setattr(noxfile, "subprocess", types.SimpleNamespace(run=lambda *a, **k: probe))
    done = []

    class Session:
        posargs = ["-k", "conv"]

        def log(self, message):
            pass

        def skip(self, message):
            done.append(("skip", message))
            raise _Stop

        def error(self, message):
            done.append(("error", message))
            raise _Stop

        def run(self, *args, env=None, external=False):
            done.append(("run", args, env, external))

    try:
        noxfile.tests_gpu(Session())
    except _Stop:
        pass
    (result,) = done
    return result


def test_the_gpu_session_runs_the_whole_suite_on_cupy_without_a_venv(monkeypatch):
    """``nox -s tests-gpu``: DEZERO_XP_TEST_BACKENDS=cupy, the interpreter's own packages."""
    probe = "CuPy 14, 1 CUDA device(s), kernel ok\ntorch:cuda not tested: no torch"
    kind, args, env, external = _run_gpu_session(monkeypatch, 0, probe)
    assert kind == "run" and env == {"DEZERO_XP_TEST_BACKENDS": "cupy"} and external is True
    # The whole suite (no path, no marker selection), then the user's extra arguments.
    assert args[1:] == ("-m", "pytest", "-p", "no:cacheprovider", "-rs", "-k", "conv")
    probe = "CuPy 14, 1 CUDA device(s), kernel ok\ntorch 2.13: torch:cuda ok"
    kind, args, env, external = _run_gpu_session(monkeypatch, 0, probe)
    assert env == {"DEZERO_XP_TEST_BACKENDS": "cupy,torch:cuda"}  # torch on CUDA too


def test_the_gpu_session_skips_without_a_gpu_and_fails_without_dependencies(monkeypatch):
    kind, message = _run_gpu_session(monkeypatch, 3, "cupy.cuda.is_available() is False")
    assert kind == "skip" and "no usable CUDA GPU" in message
    kind, message = _run_gpu_session(monkeypatch, 2, "cannot import dezero_xp here: No module")
    assert kind == "error" and "--find-links wheels/" in message


def test_the_gpu_session_fails_when_a_gpu_backend_is_selected_but_unusable(monkeypatch):
    reason = "CuPy imports but cannot run a kernel: CUDARuntimeError: no kernel image"
    kind, message = _run_gpu_session(monkeypatch, 3, reason, selected="cupy")
    assert kind == "error" and "no kernel image" in message and "cupy" in message
    kind, _args, env, _ = _run_gpu_session(monkeypatch, 0, "CuPy 14 ok", selected="cupy")
    assert env == {"DEZERO_XP_TEST_BACKENDS": "cupy"}  # the selection is kept as given


_BROKEN_CUPY = """
import numpy
__version__ = "14.0-broken"
class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1
class cuda:
    runtime = _Runtime
    @staticmethod
    def is_available():
        return True
float32 = numpy.float32
class _Array(numpy.ndarray):
    def get(self):
        return numpy.asarray(self)
def arange(n, dtype=None):
    return numpy.arange(n, dtype=dtype).view(_Array)
def ElementwiseKernel(*args):  # compiles, but the kernel image cannot run on this device
    def run(x):
        raise RuntimeError("cudaErrorNoKernelImageForDevice")
    return run
"""


def test_the_gpu_probe_runs_a_kernel_not_only_counts_devices(tmp_path):
    """A CuPy that imports and counts a device but cannot run a kernel fails the probe."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(_BROKEN_CUPY)
    root = Path(__file__).resolve().parent.parent
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", _noxfile()._GPU_PROBE, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot run a kernel" in result.stdout and "NoKernelImage" in result.stdout


# --------------------------------------------------------------------------- bench_gpu.py


@pytest.fixture(scope="module")
def bench_gpu():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("image", [False, True], ids=["mlp", "cnn"])
def test_gpu_benchmark_workloads_match_torch_on_the_cpu(bench_gpu, image):
    """Both sides of each benchmark compute the same training steps (checked on the CPU)."""
    pytest.importorskip("torch")
    sizes = {"batch": 8} if image else {"batch": 16, "sizes": (784, 32, 10)}
    ours, theirs = bench_gpu.first_losses(image, "cpu", "cpu", steps=3, **sizes)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert ours[0] != ours[2]  # the SGD steps changed the weights


def test_gpu_benchmark_skips_cleanly_without_a_gpu(bench_gpu, no_cuda, capsys, tmp_path):
    assert bench_gpu.main(["--smoke", "--json", str(tmp_path / "r.json")]) == 0
    assert "skipped, no usable CUDA GPU" in capsys.readouterr().out
    assert not (tmp_path / "r.json").exists()


def test_gpu_benchmark_op_chain_runs(bench_gpu):
    forward_backward = bench_gpu.dezero_chain_fn("cpu", n_ops=6, size=4)
    y = forward_backward()
    expected = np.linspace(0, 1, 4, dtype=np.float32)
    for _ in range(3):
        expected = np.sin(expected * np.float32(0.999))
    np.testing.assert_allclose(y.data, expected, rtol=1e-6)
    assert y.creator is not None
    assert bench_gpu.dezero_chain_fn("cpu", n_ops=6, size=4, grad=False)().creator is None
