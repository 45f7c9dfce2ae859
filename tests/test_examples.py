"""The example scripts as programs: each runs with ``--smoke`` and writes what it promises.

Every ``examples/*.py`` (helpers ``_*.py`` aside) runs in a fresh interpreter, as a user or
``nox -s examples`` runs it. Also: ``--device cuda`` on a machine without a usable GPU gives
the CPU's numbers after exactly one DeviceFallbackWarning; missing Fashion-MNIST files and a
missing Graphviz give a clear message and their own exit status (0 under ``--smoke``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dezero_xp import backend as backend_module

for _module in ("sklearn", "matplotlib", "tqdm"):
    pytest.importorskip(_module, reason=f"the examples need {_module} (pip install .[examples])")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))

EXIT_MISSING_DATA = 3
EXIT_MISSING_GRAPHVIZ = 4

# What each example writes to --output-dir under --smoke (None: it takes no --output-dir).
# Fashion-MNIST files appear only where the data are installed; tanh's PNG only with Graphviz.
SMOKE_OUTPUTS = {
    "digits_mlp.py": ["digits_mlp.npz", "digits_mlp_history.png"],
    "distributed_digits.py": ["distributed_digits.npz"],
    "fashion_mnist_cnn.py": ["fashion_mnist_cnn_history.png"],
    "fashion_mnist_mlp.py": ["fashion_mnist_mlp_history.png"],
    "gradient_demo.py": None,
    "sin_lstm.py": ["sin_lstm.png"],
    "spiral.py": ["spiral.png"],
    "tanh_graph.py": ["tanh_2.dot", "tanh_2.png"],
}
NEEDS_FASHION_MNIST = {"fashion_mnist_cnn.py", "fashion_mnist_mlp.py"}


def example_env(**overrides) -> dict:
    """This environment without the device-mode variables (strict mode would forbid the
    CUDA fallback, and a default device would change what the examples run on)."""
    unset = ("DEZERO_XP_STRICT_DEVICES", "DEZERO_XP_DEVICE")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    # One BLAS thread unless told otherwise: the smoke runs' matrices are tiny, and on a small
    # CPU shared with other processes, spinning BLAS threads made them up to 20x slower.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(overrides)
    return env


def run_example(script: str, *args, env=None, timeout: float = 120):
    """Run ``examples/<script>`` with ``args`` in a fresh interpreter; output captured."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=example_env() if env is None else env,
        timeout=timeout,
        check=False,
    )


def describe(result) -> str:
    """The output of a finished example, for assertion messages."""
    return (
        f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


@functools.cache
def fashion_mnist_available() -> bool:
    from dezero_xp.datasets import DatasetNotFoundError, FashionMNIST

    try:
        FashionMNIST(train=False, transform=None)
    except DatasetNotFoundError:
        return False
    return True


def test_every_example_is_listed():
    # A new example must say here what its smoke run writes.
    assert SCRIPTS == sorted(SMOKE_OUTPUTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_smoke_run(script, tmp_path):
    outputs = SMOKE_OUTPUTS[script]
    args = ["--smoke", "--device", "cpu"]
    if outputs is not None:
        args += ["--output-dir", tmp_path]
    result = run_example(script, *args)
    assert result.returncode == 0, describe(result)
    if script in NEEDS_FASHION_MNIST and not fashion_mnist_available():
        assert "Smoke run skipped" in result.stdout, describe(result)
        return
    if script == "tanh_graph.py" and shutil.which("dot") is None:
        outputs = ["tanh_2.dot"]
    for name in outputs or ():
        assert (tmp_path / name).is_file(), f"{script} did not write {name}\n{describe(result)}"


def _figures(stdout: str) -> str:
    """The 'train loss ..., test loss ..., test accuracy ...' part of digits_mlp's summary."""
    match = re.search(r"train loss \S+, test loss \S+, test accuracy \S+", stdout)
    assert match, stdout
    return match.group(0)


def test_digits_cuda_without_gpu_falls_back_with_one_warning(tmp_path):
    if backend_module.cuda_available():
        pytest.skip("a CUDA GPU is usable here: --device cuda does not fall back")
    cpu = run_example("digits_mlp.py", "--smoke", "--device", "cpu", "--output-dir", tmp_path)
    cuda = run_example("digits_mlp.py", "--smoke", "--device", "cuda", "--output-dir", tmp_path)
    assert cpu.returncode == 0, describe(cpu)
    assert cuda.returncode == 0, describe(cuda)
    assert cuda.stderr.count("DeviceFallbackWarning") == 1, describe(cuda)
    assert "DeviceFallbackWarning" not in cpu.stderr, describe(cpu)
    assert _figures(cuda.stdout) == _figures(cpu.stdout)
    assert "on numpy:cpu" in cuda.stdout


def test_digits_fails_below_its_accuracy_threshold(tmp_path):
    # One epoch reaches about 81%: short of the promised 95%, so the script must say so.
    result = run_example(
        "digits_mlp.py", "--epochs", "1", "--device", "cpu", "--output-dir", tmp_path
    )
    assert result.returncode == 1, describe(result)
    assert "below 0.95" in result.stdout, describe(result)


def test_fashion_mnist_missing_data_exits_with_its_status(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = run_example(
        "fashion_mnist_mlp.py", "--data-dir", empty, "--output-dir", tmp_path, "--device", "cpu"
    )
    assert result.returncode == EXIT_MISSING_DATA, describe(result)
    # Which files, and where to put them.
    assert "train-images-idx3-ubyte" in result.stdout, describe(result)
    assert str(empty) in result.stdout, describe(result)
    assert "--data-dir" in result.stdout, describe(result)


def test_fashion_mnist_missing_data_skips_a_smoke_run(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    result = run_example(
        "fashion_mnist_cnn.py", "--smoke", "--data-dir", empty, "--output-dir", tmp_path
    )
    assert result.returncode == 0, describe(result)
    assert "Smoke run skipped" in result.stdout, describe(result)
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize(("smoke", "status"), [(False, EXIT_MISSING_GRAPHVIZ), (True, 0)])
def test_tanh_graph_without_graphviz(tmp_path, smoke, status):
    no_tools = tmp_path / "empty-path"
    no_tools.mkdir()  # a PATH with no `dot` on it (the interpreter is called by full path)
    args = ["--order", "3", "--device", "cpu", "--output-dir", tmp_path]
    result = run_example(
        "tanh_graph.py", *args, *(["--smoke"] if smoke else []), env=example_env(PATH=str(no_tools))
    )
    assert result.returncode == status, describe(result)
    assert "`dot` program was not found" in result.stdout, describe(result)
    assert "apt install graphviz" in result.stdout, describe(result)
    order = 2 if smoke else 3
    assert (tmp_path / f"tanh_{order}.dot").is_file()
    assert not (tmp_path / f"tanh_{order}.png").exists()
