"""Sphinx configuration of the documentation site: ``nox -s docs`` builds it with -W.

Pages are Markdown (MyST); the API reference is generated from the docstrings by autodoc.
Every python block of the pages runs in the test suite (tests/test_docs.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dezero_xp  # noqa: E402

project = "dezero_xp"
author = "the dezero_xp authors"
release = dezero_xp.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autoclass_content = "both"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"dezero_xp {release}"
pygments_style = "sphinx"
