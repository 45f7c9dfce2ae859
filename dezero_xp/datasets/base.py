"""The Dataset protocol and the file helpers the file-backed datasets share.

:class:`Dataset` holds host NumPy arrays ``data`` and ``label``; :class:`DatasetNotFoundError`
says which files are missing, where they were looked for and where to get them; ``_Files``
finds a dataset's files in the searched folders (see :mod:`dezero_xp.datasets`) and downloads
them; :func:`load_idx` reads MNIST's IDX format; ``_extract_members`` copies members out of a
tar archive safely.

May import: numpy and dezero_xp._download.
"""

from __future__ import annotations

import gzip
import operator
import os
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from dezero_xp._download import DATA_DIR_ENV, DownloadError, default_cache_dir, get_file

__all__ = ["DOWNLOAD_TIMEOUT", "Dataset", "DatasetNotFoundError", "load_idx"]

DOWNLOAD_TIMEOUT = 20.0  # seconds without progress before a download gives up


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not in any searched folder (and were not downloaded)."""


def _identity(x: Any) -> Any:
    return x


class Dataset:
    """Base class: ``data`` and ``label`` arrays filled by :meth:`prepare`, one example per index.

    ``transform`` is applied to each example's data and ``target_transform`` to its label.
    """

    data: Any  # host arrays (or sequences), None until prepare() fills them
    label: Any

    def __init__(
        self,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.train = train
        self.transform = transform if transform is not None else _identity
        self.target_transform = target_transform if target_transform is not None else _identity
        self.data = None
        self.label = None
        self.prepare()

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(
                f"{type(self).__name__}[{index!r}]: index with one integer (a DataLoader "
                "builds batches)"
            ) from None
        x = self.transform(self.data[index])
        if self.label is None:
            return x, None
        return x, self.target_transform(self.label[index])

    def __len__(self) -> int:
        return len(self.data)

    def prepare(self) -> None:
        """Fill ``self.data`` (and ``self.label``); subclasses override it."""


_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: str | os.PathLike[str]) -> tuple[Any, IO[bytes]]:
    """The file opened for binary reading, through gzip when it starts with the gzip magic."""
    f = open(path, "rb")
    if f.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    return f, f


def _read_exactly(path: str | os.PathLike[str], stream: Any, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated file: {what} needs {n} bytes, found {len(data)}")
    return data


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, gunzipped when it is a gzip file."""
    stream, raw_file = _open(path)
    try:
        return stream.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: corrupt gzip file ({exc}); download it again") from None
    finally:
        stream.close()
        raw_file.close()


def load_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not, as a native-endian NumPy array."""
    stream, raw_file = _open(path)
    try:
        magic = stream.read(4)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
            raise ValueError(
                f"{path}: not an IDX file: magic bytes {magic.hex() or '(empty)'}, expected "
                "00 00 <type> <ndim> (00000803 for images, 00000801 for labels)"
            )
        ndim = magic[3]
        dims = struct.unpack(f">{ndim}I", _read_exactly(path, stream, 4 * ndim, "the header"))
        dtype = np.dtype(_IDX_TYPES[magic[2]])
        # Read straight into the result: no second copy of a large file in memory.
        array = np.empty(dims, dtype)
        buffer = memoryview(array).cast("B")  # type: ignore[arg-type]
        filled = 0
        while filled < len(buffer):
            n = stream.readinto(buffer[filled:])
            if not n:
                break
            filled += n
        if filled != len(buffer) or stream.read(1):
            raise ValueError(
                f"{path}: the IDX header promises shape {dims} ({len(buffer)} bytes of data) "
                f"but the file has {'fewer' if filled < len(buffer) else 'more'}; it is "
                "truncated or corrupt"
            )
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: corrupt gzip file ({exc}); download it again") from None
    finally:
        stream.close()
        raw_file.close()
    if not dtype.isnative:
        array = array.byteswap().view(dtype.newbyteorder("="))
    return array


class _Files:
    """Where one dataset's files are looked for, and where and from what URL to fetch them."""

    def __init__(
        self,
        title: str,
        subdir: str,
        env_var: str,
        urls: Iterable[str],
        root: str | os.PathLike[str] | None,
        system_dirs: Iterable[str] = (),
        legacy_dirs: Iterable[str] = (),
    ) -> None:
        self.title = title
        self.urls = urls
        self.env_var = None if root is not None else env_var
        if root is not None:
            self.dirs = [Path(root)]
            self.target = Path(root)
            return
        dirs = []
        if os.environ.get(env_var):
            dirs.append(Path(os.environ[env_var]))
        for folder in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep):
            if folder:
                dirs.append(Path(folder) / subdir)
        dirs += [Path(d) for d in system_dirs]
        cache = Path(default_cache_dir()) / subdir
        self.target = dirs[0] if os.environ.get(env_var) else cache
        self.dirs = [*dirs, cache, *(Path(d).expanduser() for d in legacy_dirs)]

    def find(self, names: Iterable[str], variants: Iterable[str] = ("", ".gz")) -> dict[str, Path]:
        """``{name: path}`` of the files found (the first folder holding a variant wins)."""
        found = {}
        for name in names:
            for folder in self.dirs:
                hits = [folder / (name + v) for v in variants if (folder / (name + v)).is_file()]
                if hits:
                    found[name] = hits[0]
                    break
        return found

    def missing_error(
        self, missing: Iterable[str], source: str, download_error: BaseException | None = None
    ) -> DatasetNotFoundError:
        """The error for ``missing`` files; ``source`` says where they can be had."""
        where = ", ".join(str(d) for d in self.dirs)
        env = self.env_var
        hint = f"pass root=... or set {env}" if env else "pass another root=..."
        message = (
            f"{self.title}: missing {', '.join(missing)}. Looked in: {where}. "
            f"Put the files into {self.target} (or {hint}); {source}"
        )
        if download_error is None:
            message += ". Or pass download=True to fetch them."
        else:
            message += f". The download failed: {download_error}"
        return DatasetNotFoundError(message)

    def fetch(self, file_name: str) -> Path:
        """Download ``file_name`` into the target folder, trying each URL; its path."""
        errors = []
        for base in self.urls:
            try:
                return Path(
                    get_file(
                        base + file_name,
                        file_name,
                        directory=str(self.target),
                        timeout=DOWNLOAD_TIMEOUT,
                    )
                )
            except (DownloadError, FileNotFoundError) as exc:
                errors.append(str(exc))
        raise DownloadError(" | ".join(errors))


def _extract_members(archive: Path, names: Iterable[str], folder: Path) -> None:
    """Copy the archive's members called ``names`` (by base name) into ``folder``.

    Members are read as bytes and written to paths we build, so a crafted archive cannot
    write outside ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(names)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if member.isfile() and base in wanted:
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                (folder / base).write_bytes(data)
