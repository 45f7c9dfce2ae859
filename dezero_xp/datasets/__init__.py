"""Datasets (DeZero's ``datasets``): the Dataset protocol, toy sets and file-backed sets.

A :class:`Dataset` holds host NumPy arrays ``data`` and ``label`` and returns one transformed
example per index. Toy sets are generated (Spiral, SinCurve) or come with scikit-learn
(Digits). MNIST, Fashion-MNIST and CIFAR are read from the standard files in a local folder:
IDX files (gzipped or not) for MNIST-like sets, the *binary* CIFAR batches (the Python-pickle
version is refused, since unpickling can run code); tiny-shakespeare (``Shakespear``) and
ImageNet's label list from their text files. Nothing is downloaded unless ``download=True`` is
passed (``ImageNet.labels()`` fetches its small list by default, as DeZero's does); a missing
file raises :class:`DatasetNotFoundError` saying which files, where they were looked for, where
to put them and where to get them.

Folders searched, first match wins: ``root=`` when given (then only it); else the dataset's own
environment variable (``DEZERO_XP_MNIST_DIR``, ``DEZERO_XP_FASHION_MNIST_DIR``,
``DEZERO_XP_CIFAR10_DIR``, ``DEZERO_XP_CIFAR100_DIR``, ``DEZERO_XP_SHAKESPEARE_DIR``,
``DEZERO_XP_IMAGENET_DIR``), ``<folder>/<name>`` for each folder of ``DEZERO_XP_DATA_DIR``,
system locations (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``, where the Debian package
``dataset-fashion-mnist`` installs it), the download cache (``~/.dezero_xp/<name>``) and, for
MNIST and the text files, DeZero's own cache ``~/.dezero``.

The modules: ``base`` (Dataset, errors, file helpers), ``toy``, ``images``, ``text``. This file
only assembles them.
"""

# _identity and the default transforms are used under these names by dataloaders and tests.
from dezero_xp.datasets.base import (  # noqa: F401
    DOWNLOAD_TIMEOUT,
    Dataset,
    DatasetNotFoundError,
    _identity,
    load_idx,
)
from dezero_xp.datasets.images import (  # noqa: F401
    _CIFAR_TRANSFORM,
    _MNIST_TRANSFORM,
    CIFAR10,
    CIFAR100,
    MNIST,
    FashionMNIST,
)
from dezero_xp.datasets.text import ImageNet, Shakespear
from dezero_xp.datasets.toy import Digits, SinCurve, Spiral, get_spiral

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "DOWNLOAD_TIMEOUT",
    "MNIST",
    "DatasetNotFoundError",
    "Dataset",
    "Digits",
    "FashionMNIST",
    "ImageNet",
    "Shakespear",
    "SinCurve",
    "Spiral",
    "get_spiral",
    "load_idx",
]
