"""dezero_xp/utils.py (DeZero's utils facade) and the download helper behind get_file."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
import time

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import _download, _shape, testing, utils, visualize
from dezero_xp.core import Function

UNREACHABLE = "http://127.0.0.1:9/x"  # the discard port: nothing listens there


# ------------------------------------------------------------------ re-exports


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("numerical_grad", testing),
        ("gradient_check", testing),
        ("array_equal", testing),
        ("get_dot_graph", visualize),
        ("plot_dot_graph", visualize),
        ("pair", _shape),
        ("get_conv_outsize", _shape),
        ("get_deconv_outsize", _shape),
        ("get_file", _download),
    ],
)
def test_reexports_are_the_owning_modules_functions(name, owner):
    assert getattr(utils, name) is getattr(owner, name)


def test_array_allclose_broadcasts_as_dezeros():
    y = dz.Variable(np.array([2.0]))
    assert utils.array_allclose(y, 2.0)  # DeZero's tests compare a (1,) result with a scalar
    assert utils.array_allclose(np.ones((2, 3)), np.ones(3))
    assert not utils.array_allclose(np.ones((2, 3)), np.full(3, 1.1))
    assert utils.array_allclose(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]))
    with pytest.raises(ValueError, match=r"array_allclose: shapes \(2,\) and \(3,\)"):
        utils.array_allclose(np.ones(2), np.ones(3))
    assert not testing.array_allclose(y, np.array(2.0))  # the strict form keeps shapes


def test_dezero_shape_helpers_keep_their_values():
    assert utils.pair(3) == (3, 3) and utils.pair((2, 5)) == (2, 5)
    assert utils.get_conv_outsize(4, 3, 1, 1) == 4
    assert utils.get_conv_outsize(7, 3, 2, 0) == 3
    assert utils.get_deconv_outsize(4, 3, 2, 1) == 7


# ------------------------------------------------------------------ gradient checks


class _WrongSin(Function):
    """sin with a wrong derivative (sin instead of cos): gradient_check must notice."""

    def forward(self, x):
        return self.xp.sin(x)

    def backward(self, gy):
        return gy * F.sin(self.inputs[0])


def test_gradient_check_accepts_right_and_rejects_wrong_gradients(xb, rng, capsys):
    x = xb.asarray(rng.uniform(-1, 1, (2, 3)))
    assert utils.gradient_check(F.sin, x)
    assert not utils.gradient_check(lambda v: _WrongSin()(v), x)
    assert "gradient_check failed" in capsys.readouterr().out


def test_numerical_grad_matches_the_analytic_derivative(xb, rng):
    host = rng.uniform(-1, 1, (3,))
    grad = utils.numerical_grad(F.sin, xb.asarray(host))
    assert dz.backend.backend_of(grad) is xb.backend
    np.testing.assert_allclose(xb.numpy(grad), np.cos(host), rtol=1e-6)


# ------------------------------------------------------------------ array-level helpers

SUM_TO_CASES = [((2, 3), (1, 3)), ((2, 3), (2, 1)), ((2, 3), (3,)), ((4, 2, 3), (2, 1)), ((2,), ())]


@pytest.mark.parametrize(("in_shape", "out_shape"), SUM_TO_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sum_to_on_arrays(xb, rng, in_shape, out_shape, dtype):
    host = rng.standard_normal(in_shape).astype(dtype)
    y = utils.sum_to(xb.asarray(host), out_shape)
    assert dz.backend.backend_of(y) is xb.backend
    assert y.dtype == xb.dtype(dtype)
    lead = len(in_shape) - len(out_shape)
    expected = host.sum(axis=tuple(range(lead))) if lead else host
    expected = expected.sum(
        axis=tuple(i for i, n in enumerate(out_shape) if n == 1), keepdims=True
    ).reshape(out_shape)
    np.testing.assert_allclose(xb.numpy(y), expected, rtol=1e-6)


def test_sum_to_same_shape_returns_the_input():
    x = np.ones((2, 3))
    assert utils.sum_to(x, (2, 3)) is x


def test_sum_to_on_a_variable_is_differentiable():
    x = dz.Variable(np.arange(6.0).reshape(2, 3))
    y = utils.sum_to(x, (1, 3))
    assert isinstance(y, dz.Variable)
    np.testing.assert_array_equal(y.data, [[3.0, 5.0, 7.0]])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))


def test_sum_to_rejects_shapes_it_cannot_reach():
    with pytest.raises(ValueError, match="cannot sum shape"):
        utils.sum_to(np.ones((2, 3)), (2, 3, 1))


@pytest.mark.parametrize(
    ("x_shape", "axis", "keepdims", "gy_shape", "expected"),
    [
        ((2, 3, 4), 1, False, (2, 4), (2, 1, 4)),
        ((2, 3, 4), (0, 2), False, (3,), (1, 3, 1)),
        ((2, 3, 4), -1, False, (2, 3), (2, 3, 1)),
        ((2, 3, 4), 1, True, (2, 1, 4), (2, 1, 4)),
        ((2, 3, 4), None, False, (), ()),
        ((), None, False, (), ()),
    ],
)
def test_reshape_sum_backward(xb, x_shape, axis, keepdims, gy_shape, expected):
    host = np.arange(float(np.prod(gy_shape))).reshape(gy_shape)
    gy = utils.reshape_sum_backward(xb.asarray(host), x_shape, axis, keepdims)
    assert tuple(gy.shape) == expected
    np.testing.assert_array_equal(xb.numpy(gy).ravel(), host.ravel())
    as_variable = utils.reshape_sum_backward(xb.variable(host), x_shape, axis, keepdims)
    assert isinstance(as_variable, dz.Variable) and as_variable.shape == expected


@pytest.mark.parametrize("axis", [1, 0, (0, 1), None])
def test_logsumexp_on_arrays_is_stable_and_keeps_dims(xb, rng, axis):
    host = rng.standard_normal((3, 4)) + 1000.0  # exp(1000) overflows a naive version
    y = utils.logsumexp(xb.asarray(host), axis=axis)
    m = host.max(axis=axis, keepdims=True)
    expected = np.log(np.exp(host - m).sum(axis=axis, keepdims=True)) + m
    assert tuple(y.shape) == expected.shape
    np.testing.assert_allclose(xb.numpy(y), expected, rtol=1e-12)


def test_logsumexp_default_axis_is_one():
    x = np.log(np.array([[1.0, 3.0], [2.0, 2.0]]))
    np.testing.assert_allclose(utils.logsumexp(x), np.log([[4.0], [4.0]]))


@pytest.mark.parametrize(
    ("axis", "expected"),
    [(None, [1, 1, 1]), (1, [2, 1, 4]), ((0, 2), [1, 3, 1]), (-1, [2, 3, 1])],
)
def test_max_backward_shape(axis, expected):
    assert utils.max_backward_shape(np.zeros((2, 3, 4)), axis) == expected


# ------------------------------------------------------------------ get_file


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, and no data folders from the environment."""
    monkeypatch.delenv(_download.DATA_DIR_ENV, raising=False)
    folder = tmp_path / "cache"
    monkeypatch.setattr(_download, "cache_dir", str(folder))
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_get_file_downloads_once_then_uses_the_cache(cache, http_root, capsys):
    root, base = http_root
    (root / "data.bin").write_bytes(b"\x00\x01payload" * 1000)
    path = utils.get_file(f"{base}/data.bin")
    assert path == str(cache / "data.bin")
    assert (cache / "data.bin").read_bytes() == b"\x00\x01payload" * 1000
    assert "Downloading data.bin" in capsys.readouterr().err
    (root / "data.bin").unlink()  # a second call must not touch the network
    assert utils.get_file(f"{base}/data.bin") == path
    assert os.listdir(cache) == ["data.bin"]


def test_get_file_with_another_name_and_directory(tmp_path, cache, http_root):
    root, base = http_root
    (root / "a.txt").write_text("hello")
    path = utils.get_file(f"{base}/a.txt", "b.txt", directory=str(tmp_path / "elsewhere"))
    assert path == str(tmp_path / "elsewhere" / "b.txt")
    assert (tmp_path / "elsewhere" / "b.txt").read_text() == "hello"
    assert not cache.exists()


def test_get_file_http_error_names_the_status(cache, http_root):
    _, base = http_root
    with pytest.raises(utils.DownloadError, match="404"):
        utils.get_file(f"{base}/missing.bin", quiet=True)
    assert os.listdir(cache) == []  # no partial file left behind


def test_get_file_offline_fails_fast_with_a_manual_fix(cache):
    start = time.monotonic()
    with pytest.raises(utils.DownloadError) as info:
        utils.get_file(UNREACHABLE, "mnist.npz", timeout=2.0, quiet=True)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "mnist.npz" in message and UNREACHABLE in message
    assert str(cache / "mnist.npz") in message and _download.DATA_DIR_ENV in message
    assert isinstance(info.value, OSError)
    assert os.listdir(cache) == []


def test_get_file_silent_server_times_out(cache):
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.bin"
        start = time.monotonic()
        with pytest.raises(utils.DownloadError, match="slow.bin"):
            utils.get_file(url, timeout=0.5, quiet=True)
        assert time.monotonic() - start < 5
    assert os.listdir(cache) == []


def test_get_file_finds_a_file_put_in_the_data_dir(tmp_path, cache, monkeypatch):
    data_dir = tmp_path / "manual"
    data_dir.mkdir()
    (data_dir / "x").write_text("by hand")
    monkeypatch.setenv(
        _download.DATA_DIR_ENV, os.pathsep.join([str(tmp_path / "none"), str(data_dir)])
    )
    assert utils.get_file(UNREACHABLE, timeout=0.5) == str(data_dir / "x")


def test_get_file_finds_a_file_put_in_the_cache(cache):
    cache.mkdir()
    (cache / "x").write_text("by hand")
    assert utils.get_file(UNREACHABLE, timeout=0.5) == str(cache / "x")


def test_get_file_accepts_local_paths(tmp_path):
    local = tmp_path / "local.csv"
    local.write_text("1,2")
    assert utils.get_file(str(local)) == str(local)
    assert utils.get_file(local.as_uri()) == str(local)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        utils.get_file(str(tmp_path / "absent.csv"))


def test_get_file_needs_a_file_name(cache):
    with pytest.raises(ValueError, match="file_name"):
        utils.get_file("http://127.0.0.1:9/")


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(_download.CACHE_DIR_ENV, str(tmp_path))
    assert _download.default_cache_dir() == str(tmp_path)
    monkeypatch.delenv(_download.CACHE_DIR_ENV)
    assert _download.default_cache_dir() == os.path.join(os.path.expanduser("~"), ".dezero_xp")
