"""The ``.npz`` container on disk: atomic writes and a header-first, bounded reader.

- :func:`write_npz`: ``{key: host array}`` to a temporary file in the target's folder, flushed
  and fsynced, then renamed over the target; a failure at any point leaves the old file and no
  temporary file. A symlink is written *through*: its target is replaced, the link stays.
- :class:`Archive`: opens an archive and reads every member's ``.npy`` header (shape, dtype)
  without decompressing the data. Each declared size is checked against what the zip directory
  says the member holds (and, for deflated members, against the most deflate can expand), so a
  caller can compare the shapes with what it expects *before* any array is allocated:
  a zip bomb or a header declaring 10^11 elements is refused at this stage. :meth:`Archive.read`
  then reads one array (exactly the declared bytes, CRC checked), in native byte order.

Every problem with a file's content raises :class:`WeightsFileError` naming the file (and the
member); a missing file is FileNotFoundError, a folder IsADirectoryError. No pickle ever runs.

May import: numpy and the standard library.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zipfile
import zlib
from typing import Literal

import numpy as np

__all__ = ["Archive", "WeightsFileError", "existing_path", "npz_path", "write_npz"]

_MAX_HEADER_SIZE = 10000  # numpy.load's default limit on an .npy header
_MAX_DEFLATE_RATIO = 1100  # deflate expands at most ~1032:1; a larger declared size is a lie
_NUMERIC_KINDS = "biufc"
_TEXT_KINDS = "US"  # checkpoints store their format marker and string extras


class WeightsFileError(ValueError):
    """A weights or checkpoint file cannot be read, or does not match the model."""


# Everything a damaged archive can make zipfile/zlib/numpy's header parser raise.
_READ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    NotImplementedError,  # a flipped compression-method byte
    RuntimeError,  # a flipped "encrypted" flag
    OverflowError,
    SyntaxError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
)


def _text_path(path) -> str:
    """``path`` as a str (bytes and path-like objects too)."""
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(
            f"a weights file path must be a str, bytes or os.PathLike, got "
            f"{type(path).__name__} {path!r:.40}"
        ) from None


def npz_path(path) -> str:
    """``path`` with ``.npz`` appended when it has another ending (as ``numpy.savez`` does)."""
    path = _text_path(path)
    return path if path.endswith(".npz") else path + ".npz"


def existing_path(path) -> str:
    """The file to read for ``path``: itself, else ``path + ".npz"`` (numpy.savez's rule)."""
    path = _text_path(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder, not a weights file; pass the .npz file")
    if os.path.isfile(path):
        return path
    if not path.endswith(".npz") and os.path.isfile(path + ".npz"):
        return path + ".npz"
    raise FileNotFoundError(f"weights file {path!r} does not exist")


# --------------------------------------------------------------------------- writing


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


def write_npz(path: str | os.PathLike[str], arrays: dict, compressed: bool = False) -> str:
    """Atomically write ``{key: host array}`` to ``path`` (``.npz`` appended if missing).

    Returns the path written (the path given, even when it is a symlink whose target was
    replaced).
    """
    path = npz_path(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save weights to {path!r}: it is a folder")
    # Through a symlink: replace its target, as open(path, "wb") would, and keep the link.
    real = os.path.realpath(path) if os.path.islink(path) else path
    directory = os.path.dirname(os.path.abspath(real))
    mode = _NEW_FILE_MODE
    with contextlib.suppress(OSError):
        mode = os.stat(real).st_mode & 0o777  # overwriting keeps the old file's permissions
    fd, temporary = tempfile.mkstemp(
        prefix="." + os.path.basename(real) + ".", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, arrays, compressed)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return path


# --------------------------------------------------------------------------- reading


class Member:
    """One ``.npy`` member of an archive: its key, declared shape and dtype, zip entry."""

    __slots__ = ("key", "shape", "dtype", "fortran_order", "info", "nbytes")

    def __init__(self, key, shape, dtype, fortran_order, info, nbytes):
        self.key = key
        self.shape = shape
        self.dtype = dtype
        self.fortran_order = fortran_order
        self.info = info
        self.nbytes = nbytes


class _NotNpy(Exception):
    """The member does not start with the ``.npy`` magic string."""


def _read_header(stream):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` data at the start of ``stream``."""
    magic = stream.read(8)
    if len(magic) < 8 or not magic.startswith(b"\x93NUMPY"):
        raise _NotNpy
    version = (magic[6], magic[7])
    if version == (1, 0):
        reader = np.lib.format.read_array_header_1_0
    elif version == (2, 0):
        reader = np.lib.format.read_array_header_2_0
    else:
        raise ValueError(f".npy format version {version} is not supported")
    return reader(stream, max_header_size=_MAX_HEADER_SIZE)


class Archive:
    """An ``.npz`` archive whose headers are read and checked; data is read on demand.

    ``archive.members`` maps each key (the member name without ``.npy``) to a :class:`Member`.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path):
        self.path = existing_path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._zip = self._open_zip()
            self.members = self._read_members()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        zip_file = getattr(self, "_zip", None)
        if zip_file is not None:
            zip_file.close()
        self._file.close()

    def error(self, message: str, key: str | None = None) -> WeightsFileError:
        where = f"{self.path!r}" if key is None else f"{self.path!r}, member {key!r}"
        return WeightsFileError(f"{where}: {message}")

    def _unreadable(self, exc, key=None) -> WeightsFileError:
        return self.error(
            "cannot read it as an .npz archive: it is truncated, corrupted or not a weights "
            f"file ({type(exc).__name__}: {exc})",
            key,
        )

    def _open_zip(self):
        head = self._file.read(6)
        self._file.seek(0)
        if head.startswith(b"\x93NUMPY"):
            raise self.error(
                "holds a single array (a .npy file), not an .npz archive of named arrays; "
                "weights are written by Layer.save_weights"
            )
        try:
            return zipfile.ZipFile(self._file)
        except _READ_ERRORS as exc:
            raise self._unreadable(exc) from exc

    def _read_members(self) -> dict:
        members = {}
        for info in self._zip.infolist():
            name = info.filename
            key = name[:-4] if name.endswith(".npy") else name
            if key in members:
                raise self.error(
                    "the archive holds this member twice; a well-formed file names each array "
                    "once (the file was tampered with or badly merged)",
                    key,
                )
            members[key] = self._read_member(key, info)
        return members

    def _read_member(self, key, info) -> Member:
        try:
            with self._zip.open(info) as stream:
                shape, fortran_order, dtype = _read_header(stream)
                header_size = stream.tell()
        except _NotNpy:
            raise self.error("is not a NumPy array; not a weights file", key) from None
        except _READ_ERRORS as exc:
            raise self._unreadable(exc, key) from exc
        if dtype.fields is not None or dtype.kind not in _NUMERIC_KINDS + _TEXT_KINDS:
            raise self.error(
                f"has dtype {dtype.str!r}; weights files hold plain numeric arrays (objects would "
                "need pickle, which is never run)",
                key,
            )
        count = 1
        for n in shape:
            count *= n
        nbytes = count * dtype.itemsize
        if header_size + nbytes != info.file_size:
            raise self.error(
                f"declares shape {shape} {dtype.name} ({nbytes} bytes) but the archive holds "
                f"{info.file_size - header_size} bytes of data: the file is corrupted",
                key,
            )
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024
        ):
            raise self.error(
                f"declares {info.file_size} bytes stored in {info.compress_size} compressed "
                "bytes, more than compression can produce: the file is corrupted or a zip bomb",
                key,
            )
        return Member(key, tuple(shape), dtype, fortran_order, info, nbytes)

    def read(self, key) -> np.ndarray:
        """The array of member ``key``: a new writable NumPy array in native byte order."""
        member = self.members[key]
        buffer = bytearray(member.nbytes)
        try:
            with self._zip.open(member.info) as stream:
                _read_header(stream)
                view = memoryview(buffer)
                done = 0
                while done < member.nbytes:
                    n = stream.readinto(view[done:])
                    if not n:
                        raise EOFError(f"{member.nbytes - done} bytes missing")
                    done += n
                if stream.read(1):  # reading to the end also checks the CRC
                    raise ValueError("data after the declared array")
        except (_NotNpy, *_READ_ERRORS) as exc:
            raise self._unreadable(exc, key) from exc
        dtype = member.dtype
        if member.nbytes == 0:
            return np.empty(member.shape, dtype=dtype.newbyteorder("="))
        array = np.frombuffer(buffer, dtype=dtype)
        order: Literal["C", "F"] = "F" if member.fortran_order else "C"
        array = array.reshape(member.shape, order=order)
        if not dtype.isnative:
            array = array.astype(dtype.newbyteorder("="))  # big-endian files load natively
        return array

    def read_all(self) -> dict:
        """Every array, by key."""
        return {key: self.read(key) for key in self.members}
