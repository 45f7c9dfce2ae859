"""Shared fixtures: ``xb``, the backend under test, over every backend this machine offers.

Backends: numpy, array-api-strict on its default device and on a second device, cupy (marked
``gpu``; skipped with the reason when no usable GPU), torch (skipped without torch). Select a
subset with ``DEZERO_XP_TEST_BACKENDS=cupy`` (comma-separated names), as ``nox -s tests-gpu``
does. Inputs are made on the host with a seeded RNG and copied to the backend.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as backend_module

ALL_BACKENDS = ("numpy", "strict", "strict:device1", "cupy", "torch")


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


def _selected_backends():
    raw = os.environ.get("DEZERO_XP_TEST_BACKENDS", "")
    names = [n.strip() for n in raw.split(",") if n.strip()] or list(ALL_BACKENDS)
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown:
        raise pytest.UsageError(f"DEZERO_XP_TEST_BACKENDS: unknown {unknown}; known {ALL_BACKENDS}")
    return names


def _backend_params():
    params = []
    for name in _selected_backends():
        marks = [pytest.mark.gpu] if name == "cupy" else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _make_backend(name: str):
    if name == "numpy":
        return dz.get_backend("cpu")
    if name.startswith("strict"):
        if importlib.util.find_spec("array_api_strict") is None:
            pytest.skip("array-api-strict is not installed (pip install array-api-strict)")
        return dz.get_backend(name)
    if name == "cupy":
        if not backend_module.cuda_available():
            pytest.skip(f"cupy backend skipped: {backend_module._cuda_status()[1]}")
        return backend_module.get_backend("cuda:0")
    if name == "torch":
        if importlib.util.find_spec("torch") is None:
            pytest.skip("torch backend skipped: torch is not installed (pip install torch)")
        return dz.get_backend("torch:cpu")
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
