"""Settings that are misspelt fail loudly, naming the setting: DEZERO_XP_STRICT_DEVICES,
DEZERO_XP_EAGER_CHECKS, DEZERO_XP_DEVICE, dz.seed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import dezero_xp as dz
from dezero_xp import backend as B
from dezero_xp._config import env_flag

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        (" On ", True),
        ("TRUE", True),
        ("yes", True),
        ("", False),
        ("0", False),
        ("off", False),
        ("False", False),
        ("no", False),
    ],
)
def test_yes_no_environment_values(monkeypatch, raw, expected):
    monkeypatch.setenv("DEZERO_XP_TEST_FLAG", raw)
    assert env_flag("DEZERO_XP_TEST_FLAG") is expected


@pytest.mark.parametrize("raw", ["ture", "2", "enabled", "y e s"])
def test_misspelt_yes_no_values_are_errors(monkeypatch, raw):
    monkeypatch.setenv("DEZERO_XP_TEST_FLAG", raw)
    with pytest.raises(ValueError, match=rf"DEZERO_XP_TEST_FLAG={raw!r} is not a yes/no value"):
        env_flag("DEZERO_XP_TEST_FLAG")


def _import_with(env: dict, code: str):
    full = {**os.environ, "PYTHONPATH": ROOT, **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120
    )


def test_misspelt_strict_devices_fails_the_import():
    result = _import_with({"DEZERO_XP_STRICT_DEVICES": "ture"}, "import dezero_xp")
    assert result.returncode != 0
    assert "DEZERO_XP_STRICT_DEVICES='ture' is not a yes/no value" in result.stderr


def test_misspelt_eager_checks_fails_the_import():
    # Was read with its own parser: anything but 1/true/yes silently left the checks off.
    result = _import_with({"DEZERO_XP_EAGER_CHECKS": "maybe"}, "import dezero_xp")
    assert result.returncode != 0
    assert "DEZERO_XP_EAGER_CHECKS='maybe' is not a yes/no value" in result.stderr


@pytest.mark.parametrize(("raw", "expected"), [("on", "True"), ("0", "False"), ("", "False")])
def test_eager_checks_take_every_yes_no_value(raw, expected):
    code = "import dezero_xp as dz; print(dz.backend.eager_checks())"
    result = _import_with({"DEZERO_XP_EAGER_CHECKS": raw}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_environment_device_names_the_variable(monkeypatch):
    monkeypatch.setattr(B, "_default_spec", "garbage")
    monkeypatch.setattr(B, "_env_device_checked", False)
    with pytest.raises(ValueError, match=r"DEZERO_XP_DEVICE='garbage' is not a usable device"):
        dz.tensor([1.0])
    monkeypatch.setattr(B, "_default_spec", "cpu")
    assert dz.tensor([1.0]).device == "cpu"  # checked once, then the usual fast path


def test_environment_device_is_used_when_valid():
    code = "import dezero_xp as dz; print(dz.tensor([1.0]).device)"
    result = _import_with({"DEZERO_XP_DEVICE": "strict:device1"}, code)
    if "array_api_strict" in result.stderr:
        pytest.skip("array-api-strict is not installed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "strict:device1"


def test_negative_seed_is_refused():
    from dezero_xp import _random

    before = (_random._global_seed, B.uses_numpy_global_rng())
    with pytest.raises(ValueError, match=r"seed: expected an int >= 0 \(or None\), got -1"):
        dz.seed(-1)
    assert (
        _random._global_seed,
        B.uses_numpy_global_rng(),
    ) == before  # the refused call changed nothing
