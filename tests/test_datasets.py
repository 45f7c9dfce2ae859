"""Datasets: the Dataset protocol, the toy sets, and the file loaders on small files the tests
write themselves (IDX plain and gzipped, CIFAR binary batches), malformed files, the folder
search, and the download path against a local HTTP server (never the internet).
"""

from __future__ import annotations

import functools
import gzip
import http.server
import importlib.util
import io
import os
import pickle
import struct
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import datasets as D
from dezero_xp.transforms import Compose, Normalize, ToFloat

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

DATA_ENV_VARS = (
    "DEZERO_XP_MNIST_DIR",
    "DEZERO_XP_FASHION_MNIST_DIR",
    "DEZERO_XP_CIFAR10_DIR",
    "DEZERO_XP_CIFAR100_DIR",
    "DEZERO_XP_DATA_DIR",
)


@pytest.fixture(autouse=True)
def _isolated_data_folders(tmp_path, monkeypatch):
    """No test sees the user's data folders or writes to the user's cache."""
    for name in DATA_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEZERO_XP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(D.MNIST, "legacy_dirs", ())
    monkeypatch.setattr(D.FashionMNIST, "system_dirs", ())


# ----------------------------------------------------------------------------- file writers

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: 00 00 <type> <ndim>, big-endian dims, big-endian data."""
    code = IDX_CODES[array.dtype.type] if array.dtype != np.float64 else 0x0E
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def write_mnist(folder: Path, n_train=6, n_test=4, gz=False, seed=0):
    """Small MNIST-format files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write(folder / f"{prefix}-images-idx3-ubyte", idx_bytes(images), gz)
        write(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), gz)
        out[prefix] = (images, labels)
    return out


def cifar_records(images: np.ndarray, *labels: np.ndarray) -> bytes:
    """CIFAR binary records: the label byte(s), then 1024 R, 1024 G, 1024 B bytes."""
    rows = [
        np.concatenate([[lab[i] for lab in labels], images[i].ravel()]) for i in range(len(images))
    ]
    return np.asarray(rows, np.uint8).tobytes()


def write_cifar10(folder: Path, per_batch=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        write(folder / f"{name}.bin", cifar_records(images, labels))
        out[name] = (images, labels)
    return out


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server over a folder: ``(folder, base_url)``."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ----------------------------------------------------------------------------- Dataset


class Squares(D.Dataset):
    def prepare(self):
        self.data = np.arange(5.0)
        self.label = np.arange(5) * 10


def test_dataset_protocol_and_transforms():
    ds = Squares(transform=lambda x: x * x, target_transform=lambda t: t + 1)
    assert len(ds) == 5
    assert ds[2] == (4.0, 21)
    assert ds[np.int64(-1)] == (16.0, 41)
    plain = Squares()
    assert plain[3] == (3.0, 30)
    with pytest.raises(TypeError, match="one integer"):
        plain[1:3]


def test_dataset_without_labels():
    class Unlabelled(D.Dataset):
        def prepare(self):
            self.data = np.ones((3, 2))

    x, t = Unlabelled()[0]
    assert t is None and x.shape == (2,)


# ----------------------------------------------------------------------------- toy sets


def dezero_get_spiral(train=True):
    """DeZero's get_spiral transcribed (np.int -> int), run on NumPy's global RNG."""
    seed = 1984 if train else 2020
    np.random.seed(seed=seed)
    num_data, num_class, input_dim = 100, 3, 2
    data_size = num_class * num_data
    x = np.zeros((data_size, input_dim), dtype=np.float32)
    t = np.zeros(data_size, dtype=int)
    for j in range(num_class):
        for i in range(num_data):
            rate = i / num_data
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + np.random.randn() * 0.2
            ix = num_data * j + i
            x[ix] = np.array([radius * np.sin(theta), radius * np.cos(theta)]).flatten()
            t[ix] = j
    indices = np.random.permutation(num_data * num_class)
    x = x[indices]
    t = t[indices]
    return x, t


@pytest.mark.parametrize("train", [True, False])
def test_spiral_is_dezeros_spiral(train):
    state = np.random.get_state()
    try:
        x_ref, t_ref = dezero_get_spiral(train)
        np.random.seed(123)
        probe = np.random.random()
        np.random.seed(123)
        ds = D.Spiral(train=train)
        assert np.random.random() == probe  # the global RNG was not touched
    finally:
        np.random.set_state(state)
    np.testing.assert_array_equal(ds.data, x_ref)
    np.testing.assert_array_equal(ds.label, t_ref)
    assert ds.data.dtype == np.float32 and ds.label.dtype == np.int64
    assert ds.data.shape == (300, 2)
    assert np.bincount(ds.label).tolist() == [100, 100, 100]


def test_spiral_train_and_test_differ():
    assert not np.array_equal(D.Spiral(train=True).data, D.Spiral(train=False).data)


def test_sin_curve():
    dz.seed(1)
    a = D.SinCurve()
    dz.seed(1)
    b = D.SinCurve()
    dz.seed(2)
    c = D.SinCurve()
    assert a.data.shape == a.label.shape == (999, 1)
    assert a.data.dtype == np.float32
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    np.testing.assert_array_equal(a.label[:-1], a.data[1:])  # predict the next value
    x = np.linspace(0, 2 * np.pi, 1000)
    noise = a.data[:, 0] - np.sin(x[:-1])
    assert np.abs(noise).max() <= 0.05 + 1e-6 and np.abs(noise).max() > 0.04
    test = D.SinCurve(train=False)
    np.testing.assert_allclose(test.data[:, 0], np.cos(x[:-1]), rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
def test_digits():
    from sklearn.datasets import load_digits

    train, test = D.Digits(), D.Digits(train=False)
    assert train.data.shape == (1438, 64) and test.data.shape == (359, 64)
    assert train.data.dtype == np.float32 and train.label.dtype == np.int64
    assert 0.0 <= train.data.min() and train.data.max() == 1.0
    # every image lands in exactly one split, with its own label
    bunch = load_digits()
    rows = {(bunch.data[i] / 16).astype(np.float32).tobytes(): bunch.target[i] for i in range(1797)}
    seen = [x.tobytes() for x in np.concatenate([train.data, test.data])]
    assert sorted(seen) == sorted(rows)
    for x, t in zip(train.data, train.label):
        assert rows[x.tobytes()] == t
    # deterministic, whatever dz.seed says
    dz.seed(99)
    np.testing.assert_array_equal(D.Digits().data, train.data)
    images = D.Digits(flatten=False)
    assert images.data.shape == (1438, 1, 8, 8)
    np.testing.assert_array_equal(images.data.reshape(1438, 64), train.data)


# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(24).reshape(2, 3, 4) * 7 - 50).astype(dtype)
    path = write(tmp_path / "a-idx3", idx_bytes(array), gz)
    loaded = D.load_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)
    loaded[0, 0, 0] = 1  # writable


def test_load_idx_bad_magic(tmp_path):
    path = write(tmp_path / "bad", b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file.*01020801"):
        D.load_idx(path)
    with pytest.raises(ValueError, match="not an IDX file"):
        D.load_idx(write(tmp_path / "empty", b""))
    with pytest.raises(ValueError, match="not an IDX file"):
        D.load_idx(write(tmp_path / "text", b"hello world", gz=True))


def test_load_idx_truncated_or_padded(tmp_path):
    good = idx_bytes(np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="truncated"):
        D.load_idx(write(tmp_path / "short", good[:-1]))
    with pytest.raises(ValueError, match="truncated"):
        D.load_idx(write(tmp_path / "short-header", good[:6]))
    with pytest.raises(ValueError, match="more"):
        D.load_idx(write(tmp_path / "long", good + b"\x00"))
    with pytest.raises(ValueError, match="truncated"):
        D.load_idx(write(tmp_path / "short-gz", good[:-2], gz=True))


def test_load_idx_corrupt_gzip(tmp_path):
    payload = gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))
    path = write(tmp_path / "broken.gz", payload[:20] + b"\xff" * 10 + payload[30:])
    with pytest.raises(ValueError, match="corrupt gzip"):
        D.load_idx(path)


# ----------------------------------------------------------------------------- MNIST-like


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cls", [D.MNIST, D.FashionMNIST])
def test_mnist_like_from_root(tmp_path, gz, cls):
    written = write_mnist(tmp_path / "files", gz=gz)
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = written[prefix]
        ds = cls(train=train, root=tmp_path / "files", transform=None)
        assert ds.data.shape == (len(images), 1, 28, 28) and ds.data.dtype == np.uint8
        assert ds.label.dtype == np.int64
        np.testing.assert_array_equal(ds.data[:, 0], images)
        np.testing.assert_array_equal(ds.label, labels)
    x, t = cls(root=tmp_path / "files")[1]  # the default transform: flat float32 in [0, 1]
    assert x.shape == (784,) and x.dtype == np.float32
    np.testing.assert_allclose(x, written["train"][0][1].ravel() / 255.0, rtol=1e-6)
    assert t == written["train"][1][1]
    assert len(cls.labels()) == 10


def test_mnist_found_through_environment(tmp_path, monkeypatch):
    written = write_mnist(tmp_path / "own", gz=True)
    monkeypatch.setenv("DEZERO_XP_MNIST_DIR", str(tmp_path / "own"))
    np.testing.assert_array_equal(D.MNIST(transform=None).label, written["train"][1])
    monkeypatch.delenv("DEZERO_XP_MNIST_DIR")
    written = write_mnist(tmp_path / "shared" / "fashion-mnist", seed=1)
    monkeypatch.setenv(
        "DEZERO_XP_DATA_DIR", str(tmp_path / "nothing") + os.pathsep + str(tmp_path / "shared")
    )
    np.testing.assert_array_equal(D.FashionMNIST(transform=None).label, written["train"][1])
    with pytest.raises(D.DatasetNotFoundError):
        D.MNIST()  # <folder>/mnist, not <folder>/fashion-mnist


def test_fashion_mnist_system_folder(tmp_path, monkeypatch):
    written = write_mnist(tmp_path / "system", seed=2)
    monkeypatch.setattr(D.FashionMNIST, "system_dirs", (str(tmp_path / "system"),))
    np.testing.assert_array_equal(
        D.FashionMNIST(train=False, transform=None).label, written["t10k"][1]
    )


def test_mnist_missing_files_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.MNIST(root=tmp_path / "empty")
    message = str(info.value)
    for needed in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        str(tmp_path / "empty"),
        "http",
        "download=True",
    ):
        assert needed in message
    write_mnist(tmp_path / "half")
    (tmp_path / "half" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.DatasetNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        D.MNIST(train=False, root=tmp_path / "half")
    assert "t10k-images" not in str(info.value).split("Looked in")[0]
    with pytest.raises(D.DatasetNotFoundError, match="DEZERO_XP_FASHION_MNIST_DIR"):
        D.FashionMNIST()


def test_mnist_mismatched_files(tmp_path):
    folder = tmp_path / "m"
    write(folder / "train-images-idx3-ubyte", idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    write(folder / "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="expected 3 labels"):
        D.MNIST(root=folder)
    write(folder / "train-images-idx3-ubyte", idx_bytes(np.zeros((3, 28, 28), np.int32)))
    with pytest.raises(ValueError, match="uint8 images"):
        D.MNIST(root=folder)
    write(folder / "train-images-idx3-ubyte", b"\x00\x00\x07\x03garbage")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.MNIST(root=folder)


def test_mnist_download_from_server(tmp_path, http_folder, monkeypatch):
    served, url = http_folder
    written = write_mnist(served, gz=True)
    monkeypatch.setattr(D.MNIST, "urls", (url,))
    target = tmp_path / "target"
    with pytest.raises(D.DatasetNotFoundError):
        D.MNIST(root=target)  # nothing is fetched unless asked
    assert not target.exists()
    ds = D.MNIST(root=target, download=True, transform=None)
    np.testing.assert_array_equal(ds.label, written["train"][1])
    assert sorted(p.name for p in target.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    # into the cache when no root is given
    ds = D.MNIST(train=False, download=True, transform=None)
    np.testing.assert_array_equal(ds.label, written["t10k"][1])
    assert (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_download_failure_is_fast_and_clear(tmp_path, monkeypatch):
    # Port 9 on localhost: nothing listens, the connection is refused at once.
    monkeypatch.setattr(D.FashionMNIST, "urls", ("http://127.0.0.1:9/",))
    start = time.perf_counter()
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.FashionMNIST(root=tmp_path / "t", download=True)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "download failed" in message and "127.0.0.1:9" in message
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "t") in message
    assert not list((tmp_path / "t").glob("*")) if (tmp_path / "t").exists() else True


@pytest.mark.skipif(
    not (FASHION_SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Fashion-MNIST is not installed at /usr/share/datasets/fashion-mnist",
)
def test_fashion_mnist_real_test_set():
    ds = D.FashionMNIST(train=False, root=FASHION_SYSTEM_DIR, transform=None)
    assert ds.data.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.label).tolist() == [1000] * 10  # the published class balance
    assert ds.data.max() == 255 and ds.data.min() == 0


# ----------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_binary(tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-bin" if nested else tmp_path / "flat"
    written = write_cifar10(folder)
    root = tmp_path if nested else folder
    train = D.CIFAR10(root=root, transform=None)
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert train.data.shape == (15, 3, 32, 32) and train.data.dtype == np.uint8
    np.testing.assert_array_equal(train.data, expected)
    np.testing.assert_array_equal(
        train.label, np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    )
    assert train.label.dtype == np.int64
    test = D.CIFAR10(train=False, root=root)
    x, t = test[0]
    assert x.dtype == np.float32 and x.shape == (3, 32, 32)
    np.testing.assert_allclose(x, written["test_batch"][0][0] / 127.5 - 1.0, rtol=1e-6, atol=1e-6)
    assert t == written["test_batch"][1][0]
    assert D.CIFAR10.labels()[0] == "airplane" and len(D.CIFAR10.labels()) == 10


def test_cifar10_channel_layout(tmp_path):
    # one record: red plane all 1, green all 2, blue all 3
    pixels = np.concatenate([np.full(1024, c, np.uint8) for c in (1, 2, 3)])
    write(tmp_path / "test_batch.bin", bytes([7]) + pixels.tobytes())
    ds = D.CIFAR10(train=False, root=tmp_path, transform=None)
    assert ds.label.tolist() == [7]
    assert [int(ds.data[0, c].min()) for c in range(3)] == [1, 2, 3]
    assert [int(ds.data[0, c].max()) for c in range(3)] == [1, 2, 3]


def test_cifar10_malformed(tmp_path):
    write(tmp_path / "test_batch.bin", b"\x01" * 3000)
    with pytest.raises(ValueError, match="3073-byte record"):
        D.CIFAR10(train=False, root=tmp_path)
    write(tmp_path / "test_batch.bin", bytes([12]) + bytes(3072))
    with pytest.raises(ValueError, match="label 12 out of range"):
        D.CIFAR10(train=False, root=tmp_path)
    write(tmp_path / "test_batch.bin", pickle.dumps({"data": [1, 2, 3]}))
    with pytest.raises(ValueError, match="pickle"):
        D.CIFAR10(train=False, root=tmp_path)
    with pytest.raises(
        D.DatasetNotFoundError, match="data_batch_1.bin.*binary|binary.*data_batch_1.bin"
    ):
        D.CIFAR10(root=tmp_path)


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    coarse, fine = np.array([0, 5, 19, 2], np.uint8), np.array([99, 3, 40, 0], np.uint8)
    write(tmp_path / "cifar-100-binary" / "test.bin", cifar_records(images, coarse, fine))
    ds = D.CIFAR100(train=False, root=tmp_path, transform=None)
    np.testing.assert_array_equal(ds.label, fine)
    np.testing.assert_array_equal(ds.data, images)
    ds = D.CIFAR100(train=False, root=tmp_path, label_type="coarse", transform=None)
    np.testing.assert_array_equal(ds.label, coarse)
    with pytest.raises(ValueError, match="label_type"):
        D.CIFAR100(label_type="medium")


def test_cifar10_download_extracts_only_the_batches(tmp_path, http_folder, monkeypatch):
    served, url = http_folder
    staged = write_cifar10(tmp_path / "stage" / "cifar-10-batches-bin", per_batch=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "stage" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
        evil = tarfile.TarInfo("../../evil.bin")  # must never be written outside the folder
        evil.size = 3
        tar.addfile(evil, io.BytesIO(b"bad"))
    (served / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    monkeypatch.setattr(D.CIFAR10, "urls", (url,))
    ds = D.CIFAR10(train=False, download=True, transform=None)
    np.testing.assert_array_equal(ds.data, staged["test_batch"][0])
    extracted = tmp_path / "cache" / "cifar-10-batches-bin"
    assert (extracted / "test_batch.bin").is_file()
    assert not list(tmp_path.rglob("evil.bin"))
    (served / "cifar-10-binary.tar.gz").unlink()  # the archive is kept and not fetched twice
    ds = D.CIFAR10(train=True, download=True, transform=None)
    assert len(ds) == 10


def test_default_transforms_compose():
    # The defaults are DeZero's pipeline: flat float32 in [0, 1] (MNIST), [-1, 1] (CIFAR).
    x = np.full((1, 28, 28), 255, np.uint8)
    out = D._MNIST_TRANSFORM(x)
    assert out.shape == (784,) and out.dtype == np.float32 and out.max() == 1.0
    assert isinstance(D._CIFAR_TRANSFORM, Compose)
    assert isinstance(D._CIFAR_TRANSFORM.transforms[0], ToFloat)
    assert isinstance(D._CIFAR_TRANSFORM.transforms[1], Normalize)
