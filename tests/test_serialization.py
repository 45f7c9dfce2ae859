"""Weights and checkpoints on disk (dezero_xp/serialization.py and Layer.save/load_weights)."""

import importlib.util
import os
import zipfile

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.layers as L
import dezero_xp.models as M
from dezero_xp import _npz, serialization
from dezero_xp.backend import backend_of, get_backend
from dezero_xp.serialization import WeightsFileError

HAS_TORCH = importlib.util.find_spec("torch") is not None
TARGET_SPECS = ["cpu", "strict:device1"] + (["torch:cpu"] if HAS_TORCH else [])


def host(x):
    return np.asarray(dz.backend.to_host(x.data if isinstance(x, dz.Variable) else x))


class Net(M.Model):
    """A small model with nested layers, a lazy Linear and BatchNorm running averages."""

    def __init__(self, device=None):
        super().__init__()
        self.fc1 = L.Linear(4, in_size=3, device=device)
        self.bn = L.BatchNorm(device=device)
        self.fc2 = L.Linear(2, device=device)

    def forward(self, x):
        return self.fc2(self.bn(self.fc1(x)))


def built_net(backend, seed):
    """A Net on ``backend`` with every parameter and running average initialised."""
    dz.seed(seed)
    net = Net(device=backend)
    x = np.random.default_rng(seed).standard_normal((5, 3)).astype(np.float32)
    net(backend.from_host(x))
    return net


def snapshot(model):
    """Every parameter and state array of ``model`` as host copies, by key."""
    return {k: np.array(v, copy=True) for k, v in serialization.model_arrays(model).items()}


def assert_same_state(model, expected):
    current = snapshot(model)
    assert current.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(current[key], value, err_msg=key)


def assert_on(model, backend):
    for _key, owner, name, is_param in model._state_entries():
        value = getattr(owner, name)
        found = value.backend if is_param else backend_of(value)
        assert found is backend, (name, found, backend)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("target_spec", TARGET_SPECS)
def test_round_trip_across_backends(xb, tmp_path, target_spec):
    source = built_net(xb.backend, seed=1)
    saved = snapshot(source)
    path = tmp_path / "net.npz"
    assert source.save_weights(path) == str(path)
    assert_on(source, xb.backend)  # saving does not move the model (DeZero's did)
    target_backend = get_backend(target_spec)
    target = built_net(target_backend, seed=2)
    assert not np.array_equal(snapshot(target)["fc1/W"], saved["fc1/W"])
    target.load_weights(path)
    assert_same_state(target, saved)
    assert_on(target, target_backend)  # loaded onto the model's device, whoever saved it


def test_file_uses_dezero_keys_and_plain_npz(tmp_path):
    net = built_net(get_backend("cpu"), seed=0)
    net.save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        keys = set(npz.files)
        np.testing.assert_array_equal(npz["fc2/W"], host(net.fc2.W))
    expected = {"fc1/W", "fc1/b", "fc2/W", "fc2/b", "bn/gamma", "bn/beta"}
    assert keys == expected | {"bn/avg_mean", "bn/avg_var"}


def test_compressed_files_load_too(tmp_path):
    net = built_net(get_backend("cpu"), seed=0)
    net.save_weights(tmp_path / "w.npz", compressed=True)
    with zipfile.ZipFile(tmp_path / "w.npz") as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    other = built_net(get_backend("cpu"), seed=5)
    other.load_weights(tmp_path / "w.npz")
    assert_same_state(other, snapshot(net))


def test_npz_suffix_is_added_like_numpy_savez(tmp_path):
    net = built_net(get_backend("cpu"), seed=0)
    written = net.save_weights(tmp_path / "weights")
    assert written == str(tmp_path / "weights.npz") and os.path.isfile(written)
    other = built_net(get_backend("cpu"), seed=3)
    other.load_weights(tmp_path / "weights")  # found under the name numpy.savez gives it
    assert_same_state(other, snapshot(net))


def test_lazy_parameters_take_their_values_from_the_file(xb, tmp_path):
    source = L.Linear(3, in_size=4, device=xb.backend)
    source.save_weights(tmp_path / "lin.npz")
    lazy = L.Linear(3, device=xb.backend)
    assert lazy.W.data is None
    lazy.load_weights(tmp_path / "lin.npz")
    np.testing.assert_array_equal(host(lazy.W), host(source.W))
    assert lazy.W.backend is xb.backend and lazy.in_size == 4


def test_unloaded_lazy_parameters_stay_lazy(tmp_path):
    lazy = L.Linear(3)
    lazy.save_weights(tmp_path / "b_only.npz")  # W was never created: only b is saved
    with np.load(tmp_path / "b_only.npz") as npz:
        assert npz.files == ["b"]
    other = L.Linear(3)
    other.load_weights(tmp_path / "b_only.npz")
    assert other.W.data is None


def test_dezero_style_file_loads(tmp_path, rng):
    # DeZero writes np.savez_compressed(path, **{key: array}) after moving the model to the CPU.
    model = M.MLP((3, 2))
    model(rng.standard_normal((1, 4)).astype(np.float32))
    arrays = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in _flat(model).items()}
    np.savez_compressed(tmp_path / "dezero.npz", **arrays)
    model.load_weights(tmp_path / "dezero.npz")
    for key, param in _flat(model).items():
        np.testing.assert_array_equal(host(param), arrays[key])


def _flat(model):
    flat = {}
    model._flatten_params(flat)
    return flat


# --------------------------------------------------------------------------- atomic writes


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    old = built_net(get_backend("cpu"), seed=1)
    old.save_weights(path)
    old_bytes = path.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def fail_on_third_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            fp.write(b"half an array")  # bytes reach the temporary file, then the write dies
            raise OSError("disk full")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_on_third_array)
    new = built_net(get_backend("cpu"), seed=2)
    with pytest.raises(OSError, match="disk full"):
        new.save_weights(path)
    assert len(calls) == 3
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["net.npz"]  # no temporary file left behind
    monkeypatch.undo()
    check = built_net(get_backend("cpu"), seed=3)
    check.load_weights(path)
    assert_same_state(check, snapshot(old))


@pytest.mark.parametrize("failure", [OSError("fsync failed"), KeyboardInterrupt()])
def test_failure_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "net.npz"
    built_net(get_backend("cpu"), seed=1).save_weights(path)
    old_bytes = path.read_bytes()

    def failing_fsync(fd):
        raise failure

    monkeypatch.setattr(_npz.os, "fsync", failing_fsync)
    with pytest.raises(type(failure)):
        built_net(get_backend("cpu"), seed=2).save_weights(path)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["net.npz"]


def test_overwrite_keeps_permissions(tmp_path):
    path = tmp_path / "net.npz"
    net = built_net(get_backend("cpu"), seed=1)
    net.save_weights(path)
    os.chmod(path, 0o640)
    net.save_weights(path)
    assert os.stat(path).st_mode & 0o777 == 0o640


# --------------------------------------------------------------------------- bad files


def _write_garbage(path):
    path.write_bytes(b"this is not an npz archive at all" * 10)


def _write_truncated(path):
    built_net(get_backend("cpu"), seed=9).save_weights(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write_npy(path):
    np.save(path, np.zeros(3))


def _write_foreign_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fc1/W.txt", "hello")


def _write_pickled(path):
    np.savez(path, **{"fc1/W": np.array([{"evil": 1}], dtype=object)})


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (_write_garbage, "truncated, corrupted or not a weights file"),
        (_write_truncated, "truncated, corrupted or not a weights file"),
        (_write_npy, "single array"),
        (_write_foreign_zip, "not a NumPy array"),
        (_write_pickled, "pickle, which is never run"),
    ],
    ids=["garbage", "truncated", "npy", "foreign-zip", "pickled-object"],
)
def test_unreadable_files_raise_and_change_nothing(xb, tmp_path, writer, message):
    path = tmp_path / "bad.npz"
    writer(path)
    if not path.exists():  # np.save appends .npy
        path = tmp_path / "bad.npz.npy"
        os.replace(path, tmp_path / "bad.npz")
        path = tmp_path / "bad.npz"
    net = built_net(xb.backend, seed=1)
    before = snapshot(net)
    with pytest.raises(WeightsFileError, match=message) as info:
        net.load_weights(path)
    assert "bad.npz" in str(info.value)
    assert_same_state(net, before)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        L.Linear(2).load_weights(tmp_path / "nothing.npz")


def _saved_arrays(tmp_path):
    net = built_net(get_backend("cpu"), seed=7)
    return dict(serialization.model_arrays(net))


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda a: a.pop("fc2/b"), ["missing", "'fc2/b'"]),
        (lambda a: a.update({"fc3/W": np.zeros((2, 2), np.float32)}), ["'fc3/W'", "not have"]),
        (
            lambda a: a.update({"fc2/W": np.zeros((4, 5), np.float32)}),
            ["'fc2/W'", "(4, 5)", "(4, 2)"],
        ),
        (lambda a: a.update({"bn/avg_var": np.ones(4, np.float64)}), ["'bn/avg_var'", "float64"]),
    ],
    ids=["missing-key", "extra-key", "shape", "dtype"],
)
def test_mismatched_files_raise_and_change_nothing(xb, tmp_path, edit, fragments):
    arrays = _saved_arrays(tmp_path)
    # Valid new values for the first keys: a partial load would be visible.
    arrays["fc1/W"] = arrays["fc1/W"] + 1.0
    edit(arrays)
    path = tmp_path / "mismatch.npz"
    np.savez(path, **arrays)
    net = built_net(xb.backend, seed=1)
    before = snapshot(net)
    with pytest.raises(WeightsFileError) as info:
        net.load_weights(path)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert_same_state(net, before)
    assert_on(net, xb.backend)


def test_lazy_parameter_with_wrong_dtype_is_refused(tmp_path):
    np.savez(tmp_path / "w.npz", W=np.zeros((3, 2)), b=np.zeros(2, np.float32))
    lazy = L.Linear(2)
    with pytest.raises(WeightsFileError, match="'W'.*float64"):
        lazy.load_weights(tmp_path / "w.npz")
    assert lazy.W.data is None


# --------------------------------------------------------------------------- checkpoints


class StandInOptimizer:
    """The optimizer side of the checkpoint protocol: state_dict / load_state_dict."""

    def __init__(self, state=None, fail=False):
        self.state = state or {}
        self.fail = fail
        self.loaded = None

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        if self.fail:
            raise KeyError("unexpected key 'x'")
        self.loaded = state


def test_checkpoint_round_trip(xb, tmp_path):
    net = built_net(xb.backend, seed=1)
    moments = xb.asarray(np.arange(6.0).reshape(2, 3))
    optimizer = StandInOptimizer({"t": np.asarray(7), "state.0.m": moments})
    path = serialization.save_checkpoint(
        tmp_path / "ckpt.npz", net, optimizer, epoch=3, lr=0.25, tag="run-a", curve=[1.0, 0.5]
    )
    other = built_net(xb.backend, seed=2)
    restored = StandInOptimizer()
    extras = serialization.load_checkpoint(path, other, restored)
    assert_same_state(other, snapshot(net))
    assert extras == {"epoch": 3, "lr": 0.25, "tag": "run-a", "curve": pytest.approx([1.0, 0.5])}
    assert isinstance(extras["epoch"], int) and isinstance(extras["curve"], np.ndarray)
    assert set(restored.loaded) == {"t", "state.0.m"}
    assert all(type(v) is np.ndarray for v in restored.loaded.values())  # host arrays
    np.testing.assert_array_equal(restored.loaded["state.0.m"], np.arange(6.0).reshape(2, 3))


def test_checkpoint_with_a_real_optimizer(tmp_path, rng):
    optimizers = pytest.importorskip("dezero_xp.optimizers")
    import dezero_xp.functions as F

    def train_step(model, optimizer, x):
        loss = F.sum(model(x) ** 2)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    x = rng.standard_normal((4, 3)).astype(np.float32)
    dz.seed(0)
    model = M.MLP((4, 2))
    optimizer = optimizers.Adam().setup(model)
    train_step(model, optimizer, x)
    serialization.save_checkpoint(tmp_path / "c.npz", model, optimizer, step=1)
    train_step(model, optimizer, x)
    expected = snapshot(model)
    dz.seed(1)
    model2 = M.MLP((4, 2))
    model2(x)
    optimizer2 = optimizers.Adam().setup(model2)
    assert serialization.load_checkpoint(tmp_path / "c.npz", model2, optimizer2) == {"step": 1}
    train_step(model2, optimizer2, x)  # resumes exactly where the first run was
    current = snapshot(model2)
    for key, value in expected.items():
        np.testing.assert_allclose(current[key], value, rtol=1e-6, atol=1e-7, err_msg=key)


def test_checkpoint_errors_change_nothing(tmp_path):
    net = built_net(get_backend("cpu"), seed=1)
    weights = net.save_weights(tmp_path / "w.npz")
    with pytest.raises(WeightsFileError, match="not a dezero_xp checkpoint"):
        serialization.load_checkpoint(weights, net)
    ckpt = serialization.save_checkpoint(tmp_path / "c.npz", net)
    with pytest.raises(WeightsFileError, match="load_checkpoint"):
        net.load_weights(ckpt)
    other = built_net(get_backend("cpu"), seed=2)
    before = snapshot(other)
    with pytest.raises(WeightsFileError, match="without an optimizer"):
        serialization.load_checkpoint(ckpt, other, StandInOptimizer())
    with_opt = serialization.save_checkpoint(tmp_path / "o.npz", net, StandInOptimizer())
    with pytest.raises(WeightsFileError, match=r"o\.npz'.*unexpected key 'x'"):
        serialization.load_checkpoint(with_opt, other, StandInOptimizer(fail=True))
    assert_same_state(other, before)


def test_checkpoint_refuses_values_that_need_pickle(tmp_path):
    net = built_net(get_backend("cpu"), seed=1)
    with pytest.raises(TypeError, match="'config'"):
        serialization.save_checkpoint(tmp_path / "c.npz", net, config={"a": 1})
    assert os.listdir(tmp_path) == []


def test_dtype_name_normalises_every_library():
    import array_api_strict

    names = [np.float32, np.dtype("float32"), "float32", array_api_strict.float32]
    if HAS_TORCH:
        import torch

        names.append(torch.float32)
    assert {serialization.dtype_name(d) for d in names} == {"float32"}


PATH_CALLS = {
    "save_weights": lambda m, p: m.save_weights(p),
    "load_weights": lambda m, p: m.load_weights(p),
    "save_checkpoint": lambda m, p: serialization.save_checkpoint(p, m),
    "load_checkpoint": lambda m, p: serialization.load_checkpoint(p, m),
    "read_npz": lambda m, p: serialization.read_npz(p),
}


@pytest.mark.parametrize("call", list(PATH_CALLS.values()), ids=list(PATH_CALLS))
@pytest.mark.parametrize("path", [123, None, 1.5])
def test_a_path_that_is_not_a_path_says_so(call, path):
    # Was os.fspath's "expected str, bytes or os.PathLike object, not int".
    with pytest.raises(TypeError, match=r"a weights file path must be a str, bytes or os.PathLike"):
        call(M.MLP((2,)), path)
