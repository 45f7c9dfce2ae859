"""Thread-local configuration flags and the context managers that set them.

``Config.enable_backprop`` (build the graph for backward) and ``Config.train`` (training vs test
behaviour of dropout and batch norm) are per thread: ``no_grad()`` in one thread leaves every
other thread's graph building untouched. :func:`env_flag` reads a yes/no environment variable.

May import: the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Config", "env_flag", "no_grad", "test_mode", "using_config"]


class _ThreadConfig(threading.local):
    """Flags with per-thread values; a new thread starts from the defaults."""

    def __init__(self) -> None:
        self.enable_backprop = True
        self.train = True


#: DeZero's ``Config``: read ``Config.enable_backprop`` / ``Config.train``; set them through
#: :func:`using_config` so they are restored even when the block raises.
Config = _ThreadConfig()


@contextlib.contextmanager
def using_config(name: str, value: Any) -> Iterator[None]:
    """Set ``Config.<name>`` to ``value`` for the duration of a ``with`` block (this thread)."""
    if not hasattr(Config, name):
        raise AttributeError(
            f"using_config: unknown flag {name!r}; the flags are 'enable_backprop' and 'train'"
        )
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Run a block without building the graph (no backward through it, less memory)."""
    return using_config("enable_backprop", False)


def test_mode() -> contextlib.AbstractContextManager[None]:
    """Run a block in test mode: dropout is off, batch norm uses its running statistics."""
    return using_config("train", False)


def env_flag(name: str) -> bool:
    """A yes/no environment variable; any other value is an error naming it (never a silent no)."""
    raw = os.environ.get(name, "")
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(
        f"environment variable {name}={raw!r} is not a yes/no value; "
        "use 1/true/yes/on or 0/false/no/off"
    )
