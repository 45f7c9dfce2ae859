"""Fashion-MNIST for the example scripts: the command-line options and the loading.

Not an example itself. The files are read from a local folder, never downloaded: ``--data-dir``,
else the folders ``dezero_xp.datasets.FashionMNIST`` searches (``DEZERO_XP_FASHION_MNIST_DIR``,
``DEZERO_XP_DATA_DIR``, the Debian package ``dataset-fashion-mnist``'s folder, the download
cache). When they are missing, :func:`load_or_exit` prints which files and where to put them and
exits with ``EXIT_MISSING_DATA``, under ``--smoke`` too (``nox -s examples`` checks for the data
first and reports those examples as skipped, with the reason).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import EXIT_MISSING_DATA, ArrayDataset, plot_history

from dezero_xp.datasets import DatasetNotFoundError, FashionMNIST

SMOKE_TRAIN_SIZE = 1000
SMOKE_TEST_SIZE = 500


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--train-size`` and ``--test-size`` (default: all images)."""
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the four Fashion-MNIST IDX files (gzipped or not); default: "
        "$DEZERO_XP_FASHION_MNIST_DIR, <each folder of $DEZERO_XP_DATA_DIR>/fashion-mnist, "
        "/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist), "
        "~/.dezero_xp/fashion-mnist",
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="train on the first N of the 60000 training images (default: all)",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        default=None,
        help="evaluate on the first N of the 10000 test images (default: all)",
    )


def _as_dataset(raw: FashionMNIST, size: int | None, flatten: bool) -> ArrayDataset:
    """The first ``size`` images as float32 in [0, 1] (flat 784-vectors or (1, 28, 28))."""
    data, label = raw.data[:size], raw.label[:size]
    data = data.astype(np.float32) / np.float32(255.0)
    if flatten:
        data = data.reshape(len(data), -1)
    return ArrayDataset(data, label)


def missing_data_message(exc: DatasetNotFoundError, data_dir) -> str:
    """What is missing, where it was looked for, and this script's ways to point at the files.

    The library's own message ends with its API's remedies (``root=...``, ``download=True``),
    which this script does not have, so only what it says up to them is kept.
    """
    found = str(exc).split(". Put the files", 1)[0].rstrip(".")
    where = f"the folder given with --data-dir ({data_dir})" if data_dir else "--data-dir DIR"
    return (
        f"Fashion-MNIST is not available: {found}.\n"
        "Get the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) from "
        "https://github.com/zalandoresearch/fashion-mnist (or, on Debian/Ubuntu, "
        "`apt install dataset-fashion-mnist`), then put them in "
        f"{where}, or in the folder named by DEZERO_XP_FASHION_MNIST_DIR."
    )


def load_or_exit(args, flatten: bool) -> tuple[ArrayDataset, ArrayDataset]:
    """The train and test sets per ``args``; exits when the files are not on this machine."""
    if args.smoke:
        args.train_size = min(args.train_size or SMOKE_TRAIN_SIZE, SMOKE_TRAIN_SIZE)
        args.test_size = min(args.test_size or SMOKE_TEST_SIZE, SMOKE_TEST_SIZE)
    try:
        # No transform: the images are converted once, as whole arrays, in _as_dataset.
        train_raw = FashionMNIST(train=True, transform=None, root=args.data_dir)
        test_raw = FashionMNIST(train=False, transform=None, root=args.data_dir)
    except DatasetNotFoundError as exc:
        print(missing_data_message(exc, args.data_dir), flush=True)
        sys.exit(EXIT_MISSING_DATA)
    return _as_dataset(train_raw, args.train_size, flatten), _as_dataset(
        test_raw, args.test_size, flatten
    )


def report(history, path, title: str) -> int:
    """Print per-epoch (unless printed while training) and final figures, save the
    loss/accuracy plot; the exit status (0)."""
    for epoch in range(history.epochs if history.logged_epochs < history.epochs else 0):
        print(
            f"  epoch {epoch + 1}: train loss {history.train_loss[epoch]:.4f}, "
            f"test accuracy {history.test_acc[epoch]:.4f}"
        )
    print(
        f"after {history.epochs} epochs ({history.seconds:.1f} s): test loss "
        f"{history.test_loss[-1]:.4f}, test accuracy {history.test_acc[-1]:.4f}"
    )
    print(f"plot saved to {plot_history(history, path, title)}")
    return 0
