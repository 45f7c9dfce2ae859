"""Install hints are true from a clone and from an index; a missing backend library says how to
install it (an ImportError, so ``except ImportError`` still catches it)."""

from __future__ import annotations

import sys

import pytest

import dezero_xp as dz
from dezero_xp._install import OptionalDependencyError, install_command, optional_dependency


def test_install_command_gives_both_forms():
    text = install_command("cuda12")
    assert 'pip install -e ".[cuda12]"' in text  # from a clone
    assert 'pip install "dezero_xp[cuda12]"' in text  # from an index


@pytest.mark.parametrize(
    ("spec", "module", "extra"),
    [("torch:cpu", "torch", "torch"), ("strict:not-made-yet", "array_api_strict", "test")],
)
def test_missing_backend_library_names_the_install_command(monkeypatch, spec, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` fails as if not installed
    monkeypatch.delitem(sys.modules, f"array_api_compat.{module}", raising=False)
    with pytest.raises(OptionalDependencyError) as caught:
        dz.get_backend(spec)
    assert isinstance(caught.value, ImportError)
    assert caught.value.name == module
    message = str(caught.value)
    assert install_command(extra) in message, message
    assert "device" in message, message


def test_a_broken_install_is_not_called_missing():
    # The library is there but lacks one of its own dependencies: that error passes unchanged.
    with pytest.raises(ModuleNotFoundError) as caught, optional_dependency("torch", "torch", "x"):
        raise ModuleNotFoundError("No module named 'sympy'", name="sympy")
    assert not isinstance(caught.value, OptionalDependencyError)
    assert caught.value.name == "sympy"


def test_cuda_fallback_reason_names_the_install_command():
    from dezero_xp.backend import _cuda_status

    usable, reason = _cuda_status()
    if usable:
        pytest.skip("CUDA is usable here: there is no reason to give")
    if "not importable" not in reason:
        pytest.skip(f"CuPy imports here; the reason is another: {reason}")
    assert install_command("cuda12") in reason
