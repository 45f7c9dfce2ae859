"""End-to-end training: models reach known accuracies on every backend, and train/test modes.

- The spiral (the book's MLP and SGD) and scikit-learn's Digits (an MLP and Adam) reach
  accuracy thresholds on NumPy, array-api-strict and torch (when installed), through the
  example scripts' own training functions.
- An LSTM trained with truncated BPTT fits the sine curve.
- Dropout and batch normalization behave differently in training and in test mode.
- ``device="cuda"`` on a machine without a usable GPU trains on the CPU with exactly one
  DeviceFallbackWarning and gives the CPU's numbers exactly.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import GPU_BACKENDS, gpu_status

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp import backend as backend_module
from dezero_xp._install import install_command
from dezero_xp.models import Model
from dezero_xp.optimizers import Adam

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
HAS_TORCH = importlib.util.find_spec("torch") is not None

# The backends the suite runs on (DEZERO_XP_TEST_BACKENDS, as in conftest.py), as the device
# specs the training functions take. By default the second strict device is left out: it would
# only repeat "strict".
_DEVICE_SPECS = {
    "numpy": "cpu",
    "strict": "strict",
    "strict:device1": "strict:device1",
    "cupy": "cuda:0",
    "torch": "torch:cpu",
    "torch:cuda": "torch:cuda:0",
}
_DEFAULT_TRAINING_BACKENDS = ["numpy", "strict", "cupy", "torch"]


def _selected_training_backends():
    raw = os.environ.get("DEZERO_XP_TEST_BACKENDS", "")
    names = [name.strip() for name in raw.split(",") if name.strip() in _DEVICE_SPECS]
    return names or _DEFAULT_TRAINING_BACKENDS


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.gpu] if name in GPU_BACKENDS else [])
        for name in _selected_training_backends()
    ]
)
def training_device(request):
    """The device spec to train on, over the selected backends; skips what is missing."""
    name = request.param
    if name == "cupy" and not backend_module.cuda_available():
        pytest.skip(f"cupy backend skipped: {backend_module._cuda_status()[1]}")
    if name == "torch" and not HAS_TORCH:
        pytest.skip(f"torch backend skipped: torch is not installed ({install_command('torch')})")
    if name == "torch:cuda" and not gpu_status(name)[0]:
        pytest.skip(f"torch:cuda backend skipped: {gpu_status(name)[1]}")
    return _DEVICE_SPECS[name]


def load_example(name: str, *needs: str):
    """``examples/<name>.py`` imported as a module (its helpers import each other by name).

    Skips the test when the examples' extra packages (``dezero_xp[examples]``) are missing.
    """
    for module in ("tqdm", *needs):
        pytest.importorskip(
            module, reason=f"{module} is not installed ({install_command('examples')})"
        )
    if str(EXAMPLES_DIR) not in sys.path:
        sys.path.insert(0, str(EXAMPLES_DIR))
    return importlib.import_module(name)


@pytest.fixture
def one_torch_thread():
    """Torch's intra-op thread pool off for the test, restored after.

    On a small CPU shared with other processes, torch's spinning worker threads slow these
    many tiny ops down by an order of magnitude; one thread is what a 2-core CI machine wants.
    """
    if not HAS_TORCH:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------- accuracy


@pytest.mark.slow
def test_spiral_mlp_reaches_accuracy(training_device, one_torch_thread):
    spiral = load_example("spiral")
    # The book's model and optimizer (2-10-3 sigmoid MLP, SGD lr=1, batches of 30), half its
    # 300 epochs: about 92-95% by then on every backend. A linear boundary stays below 60%.
    _, history = spiral.train(training_device, hidden_size=10, epochs=150, batch_size=30, lr=1.0)
    assert history.train_loss[-1] < 0.35
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.train_acc[-1] >= 0.85
    assert history.test_acc[-1] >= 0.85


@pytest.mark.slow
def test_digits_mlp_reaches_accuracy(training_device, one_torch_thread):
    digits = load_example("digits_mlp", "sklearn")
    # 15 epochs: 96.7-97.5% test accuracy on every backend (the example runs 30).
    model, history, test_loader = digits.train(training_device, (128,), epochs=15, batch_size=32)
    assert history.test_acc[-1] >= 0.95
    assert history.train_loss[-1] < 0.2
    param = next(model.params())
    assert param.backend is dz.get_backend(training_device)
    assert str(param.dtype).endswith("float32")


@pytest.mark.slow
def test_lstm_fits_the_sine_curve():
    sin_lstm = load_example("sin_lstm")
    # Smaller than the book's (hidden 100, 100 epochs). Each epoch restarts the state every
    # 34 steps, so the training loss stays above the noise: 0.007-0.03 after 40 epochs
    # (seeds 0-4), from 0.1-0.9 after the first.
    model, losses, _ = sin_lstm.train("cpu", hidden_size=50, epochs=40)
    assert losses[-1] < 0.04
    assert losses[-1] < 0.5 * losses[0]
    # Run over a cosine it never saw, carrying its state, it predicts each next value
    # (0.001-0.006 squared error; always answering 0 would score 0.5).
    xs, predictions = sin_lstm.predict_cosine(model, dz.get_backend("cpu"))
    assert np.mean((predictions[:-1] - xs[1:]) ** 2) < 0.02


# --------------------------------------------------------------------------- train/test modes


class DropoutNet(Model):
    def __init__(self):
        super().__init__()
        self.fc1 = L.Linear(64)
        self.fc2 = L.Linear(3)

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), dropout_ratio=0.5))


def test_dropout_model_is_random_in_training_and_deterministic_in_test_mode(xb, rng):
    model = DropoutNet()
    x = xb.variable(rng.standard_normal((8, 5)).astype(np.float32))
    with dz.test_mode():
        first = xb.numpy(model(x))
        second = xb.numpy(model(x))
        hidden = xb.numpy(F.relu(model.fc1(x)))
    np.testing.assert_array_equal(first, second)
    # In test mode dropout is the identity: the plain network without it.
    W, b = xb.numpy(model.fc2.W), xb.numpy(model.fc2.b)
    np.testing.assert_allclose(first, hidden @ W + b, rtol=1e-5, atol=1e-5)

    train_a = xb.numpy(model(x))
    train_b = xb.numpy(model(x))
    assert not np.array_equal(train_a, train_b)
    assert not np.allclose(train_a, first)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_test(xb, rng):
    layer = L.BatchNorm(decay=0.9)
    mean, std = np.array([3.0, -1.0, 0.5]), np.array([2.0, 0.5, 1.0])
    batches = [(rng.standard_normal((32, 3)) * std + mean).astype(np.float32) for _ in range(5)]

    expected_mean, expected_var = np.zeros(3), np.ones(3)
    for batch in batches:
        y = xb.numpy(layer(xb.variable(batch)))
        # Training mode normalizes with this batch's own mean and variance.
        np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-3)
        m = len(batch)
        expected_mean = 0.9 * expected_mean + 0.1 * batch.mean(axis=0)
        expected_var = 0.9 * expected_var + 0.1 * batch.var(axis=0) * m / (m - 1)
    avg_mean, avg_var = xb.numpy(layer.avg_mean), xb.numpy(layer.avg_var)
    np.testing.assert_allclose(avg_mean, expected_mean, rtol=1e-5)
    np.testing.assert_allclose(avg_var, expected_var, rtol=1e-5)

    probe = (rng.standard_normal((4, 3)) * std + mean).astype(np.float32)
    with dz.test_mode():
        y_test = xb.numpy(layer(xb.variable(probe)))
    # Test mode: the running statistics, which it leaves unchanged.
    np.testing.assert_allclose(y_test, (probe - avg_mean) / np.sqrt(avg_var + 2e-5), rtol=1e-4)
    np.testing.assert_array_equal(xb.numpy(layer.avg_mean), avg_mean)
    np.testing.assert_array_equal(xb.numpy(layer.avg_var), avg_var)
    y_train = xb.numpy(layer(xb.variable(probe)))
    assert not np.allclose(y_train, y_test, atol=1e-2)


class BatchNormDropoutNet(Model):
    def __init__(self):
        super().__init__()
        self.fc1 = L.Linear(64)
        self.bn1 = L.BatchNorm()
        self.fc2 = L.Linear(10)

    def forward(self, x):
        h = F.relu(self.bn1(self.fc1(x)))
        return self.fc2(F.dropout(h, dropout_ratio=0.3))


@pytest.mark.slow
def test_model_with_batch_norm_and_dropout_trains_and_predicts_in_test_mode():
    digits = load_example("digits_mlp", "sklearn")
    backend = dz.get_backend("cpu")
    train_loader, test_loader = digits.make_loaders(backend, batch_size=32)
    model = BatchNormDropoutNet()
    optimizer = Adam().setup(model)
    fit = load_example("_common").fit_classifier
    history = fit(model, optimizer, train_loader, test_loader, epochs=5, progress=False)
    # Evaluated in test mode (running statistics, no dropout): well trained ...
    assert history.test_acc[-1] >= 0.93
    # ... and deterministic, unlike training mode.
    x, _ = next(iter(test_loader))
    test_loader.reset()
    with dz.no_grad():
        with dz.test_mode():
            a, b = model(x).data, model(x).data
        c, d = model(x).data, model(x).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(c, d)


# --------------------------------------------------------------------------- devices


def test_cuda_without_gpu_trains_on_cpu_with_one_warning_and_same_numbers():
    if backend_module.cuda_available():
        pytest.skip("a CUDA GPU is usable here: device='cuda' does not fall back")
    digits = load_example("digits_mlp", "sklearn")
    settings = {"hidden_sizes": (32,), "epochs": 2, "batch_size": 64, "seed": 3}
    _, cpu_history, _ = digits.train("cpu", **settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cuda_model, cuda_history, cuda_loader = digits.train("cuda", **settings)
        # Asking again (as a script does for its loaders and models) does not warn again.
        assert dz.get_backend("cuda") is dz.get_backend("cpu")
    fallbacks = [w for w in caught if issubclass(w.category, dz.DeviceFallbackWarning)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    assert "using the CPU" in str(fallbacks[0].message)
    assert [w for w in caught if w not in fallbacks] == []
    assert next(cuda_model.params()).backend is dz.get_backend("cpu")
    assert cuda_loader.device == dz.get_backend("cpu").device
    assert cuda_history.train_loss == cpu_history.train_loss
    assert cuda_history.test_loss == cpu_history.test_loss
    assert cuda_history.test_acc == cpu_history.test_acc
