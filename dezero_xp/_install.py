"""Install hints: the pip command that brings in an optional part of dezero_xp.

One place for the wording of every message that tells a user to install something (the CUDA
fallback warning, the error for a backend whose library is missing, the test suite's skip
reasons). A hint names both forms, since either may be the one that works: an editable install
from a clone of the repository, and an install from a package index.

May import: the standard library only.
"""

from __future__ import annotations

import contextlib

__all__ = ["OptionalDependencyError", "install_command", "optional_dependency"]


def install_command(extra: str) -> str:
    """How to install the extra ``extra``: ``pip install -e ".[extra]"`` from a clone, or
    ``pip install "dezero_xp[extra]"`` from an index."""
    return f'`pip install -e ".[{extra}]"` from a clone, or `pip install "dezero_xp[{extra}]"`'


class OptionalDependencyError(ModuleNotFoundError):
    """A library that a requested backend needs is not installed (an ImportError, so code that
    catches ImportError still catches it); the message says how to install it."""


@contextlib.contextmanager
def optional_dependency(module: str, extra: str, needed_for: str):
    """Turn a missing ``module`` inside the block into an :class:`OptionalDependencyError`
    that says what needed it and the install command for ``extra``.

    Only ``module`` itself counts: a library that is installed but misses one of its own
    dependencies raises its own error unchanged.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != module:
            raise
        raise OptionalDependencyError(
            f"{needed_for} needs {module}, which is not installed here; install it with "
            f"{install_command(extra)}",
            name=module,
        ) from None
