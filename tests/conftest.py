"""Shared fixtures: ``xb``, the backend under test, over every backend this machine offers.

Backends: numpy, array-api-strict on its default device and on a second device, cupy (marked
``gpu``; skipped with the reason when no usable GPU), torch (skipped without torch), and
torch:cuda (marked ``gpu``; listed by default only where torch sees a CUDA device). Select a
subset with ``DEZERO_XP_TEST_BACKENDS=cupy,torch:cuda`` (comma-separated names), as
``nox -s tests-gpu`` does: a GPU backend selected that way must be usable, or the run stops
with the reason (exit code 4) instead of skipping every case. The summary says how many GPU
cases ran. Inputs are made on the host with a seeded RNG and copied to the backend.

Skipped tests are summarised once per reason, with their count, just before pytest's closing
count line (``-rs`` would list every one of them).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

# The summary of skips (one line per reason) lives in a module of its own, so a test can load it
# into a pytest run of its own.
from skip_summary import summarise_skips

import dezero_xp as dz
from dezero_xp import backend as backend_module
from dezero_xp._install import install_command

ALL_BACKENDS = ("numpy", "strict", "strict:device1", "cupy", "torch", "torch:cuda")
GPU_BACKENDS = ("cupy", "torch:cuda")
SELECT_ENV = "DEZERO_XP_TEST_BACKENDS"


class BackendCase:
    """The backend under test plus the helpers tests need to feed and read it."""

    def __init__(self, name: str, backend):
        self.name = name
        self.backend = backend
        self.xp = backend.xp

    def __repr__(self):
        return f"BackendCase({self.name})"

    def asarray(self, host):
        """A host value (NumPy array, list or scalar) copied onto this backend."""
        return self.backend.from_host(np.asarray(host))

    def variable(self, host, **kwargs):
        """A Variable on this backend from host data."""
        return dz.Variable(self.asarray(host), **kwargs)

    @staticmethod
    def numpy(x):
        """A Variable or array of any backend as a NumPy array."""
        if isinstance(x, dz.Variable):
            x = x.data
        return np.asarray(backend_module.to_host(x))

    def dtype(self, name: str):
        """The backend's dtype object for a NumPy dtype name ("float32", "int64", ...)."""
        return getattr(self.xp, name)


def _explicit_backends() -> list[str]:
    raw = os.environ.get(SELECT_ENV, "")
    return [n.strip() for n in raw.split(",") if n.strip()]


def _torch_cuda_status() -> tuple[bool, str]:
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed (pip install torch)"
    import torch  # noqa: PLC0415

    if not torch.cuda.is_available():
        return False, "torch.cuda.is_available() is False"
    return True, ""


def gpu_status(name: str) -> tuple[bool, str]:
    """(usable, reason) of a GPU backend of the test matrix."""
    if name == "cupy":
        return backend_module._cuda_status()
    return _torch_cuda_status()


def _selected_backends():
    names = _explicit_backends()
    if not names:
        names = [n for n in ALL_BACKENDS if n != "torch:cuda" or _torch_cuda_status()[0]]
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown:
        raise pytest.UsageError(f"{SELECT_ENV}: unknown {unknown}; known {ALL_BACKENDS}")
    return names


def pytest_configure(config):
    """A GPU backend named in DEZERO_XP_TEST_BACKENDS must be usable: no silent all-skip."""
    for name in _explicit_backends():
        if name in GPU_BACKENDS:
            usable, reason = gpu_status(name)
            if not usable:
                raise pytest.UsageError(
                    f"{SELECT_ENV} selects {name!r}, which is not usable here: {reason}"
                )


def pytest_terminal_summary(terminalreporter):
    """The skips, once per reason; how many GPU cases (marked ``gpu``: the cupy and torch:cuda
    ones) ran, passed, skipped."""
    summarise_skips(terminalreporter)
    counts = {
        outcome: sum(
            "gpu" in getattr(r, "keywords", ()) for r in terminalreporter.stats.get(outcome, [])
        )
        for outcome in ("passed", "failed", "error", "skipped")
    }
    ran = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("error", 0)
    terminalreporter.write_line(
        f"GPU cases: {ran} ran ({counts.get('passed', 0)} passed, {counts.get('failed', 0)} "
        f"failed, {counts.get('error', 0)} errors), {counts.get('skipped', 0)} skipped"
    )


def _backend_params():
    params = []
    for name in _selected_backends():
        marks = [pytest.mark.gpu] if name in GPU_BACKENDS else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _make_backend(name: str):
    if name == "numpy":
        return dz.get_backend("cpu")
    if name.startswith("strict"):
        if importlib.util.find_spec("array_api_strict") is None:
            pytest.skip(f"array-api-strict is not installed ({install_command('test')})")
        return dz.get_backend(name)
    if name == "cupy":
        if not backend_module.cuda_available():
            pytest.skip(f"cupy backend skipped: {backend_module._cuda_status()[1]}")
        return backend_module.get_backend("cuda:0")
    if name == "torch":
        if importlib.util.find_spec("torch") is None:
            pytest.skip(
                f"torch backend skipped: torch is not installed ({install_command('torch')})"
            )
        return dz.get_backend("torch:cpu")
    if name == "torch:cuda":
        usable, reason = _torch_cuda_status()
        if not usable:
            pytest.skip(f"torch:cuda backend skipped: {reason}")
        return dz.get_backend("torch:cuda:0")
    raise AssertionError(name)


@pytest.fixture(params=_backend_params())
def xb(request):
    """The backend under test (a :class:`BackendCase`)."""
    return BackendCase(request.param, _make_backend(request.param))


@pytest.fixture
def rng():
    """A seeded host RNG: tests draw inputs from it and copy them to the backend."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fresh_device_state():
    """Every test starts with a clean CUDA probe, no fallback warned yet and a fixed seed."""
    backend_module._reset_device_state()
    dz.seed(0)
    yield
    backend_module._reset_device_state()
