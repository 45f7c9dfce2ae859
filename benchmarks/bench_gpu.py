"""GPU benchmarks: dezero_xp on CuPy next to the same work in PyTorch CUDA eager, in one run.

Workloads, all float32, each a forward + backward pass (and an SGD step for the training ones):

- ``op-chain``: a chain of elementwise ops on a small array, where the time is per-op overhead:
  dezero_xp (graph + backward), dezero_xp under ``no_grad``, the same raw CuPy calls (the launch
  floor, forward only) and torch autograd (forward + backward).
- ``mlp``: MLP 784-1000-1000-10 with ReLU and softmax cross-entropy, batch 256.
- ``cnn``: conv 3x3 1->16 (pad 1), ReLU, 2x2 max-pool, conv 3x3 16->32, ReLU, 2x2 max-pool,
  linear to 10, softmax cross-entropy; batch 256 of 1x28x28.

Both frameworks start from the same weights and see the same batch; their losses are compared
before timing. Timed regions are bracketed by ``cupy.cuda.Device().synchronize()`` /
``torch.cuda.synchronize()``; each figure is the median over repeats of several steps, after
warm-up (which also absorbs CuPy's kernel compilation). TF32 is off in torch, as in CuPy, so both
do full float32 matmuls. dezero_xp convolves through im2col + matmul, torch through cuDNN.

Usage: ``python benchmarks/bench_gpu.py [--smoke] [--device cuda:0] [--json PATH]``. Results go
to PATH, else to ``$OUT/bench_gpu.json`` when ``OUT`` is set, else ``benchmarks/results/``.
Without a usable GPU it says why and exits 0, unless run as a GPU check (``--require-gpu``, or
``DEZERO_XP_REQUIRE_GPU=1``; ``gpu_check.sh`` passes it): then it exits 3. ``--smoke`` runs few,
short repeats: it checks the harness, its figures mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
import dezero_xp.layers as L  # noqa: E402
from dezero_xp import backend as B  # noqa: E402
from dezero_xp import optimizers  # noqa: E402

BATCH = 256
MLP_SIZES = (784, 1000, 1000, 10)
LR = 1e-3
CHAIN_OPS = 200
CHAIN_SIZE = 1024


# --------------------------------------------------------------------------- shared data


def make_batch(image: bool, batch=BATCH, seed=0):
    """A batch of float32 inputs and int64 labels (10 classes), as host arrays."""
    rng = np.random.default_rng(seed)
    shape = (batch, 1, 28, 28) if image else (batch, MLP_SIZES[0])
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, batch)


def mlp_weights(sizes=MLP_SIZES, seed=1):
    """[(W (in, out), b (out,)), ...] as host float32 arrays, He-scaled."""
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float32),
            np.zeros(o, np.float32),
        )
        for i, o in zip(sizes[:-1], sizes[1:])
    ]


def cnn_weights(seed=2):
    """conv1 (16,1,3,3), conv2 (32,16,3,3), fc (32*7*7, 10) with biases, host float32."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "c1": (he((16, 1, 3, 3), 9), np.zeros(16, np.float32)),
        "c2": (he((32, 16, 3, 3), 144), np.zeros(32, np.float32)),
        "fc": (he((32 * 7 * 7, 10), 32 * 7 * 7), np.zeros(10, np.float32)),
    }


# --------------------------------------------------------------------------- dezero_xp


def _set_weights(layer, W, b):
    """Copy host weights into a layer's parameters, on the layer's device."""
    layer.W.data = B.transfer(W, layer.W.backend)
    layer.b.data = B.transfer(b, layer.b.backend)
    return layer


class DezeroMLP(dz.Model):
    def __init__(self, weights, device):
        super().__init__(device)
        self.layers = []
        for i, (W, b) in enumerate(weights):
            layer = _set_weights(L.Linear(W.shape[1], in_size=W.shape[0], device=device), W, b)
            setattr(self, f"l{i}", layer)
            self.layers.append(layer)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class DezeroCNN(dz.Model):
    def __init__(self, weights, device):
        super().__init__(device)
        self.c1 = _set_weights(L.Conv2d(16, 3, pad=1, in_channels=1, device=device), *weights["c1"])
        self.c2 = _set_weights(
            L.Conv2d(32, 3, pad=1, in_channels=16, device=device), *weights["c2"]
        )
        self.fc = _set_weights(L.Linear(10, in_size=32 * 7 * 7, device=device), *weights["fc"])

    def forward(self, x):
        h = F.pooling(F.relu(self.c1(x)), 2, 2)
        h = F.pooling(F.relu(self.c2(h)), 2, 2)
        return self.fc(F.reshape(h, (h.shape[0], -1)))


def dezero_step_fn(image: bool, device, batch=BATCH, sizes=MLP_SIZES):
    """``step() -> loss Variable``: one forward + backward + SGD update on ``device``."""
    backend = B.get_backend(device)
    model = DezeroCNN(cnn_weights(), device) if image else DezeroMLP(mlp_weights(sizes), device)
    opt = optimizers.SGD(lr=LR).setup(model)
    x_host, t_host = make_batch(image, batch)
    if not image:
        x_host = x_host[:, : sizes[0]]
    x, t = backend.from_host(x_host), backend.from_host(t_host)

    def step():
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()
        return loss

    return step


def dezero_chain_fn(device, n_ops=CHAIN_OPS, size=CHAIN_SIZE, grad=True):
    backend = B.get_backend(device)
    x = dz.Variable(backend.from_host(np.linspace(0, 1, size, dtype=np.float32)))

    def run():
        x.cleargrad()
        y = x
        for _ in range(n_ops // 2):
            y = F.sin(y * 0.999)
        if grad:
            F.sum(y).backward()
        return y

    if grad:
        return run

    def run_no_grad():
        with dz.no_grad():
            return run()

    return run_no_grad


# --------------------------------------------------------------------------- torch


def torch_step_fn(image: bool, device, batch=BATCH, sizes=MLP_SIZES):
    """The same step in PyTorch eager, from the same weights and batch."""
    import torch

    nn = torch.nn
    if image:
        w = cnn_weights()
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 10),
        )
        pairs = [(model[0], w["c1"], False), (model[3], w["c2"], False), (model[7], w["fc"], True)]
    else:
        layers = []
        for i, o in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(i, o), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
        linears = [m for m in model if isinstance(m, nn.Linear)]
        pairs = [(m, wb, True) for m, wb in zip(linears, mlp_weights(sizes))]
    with torch.no_grad():
        for module, (W, b), transpose in pairs:
            module.weight.copy_(torch.from_numpy(W.T.copy() if transpose else W))
            module.bias.copy_(torch.from_numpy(b))
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x_host, t_host = make_batch(image, batch)
    if not image:
        x_host = x_host[:, : sizes[0]]
    x, t = torch.from_numpy(x_host).to(device), torch.from_numpy(t_host).to(device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def torch_chain_fn(device, n_ops=CHAIN_OPS, size=CHAIN_SIZE):
    import torch

    x = torch.linspace(0, 1, size, device=device, requires_grad=True)

    def run():
        x.grad = None
        y = x
        for _ in range(n_ops // 2):
            y = torch.sin(y * 0.999)
        y.sum().backward()
        return y

    return run


def cupy_chain_fn(cupy, n_ops=CHAIN_OPS, size=CHAIN_SIZE):
    x = cupy.linspace(0, 1, size, dtype=cupy.float32)

    def run():
        y = x
        for _ in range(n_ops // 2):
            y = cupy.sin(y * 0.999)
        return y

    return run


# --------------------------------------------------------------------------- timing


def median_seconds(fn, sync, *, warmup, repeat, inner) -> float:
    """Median seconds per ``fn()`` call; each repeat is ``inner`` calls between two syncs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def loss_value(loss) -> float:
    """A loss (dezero Variable or torch tensor) as a Python float (a sync: not in timed code)."""
    if isinstance(loss, dz.Variable):
        return float(B.to_host(loss.data))
    return float(loss.detach().cpu())


def first_losses(image: bool, dezero_device, torch_device, steps=2, **sizes) -> tuple:
    """The first ``steps`` losses of both frameworks from the same start (they must agree)."""
    d, t = (
        dezero_step_fn(image, dezero_device, **sizes),
        torch_step_fn(image, torch_device, **sizes),
    )
    return [loss_value(d()) for _ in range(steps)], [loss_value(t()) for _ in range(steps)]


# --------------------------------------------------------------------------- main


def _gpu_status(device: str):
    """(cupy, torch or None, reason): cupy None when no usable GPU."""
    if not B.cuda_available():
        return None, None, B._cuda_status()[1]
    import cupy

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and not torch.cuda.is_available():
        torch = None
    return cupy, torch, ""


def _results_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "bench_gpu.json"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return REPO_ROOT / "benchmarks" / "results" / f"bench-gpu-{stamp}.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="few short repeats (harness check)")
    parser.add_argument("--device", default="cuda:0", help="CUDA device, e.g. cuda:1")
    parser.add_argument("--json", default=None, help="where to write the results")
    parser.add_argument(
        "--require-gpu",
        action="store_true",
        default=os.environ.get("DEZERO_XP_REQUIRE_GPU", "") not in ("", "0"),
        help="a GPU check: no usable GPU is a failure (exit 3), not a skip",
    )
    args = parser.parse_args(argv)

    cupy, torch, reason = _gpu_status(args.device)
    if cupy is None:
        if args.require_gpu:
            print(f"bench_gpu: FAILED, no usable CUDA GPU ({reason})", file=sys.stderr)
            return 3
        print(f"bench_gpu: skipped, no usable CUDA GPU ({reason})")
        return 0
    backend = B.get_backend(args.device)
    index = backend.device.index
    torch_device = f"cuda:{index}"
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def sync_cupy():
        cupy.cuda.Device(index).synchronize()

    def sync_torch():
        torch.cuda.synchronize(index)

    warmup, repeat, inner = (1, 2, 2) if args.smoke else (5, 15, 10)
    timing = {"warmup": warmup, "repeat": repeat, "inner": inner}
    props = cupy.cuda.runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    report = {
        "gpu": name,
        "cupy": cupy.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "smoke": args.smoke,
        "timing": timing,
        "tf32": False,
        "rows": [],
    }

    def row(workload, framework, seconds, per=1, reference=None):
        entry = {"workload": workload, "framework": framework, "us": seconds * 1e6 / per}
        if reference is not None:
            entry["vs_torch"] = seconds / reference
        report["rows"].append(entry)
        ratio = f"{entry['vs_torch']:.2f}x torch" if "vs_torch" in entry else ""
        print(f"{workload:<10} {framework:<28} {entry['us']:>10.2f} us  {ratio}", flush=True)

    # Per-op overhead (times per op: the chain has CHAIN_OPS ops forward).
    with cupy.cuda.Device(index):
        raw = median_seconds(cupy_chain_fn(cupy), sync_cupy, **timing)
    t_torch = median_seconds(torch_chain_fn(torch_device), sync_torch, **timing) if torch else None
    row("op-chain", "raw CuPy (forward only)", raw, CHAIN_OPS)
    d_fb = median_seconds(dezero_chain_fn(backend), sync_cupy, **timing)
    d_ng = median_seconds(dezero_chain_fn(backend, grad=False), sync_cupy, **timing)
    row("op-chain", "dezero_xp forward+backward", d_fb, CHAIN_OPS, t_torch)
    row("op-chain", "dezero_xp no_grad forward", d_ng, CHAIN_OPS)
    if torch:
        row("op-chain", "torch forward+backward", t_torch, CHAIN_OPS, t_torch)

    for workload, image in (("mlp", False), ("cnn", True)):
        if torch:
            ours, theirs = first_losses(image, backend, torch_device)
            report[f"{workload}_first_losses"] = {"dezero_xp": ours, "torch": theirs}
            if not np.allclose(ours, theirs, rtol=1e-3, atol=1e-4):
                print(f"bench_gpu: {workload} losses differ: {ours} vs {theirs}", file=sys.stderr)
                report[f"{workload}_mismatch"] = True
            t_step = median_seconds(torch_step_fn(image, torch_device), sync_torch, **timing)
        else:
            t_step = None
        d_step = median_seconds(dezero_step_fn(image, backend), sync_cupy, **timing)
        row(workload, f"dezero_xp step (batch {BATCH})", d_step, 1, t_step)
        if torch:
            row(workload, f"torch step (batch {BATCH})", t_step, 1, t_step)

    path = _results_path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"bench_gpu: results in {path}")
    mismatched = [k for k in report if k.endswith("_mismatch")]
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
