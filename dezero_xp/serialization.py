"""Weights and checkpoints on disk as NumPy ``.npz`` archives: atomic writes, validated loads.

- :func:`save_weights` / :func:`load_weights`: what ``Layer.save_weights`` / ``load_weights``
  call. Keys are DeZero's ``'/'``-joined attribute paths (``"l0/W"``, ``"bn1/avg_mean"``), so
  files written by DeZero load here and the other way round.
- :func:`save_checkpoint` / :func:`load_checkpoint`: weights plus an optimizer's state plus any
  extra values (epoch, ...) in one archive.

Writes are atomic (``dezero_xp._npz.write_npz``): an interrupted save never destroys the previous
file; saving through a symlink replaces the link's target and keeps the link. Loads are
header-first: every key, shape and dtype declared in the file's ``.npy`` headers is validated
against the model (lazy layers say what they can take through ``_expected_shape(name)``) before
any array is decompressed, so a zip bomb or an absurd declared size costs no memory. Then the
arrays are read (never with pickle, in native byte order), copied onto the device each parameter
lives on, and only then assigned: a truncated, foreign, duplicated or mismatched file raises
:class:`WeightsFileError` naming the file and key, and leaves every parameter as it was.

This module works on the *state protocol* instead of importing the Layer class: a model has
``_state_entries()``, yielding ``(key, owner, name, is_param)`` for every Parameter
(``is_param=True``, the array is ``getattr(owner, name).data``) and every raw state array such as
BatchNorm's running averages (``is_param=False``, the array is ``getattr(owner, name)``). An
optimizer has ``state_dict() -> {str: array}`` and ``load_state_dict({str: numpy.ndarray})``;
it receives host (NumPy) arrays and places them next to its parameters.

May import: numpy, the standard library, dezero_xp._npz and dezero_xp.backend (and, for type
checkers only, dezero_xp.layers and dezero_xp.optimizers: what the state protocol stands for).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from dezero_xp._npz import Archive, WeightsFileError, write_npz
from dezero_xp.backend import Backend, backend_of, dtype_name, get_backend, is_array, to_host

if TYPE_CHECKING:  # the state protocol at run time; these are what it means
    from dezero_xp.layers import Layer
    from dezero_xp.optimizers import Optimizer

_Entry = tuple[str, Any, str, bool]  # (key, owner, name, is_param)

__all__ = [
    "WeightsFileError",
    "dtype_name",
    "load_checkpoint",
    "load_weights",
    "read_npz",
    "save_checkpoint",
    "save_weights",
    "write_npz",
]

CHECKPOINT_FORMAT = "dezero_xp-checkpoint-1"
_FORMAT_KEY = "__format__"
_HAS_OPTIMIZER_KEY = "__optimizer__"  # present when the checkpoint was saved with an optimizer
_MODEL_PREFIX = "model/"
_OPTIMIZER_PREFIX = "optimizer/"
_EXTRA_PREFIX = "extra/"
_MAX_LISTED_KEYS = 8


# --------------------------------------------------------------------------- archives


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path`` as ``{key: numpy.ndarray}``.

    Headers are read and checked first (see ``dezero_xp._npz``), then the data, with
    ``allow_pickle`` never on; a missing file raises FileNotFoundError, anything that is not a
    complete ``.npz`` archive of plain arrays raises :class:`WeightsFileError` naming the file.
    Arrays come back in native byte order.
    """
    with Archive(path) as archive:
        return archive.read_all()


# --------------------------------------------------------------------------- model state


def _current(entry: _Entry) -> Any:
    _key, owner, name, is_param = entry
    obj = getattr(owner, name)
    return obj.data if is_param else obj


def _assign(entry: _Entry, array: Any) -> None:
    _key, owner, name, is_param = entry
    if is_param:
        getattr(owner, name).data = array
    else:
        setattr(owner, name, array)


def _target_backend(entry: _Entry) -> Backend:
    """Where a loaded array goes: the device its parameter/state lives on now."""
    _key, owner, name, is_param = entry
    obj = getattr(owner, name)
    if is_param:
        backend = obj.backend
    else:
        backend = backend_of(obj) if obj is not None else None
    if backend is None:  # a lazy parameter: the layer's device, else the default device
        backend = getattr(owner, "_backend", None)
    return backend if backend is not None else get_backend(None)


def _entries(model: Layer) -> list[_Entry]:
    if not hasattr(model, "_state_entries"):
        raise TypeError(
            f"expected a Layer/Model, got {type(model).__name__}: it has no _state_entries()"
        )
    return list(model._state_entries())


def model_arrays(model: Layer) -> dict[str, np.ndarray]:
    """``{key: host array}`` for every initialised Parameter and state array of ``model``."""
    arrays = {}
    for entry in _entries(model):
        value = _current(entry)
        if value is not None:
            arrays[entry[0]] = to_host(value)
    return arrays


def _listed(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def _describe(shape: tuple[int, ...], dtype: Any) -> str:
    return f"shape {tuple(shape)} {dtype_name(dtype)}"


def _lazy_expectation(entry: _Entry, host_shape: tuple[int, ...], bound: dict) -> tuple:
    """The shape a lazy entry must have: the layer's ``_expected_shape(name)`` when it has one.

    That hook returns a tuple of ints (known sizes), None (any size) and strings (a size shared
    by the layer's lazy entries, e.g. BatchNorm's channel count); ``bound`` holds the sizes
    already seen for those names on this layer.
    """
    _key, owner, name, _is_param = entry
    hook = getattr(owner, "_expected_shape", None)
    pattern = hook(name) if hook is not None else None
    if pattern is None:
        return tuple(host_shape)
    if len(pattern) != len(host_shape):
        return tuple(pattern)
    expected = []
    for want, found in zip(pattern, host_shape):
        if want is None:
            want = found
        elif isinstance(want, str):
            want = bound.setdefault((id(owner), want), found)
        expected.append(want)
    return tuple(expected)


def _expected_dtype(entry: _Entry, value: Any) -> str | None:
    if value is not None:
        return dtype_name(value.dtype)
    declared = getattr(entry[1], "dtype", None)  # a lazy parameter: the layer's dtype, if set
    return dtype_name(declared) if declared is not None else None


def _plan_model_load(
    model: Layer, headers: dict, read: Callable[[str], np.ndarray], source: str
) -> list[tuple[_Entry, Any]]:
    """Validate the file's headers against ``model``, then read and copy to device.

    ``headers`` maps each key to its ``_npz.Member`` (shape and dtype read from the file's
    headers only); ``read(key)`` returns the array. Nothing is decompressed before every key,
    shape and dtype is known to match, and nothing is assigned: returns
    ``[(entry, device array), ...]``. Raises WeightsFileError on missing or extra keys and on
    any shape or dtype mismatch.
    """
    entries = _entries(model)
    by_key = {entry[0]: entry for entry in entries}
    current = {entry[0]: _current(entry) for entry in entries}
    required = {key for key, value in current.items() if value is not None}
    missing = required - headers.keys()
    extra = headers.keys() - by_key.keys()
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) the model has: {_listed(missing)}")
        if extra:
            parts.append(f"{len(extra)} key(s) the model does not have: {_listed(extra)}")
        hint = ""
        if _FORMAT_KEY in headers:
            hint = " (this file is a checkpoint: use load_checkpoint)"
        raise WeightsFileError(
            f"{source} does not match the model: {'; '.join(parts)}. It was probably saved "
            f"from a different architecture{hint}"
        )
    bound: dict = {}
    for key, member in headers.items():
        entry = by_key[key]
        value = current[key]
        shape, dtype = member.shape, member.dtype
        if value is not None:
            expected_shape = tuple(value.shape)
        else:
            expected_shape = _lazy_expectation(entry, shape, bound)
        expected_dtype = _expected_dtype(entry, value)
        found_dtype = dtype_name(dtype)
        if dtype.kind not in "biufc":
            raise WeightsFileError(
                f"{source}: key {key!r} has dtype {dtype.str!r}, not a numeric array"
            )
        if shape != expected_shape or expected_dtype not in (None, found_dtype):
            raise WeightsFileError(
                f"{source}: key {key!r} has {_describe(shape, dtype)} but the model "
                f"expects shape {expected_shape} {expected_dtype or found_dtype}"
            )
    # All checks passed: read, then copy to the devices (this may still fail, e.g. out of
    # memory, so it too happens before any assignment).
    plan = []
    for key in headers:
        entry = by_key[key]
        plan.append((entry, _target_backend(entry).from_host(read(key))))
    return plan


def _apply(plan: list[tuple[_Entry, Any]]) -> None:
    owners = []
    for entry, array in plan:
        _assign(entry, array)
        if entry[1] not in owners:
            owners.append(entry[1])
    for owner in owners:
        hook = getattr(owner, "_after_load", None)
        if hook is not None:
            hook()


def save_weights(model: Layer, path: str | os.PathLike[str], compressed: bool = False) -> str:
    """Write every initialised Parameter and state array of ``model`` to ``path`` atomically.

    The model is not moved: arrays are copied to the host. Returns the path written (``.npz`` is
    appended when ``path`` has another ending, as ``numpy.savez`` does).
    """
    return write_npz(path, model_arrays(model), compressed=compressed)


def load_weights(model: Layer, path: str | os.PathLike[str]) -> None:
    """Load a file written by :func:`save_weights` (or DeZero) into ``model``, all or nothing.

    Arrays go to the device each parameter lives on now, whichever backend saved them.
    """
    with Archive(path) as archive:
        source = f"weights file {archive.path!r}"
        _apply(_plan_model_load(model, archive.members, archive.read, source))


# --------------------------------------------------------------------------- checkpoints


def _host_value(name: str, value: Any) -> np.ndarray:
    """A checkpoint value as a host array: arrays of any backend, Variables, numbers, strings."""
    data = getattr(value, "data", None)
    if not is_array(value) and data is not None and is_array(data):
        value = data  # a Variable
    array = to_host(value) if is_array(value) else np.asarray(value)
    if array.dtype == object:
        raise TypeError(
            f"save_checkpoint: {name!r} ({type(value).__name__}) cannot be stored without "
            "pickling; pass numbers, strings or arrays"
        )
    return array


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Layer,
    optimizer: Optimizer | None = None,
    *,
    compressed: bool = False,
    **extra: Any,
) -> str:
    """Write ``model``'s weights, ``optimizer``'s state and ``extra`` values to one archive.

    ``extra`` values are numbers, strings or arrays (e.g. ``epoch=3``); they come back from
    :func:`load_checkpoint`. The write is atomic. Returns the path written.
    """
    arrays = {_FORMAT_KEY: np.asarray(CHECKPOINT_FORMAT)}
    for key, value in model_arrays(model).items():
        arrays[_MODEL_PREFIX + key] = value
    if optimizer is not None:
        arrays[_HAS_OPTIMIZER_KEY] = np.asarray(True)
        for key, value in optimizer.state_dict().items():
            arrays[_OPTIMIZER_PREFIX + str(key)] = _host_value(f"optimizer/{key}", value)
    for name, value in extra.items():
        arrays[_EXTRA_PREFIX + name] = _host_value(name, value)
    return write_npz(path, arrays, compressed=compressed)


def _with_prefix(arrays: dict, prefix: str) -> dict:
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


# Optimizer state holds a few arrays per parameter (Adam: two); more than this many times the
# model's bytes is refused before it is read.
_STATE_SIZE_FACTOR = 8


def _check_state_size(source: str, state_headers: dict, model_headers: dict) -> None:
    model_bytes = sum(member.nbytes for member in model_headers.values())
    state_bytes = sum(member.nbytes for member in state_headers.values())
    limit = _STATE_SIZE_FACTOR * model_bytes + (1 << 20)
    if state_bytes > limit:
        raise WeightsFileError(
            f"{source}: its optimizer state declares {state_bytes} bytes, more than "
            f"{_STATE_SIZE_FACTOR} times the model's {model_bytes}: the file is corrupted"
        )


def load_checkpoint(
    path: str | os.PathLike[str], model: Layer, optimizer: Optimizer | None = None
) -> dict[str, Any]:
    """Restore a :func:`save_checkpoint` file into ``model`` (and ``optimizer``), all or nothing.

    Returns the extra values: 0-d entries as Python scalars/strings, others as NumPy arrays.
    The optimizer gets host (NumPy) arrays through ``load_state_dict``.
    """
    with Archive(path) as archive:
        source = f"checkpoint {archive.path!r}"
        members = archive.members
        marker = archive.read(_FORMAT_KEY) if _FORMAT_KEY in members else None
        if marker is None or marker.shape != () or str(marker) != CHECKPOINT_FORMAT:
            raise WeightsFileError(
                f"{source} is not a dezero_xp checkpoint (no {_FORMAT_KEY!r} = "
                f"{CHECKPOINT_FORMAT!r} entry); a weights file is loaded with load_weights"
            )
        model_headers = _with_prefix(members, _MODEL_PREFIX)
        plan = _plan_model_load(
            model, model_headers, lambda key: archive.read(_MODEL_PREFIX + key), source
        )
        if optimizer is not None:
            if _HAS_OPTIMIZER_KEY not in members:
                raise WeightsFileError(
                    f"{source} was saved without an optimizer; call load_checkpoint(path, "
                    "model) without one, or save the checkpoint with the optimizer"
                )
            state_headers = _with_prefix(members, _OPTIMIZER_PREFIX)
            _check_state_size(source, state_headers, model_headers)
            state = {key: archive.read(_OPTIMIZER_PREFIX + key) for key in state_headers}
            # The optimizer validates its own state; the model is assigned only after it
            # accepted.
            try:
                optimizer.load_state_dict(state)
            except (KeyError, ValueError, TypeError) as exc:
                message = exc.args[0] if exc.args else str(exc)
                raise WeightsFileError(
                    f"{source}: its optimizer state (keys {_OPTIMIZER_PREFIX!r}...) does not "
                    f"fit {type(optimizer).__name__}: {message}"
                ) from exc
        arrays = {key: archive.read(key) for key in members if key.startswith(_EXTRA_PREFIX)}
    _apply(plan)
    extras = {}
    for name, value in _with_prefix(arrays, _EXTRA_PREFIX).items():
        extras[name] = value.item() if value.shape == () else value
    return extras
