"""Mini-batch iterators (DeZero's ``dataloaders``): DataLoader and SeqDataLoader.

Batches are assembled on the host from a dataset (anything with ``__len__`` and
``__getitem__`` returning ``(x, t)``) and copied once, explicitly, to the requested device,
where they arrive as arrays of that backend. Floating-point data is cast to ``dtype``
(float32 unless given) and integer labels to int64, so every backend can index with them.
Shuffling draws ``np.random.permutation`` from NumPy's global generator, as DeZero does (so
``np.random.seed`` applies), until ``dz.seed(n)`` gives it a seeded stream of its own; ``rng=``
gives one loader its own generator. None of it depends on the device the model lives on.

May import: numpy, dezero_xp.backend and dezero_xp.datasets.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy as np

from dezero_xp.backend import Movable, get_backend, host_rng
from dezero_xp.datasets import Dataset, _identity

if TYPE_CHECKING:
    from typing_extensions import Self

    from dezero_xp.backend import Backend, Device
    from dezero_xp.typing import Array, DatasetLike, DeviceLike, DTypeLike

__all__ = ["DataLoader", "SeqDataLoader"]


class DataLoader(Movable):
    """Iterate over ``dataset`` in batches of ``batch_size``: yields ``(x, t)`` on ``device``.

    ``shuffle`` draws a new order every epoch; the last batch may be smaller. ``device`` is any
    device spec (``"cpu"``, ``"cuda"``, ``"strict:device1"``, ...; None is the default
    device); ``gpu=True`` is DeZero's spelling of ``device="cuda"``. ``dtype`` is what
    floating-point data becomes (None keeps the dataset's dtypes). Iterating is DeZero's: the
    loader is its own iterator and rewinds itself (reshuffling) after each full epoch.
    ``rng`` (a NumPy Generator or RandomState) shuffles this loader instead of the default.
    """

    def __init__(
        self,
        dataset: DatasetLike,
        batch_size: SupportsIndex,
        shuffle: bool = True,
        device: DeviceLike | None = None,
        gpu: bool = False,
        dtype: DTypeLike | None = "float32",
        rng: Any = None,
    ) -> None:
        where = type(self).__name__
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(
                f"{where}: batch_size must be an int, got {type(batch_size).__name__} "
                f"{batch_size!r:.40}"
            )
        if batch_size < 1:
            raise ValueError(f"{where}: batch_size must be >= 1, got {batch_size!r}")
        sized = hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")
        if not sized or isinstance(dataset, (str, bytes)):
            raise TypeError(
                f"{where}: dataset must have __len__ and __getitem__ (a dz.Dataset, a list of "
                f"(x, t) pairs, ...), got {type(dataset).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(
                f"{where}: shuffle must be True or False, got {type(shuffle).__name__} "
                f"{shuffle!r:.40}"
            )
        self.shuffle = shuffle
        self.data_size = len(dataset)
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        try:
            self.dtype = None if dtype is None else np.dtype(dtype)
        except TypeError:
            self.dtype = np.dtype(object)  # refused just below, naming the loader
        if self.dtype is not None and not np.issubdtype(self.dtype, np.floating):
            # Floating-point data is cast to it: an integer dtype would truncate silently.
            raise TypeError(
                f"{where}: dtype must be None or a floating-point dtype such as 'float32' (what "
                f"floating-point data becomes), got {dtype!r:.40}"
            )
        if isinstance(device, bool):  # DeZero's positional DataLoader(ds, n, shuffle, gpu)
            device, gpu = None, device or gpu
        if gpu and device is None:
            device = "cuda"
        self._backend = get_backend(device)
        if rng is not None and not hasattr(rng, "permutation"):
            raise TypeError(
                "DataLoader: rng must be a NumPy Generator or RandomState, got "
                f"{type(rng).__name__}"
            )
        self._rng = rng if rng is not None else host_rng("DataLoader") if shuffle else None
        self.reset()

    # ------------------------------------------------------------------ devices
    @property
    def backend(self) -> Backend:
        """The Backend the batches are made on."""
        return self._backend

    @property
    def device(self) -> Device:
        """The device the batches are made on."""
        return self._backend.device

    @property
    def gpu(self) -> bool:
        """True when batches go to a CUDA device (DeZero's flag)."""
        return self._backend.is_gpu

    @gpu.setter
    def gpu(self, flag: bool) -> None:
        if flag:
            self.to_gpu()
        else:
            self.to_cpu()

    def to(self, device: DeviceLike) -> Self:
        """Send later batches to ``device``; returns self."""
        self._backend = get_backend(device)
        return self

    # ------------------------------------------------------------------ iteration
    def reset(self) -> None:
        """Rewind to the first batch (and draw a new order when shuffling)."""
        self.iteration = 0
        if self.shuffle:
            self.index = self._rng.permutation(self.data_size)  # type: ignore[union-attr]
        else:
            self.index = np.arange(self.data_size)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.max_iter

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> tuple[Array, Array]:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        i, batch_size = self.iteration, self.batch_size
        batch_index = self.index[i * batch_size : (i + 1) * batch_size]
        self.iteration += 1
        return self._make_batch(batch_index)

    def next(self) -> tuple[Array, Array]:
        """The next batch (DeZero's alias of ``next(loader)``)."""
        return self.__next__()

    def _make_batch(self, batch_index: np.ndarray) -> tuple[Array, Array]:
        x, t = _host_batch(self.dataset, batch_index)
        return self._to_device(x), None if t is None else self._to_device(t, labels=True)

    def _to_device(self, array: Any, labels: bool = False) -> Array:
        array = np.asarray(array)
        if array.dtype == object:
            raise TypeError(
                f"{type(self).__name__}: examples of different shapes or types cannot be "
                "stacked into a batch; make every example the same shape (a transform)"
            )
        if np.issubdtype(array.dtype, np.floating):
            if self.dtype is not None:
                array = array.astype(self.dtype, copy=False)
        elif labels and np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.int64, copy=False)
        return self._backend.asarray(array)


def _host_batch(dataset: DatasetLike, batch_index: np.ndarray) -> tuple[Any, Any]:
    """``(x, t)`` NumPy arrays of the examples at ``batch_index`` (t None without labels)."""
    if (
        isinstance(dataset, Dataset)
        and type(dataset).__getitem__ is Dataset.__getitem__
        and dataset.transform is _identity
        and dataset.target_transform is _identity
        and isinstance(dataset.data, np.ndarray)
        and (dataset.label is None or isinstance(dataset.label, np.ndarray))
    ):
        # No per-example work to do: one fancy-indexing copy instead of a Python loop.
        x = dataset.data[batch_index]
        return x, None if dataset.label is None else dataset.label[batch_index]
    batch = [dataset[int(i)] for i in batch_index]
    x = _stack("examples", batch_index, [example[0] for example in batch])
    labels = [example[1] for example in batch]
    if all(label is None for label in labels):
        return x, None
    if any(label is None for label in labels):
        raise ValueError("DataLoader: some examples have a label and others None")
    return x, _stack("labels", batch_index, labels)


def _stack(what: str, batch_index: np.ndarray, values: list[Any]) -> np.ndarray:
    """``values`` stacked into one batch array; a clear error naming two that do not fit."""
    arrays = [np.asarray(value) for value in values]
    first = arrays[0]
    for i, array in enumerate(arrays):
        if array.shape != first.shape:
            raise ValueError(
                f"DataLoader: {what} of different shapes cannot be stacked into a batch: "
                f"item {int(batch_index[0])} has shape {first.shape} but item "
                f"{int(batch_index[i])} has {array.shape}; give every example the same shape "
                "(e.g. with a transform that resizes or pads)"
            )
    return np.stack(arrays)


class SeqDataLoader(DataLoader):
    """Batches for truncated BPTT over one long sequence (DeZero's).

    Batch element ``k`` of iteration ``i`` is example ``(k * (N // batch_size) + i) % N``: each
    row of the batch walks its own stretch of the sequence in order.
    """

    def __init__(
        self,
        dataset: DatasetLike,
        batch_size: SupportsIndex,
        device: DeviceLike | None = None,
        gpu: bool = False,
        dtype: DTypeLike | None = "float32",
    ) -> None:
        super().__init__(dataset, batch_size, shuffle=False, device=device, gpu=gpu, dtype=dtype)

    def __next__(self) -> tuple[Array, Array]:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        jump = self.data_size // self.batch_size
        batch_index = np.array(
            [(k * jump + self.iteration) % self.data_size for k in range(self.batch_size)]
        )
        self.iteration += 1
        return self._make_batch(batch_index)
