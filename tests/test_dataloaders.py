"""DataLoader and SeqDataLoader: batch shapes, dtypes and devices on every backend, the last
partial batch, shuffling reproducible under dz.seed, device switching and fallback, DeZero's
iteration protocol, and SeqDataLoader's order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import backend as backend_module
from dezero_xp.backend import backend_of
from dezero_xp.dataloaders import DataLoader, SeqDataLoader
from dezero_xp.datasets import Dataset, Spiral


class Numbers(Dataset):
    """Example i is ([i, -i] as float64, label i % 3 as uint8)."""

    def __init__(self, n=10, **kwargs):
        self.n = n
        super().__init__(**kwargs)

    def prepare(self):
        i = np.arange(self.n, dtype=np.float64)
        self.data = np.stack([i, -i], axis=1)
        self.label = (np.arange(self.n) % 3).astype(np.uint8)


def epoch(loader):
    return [
        (backend_module.to_host(x), None if t is None else backend_module.to_host(t))
        for x, t in loader
    ]


def test_batches_on_the_requested_backend(xb):
    loader = DataLoader(Spiral(), batch_size=128, device=xb.backend)
    assert len(loader) == 3
    sizes = []
    for x, t in loader:
        assert backend_of(x) is xb.backend and backend_of(t) is xb.backend
        assert x.dtype == xb.dtype("float32") and t.dtype == xb.dtype("int64")
        assert tuple(x.shape) == (t.shape[0], 2)
        sizes.append(t.shape[0])
    assert sizes == [128, 128, 44]  # the last batch is partial
    assert loader.device == xb.backend.device
    assert loader.gpu is xb.backend.is_gpu


def test_batches_hold_every_example_once_per_epoch(xb):
    ds = Numbers(11)
    loader = DataLoader(ds, batch_size=4, device=xb.backend)
    for _ in range(2):
        xs = np.concatenate([x for x, _ in epoch(loader)])
        assert sorted(xs[:, 0].tolist()) == list(range(11))
        np.testing.assert_array_equal(xs[:, 1], -xs[:, 0])


def test_dtypes_float32_by_default_int64_labels():
    x, t = next(DataLoader(Numbers(), batch_size=5))
    assert x.dtype == np.float32 and t.dtype == np.int64
    x, t = next(DataLoader(Numbers(), batch_size=5, dtype=None))
    assert x.dtype == np.float64 and t.dtype == np.int64
    x, _ = next(DataLoader(Numbers(), batch_size=5, dtype="float64"))
    assert x.dtype == np.float64


def test_unshuffled_order_and_content():
    ds = Numbers(7)
    batches = epoch(DataLoader(ds, batch_size=3, shuffle=False))
    assert [len(t) for _, t in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), ds.data)
    np.testing.assert_array_equal(np.concatenate([t for _, t in batches]), ds.label)


def test_shuffling_is_reproducible_under_seed():
    def two_epochs(seed):
        dz.seed(seed)
        loader = DataLoader(Numbers(20), batch_size=6)
        return [t.tolist() for _ in range(2) for _, t in epoch(loader)] + [
            x[:, 0].tolist() for x, _ in epoch(loader)
        ]

    a, b, c = two_epochs(7), two_epochs(7), two_epochs(8)
    assert a == b
    assert a != c
    dz.seed(7)
    loader = DataLoader(Numbers(20), batch_size=20)
    first, second = epoch(loader)[0][0][:, 0], epoch(loader)[0][0][:, 0]
    assert not np.array_equal(first, second)  # a new order every epoch
    assert not np.array_equal(first, np.arange(20))


def test_shuffle_order_does_not_depend_on_the_device(xb):
    dz.seed(3)
    on_cpu = [t.tolist() for _, t in epoch(DataLoader(Numbers(12), batch_size=5))]
    dz.seed(3)
    on_xb = [t.tolist() for _, t in epoch(DataLoader(Numbers(12), batch_size=5, device=xb.backend))]
    assert on_cpu == on_xb


def test_iteration_protocol_is_dezeros():
    loader = DataLoader(Numbers(5), batch_size=2, shuffle=False)
    assert iter(loader) is loader
    x, _ = loader.next()
    np.testing.assert_array_equal(x[:, 0], [0, 1])
    loader.reset()
    assert loader.iteration == 0
    assert len(list(loader)) == 3
    assert len(list(loader)) == 3  # rewound itself after StopIteration


def test_generic_datasets_and_transforms_match_the_fast_path():
    plain = Numbers(9)
    with_transform = Numbers(9, transform=lambda x: x * 2, target_transform=lambda t: t + 1)
    as_list = [(plain.data[i], int(plain.label[i])) for i in range(9)]
    fast = epoch(DataLoader(plain, batch_size=4, shuffle=False))
    slow = epoch(DataLoader(as_list, batch_size=4, shuffle=False))
    for (x0, t0), (x1, t1) in zip(fast, slow):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(t0, t1)
        assert t1.dtype == np.int64
    for (x0, t0), (x2, t2) in zip(
        fast, epoch(DataLoader(with_transform, batch_size=4, shuffle=False))
    ):
        np.testing.assert_array_equal(x2, x0 * 2)
        np.testing.assert_array_equal(t2, t0 + 1)


def test_batches_are_copies():
    ds = Numbers(4)
    x, _ = next(DataLoader(ds, batch_size=4, shuffle=False, dtype=None))
    x[...] = 0
    assert ds.data[1, 0] == 1.0


def test_unlabelled_and_mixed_labels():
    class Unlabelled(Dataset):
        def prepare(self):
            self.data = np.ones((5, 2), np.float32)

    x, t = next(DataLoader(Unlabelled(), batch_size=5))
    assert t is None and x.shape == (5, 2)
    mixed = [(np.zeros(2), 1), (np.zeros(2), None)]
    with pytest.raises(ValueError, match="label"):
        next(DataLoader(mixed, batch_size=2, shuffle=False))
    with pytest.raises(ValueError, match="could not broadcast|same shape|all input arrays"):
        next(DataLoader([(np.zeros(2), 0), (np.zeros(3), 1)], batch_size=2, shuffle=False))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Numbers(), batch_size=0)


def test_switching_devices(xb):
    loader = DataLoader(Numbers(4), batch_size=2, shuffle=False)
    assert backend_of(next(loader)[0]) is dz.get_backend("cpu")
    loader.to(xb.backend)
    assert backend_of(next(loader)[0]) is xb.backend
    loader.to_cpu()
    loader.reset()
    assert backend_of(next(loader)[0]) is dz.get_backend("cpu")
    assert loader.gpu is False


@pytest.mark.skipif(backend_module.cuda_available(), reason="a usable GPU: no fallback to test")
def test_cuda_falls_back_with_one_warning():
    with pytest.warns(dz.DeviceFallbackWarning) as record:
        loader = DataLoader(Numbers(4), batch_size=2, gpu=True)
        loader.to_gpu()
        loader.gpu = True
        DataLoader(Numbers(4), batch_size=2, device="cuda")
        SeqDataLoader(Numbers(4), 2, True)  # DeZero's positional gpu flag
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller
    x, t = next(loader)
    assert isinstance(x, np.ndarray) and loader.gpu is False


def test_dezero_positional_gpu_flag():
    loader = DataLoader(Numbers(4), 2, False, False)
    assert loader.shuffle is False and loader.backend is dz.get_backend("cpu")
    assert SeqDataLoader(Numbers(4), 2, False).backend is dz.get_backend("cpu")


def test_cuda_in_strict_mode_raises():
    if backend_module.cuda_available():
        pytest.skip("a usable GPU")
    dz.set_strict_devices(True)
    try:
        with pytest.raises(dz.DeviceUnavailableError):
            DataLoader(Numbers(4), batch_size=2, gpu=True)
    finally:
        dz.set_strict_devices(False)


# ----------------------------------------------------------------------------- SeqDataLoader


def test_seq_dataloader_order(xb):
    ds = Numbers(10)
    loader = SeqDataLoader(ds, batch_size=3, device=xb.backend)
    assert len(loader) == 4 and loader.shuffle is False
    firsts = []
    for x, t in loader:
        assert backend_of(x) is xb.backend and tuple(x.shape) == (3, 2)
        firsts.append(backend_module.to_host(x)[:, 0].tolist())
        assert backend_module.to_host(t).tolist() == [int(i) % 3 for i in firsts[-1]]
    # row k walks its own stretch of the sequence: start k * (10 // 3), one step per batch
    assert firsts == [[0, 3, 6], [1, 4, 7], [2, 5, 8], [3, 6, 9]]
    again = [backend_module.to_host(x)[:, 0].tolist() for x, _ in loader]
    assert again == firsts


def test_seq_dataloader_wraps_around():
    loader = SeqDataLoader(Numbers(5), batch_size=2)
    rows = [x[:, 0].tolist() for x, _ in loader]
    assert rows == [[0, 2], [1, 3], [2, 4]]  # jump 2, ceil(5 / 2) = 3 batches
    loader = SeqDataLoader(Numbers(4), batch_size=4)
    assert [x[:, 0].tolist() for x, _ in loader] == [[0, 1, 2, 3]]


def test_no_warnings_on_the_cpu_path():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(DataLoader(Numbers(), batch_size=3, device="cpu"))
