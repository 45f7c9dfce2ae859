"""The configuration flags (dezero_xp/_config.py): using_config, no_grad, test_mode.

Thread isolation of the flags is tested with the engine in test_core.py.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import Config, Variable


def test_defaults():
    assert Config.enable_backprop is True
    assert Config.train is True


def test_using_config_sets_and_restores():
    with dz.using_config("train", False):
        assert Config.train is False
        with dz.using_config("train", True):
            assert Config.train is True
        assert Config.train is False
    assert Config.train is True


def test_using_config_restores_when_the_block_raises():
    with pytest.raises(KeyError):
        with dz.using_config("enable_backprop", False):
            assert Config.enable_backprop is False
            raise KeyError("boom")
    assert Config.enable_backprop is True


def test_no_grad():
    with dz.no_grad():
        assert Config.enable_backprop is False
        y = F.exp(Variable(np.array(1.0)))
    assert y.creator is None
    assert Config.enable_backprop is True
    assert F.exp(Variable(np.array(1.0))).creator is not None


def test_no_grad_restores_on_exception():
    with pytest.raises(ZeroDivisionError):
        with dz.no_grad():
            raise ZeroDivisionError("inside no_grad")
    assert Config.enable_backprop is True


def test_test_mode():
    with dz.test_mode():
        assert Config.train is False
        assert Config.enable_backprop is True  # test mode does not switch off backprop
    assert Config.train is True


def test_unknown_flag_errors_and_changes_nothing():
    with pytest.raises(AttributeError, match=r"unknown flag 'enable_backprob'.*enable_backprop"):
        with dz.using_config("enable_backprob", False):
            pass  # pragma: no cover - never entered
    assert not hasattr(Config, "enable_backprob")


def test_a_new_thread_starts_from_the_defaults():
    seen = {}

    def worker():
        seen["flags"] = (Config.enable_backprop, Config.train)

    with dz.no_grad(), dz.test_mode():
        t = threading.Thread(target=worker)
        t.start()
        t.join(timeout=10)
    assert seen["flags"] == (True, True)


def test_backward_restores_the_flag_even_when_backward_raises():
    class Failing(dz.Function):
        def forward(self, x):
            return x

        def backward(self, gy):
            raise ArithmeticError("backward failed")

    y = Failing()(Variable(np.array(1.0)))
    with pytest.raises(ArithmeticError):
        y.backward()  # runs with enable_backprop=False inside
    assert Config.enable_backprop is True
