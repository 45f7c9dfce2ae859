"""Datasets (DeZero's ``datasets``): the Dataset protocol, toy sets and image-file loaders.

A :class:`Dataset` holds host NumPy arrays ``data`` and ``label`` and returns one transformed
example per index. Toy sets are generated (Spiral, SinCurve) or come with scikit-learn
(Digits). MNIST, Fashion-MNIST and CIFAR are read from the standard files in a local folder:
IDX files (gzipped or not) for MNIST-like sets, the *binary* CIFAR batches (the Python-pickle
version is refused, since unpickling can run code). Nothing is downloaded unless
``download=True`` is passed; a missing file raises :class:`DatasetNotFoundError` saying which
files, where they were looked for, where to put them and where to get them.

Folders searched, first match wins: ``root=`` when given (then only it); else the dataset's own
environment variable (``DEZERO_XP_MNIST_DIR``, ``DEZERO_XP_FASHION_MNIST_DIR``,
``DEZERO_XP_CIFAR10_DIR``, ``DEZERO_XP_CIFAR100_DIR``), ``<folder>/<name>`` for each folder of
``DEZERO_XP_DATA_DIR``, system locations (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``,
where the Debian package ``dataset-fashion-mnist`` installs it), the download cache
(``~/.dezero_xp/<name>``) and, for MNIST, DeZero's own cache ``~/.dezero``.

May import: numpy, dezero_xp.backend (seeded host RNG), dezero_xp._download,
dezero_xp.transforms, and lazily scikit-learn (Digits).
"""

from __future__ import annotations

import gzip
import operator
import os
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np

from dezero_xp._download import DATA_DIR_ENV, DownloadError, default_cache_dir, get_file
from dezero_xp.backend import host_rng, uses_numpy_global_rng
from dezero_xp.transforms import Compose, Flatten, Normalize, ToFloat

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "DatasetNotFoundError",
    "Dataset",
    "Digits",
    "FashionMNIST",
    "SinCurve",
    "Spiral",
    "get_spiral",
    "load_idx",
]

DOWNLOAD_TIMEOUT = 20.0  # seconds without progress before a download gives up


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not in any searched folder (and were not downloaded)."""


def _identity(x):
    return x


class Dataset:
    """Base class: ``data`` and ``label`` arrays filled by :meth:`prepare`, one example per index.

    ``transform`` is applied to each example's data and ``target_transform`` to its label.
    """

    def __init__(self, train=True, transform=None, target_transform=None):
        self.train = train
        self.transform = transform if transform is not None else _identity
        self.target_transform = target_transform if target_transform is not None else _identity
        self.data = None
        self.label = None
        self.prepare()

    def __getitem__(self, index):
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

    def __len__(self):
        return len(self.data)

    def prepare(self):
        """Fill ``self.data`` (and ``self.label``); subclasses override it."""


# =============================================================================
# Toy datasets
# =============================================================================
def get_spiral(train=True):
    """DeZero's spiral: 300 2-D points in 3 interleaved arms (seed 1984 train, 2020 test).

    The same numbers as DeZero's ``get_spiral``. Like DeZero's, it reseeds NumPy's global
    generator (``np.random.seed(1984)``), so what a script draws next (weights, shuffles) is
    DeZero's too; after ``dz.seed()`` a private ``RandomState`` replays the same stream and the
    global generator is left alone.
    """
    seed = 1984 if train else 2020
    if uses_numpy_global_rng():
        np.random.seed(seed)
        rs = np.random
    else:
        rs = np.random.RandomState(seed)
    num_data, num_class, input_dim = 100, 3, 2
    data_size = num_class * num_data
    x = np.zeros((data_size, input_dim), dtype=np.float32)
    t = np.zeros(data_size, dtype=np.int64)
    for j in range(num_class):
        for i in range(num_data):
            rate = i / num_data
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + rs.randn() * 0.2
            ix = num_data * j + i
            x[ix] = np.array([radius * np.sin(theta), radius * np.cos(theta)]).flatten()
            t[ix] = j
    indices = rs.permutation(num_data * num_class)
    return x[indices], t[indices]


class Spiral(Dataset):
    """The spiral toy set: float32 points ``(300, 2)``, int64 labels 0..2."""

    def prepare(self):
        self.data, self.label = get_spiral(self.train)


class SinCurve(Dataset):
    """999 steps of a sine (train, with noise) or cosine (test): predict the next value.

    float32 ``(999, 1)``; the noise is DeZero's draw (``np.random.uniform``, made for the test
    set too, as DeZero does), reproducible under ``np.random.seed`` or ``dz.seed``.
    """

    def prepare(self):
        num_data = 1000
        x = np.linspace(0, 2 * np.pi, num_data)
        noise = host_rng("datasets.SinCurve").uniform(-0.05, 0.05, size=x.shape)
        if self.train:
            y = np.sin(x) + noise
        else:
            y = np.cos(x)
        y = y.astype(np.float32)
        self.data = y[:-1][:, np.newaxis]
        self.label = y[1:][:, np.newaxis]


_DIGITS_SPLIT_SEED = 20240601  # fixed: the train/test split never depends on dz.seed


class Digits(Dataset):
    """scikit-learn's bundled 8x8 digits (1797 images) in [0, 1], float32.

    ``flatten=True`` gives ``(N, 64)``, else ``(N, 1, 8, 8)``. A fixed permutation puts
    ``test_ratio`` of the images in the test set and the rest in the train set.
    """

    def __init__(
        self, train=True, transform=None, target_transform=None, flatten=True, test_ratio=0.2
    ):
        self.flatten = flatten
        self.test_ratio = test_ratio
        super().__init__(train, transform, target_transform)

    def prepare(self):
        try:
            from sklearn.datasets import load_digits  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise ImportError(
                "Digits needs scikit-learn: pip install scikit-learn (or dezero_xp[examples])"
            ) from None
        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)
        labels = bunch.target.astype(np.int64)
        order = np.random.default_rng(_DIGITS_SPLIT_SEED).permutation(len(labels))
        n_test = int(round(len(labels) * self.test_ratio))
        index = order[n_test:] if self.train else order[:n_test]
        data = images[index]
        self.data = data.reshape(len(index), 64) if self.flatten else data[:, np.newaxis]
        self.label = labels[index]


# =============================================================================
# Files: reading and locating
# =============================================================================
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path):
    """The file opened for binary reading, through gzip when it starts with the gzip magic."""
    f = open(path, "rb")
    if f.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    return f, f


def _read_exactly(path, stream, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated file: {what} needs {n} bytes, found {len(data)}")
    return data


def _read_bytes(path) -> bytes:
    """The file's bytes, gunzipped when it is a gzip file."""
    stream, raw_file = _open(path)
    try:
        return stream.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: corrupt gzip file ({exc}); download it again") from None
    finally:
        stream.close()
        raw_file.close()


def load_idx(path) -> np.ndarray:
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
        buffer = memoryview(array).cast("B")
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

    def __init__(self, title, subdir, env_var, urls, root, system_dirs=(), legacy_dirs=()):
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

    def find(self, names, variants=("", ".gz")) -> dict:
        """``{name: path}`` of the files found (the first folder holding a variant wins)."""
        found = {}
        for name in names:
            for folder in self.dirs:
                hits = [folder / (name + v) for v in variants if (folder / (name + v)).is_file()]
                if hits:
                    found[name] = hits[0]
                    break
        return found

    def missing_error(self, missing, source, download_error=None) -> DatasetNotFoundError:
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

    def fetch(self, file_name):
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


# =============================================================================
# MNIST and Fashion-MNIST (IDX files)
# =============================================================================
_MNIST_TRANSFORM = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])


class MNIST(Dataset):
    """MNIST digits: ``data`` uint8 ``(N, 1, 28, 28)``, ``label`` int64.

    The default transform gives flat float32 vectors in [0, 1], as DeZero's. ``root`` is the
    folder with the four IDX files; see the module docstring for the folders searched otherwise.
    """

    title = "MNIST"
    subdir = "mnist"
    env_var = "DEZERO_XP_MNIST_DIR"
    urls = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
    system_dirs: tuple = ()
    legacy_dirs: tuple = ("~/.dezero",)
    file_names = {
        True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def __init__(
        self,
        train=True,
        transform=_MNIST_TRANSFORM,
        target_transform=None,
        root=None,
        download=False,
    ):
        self.root = root
        self.download = download
        super().__init__(train, transform, target_transform)

    def _files(self) -> _Files:
        existing = tuple(d for d in self.system_dirs if Path(d).is_dir())
        title = f"{self.title} ({'train' if self.train else 'test'})"
        return _Files(
            title, self.subdir, self.env_var, self.urls, self.root, existing, self.legacy_dirs
        )

    def _source(self) -> str:
        names = ", ".join(n + ".gz" for n in self.file_names[self.train])
        return f"they can be had as {names} (gzipped or not) from {self.urls[0]}"

    def prepare(self):
        files = self._files()
        names = self.file_names[self.train]
        found = files.find(names)
        missing = [n for n in names if n not in found]
        if missing and self.download:
            try:
                for name in missing:
                    found[name] = files.fetch(name + ".gz")
            except DownloadError as exc:
                raise files.missing_error(missing, self._source(), exc) from None
        elif missing:
            raise files.missing_error(missing, self._source())
        images = load_idx(found[names[0]])
        labels = load_idx(found[names[1]])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{found[names[0]]}: expected uint8 images of shape (N, H, W), got "
                f"{images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{found[names[1]]}: expected {len(images)} labels for the images, got shape "
                f"{labels.shape}"
            )
        self.data = images[:, np.newaxis]
        self.label = labels.astype(np.int64)

    @staticmethod
    def labels():
        """Class index to name."""
        return {i: str(i) for i in range(10)}


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the format, shapes and transform of :class:`MNIST`."""

    title = "Fashion-MNIST"
    subdir = "fashion-mnist"
    env_var = "DEZERO_XP_FASHION_MNIST_DIR"
    urls = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    legacy_dirs = ()

    @staticmethod
    def labels():
        """Class index to name."""
        names = [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]
        return dict(enumerate(names))


# =============================================================================
# CIFAR (binary version)
# =============================================================================
_CIFAR_TRANSFORM = Compose([ToFloat(), Normalize(127.5, 127.5)])


class CIFAR10(Dataset):
    """CIFAR-10 from its *binary* batches: ``data`` uint8 ``(N, 3, 32, 32)``, ``label`` int64.

    ``root`` is the ``cifar-10-batches-bin`` folder (or the folder holding it). The default
    transform maps pixels to float32 in [-1, 1] (DeZero meant that with mean=std=0.5 but
    applied it to 0..255 values).
    """

    title = "CIFAR-10"
    subdir = "cifar-10-batches-bin"
    env_var = "DEZERO_XP_CIFAR10_DIR"
    urls = ("https://www.cs.toronto.edu/~kriz/",)
    archive = "cifar-10-binary.tar.gz"
    label_bytes = 1  # bytes of labels before each image's pixels
    label_offset = 0  # which of them is the label returned
    num_classes = 10

    def __init__(
        self,
        train=True,
        transform=_CIFAR_TRANSFORM,
        target_transform=None,
        root=None,
        download=False,
    ):
        self.root = root
        self.download = download
        super().__init__(train, transform, target_transform)

    def _names(self):
        if self.train:
            return [f"data_batch_{i}.bin" for i in range(1, 6)]
        return ["test_batch.bin"]

    def _source(self) -> str:
        return f"they are in the archive {self.urls[0]}{self.archive}"

    def _files(self) -> _Files:
        root = None if self.root is None else Path(self.root)
        if root is not None and (root / self.subdir).is_dir():
            root = root / self.subdir
        title = (
            f"{self.title} ({'train' if self.train else 'test'}; the binary version "
            f"{self.archive}, not the Python-pickle one, which can run code when loaded)"
        )
        return _Files(title, self.subdir, self.env_var, self.urls, root)

    def prepare(self):
        files = self._files()
        names = self._names()
        found = files.find(names, variants=("",))
        missing = [n for n in names if n not in found]
        if missing and self.download:
            try:
                archive = files.fetch(self.archive)
            except DownloadError as exc:
                raise files.missing_error(missing, self._source(), exc) from None
            _extract_members(archive, missing, files.target)
            found = files.find(names, variants=("",))
            missing = [n for n in names if n not in found]
        if missing:
            raise files.missing_error(missing, self._source())
        parts = [self._read_batch(found[n]) for n in names]
        self.data = np.concatenate([p[0] for p in parts])
        self.label = np.concatenate([p[1] for p in parts])

    def _read_batch(self, path):
        raw = _read_bytes(path)
        record = self.label_bytes + 3 * 32 * 32
        if raw[:1] == b"\x80":
            raise ValueError(
                f"{path}: this is a Python pickle (the 'python version' of CIFAR); use the "
                f"binary version ({self.archive}), pickles can run code when loaded"
            )
        if len(raw) == 0 or len(raw) % record:
            raise ValueError(
                f"{path}: not a {self.title} binary batch: {len(raw)} bytes is not a multiple "
                f"of the {record}-byte record"
            )
        records = np.frombuffer(raw, np.uint8).reshape(-1, record)
        labels = records[:, self.label_offset].astype(np.int64)
        if labels.max() >= self.num_classes:
            raise ValueError(
                f"{path}: label {labels.max()} out of range 0..{self.num_classes - 1}; not a "
                f"{self.title} binary batch"
            )
        images = records[:, self.label_bytes :].reshape(-1, 3, 32, 32).copy()
        return images, labels

    @staticmethod
    def labels():
        """Class index to name."""
        names = [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
        return dict(enumerate(names))


class CIFAR100(CIFAR10):
    """CIFAR-100 from its binary files; ``label_type`` "fine" (100 classes) or "coarse" (20)."""

    title = "CIFAR-100"
    subdir = "cifar-100-binary"
    env_var = "DEZERO_XP_CIFAR100_DIR"
    archive = "cifar-100-binary.tar.gz"
    label_bytes = 2

    def __init__(
        self,
        train=True,
        transform=_CIFAR_TRANSFORM,
        target_transform=None,
        label_type="fine",
        root=None,
        download=False,
    ):
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', got {label_type!r}")
        self.label_type = label_type
        # each record is <coarse label><fine label><pixels>
        self.label_offset = 1 if label_type == "fine" else 0
        self.num_classes = 100 if label_type == "fine" else 20
        super().__init__(train, transform, target_transform, root, download)

    def _names(self):
        return ["train.bin" if self.train else "test.bin"]


def _extract_members(archive: Path, names, folder: Path) -> None:
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
                data = tar.extractfile(member).read()
                (folder / base).write_bytes(data)
