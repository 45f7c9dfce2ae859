"""Image datasets read from their standard files: MNIST, Fashion-MNIST, CIFAR-10/100.

IDX files (gzipped or not) for the MNIST-like sets; the *binary* CIFAR batches (the
Python-pickle version is refused, since unpickling can run code). Nothing is downloaded unless
``download=True``; the folders searched are listed in :mod:`dezero_xp.datasets`.

May import: numpy, dezero_xp._download, dezero_xp.transforms and dezero_xp.datasets.base.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dezero_xp._download import DownloadError
from dezero_xp.datasets.base import Dataset, _extract_members, _Files, _read_bytes, load_idx
from dezero_xp.transforms import Compose, Flatten, Normalize, ToFloat

__all__ = ["CIFAR10", "CIFAR100", "MNIST", "FashionMNIST"]


_MNIST_TRANSFORM = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])


class MNIST(Dataset):
    """MNIST digits: ``data`` uint8 ``(N, 1, 28, 28)``, ``label`` int64.

    The default transform gives flat float32 vectors in [0, 1], as DeZero's. ``root`` is the
    folder with the four IDX files; see the module docstring for the folders searched otherwise.
    """

    title = "MNIST"
    subdir = "mnist"
    env_var = "DEZERO_XP_MNIST_DIR"
    urls: tuple[str, ...] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    system_dirs: tuple = ()
    legacy_dirs: tuple = ("~/.dezero",)
    file_names = {
        True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def __init__(
        self,
        train: bool = True,
        transform: Callable[[Any], Any] | None = _MNIST_TRANSFORM,
        target_transform: Callable[[Any], Any] | None = None,
        root: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> None:
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

    def prepare(self) -> None:
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
    def labels() -> dict[int, str]:
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
    def labels() -> dict[int, str]:
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
        train: bool = True,
        transform: Callable[[Any], Any] | None = _CIFAR_TRANSFORM,
        target_transform: Callable[[Any], Any] | None = None,
        root: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> None:
        self.root = root
        self.download = download
        super().__init__(train, transform, target_transform)

    def _names(self) -> list[str]:
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

    def prepare(self) -> None:
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

    def _read_batch(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
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
    def labels() -> dict[int, str]:
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
        train: bool = True,
        transform: Callable[[Any], Any] | None = _CIFAR_TRANSFORM,
        target_transform: Callable[[Any], Any] | None = None,
        label_type: str = "fine",
        root: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> None:
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', got {label_type!r}")
        self.label_type = label_type
        # each record is <coarse label><fine label><pixels>
        self.label_offset = 1 if label_type == "fine" else 0
        self.num_classes = 100 if label_type == "fine" else 20
        super().__init__(train, transform, target_transform, root, download)

    def _names(self) -> list[str]:
        return ["train.bin" if self.train else "test.bin"]
