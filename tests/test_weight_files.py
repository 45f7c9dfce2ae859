"""Untrusted weight files: header-first validation, bounded memory, corrupt checkpoints, paths,
lazy layers, and a deterministic fuzzer (truncations, byte flips, duplicate members, sizes).

Every damaged file must raise WeightsFileError (naming the file) and leave the model as it was.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.layers as L
import dezero_xp.optimizers as O
from dezero_xp import serialization
from dezero_xp.backend import get_backend
from dezero_xp.serialization import WeightsFileError


def small_model(backend=None, seed=0):
    """Two called Linear layers: keys l0/W, l0/b, l1/W, l1/b."""
    dz.seed(seed)
    model = dz.models.MLP((3, 2), device=backend)
    x = np.random.default_rng(seed).standard_normal((2, 4)).astype(np.float32)
    model(get_backend(backend).from_host(x) if backend is not None else x)
    return model


def snapshot(model):
    return {k: np.array(v, copy=True) for k, v in serialization.model_arrays(model).items()}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def npy_bytes(header: dict, data: bytes = b"") -> bytes:
    """A raw ``.npy`` member: version 1.0 header declaring ``header``, then ``data``."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + data


def write_members(path, members, compression=zipfile.ZIP_STORED):
    """A zip archive with ``[(name, bytes), ...]`` (names may repeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(path, "w", compression=compression) as archive:
            for name, data in members:
                archive.writestr(name, data)


def model_members(model):
    out = []
    for key, value in serialization.model_arrays(model).items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, value)
        out.append((key + ".npy", buffer.getvalue()))
    return out


# --------------------------------------------------------------------------- declared sizes


def _zip_bytes(entries) -> bytes:
    """A zip archive from ``[(name, method, crc, compressed bytes, uncompressed size), ...]``,
    written by hand (zip64 sizes for every member) so that a member's compressed stream can be
    built without running the compressor over all of its data."""
    local, central = bytearray(), bytearray()
    for name, method, crc, data, size in entries:
        name = name.encode()
        offset = len(local)
        extra = struct.pack("<HHQQ", 1, 16, size, len(data))
        local += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            45,
            0,
            method,
            0,
            0x21,
            crc,
            0xFFFFFFFF,
            0xFFFFFFFF,
            len(name),
            len(extra),
        )
        local += name + extra + data
        extra = struct.pack("<HHQQQ", 1, 24, size, len(data), offset)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            45,
            45,
            0,
            method,
            0,
            0x21,
            crc,
            0xFFFFFFFF,
            0xFFFFFFFF,
            len(name),
            len(extra),
            0,
            0,
            0,
            0,
            0xFFFFFFFF,
        )
        central += name + extra
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(local), 0
    )
    return bytes(local + central + end)


def _zero_bomb(header: bytes, chunks: int, chunk_size: int = 1 << 22):
    """``(crc, raw deflate stream, size)`` of ``header`` followed by ``chunks`` zero chunks.

    After a full flush deflate restarts from an empty window, so every zero chunk compresses to
    the same bytes: the stream is built by repeating them, without compressing it all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(chunk_size)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = head + block * chunks + compressor.flush()
    crc = zlib.crc32(header)
    for _ in range(chunks):
        crc = zlib.crc32(zeros, crc)
    return crc, stream, len(header) + chunks * chunk_size


def test_zip_bomb_is_refused_before_decompressing(tmp_path):
    """Well under 2 MB on disk declaring 512 MiB for l0/W: refused on its header alone, with
    a few MB of memory."""
    count = (512 << 20) // 4
    header = npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (count,)})
    entries = []
    for name, data in model_members(small_model()):
        if name == "l0/W.npy":
            crc, stream, size = _zero_bomb(header, (count * 4) // (1 << 22))
            entries.append((name, zipfile.ZIP_DEFLATED, crc, stream, size))
        else:
            entries.append((name, zipfile.ZIP_STORED, zlib.crc32(data), data, len(data)))
    path = tmp_path / "bomb.npz"
    path.write_bytes(_zip_bytes(entries))
    assert os.path.getsize(path) < 2 << 20
    with zipfile.ZipFile(path) as archive:  # a valid archive: the member really is 512 MiB
        assert archive.getinfo("l0/W.npy").file_size == len(header) + (512 << 20)
    model = small_model(seed=1)
    before = snapshot(model)
    tracemalloc.start()
    try:
        with pytest.raises(WeightsFileError, match=r"bomb\.npz.*'l0/W'.*\(134217728,\)"):
            model.load_weights(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated while refusing a small file"
    assert_unchanged(model, before)


def test_declared_size_beyond_the_data_names_the_file(tmp_path):
    path = tmp_path / "huge.npz"
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**11,)}
    write_members(path, [("l0/W.npy", npy_bytes(header, bytes(16)))])
    with pytest.raises(WeightsFileError, match=r"huge\.npz.*'l0/W'.*100000000000"):
        serialization.read_npz(path)
    model = small_model()
    before = snapshot(model)
    with pytest.raises(WeightsFileError, match=r"huge\.npz"):
        model.load_weights(path)
    assert_unchanged(model, before)


def test_lazy_layer_refuses_an_absurd_shape_before_reading(tmp_path):
    path = tmp_path / "lazy.npz"
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**11, 7)}
    bias = model_members(L.Linear(7, in_size=2))[1][1]
    write_members(path, [("W.npy", npy_bytes(header)), ("b.npy", bias)])
    layer = L.Linear(7)
    with pytest.raises(WeightsFileError, match=r"lazy\.npz"):
        layer.load_weights(path)
    assert layer.W.data is None


def test_duplicate_member_names_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    good = model_members(small_model(seed=1))
    evil = model_members(small_model(seed=2))
    write_members(path, [*good, evil[0]])  # l0/W twice: the second copy must not win
    model = small_model(seed=3)
    before = snapshot(model)
    with pytest.raises(WeightsFileError, match=r"dup\.npz.*'l0/W'.*twice"):
        model.load_weights(path)
    assert_unchanged(model, before)
    with pytest.raises(WeightsFileError, match="twice"):
        serialization.read_npz(path)


def test_big_endian_files_load_in_native_byte_order(xb, tmp_path):
    source = small_model(seed=1)
    arrays = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in snapshot(source).items()}
    path = tmp_path / "big.npz"
    np.savez(path, **arrays)
    assert not np.load(path)["l0/W"].dtype.isnative
    target = small_model(xb.backend, seed=2)
    target.load_weights(path)
    for param in target.params():
        assert param.backend is xb.backend
        assert param.dtype == xb.dtype("float32")
    for key, value in snapshot(target).items():
        assert value.dtype.isnative, key
        np.testing.assert_array_equal(value, snapshot(source)[key], err_msg=key)
    assert all(a.dtype.isnative for a in serialization.read_npz(path).values())


def _central_directory_offset(data: bytes) -> int:
    return data.rindex(b"PK\x01\x02", 0, data.rindex(b"PK\x05\x06"))


def test_flipped_compression_method_in_central_directory(tmp_path):
    path = tmp_path / "net.npz"
    small_model(seed=1).save_weights(path)
    data = bytearray(path.read_bytes())
    first = data.index(b"PK\x01\x02")
    data[first + 10] = 0x63  # compression method 99: zipfile raises NotImplementedError
    path.write_bytes(bytes(data))
    model = small_model(seed=2)
    before = snapshot(model)
    with pytest.raises(WeightsFileError, match=r"net\.npz"):
        model.load_weights(path)
    assert_unchanged(model, before)


# --------------------------------------------------------------------------- checkpoints


def _adam_checkpoint(path):
    model = small_model(seed=1)
    optimizer = O.Adam().setup(model)
    dz.functions.sum(model(np.ones((2, 4), np.float32))).backward()
    optimizer.update()
    serialization.save_checkpoint(path, model, optimizer, epoch=1)
    return dict(np.load(path))


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda a: a.update({"optimizer/t": np.asarray("seven")}), "'t'"),
        (lambda a: a.update({"optimizer/t": np.asarray([1, 2])}), "'t'"),
        (lambda a: a.update({"optimizer/t": np.asarray(1.5)}), "'t'"),
        (lambda a: a.update({"optimizer/t": np.asarray(-3)}), "'t'"),
        (lambda a: a.update({"optimizer/state.0.m": np.full((4, 3), "x")}), "'state.0.m'"),
        (lambda a: a.update({"optimizer/state.0.m": np.zeros(3, np.float32)}), "'state.0.m'"),
        (lambda a: a.update({"optimizer/state.0.v": np.zeros((4, 3), np.int64)}), "'state.0.v'"),
        (lambda a: a.update({"optimizer/state.0.h": np.zeros((4, 3), np.float32)}), "'state.0.h'"),
        (lambda a: a.pop("optimizer/state.1.v"), "'state.1.v'"),
        (lambda a: a.pop("optimizer/t"), "'t'"),
    ],
    ids=[
        "t-str",
        "t-list",
        "t-float",
        "t-negative",
        "m-str",
        "m-shape",
        "v-int",
        "foreign-key",
        "missing-v",
        "missing-t",
    ],
)
def test_corrupt_optimizer_state_names_file_and_key(tmp_path, edit, key):
    path = tmp_path / "ckpt.npz"
    arrays = _adam_checkpoint(path)
    edit(arrays)
    np.savez(path, **arrays)
    model = small_model(seed=2)
    optimizer = O.Adam().setup(model)
    before = snapshot(model)
    with pytest.raises(WeightsFileError, match=rf"ckpt\.npz.*{key}"):
        serialization.load_checkpoint(path, model, optimizer)
    assert_unchanged(model, before)
    assert optimizer.t == 0


# --------------------------------------------------------------------------- paths


def test_loading_a_folder_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match="folder"):
        small_model().load_weights(tmp_path)
    (tmp_path / "x.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="folder"):
        small_model().save_weights(tmp_path / "x.npz")


def test_bytes_paths_save_and_load(tmp_path):
    path = os.fsencode(tmp_path / "net")
    written = small_model(seed=1).save_weights(path)
    assert written == str(tmp_path / "net.npz")
    model = small_model(seed=2)
    model.load_weights(path)
    assert_unchanged(model, snapshot(small_model(seed=1)))


def test_saving_through_a_symlink_replaces_its_target(tmp_path):
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    small_model(seed=1).save_weights(target)
    os.symlink(target, link)
    small_model(seed=2).save_weights(link)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    model = small_model(seed=3)
    model.load_weights(target)
    assert_unchanged(model, snapshot(small_model(seed=2)))
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real.npz"]


# --------------------------------------------------------------------------- lazy layers


def test_uncalled_linear_refuses_weights_of_another_size(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, W=np.zeros((4, 5), np.float32), b=np.zeros(2, np.float32))
    layer = L.Linear(2)
    with pytest.raises(WeightsFileError, match=r"'W'.*\(4, 5\).*\(4, 2\)"):
        layer.load_weights(path)
    assert layer.W.data is None
    np.savez(path, W=np.ones((4, 2), np.float32), b=np.zeros(2, np.float32))
    layer.load_weights(path)
    assert layer.W.shape == (4, 2) and layer.in_size == 4


def test_uncalled_conv_refuses_a_wrong_kernel(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, W=np.zeros((8, 3, 5, 5), np.float32), b=np.zeros(8, np.float32))
    with pytest.raises(WeightsFileError, match=r"'W'.*\(8, 3, 3, 3\)"):
        L.Conv2d(8, 3).load_weights(path)
    layer = L.Conv2d(8, 5)
    layer.load_weights(path)
    assert layer.in_channels == 3


@pytest.mark.parametrize(
    "arrays",
    [
        {
            "gamma": np.ones(3),
            "beta": np.zeros(3),
            "avg_mean": np.asarray(["a", "b", "c"]),
            "avg_var": np.ones(3),
        },
        {"gamma": np.ones(3), "beta": np.zeros(4), "avg_mean": np.zeros(3), "avg_var": np.ones(3)},
        {"gamma": np.ones((3, 1)), "beta": np.zeros(3)},
    ],
    ids=["string-avg-mean", "channel-counts-differ", "two-dimensional"],
)
def test_uncalled_batchnorm_refuses_inconsistent_files(tmp_path, arrays):
    path = tmp_path / "bn.npz"
    np.savez(path, **arrays)
    layer = L.BatchNorm()
    with pytest.raises(WeightsFileError, match=r"bn\.npz"):
        layer.load_weights(path)
    assert layer.gamma.data is None and layer.avg_mean.data is None


# --------------------------------------------------------------------------- fuzzer


def _fuzz_cases(data: bytes, rng):
    """Deterministic damaged copies of ``data``: (label, bytes)."""
    n = len(data)
    for cut in sorted({*range(0, n, max(1, n // 60)), n - 1, n - 22, n - 23}):
        yield f"truncated@{cut}", data[:cut]
    central = _central_directory_offset(data)
    positions = {*range(central, n), *rng.integers(0, n, 300).tolist()}
    for position in sorted(positions):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        yield f"flip@{position}", bytes(flipped)
    for position in rng.integers(0, n - 4, 40).tolist():
        sized = bytearray(data)
        sized[position : position + 4] = struct.pack("<I", int(rng.integers(0, 2**32)))
        yield f"size@{position}", bytes(sized)


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_weight_file_fuzzer(tmp_path, compressed):
    """Every damaged variant loads exactly (when the damage is harmless) or raises
    WeightsFileError naming the file; the model never ends up half-loaded."""
    rng = np.random.default_rng(1234)
    source = tmp_path / "good.npz"
    small_model(seed=1).save_weights(source, compressed=compressed)
    data = source.read_bytes()
    good_state = snapshot(small_model(seed=1))
    members = model_members(small_model(seed=1))
    extra_cases = [
        ("duplicate", [*members, members[2]]),
        ("renamed", [(name.replace("l1", "l9"), blob) for name, blob in members]),
    ]
    model = small_model(seed=2)
    before = snapshot(model)
    path = tmp_path / "fuzzed.npz"
    outcomes = {"loaded": 0, "refused": 0}
    cases = list(_fuzz_cases(data, rng))
    for label, members_ in extra_cases:
        write_members(path, members_)
        cases.append((label, path.read_bytes()))
    for label, blob in cases:
        path.write_bytes(blob)
        try:
            model.load_weights(path)
        except WeightsFileError as exc:
            assert "fuzzed.npz" in str(exc), (label, exc)
            assert_unchanged(model, before)
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 (the point: nothing else may escape)
            pytest.fail(f"{label}: {type(exc).__name__}: {exc}")
        else:
            # Harmless damage (an ignored field): the weights must be exactly the file's.
            assert_unchanged(model, good_state)
            outcomes["loaded"] += 1
            model = small_model(seed=2)
    assert outcomes["refused"] > 200, outcomes
