"""The package metadata is what a user can trust: one version, the licence file, typing marker.

Reads pyproject.toml (with ``tomllib``; skipped on Python 3.10, which lacks it) and, where the
package is installed (as ``nox -s sdist`` installs it), compares the installed metadata too.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import dezero_xp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(dezero_xp.__file__).resolve().parent


@pytest.fixture(scope="module")
def pyproject():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def project(pyproject):
    return pyproject["project"]


def installed_metadata():
    try:
        return importlib.metadata.metadata("dezero_xp")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("dezero_xp is not installed here (run from a clone): no metadata to check")


def test_the_version_has_one_source(pyproject):
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "dezero_xp.__version__"}


def test_installed_version_is_the_package_version():
    assert installed_metadata()["Version"] == dezero_xp.__version__


def test_licence_file_matches_the_metadata(project):
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def test_package_is_marked_typed():
    assert (PACKAGE_DIR / "py.typed").is_file()


def test_classifiers_name_each_claimed_python(project):
    assert project["requires-python"] == ">=3.10"
    versions = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if "Python :: 3." in c}
    assert versions == {"3.10", "3.11", "3.12", "3.13"}


def test_cuda_extras_bring_the_cuda_libraries(project):
    extras = project["optional-dependencies"]
    assert any(req.startswith("cupy-cuda12x[ctk]") for req in extras["cuda12"])
    assert any(req.startswith("cupy-cuda13x[ctk]") for req in extras["cuda13"])
