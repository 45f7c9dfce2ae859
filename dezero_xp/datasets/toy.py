"""The generated and bundled toy sets: Spiral (and ``get_spiral``), SinCurve, Digits.

Spiral and SinCurve draw DeZero's random numbers in DeZero's order (see ``dezero_xp.seed``);
Digits comes with scikit-learn and is split by a fixed permutation.

May import: numpy, dezero_xp.backend (host RNG), dezero_xp.datasets.base and lazily
scikit-learn (Digits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dezero_xp.backend import host_rng, uses_numpy_global_rng
from dezero_xp.datasets.base import Dataset

__all__ = ["Digits", "SinCurve", "Spiral", "get_spiral"]


def get_spiral(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
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
        rs = np.random.RandomState(seed)  # type: ignore[assignment]
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

    def prepare(self) -> None:
        self.data, self.label = get_spiral(self.train)


class SinCurve(Dataset):
    """999 steps of a sine (train, with noise) or cosine (test): predict the next value.

    float32 ``(999, 1)``; the noise is DeZero's draw (``np.random.uniform``, made for the test
    set too, as DeZero does), reproducible under ``np.random.seed`` or ``dz.seed``.
    """

    def prepare(self) -> None:
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
        self,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        flatten: bool = True,
        test_ratio: float = 0.2,
    ) -> None:
        self.flatten = flatten
        self.test_ratio = test_ratio
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
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
