"""The "Adding a backend" page (docs/adding-a-backend.md) is true: its adapter module, added to
the adapter tuple and nothing else, gives a working backend.

The page's code runs here as written, against a stand-in ``mylib`` (NumPy arrays that carry a
device index); the backend layer's adapter tuple is swapped for one with the new entry.
"""

from __future__ import annotations

import re
import sys
import types
import warnings
from pathlib import Path

import array_api_compat.numpy as compat_numpy
import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as B
from dezero_xp._backends import ADAPTERS
from dezero_xp._backends import base as backend_base

PAGE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-backend.md"


def _page_module_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    modules = [b for b in blocks if b.startswith('"""MyLib')]
    assert len(modules) == 1, "the page shows one complete adapter module"
    return modules[0]


class _Device:
    def __init__(self, index):
        self.index = index


class _Array(np.ndarray):
    index = 0

    @property
    def device(self):
        return _Device(self.index)

    def to_numpy(self):
        return np.array(self.view(np.ndarray))


def _stand_in_mylib():
    mylib = types.ModuleType("mylib")
    _Device.__module__ = _Array.__module__ = "mylib"
    mylib.ndarray = _Array
    mylib.array_api = compat_numpy
    mylib.device = _Device
    mylib.device_count = lambda: 2

    def array(values, index=0):
        a = np.asarray(values).view(_Array)
        a.index = index
        return a

    mylib.array = array
    return mylib


@pytest.fixture
def mylib(monkeypatch):
    """The page's module as dezero_xp._backends.mylib, in the tuple before the catch-all."""
    fake = _stand_in_mylib()
    monkeypatch.setitem(sys.modules, "mylib", fake)
    module = types.ModuleType("dezero_xp._backends.mylib")
    exec(compile(_page_module_source(), str(PAGE), "exec"), module.__dict__)
    adapters = (*ADAPTERS[:-1], module.ADAPTER, ADAPTERS[-1])
    monkeypatch.setattr(B, "ADAPTERS", adapters)
    monkeypatch.setattr(B, "_WORDS", {w: a for a in adapters for w in a.words})
    monkeypatch.setattr(B, "_resolvers", dict(B._resolvers))
    monkeypatch.setattr(backend_base.REGISTRY, "backends", dict(backend_base.REGISTRY.backends))
    return fake


def test_the_page_adapter_gives_a_backend_per_device(mylib):
    one = B.get_backend("mylib:1")
    assert one.name == "mylib" and one.device == "mylib:1" and str(one) == "mylib:1"
    assert B.get_backend("mylib:1") is one and B.get_backend(str(one)) is one
    assert B.get_backend(mylib.device(1)) is one
    assert B.get_backend("mylib") is B.get_backend("mylib:0") is not one
    assert one.xp is compat_numpy and one.dtype("float32") == np.float32


def test_the_page_adapter_resolves_arrays_and_copies_them_home(mylib):
    a = mylib.array([1.0, 2.0], index=1)
    assert B.backend_of(a) is B.get_backend("mylib:1")
    v = dz.Variable(a)
    assert v.backend is B.get_backend("mylib:1")
    host = B.to_host(a)  # through the page's to_host kernel
    assert type(host) is np.ndarray and host.tolist() == [1.0, 2.0]


def test_the_page_adapter_falls_back_through_the_policy(mylib, monkeypatch):
    with pytest.warns(dz.DeviceFallbackWarning, match="mylib has no device 5"):
        assert B.get_backend("mylib:5") is B.NUMPY
    monkeypatch.setattr(B, "_strict_devices", True)
    with pytest.raises(dz.DeviceUnavailableError, match="mylib has no device 7"):
        B.get_backend("mylib:7")


def test_without_the_tuple_entry_the_spec_is_unknown():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="unknown device 'mylib:1'"):
            B.get_backend("mylib:1")
