"""Weights and checkpoints on disk as NumPy ``.npz`` archives: atomic writes, validated loads.

- :func:`save_weights` / :func:`load_weights`: what ``Layer.save_weights`` / ``load_weights``
  call. Keys are DeZero's ``'/'``-joined attribute paths (``"l0/W"``, ``"bn1/avg_mean"``), so
  files written by DeZero load here and the other way round.
- :func:`save_checkpoint` / :func:`load_checkpoint`: weights plus an optimizer's state plus any
  extra values (epoch, ...) in one archive.

Writes are atomic: the archive goes to a temporary file in the target's folder, is flushed to
disk and only then renamed over the target, so an interrupted save never destroys the previous
file. Loads read the whole archive with ``allow_pickle=False``, validate every key, shape and
dtype against the model, copy the arrays onto the device each parameter lives on, and only then
assign: a truncated, foreign or mismatched file raises :class:`WeightsFileError` naming the key
and shapes, and leaves every parameter as it was.

This module works on the *state protocol* instead of importing the Layer class: a model has
``_state_entries()``, yielding ``(key, owner, name, is_param)`` for every Parameter
(``is_param=True``, the array is ``getattr(owner, name).data``) and every raw state array such as
BatchNorm's running averages (``is_param=False``, the array is ``getattr(owner, name)``). An
optimizer has ``state_dict() -> {str: array}`` and ``load_state_dict({str: numpy.ndarray})``;
it receives host (NumPy) arrays and places them next to its parameters.

May import: numpy, the standard library and dezero_xp.backend.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
import zlib

import numpy as np

from dezero_xp.backend import backend_of, dtype_name, get_backend, is_array, to_host

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


class WeightsFileError(ValueError):
    """A weights or checkpoint file cannot be read, or does not match the model."""


# --------------------------------------------------------------------------- archives


def _file_mode() -> int:
    # mkstemp creates 0600 files; a saved file gets the permissions open() would give it.
    # Reading the umask means setting it, so do it once, at import.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _file_mode()


def _write_archive(fileobj, arrays: dict, compressed: bool) -> None:
    """Write ``arrays`` as an ``.npz`` archive (what ``numpy.savez`` writes) to ``fileobj``."""
    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(fileobj, mode="w", compression=compression, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable too (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def npz_path(path) -> str:
    """``path`` with ``.npz`` appended when it has another ending (as ``numpy.savez`` does)."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def write_npz(path, arrays: dict, compressed: bool = False) -> str:
    """Atomically write ``{key: host array}`` to ``path`` (``.npz`` appended if missing).

    The archive is written to a temporary file in the same folder, flushed and fsynced, then
    renamed over ``path``: a failure at any point leaves the previous file intact and no
    temporary file behind. Returns the path written.
    """
    path = npz_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    mode = _NEW_FILE_MODE
    with contextlib.suppress(OSError):
        mode = os.stat(path).st_mode & 0o777  # overwriting keeps the old file's permissions
    fd, temporary = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, arrays, compressed)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return path


def _existing_path(path) -> str:
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if not path.endswith(".npz") and os.path.isfile(path + ".npz"):
        return path + ".npz"  # saved as "name", written as "name.npz" (numpy.savez's rule)
    raise FileNotFoundError(f"weights file {path!r} does not exist")


def _unreadable(path, exc) -> WeightsFileError:
    return WeightsFileError(
        f"cannot read {path!r} as an .npz archive: it is truncated, corrupted or not a weights "
        f"file ({type(exc).__name__}: {exc})"
    )


_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def read_npz(path) -> dict:
    """Every array of the ``.npz`` archive at ``path`` as ``{key: numpy.ndarray}``.

    Reads everything up front with ``allow_pickle=False``; a missing file raises
    FileNotFoundError, anything that is not a complete ``.npz`` archive of plain arrays raises
    :class:`WeightsFileError` naming the file.
    """
    path = _existing_path(path)
    # We open the file ourselves: np.load leaks its own handle when the zip directory is broken.
    with open(path, "rb") as f:
        try:
            loaded = np.load(f, allow_pickle=False)
        except _READ_ERRORS as exc:
            raise _unreadable(path, exc) from exc
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise WeightsFileError(
                f"{path!r} holds a single array (a .npy file), not an .npz archive of named "
                "arrays; weights are written by Layer.save_weights"
            )
        try:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
        except _READ_ERRORS as exc:
            raise _unreadable(path, exc) from exc
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # a zip member that is not a .npy array
            raise WeightsFileError(
                f"{path!r}: member {key!r} is not a NumPy array; not a weights file"
            )
    return arrays


# --------------------------------------------------------------------------- model state


def _current(entry):
    _key, owner, name, is_param = entry
    obj = getattr(owner, name)
    return obj.data if is_param else obj


def _assign(entry, array) -> None:
    _key, owner, name, is_param = entry
    if is_param:
        getattr(owner, name).data = array
    else:
        setattr(owner, name, array)


def _target_backend(entry):
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


def _entries(model) -> list:
    if not hasattr(model, "_state_entries"):
        raise TypeError(
            f"expected a Layer/Model, got {type(model).__name__}: it has no _state_entries()"
        )
    return list(model._state_entries())


def model_arrays(model) -> dict:
    """``{key: host array}`` for every initialised Parameter and state array of ``model``."""
    arrays = {}
    for entry in _entries(model):
        value = _current(entry)
        if value is not None:
            arrays[entry[0]] = to_host(value)
    return arrays


def _listed(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def _describe(shape, dtype) -> str:
    return f"shape {tuple(shape)} {dtype_name(dtype)}"


def _plan_model_load(model, arrays: dict, source: str) -> list:
    """Validate ``arrays`` against ``model`` and copy them to device; assign nothing yet.

    Returns ``[(entry, device array), ...]``. Raises WeightsFileError on missing or extra keys
    and on any shape or dtype mismatch.
    """
    entries = _entries(model)
    by_key = {entry[0]: entry for entry in entries}
    current = {entry[0]: _current(entry) for entry in entries}
    required = {key for key, value in current.items() if value is not None}
    missing = required - arrays.keys()
    extra = arrays.keys() - by_key.keys()
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) the model has: {_listed(missing)}")
        if extra:
            parts.append(f"{len(extra)} key(s) the model does not have: {_listed(extra)}")
        hint = ""
        if _FORMAT_KEY in arrays:
            hint = " (this file is a checkpoint: use load_checkpoint)"
        raise WeightsFileError(
            f"{source} does not match the model: {'; '.join(parts)}. It was probably saved "
            f"from a different architecture{hint}"
        )
    plan = []
    for key, host in arrays.items():
        entry = by_key[key]
        value = current[key]
        if value is not None:
            expected_shape, expected_dtype = tuple(value.shape), dtype_name(value.dtype)
        else:  # a lazy parameter: any shape; the layer's dtype when it declares one
            expected_shape = tuple(host.shape)
            declared = getattr(entry[1], "dtype", None)
            expected_dtype = dtype_name(declared) if declared is not None else None
        found_dtype = dtype_name(host.dtype)
        if tuple(host.shape) != expected_shape or expected_dtype not in (None, found_dtype):
            raise WeightsFileError(
                f"{source}: key {key!r} has {_describe(host.shape, host.dtype)} but the model "
                f"expects shape {expected_shape} {expected_dtype or found_dtype}"
            )
        plan.append((entry, host))
    # All checks passed: copy to the devices (this may still fail, e.g. out of memory, so it
    # too happens before any assignment).
    return [(entry, _target_backend(entry).from_host(host)) for entry, host in plan]


def _apply(plan) -> None:
    owners = []
    for entry, array in plan:
        _assign(entry, array)
        if entry[1] not in owners:
            owners.append(entry[1])
    for owner in owners:
        hook = getattr(owner, "_after_load", None)
        if hook is not None:
            hook()


def save_weights(model, path, compressed: bool = False) -> str:
    """Write every initialised Parameter and state array of ``model`` to ``path`` atomically.

    The model is not moved: arrays are copied to the host. Returns the path written (``.npz`` is
    appended when ``path`` has another ending, as ``numpy.savez`` does).
    """
    return write_npz(path, model_arrays(model), compressed=compressed)


def load_weights(model, path) -> None:
    """Load a file written by :func:`save_weights` (or DeZero) into ``model``, all or nothing.

    Arrays go to the device each parameter lives on now, whichever backend saved them.
    """
    arrays = read_npz(path)
    _apply(_plan_model_load(model, arrays, f"weights file {os.fspath(path)!r}"))


# --------------------------------------------------------------------------- checkpoints


def _host_value(name: str, value) -> np.ndarray:
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


def save_checkpoint(path, model, optimizer=None, *, compressed: bool = False, **extra) -> str:
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


def load_checkpoint(path, model, optimizer=None) -> dict:
    """Restore a :func:`save_checkpoint` file into ``model`` (and ``optimizer``), all or nothing.

    Returns the extra values: 0-d entries as Python scalars/strings, others as NumPy arrays.
    The optimizer gets host (NumPy) arrays through ``load_state_dict``.
    """
    arrays = read_npz(path)
    source = f"checkpoint {os.fspath(path)!r}"
    marker = arrays.get(_FORMAT_KEY)
    if marker is None or marker.shape != () or str(marker) != CHECKPOINT_FORMAT:
        raise WeightsFileError(
            f"{source} is not a dezero_xp checkpoint (no {_FORMAT_KEY!r} = {CHECKPOINT_FORMAT!r}"
            " entry); a weights file is loaded with load_weights"
        )
    plan = _plan_model_load(model, _with_prefix(arrays, _MODEL_PREFIX), source)
    if optimizer is not None:
        if _HAS_OPTIMIZER_KEY not in arrays:
            raise WeightsFileError(
                f"{source} was saved without an optimizer; call load_checkpoint(path, model) "
                "without one, or save the checkpoint with the optimizer"
            )
        state = _with_prefix(arrays, _OPTIMIZER_PREFIX)
        # The optimizer validates its own state; the model is assigned only after it accepted.
        optimizer.load_state_dict(state)
    _apply(plan)
    extras = {}
    for name, value in _with_prefix(arrays, _EXTRA_PREFIX).items():
        extras[name] = value.item() if value.shape == () else value
    return extras
