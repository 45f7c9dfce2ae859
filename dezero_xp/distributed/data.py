"""Data sharding: every rank reads its own disjoint part of each epoch.

:class:`DistributedSampler` draws one permutation per epoch from a seed shared by all ranks and
the epoch number (every rank draws the same one, with no communication) and gives rank ``r``
the positions ``r, r + size, r + 2 size, ...`` of it. So the shards are disjoint, together
cover the epoch, and have the same length on every rank (``drop_last`` drops the tail that does
not divide evenly; without it the tail is padded with the epoch's first examples), and every
rank takes the same number of steps. A local batch of ``b`` on each of ``size`` ranks holds,
together, exactly the examples of a one-process batch of ``size * b`` over the same order.

:func:`scatter_dataset` (ChainerMN's name) wraps a dataset into this rank's shard, a dataset a
``DataLoader`` reads like any other (use ``shuffle=False``: the shard is already shuffled).
Call ``shard.set_epoch(epoch)`` at the start of each epoch for a new order.

May import: numpy, the standard library and dezero_xp.datasets.
"""

from __future__ import annotations

import numpy as np

from dezero_xp.datasets import Dataset, _identity

__all__ = ["DatasetShard", "DistributedSampler", "scatter_dataset"]


def _rank_size(comm, rank, size):
    if comm is not None:
        return comm.rank, comm.size
    if rank is None or size is None:
        raise ValueError("DistributedSampler: give a communicator, or both rank and size")
    return int(rank), int(size)


class DistributedSampler:
    """The indices of this rank's shard of each epoch (iterable; ``len`` is the shard size).

    ``data_size`` is a length or a dataset. ``seed`` must be the same on every rank. With
    ``batch_size`` (the per-rank batch) and ``drop_last``, only whole global batches are kept:
    the steps of an epoch are then exactly those of one process with ``size * batch_size``.
    """

    def __init__(
        self,
        data_size,
        comm=None,
        *,
        rank=None,
        size=None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        batch_size: int | None = None,
    ):
        n = data_size if isinstance(data_size, (int, np.integer)) else len(data_size)
        self.data_size = int(n)
        self.rank, self.size = _rank_size(comm, rank, size)
        if not 0 <= self.rank < self.size:
            raise ValueError(f"DistributedSampler: rank {self.rank} is not in 0..{self.size - 1}")
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        if drop_last and batch_size is not None:  # whole global batches of size * batch_size
            per_step = self.size * int(batch_size)
            self.num_samples = (self.data_size // per_step) * int(batch_size)
        elif drop_last:
            self.num_samples = self.data_size // self.size
        else:
            self.num_samples = -(-self.data_size // self.size)
        if self.num_samples == 0:
            raise ValueError(
                f"DistributedSampler: {self.data_size} examples cannot give each of "
                f"{self.size} ranks one (drop_last={drop_last})"
            )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from now on (call it with the same value on every rank)."""
        self.epoch = int(epoch)

    def epoch_order(self) -> np.ndarray:
        """The whole epoch's order (the same on every rank), trimmed or padded."""
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(self.data_size)
        else:
            order = np.arange(self.data_size)
        total = self.num_samples * self.size
        if total <= self.data_size:
            return order[:total]
        repeats = -(-total // self.data_size)
        return np.tile(order, repeats)[:total]

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch."""
        return self.epoch_order()[self.rank :: self.size]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class DatasetShard:
    """Example ``i`` of this rank's shard is ``dataset[sampler.indices()[i]]``."""

    def __init__(self, dataset, sampler: DistributedSampler):
        self.dataset = dataset
        self.sampler = sampler
        self._index = sampler.indices()

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (the same value on every rank)."""
        self.sampler.set_epoch(epoch)
        self._index = self.sampler.indices()

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i):
        return self.dataset[int(self._index[i])]


class _ArrayShard(Dataset):
    """A shard of a plain in-memory Dataset: its own ``data``/``label`` arrays, so a DataLoader
    copies whole batches at once (one fancy-indexing copy per epoch here)."""

    def __init__(self, dataset, sampler):
        self.dataset = dataset
        self.sampler = sampler
        super().__init__(dataset.train, dataset.transform, dataset.target_transform)

    def prepare(self):
        index = self.sampler.indices()
        self.data = self.dataset.data[index]
        self.label = None if self.dataset.label is None else self.dataset.label[index]

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (the same value on every rank)."""
        self.sampler.set_epoch(epoch)
        self.prepare()


def _plain_arrays(dataset) -> bool:
    return (
        isinstance(dataset, Dataset)
        and type(dataset).__getitem__ is Dataset.__getitem__
        and type(dataset).__len__ is Dataset.__len__
        and isinstance(dataset.data, np.ndarray)
        and (dataset.label is None or isinstance(dataset.label, np.ndarray))
        and dataset.transform is _identity
        and dataset.target_transform is _identity
    )


def scatter_dataset(
    dataset, comm, *, shuffle: bool = True, seed: int = 0, drop_last: bool = True, batch_size=None
):
    """This rank's shard of ``dataset`` (a dataset with ``set_epoch``; see the module doc)."""
    sampler = DistributedSampler(
        len(dataset),
        comm,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
        batch_size=batch_size,
    )
    if _plain_arrays(dataset):
        return _ArrayShard(dataset, sampler)
    return DatasetShard(dataset, sampler)
