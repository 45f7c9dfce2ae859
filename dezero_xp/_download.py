"""Fetching data files once and caching them: :func:`get_file` and :data:`cache_dir`.

Lookup order for a file: the URL itself when it is a local path (or ``file://``), the folders in
``DEZERO_XP_DATA_DIR`` (for machines without internet: put the file there by hand), the cache
folder (``DEZERO_XP_CACHE_DIR``, else ``~/.dezero_xp``), and only then a download with a
timeout. A failed download raises :class:`DownloadError` naming the file, the URL and where to
put the file manually; it never leaves a partial file behind.

May import: the standard library only (so every data module can use it).
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

__all__ = ["DownloadError", "cache_dir", "default_cache_dir", "get_file"]

DATA_DIR_ENV = "DEZERO_XP_DATA_DIR"
CACHE_DIR_ENV = "DEZERO_XP_CACHE_DIR"
DEFAULT_TIMEOUT = 30.0  # seconds without progress before a download is abandoned
_CHUNK = 1 << 16


class DownloadError(OSError):
    """A file could not be downloaded (offline, unreachable server, HTTP error, timeout)."""


def default_cache_dir() -> str:
    """``$DEZERO_XP_CACHE_DIR`` when set, else ``~/.dezero_xp``."""
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".dezero_xp")


#: DeZero's ``utils.cache_dir``: where downloaded files are kept (read when the module loads;
#: pass ``directory=`` to :func:`get_file` or set ``DEZERO_XP_CACHE_DIR`` to change it).
cache_dir = default_cache_dir()


def _local_path(url: str) -> str | None:
    """The path ``url`` names when it is a local file (a plain path or a ``file://`` URL)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if not parsed.scheme or len(parsed.scheme) == 1:  # "C:\\..." parses as scheme "c"
        return url
    return None


def _data_dirs() -> list[str]:
    raw = os.environ.get(DATA_DIR_ENV, "")
    return [d for d in raw.split(os.pathsep) if d]


def get_file(
    url: str,
    file_name: str | None = None,
    *,
    directory: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    quiet: bool = False,
) -> str:
    """The local path of the file at ``url``, downloading it into the cache only when needed.

    ``file_name`` defaults to the last part of the URL; ``directory`` to :data:`cache_dir`
    (``DEZERO_XP_DATA_DIR`` folders are searched first). ``timeout`` bounds every network wait
    (connecting and each read), so an unreachable or silent server fails instead of hanging.
    """
    local = _local_path(url)
    if local is not None:
        if os.path.isfile(local):
            return local
        raise FileNotFoundError(f"get_file: {local!r} does not exist")
    if file_name is None:
        file_name = os.path.basename(urllib.parse.urlparse(url).path)
    if not file_name:
        raise ValueError(f"get_file: cannot tell a file name from {url!r}; pass file_name=")
    folder = directory if directory is not None else cache_dir
    for directory in [*_data_dirs(), folder]:
        candidate = os.path.join(directory, file_name)
        if os.path.isfile(candidate):
            return candidate

    target = os.path.join(folder, file_name)
    os.makedirs(folder, exist_ok=True)
    partial = f"{target}.{uuid.uuid4().hex}.part"
    if not quiet:
        print(f"Downloading {file_name} from {url}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
        os.replace(partial, target)  # atomic: the cache never holds a half-written file
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # it holds the open error response
        raise DownloadError(_offline_help(file_name, url, target, exc)) from exc
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def _offline_help(file_name: str, url: str, target: str, exc: BaseException) -> str:
    # "HTTP Error 404: Not Found" for HTTP errors, "[Errno 111] Connection refused" for others
    http_error = isinstance(exc, urllib.error.HTTPError)
    reason = exc if http_error else getattr(exc, "reason", None) or exc
    where = f"{target!r}"
    if _data_dirs():
        where += f" or into one of the folders of ${DATA_DIR_ENV} ({os.pathsep.join(_data_dirs())})"
    else:
        where += f" (or into a folder named by the environment variable {DATA_DIR_ENV})"
    return (
        f"get_file: could not download {file_name!r} from {url} "
        f"({type(exc).__name__}: {reason}). If this machine is offline, download the file "
        f"elsewhere and put it at {where}; it is then used without any download."
    )
