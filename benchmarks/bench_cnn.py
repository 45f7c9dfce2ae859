"""Forward + backward of a small CNN on the CPU: dezero_xp (NumPy backend) vs a NumPy floor.

The network: a batch of 32 float32 images 1x28x28, conv 3x3 to 16 channels (pad 1) + bias,
relu, 2x2 max pooling, flatten, a linear layer to 10 (matmul + bias), and the sum as the loss.
The floor is the same arithmetic and the same gradients written by hand in NumPy (strided
im2col, batched matmuls in NCHW, pooling as four strided slices, no graph). It computes only the
parameters' gradients; dezero_xp also computes the input's (DeZero has no ``requires_grad``), so
a second floor adds that deconvolution too.

Run with pytest-benchmark (``nox -s benchmark``), or directly for a table of medians:
``python benchmarks/bench_cnn.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

# Importable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.backend import to_host  # noqa: E402

BATCH, CHANNELS, SIZE, FILTERS, KERNEL, CLASSES = 32, 1, 28, 16, 3, 10
POOLED = SIZE // 2
RUNS = 20


def make_data(seed: int = 0) -> dict[str, np.ndarray]:
    """Input and parameters (float32, He-style scales) as host arrays."""
    rng = np.random.default_rng(seed)
    features = FILTERS * POOLED * POOLED
    return {
        "x": rng.standard_normal((BATCH, CHANNELS, SIZE, SIZE)).astype(np.float32),
        "W1": (rng.standard_normal((FILTERS, CHANNELS, KERNEL, KERNEL)) / KERNEL).astype(
            np.float32
        ),
        "b1": (0.1 * rng.standard_normal(FILTERS)).astype(np.float32),
        "W2": (rng.standard_normal((features, CLASSES)) / np.sqrt(features)).astype(np.float32),
        "b2": (0.1 * rng.standard_normal(CLASSES)).astype(np.float32),
    }


# ------------------------------------------------------------------ dezero_xp


class DezeroCNN:
    """The network as dezero_xp ops on one backend; ``step()`` runs forward + backward."""

    def __init__(self, data, device="cpu"):
        self.x = dz.Variable(data["x"], device=device)
        self.params = {k: dz.Parameter(v, device=device) for k, v in data.items() if k != "x"}

    def loss(self):
        p = self.params
        h = F.conv2d(self.x, p["W1"], p["b1"], stride=1, pad=1)
        h = F.relu(h)
        h = F.pooling(h, 2, 2)
        h = F.reshape(h, (BATCH, -1))
        return F.sum(F.matmul(h, p["W2"]) + p["b2"])

    def step(self):
        self.x.cleargrad()
        for param in self.params.values():
            param.cleargrad()
        loss = self.loss()
        loss.backward()
        return loss

    def grads(self) -> dict[str, np.ndarray]:
        out = {k: to_host(v.grad.data) for k, v in self.params.items()}
        out["x"] = to_host(self.x.grad.data)
        return out


# ------------------------------------------------------------------ NumPy floor


def _windows(x, pad):
    """(N, C*KH*KW, H*W) columns of 3x3 stride-1 windows of a zero-padded image (one copy)."""
    n, c, h, w = x.shape
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    img[:, :, pad : pad + h, pad : pad + w] = x
    s = img.strides
    view = np.lib.stride_tricks.as_strided(
        img, (n, c, KERNEL, KERNEL, h, w), s + s[2:], writeable=False
    )
    return view.reshape(n, c * KERNEL * KERNEL, h * w)


# The four positions of each 2x2 pooling window, as slices of the (N, F, 28, 28) activations.
_CORNERS = [
    (slice(None), slice(None), slice(j, None, 2), slice(i, None, 2)) for j in (0, 1) for i in (0, 1)
]


def numpy_floor(data, input_grad: bool = False):
    """Loss and gradients of the network, by hand; returns (loss, grads dict)."""
    x, W1, b1, W2, b2 = (data[k] for k in ("x", "W1", "b1", "W2", "b2"))
    W1m = W1.reshape(FILTERS, -1)
    # forward: conv as (F, 9C) @ (N, 9C, H*W), relu, 2x2 max of four strided slices, linear
    col = _windows(x, 1)
    conv = (W1m @ col + b1[:, None]).reshape(BATCH, FILTERS, SIZE, SIZE)
    act = np.maximum(conv, 0)
    corners = [act[k] for k in _CORNERS]
    pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    flat = pooled.reshape(BATCH, -1)
    out = flat @ W2 + b2
    loss = out.sum()
    # backward: d loss / d out = 1
    gout = np.ones_like(out)
    grads = {"W2": flat.T @ gout, "b2": gout.sum(axis=0)}
    gpooled = (gout @ W2.T).reshape(pooled.shape)
    # Ties inside a window only happen between zeros of relu, whose gradient is 0 anyway.
    gact = np.empty_like(act)
    for key, corner in zip(_CORNERS, corners):
        gact[key] = (corner == pooled) * gpooled
    gconv = (gact * (conv > 0)).reshape(BATCH, FILTERS, -1)
    grads["W1"] = np.matmul(gconv, col.transpose(0, 2, 1)).sum(axis=0).reshape(W1.shape)
    grads["b1"] = gconv.sum(axis=(0, 2))
    if input_grad:
        gcol = (W1m.T @ gconv).reshape(BATCH, CHANNELS, KERNEL, KERNEL, SIZE, SIZE)
        gimg = np.zeros((BATCH, CHANNELS, SIZE + 2, SIZE + 2), dtype=x.dtype)
        for j in range(KERNEL):
            for i in range(KERNEL):
                gimg[:, :, j : j + SIZE, i : i + SIZE] += gcol[:, :, j, i]
        grads["x"] = gimg[:, :, 1:-1, 1:-1]
    return loss, grads


# ------------------------------------------------------------------ PyTorch (reference point)


def torch_step_fn(data):
    """A closure running the network forward + backward with PyTorch autograd (CPU)."""
    import torch

    t = {k: torch.tensor(v, requires_grad=(k != "x")) for k, v in data.items()}
    functional = torch.nn.functional

    def step():
        for v in t.values():
            v.grad = None
        h = functional.conv2d(t["x"], t["W1"], t["b1"], padding=1)
        h = functional.max_pool2d(torch.relu(h), 2, 2)
        loss = (h.reshape(BATCH, -1) @ t["W2"] + t["b2"]).sum()
        loss.backward()
        return loss

    return step


# ------------------------------------------------------------------ correctness


def check_against_floor(model: DezeroCNN, data) -> None:
    """The framework's loss and gradients equal the hand-written ones (float32 tolerance)."""
    loss = model.step()
    floor_loss, floor_grads = numpy_floor(data, input_grad=True)
    np.testing.assert_allclose(to_host(loss.data), floor_loss, rtol=1e-4)
    for name, grad in model.grads().items():
        assert grad.dtype == np.float32, f"{name} gradient is {grad.dtype}"
        np.testing.assert_allclose(grad, floor_grads[name], rtol=1e-4, atol=1e-4, err_msg=name)


# ------------------------------------------------------------------ pytest-benchmark


def test_cnn_dezero_numpy(benchmark):
    data = make_data()
    model = DezeroCNN(data)
    check_against_floor(model, data)
    benchmark(model.step)


def test_cnn_numpy_floor(benchmark):
    data = make_data()
    benchmark(numpy_floor, data)


def test_cnn_numpy_floor_with_input_grad(benchmark):
    data = make_data()
    benchmark(numpy_floor, data, True)


# ------------------------------------------------------------------ quick table


def median_ms(fn, runs: int = RUNS) -> tuple[float, float]:
    """Median (wall, CPU) time of ``fn()`` over ``runs`` calls after one warm-up, in ms.

    CPU time (this process only) is the steadier figure on a shared machine; with multithreaded
    BLAS or torch it can exceed the wall time.
    """
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def table(runs: int = RUNS) -> list[tuple[str, tuple[float, float]]]:
    """(name, (wall ms, CPU ms)) per workload; the NumPy floor is the second row."""
    data = make_data()
    model = DezeroCNN(data)
    check_against_floor(model, data)
    rows = [
        ("dezero_xp (numpy) forward+backward", median_ms(model.step, runs)),
        ("NumPy floor, parameter grads", median_ms(lambda: numpy_floor(data), runs)),
        ("NumPy floor, + input grad", median_ms(lambda: numpy_floor(data, True), runs)),
    ]
    try:
        import torch
    except ImportError:
        return rows
    torch_model = DezeroCNN(data, device="torch:cpu")
    rows.append(("dezero_xp (torch tensors, CPU)", median_ms(torch_model.step, runs)))
    threads = torch.get_num_threads()
    rows.append((f"PyTorch autograd ({threads} threads)", median_ms(torch_step_fn(data), runs)))
    return rows


def main() -> None:
    print(
        f"CNN batch {BATCH}, {CHANNELS}x{SIZE}x{SIZE}, conv {KERNEL}x{KERNEL}x{FILTERS} pad 1, "
        f"relu, maxpool 2, linear to {CLASSES}, sum; float32; median of {RUNS} runs; "
        f"numpy {np.__version__}"
    )
    rows = table()
    floor_wall, floor_cpu = rows[1][1]
    print(f"{'':40s} {'wall ms':>8s} {'x floor':>8s} {'CPU ms':>8s} {'x floor':>8s}")
    for name, (wall, cpu) in rows:
        print(f"{name:40s} {wall:8.2f} {wall / floor_wall:8.2f} {cpu:8.2f} {cpu / floor_cpu:8.2f}")


if __name__ == "__main__":
    main()
