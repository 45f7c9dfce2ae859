"""Exceptions that name where they come from: an op's or a layer's name put in front of an
error raised deep inside, keeping the error's kind.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["annotated_error", "names_itself", "with_name"]


def names_itself(message: str, name: str) -> bool:
    """Whether an error ``message`` already starts with ``name`` (case, underscores and an
    ``F.`` prefix aside: ``sum:``, ``Sum:`` and ``F.sum`` all name ``sum``)."""

    def squash(text: str) -> str:
        return text.lower().replace("_", "").removeprefix("f.")

    return squash(message).startswith(squash(name))


def with_name(exc: BaseException, name: str) -> BaseException | None:
    """``exc`` saying ``name: ...`` in front (see :func:`annotated_error`), or None to re-raise it
    as it is because it names ``name`` already (an AttributeError still becomes a TypeError)."""
    message = str(exc)
    if names_itself(message, name):
        return TypeError(message) if type(exc) is AttributeError else None
    better = annotated_error(exc, f"{name}: {message}")
    return None if better is exc else better


def annotated_error(exc: BaseException, message: str) -> BaseException:
    """An exception of ``exc``'s kind saying ``message`` (``exc`` stays chained as its cause):
    its own type where the constructor takes a message, else the nearest built-in base (NumPy's
    UFuncTypeError becomes a TypeError); an AttributeError, a sign of a wrong argument type deep
    inside, becomes a TypeError. ``exc`` itself when nothing fits."""
    kinds = (TypeError,) if type(exc) is AttributeError else type(exc).__mro__
    for kind in kinds:
        if kind is BaseException or kind is object:
            break
        try:
            new = kind(message)
        except Exception:  # noqa: BLE001 - a constructor that wants other arguments
            continue
        if str(new) == message:
            new.__cause__ = exc
            return new
    return exc
