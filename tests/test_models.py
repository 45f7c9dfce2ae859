"""Models (dezero_xp/models.py): Sequential, MLP, VGG16, ResNet and pretrained-weight loading."""

import shutil

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
import dezero_xp.models as M
from dezero_xp._download import DownloadError


def host(x):
    return np.asarray(dz.backend.to_host(x.data if isinstance(x, dz.Variable) else x))


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_mlp_shapes_keys_and_values(xb, rng):
    model = M.MLP((6, 4, 2))
    x_host = rng.standard_normal((5, 3)).astype(np.float32)
    y = model(xb.asarray(x_host))
    assert y.shape == (5, 2) and y.backend is xb.backend
    flat = {}
    model._flatten_params(flat)
    assert list(flat) == ["l0/W", "l0/b", "l1/W", "l1/b", "l2/W", "l2/b"]
    h = x_host
    for i, layer in enumerate(model.layers):
        h = h @ host(layer.W) + host(layer.b)
        if i < 2:
            h = _sigmoid(h)  # the default activation, not after the last layer
    np.testing.assert_allclose(host(y), h, rtol=1e-5, atol=1e-6)


def test_mlp_custom_activation(xb, rng):
    model = M.MLP((3, 2), activation=F.relu)
    x_host = rng.standard_normal((4, 5)).astype(np.float32)
    y = model(xb.asarray(x_host))
    l0, l1 = model.layers
    hidden = np.maximum(x_host @ host(l0.W) + host(l0.b), 0)
    np.testing.assert_allclose(host(y), hidden @ host(l1.W) + host(l1.b), rtol=1e-5, atol=1e-6)


def test_sequential_with_layers_and_functions(xb, rng):
    model = M.Sequential(L.Linear(4), F.relu, L.Linear(3))
    y = model(xb.asarray(rng.standard_normal((2, 5)).astype(np.float32)))
    assert y.shape == (2, 3)
    assert list(model._params) == ["l0", "l2"]
    assert len(list(model.params())) == 4


def test_model_trains_with_backward(xb, rng):
    model = M.MLP((8, 1))
    x = xb.asarray(rng.standard_normal((16, 2)).astype(np.float32))
    t = xb.asarray(rng.standard_normal((16, 1)).astype(np.float32))
    losses = []
    for _ in range(30):
        loss = F.mean_squared_error(model(x), t)
        model.cleargrads()
        loss.backward()
        for p in model.params():
            p.data = p.data - 0.1 * p.grad.data
        losses.append(float(host(loss)))
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_model_plot_writes_an_image(tmp_path, rng):
    model = M.MLP((3, 1))
    target = tmp_path / "model.png"
    model.plot(rng.standard_normal((2, 2)).astype(np.float32), to_file=str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- ResNet parts


def test_bottleneck_blocks_forward_shapes(xb, rng):
    x = xb.asarray(rng.standard_normal((2, 4, 6, 6)).astype(np.float32))
    a = M.BottleneckA(4, 2, 8, stride=2)
    y = a(x)
    assert y.shape == (2, 8, 3, 3) and y.backend is xb.backend
    assert a.conv1.W.shape == (2, 4, 1, 1) and a.conv4.W.shape == (8, 4, 1, 1)
    assert a.conv1.b is None  # nobias convolutions, as in DeZero
    b = M.BottleneckB(8, 2)
    z = b(y)
    assert z.shape == y.shape and b.conv3.W.shape == (8, 2, 1, 1)
    assert float(host(z).min()) >= 0.0  # ends with relu


def test_building_block_structure_and_gradients(xb, rng):
    block = M.BuildingBlock(3, in_channels=4, mid_channels=2, out_channels=6, stride=1)
    x = xb.variable(rng.standard_normal((2, 4, 5, 5)).astype(np.float32))
    y = block(x)
    assert y.shape == (2, 6, 5, 5)
    assert block._forward == ["a", "b1", "b2"]
    keys = [key for key, *_ in block._state_entries()]
    assert keys[:4] == ["a/conv1/W", "a/bn1/gamma", "a/bn1/beta", "a/bn1/avg_mean"]
    assert "b2/bn3/avg_var" in keys
    F.sum(y).backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None for p in block.params())


@pytest.mark.parametrize(("n_layers", "res4_blocks"), [(50, 6), (101, 23), (152, 36)])
def test_resnet_depths(n_layers, res4_blocks):
    model = {50: M.ResNet50, 101: M.ResNet101, 152: M.ResNet152}[n_layers]()
    assert len(model.res4._forward) == res4_blocks
    # 3 convolutions per bottleneck plus the projection, conv1 and fc6
    n_blocks = sum(M.ResNet.BLOCKS[n_layers])
    weights = [k for k, *_ in model._state_entries() if k.endswith("/W")]
    assert len(weights) == 3 * n_blocks + 4 + 2 == n_layers + 4


def test_resnet_rejects_other_depths():
    with pytest.raises(ValueError, match="50, 101, or 152"):
        M.ResNet(34)


@pytest.mark.slow
def test_vgg16_tiny_input_forward_and_parameter_count(rng):
    model = M.VGG16()
    with dz.test_mode():
        y = model(rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    assert y.shape == (1, 1000)
    conv = sum(p.size for k, p in _flat(model).items() if k.startswith("conv"))
    assert conv == 14_714_688  # VGG16's well-known convolutional parameter count
    assert model.fc6.W.shape == (512, 4096)  # 32x32 input: 1x1 after five poolings


@pytest.mark.slow
def test_resnet50_tiny_input_forward_and_parameter_count(rng):
    model = M.ResNet50()
    with dz.test_mode():
        y = model(rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    assert y.shape == (1, 1000)
    # The usual ResNet-50 count (25,557,032) plus DeZero's bias on conv1 (64).
    assert sum(p.size for p in model.params()) == 25_557_032 + 64


def _flat(model):
    flat = {}
    model._flatten_params(flat)
    return flat


# --------------------------------------------------------------------------- pretrained weights


def _vgg16_weights_file(path, rng):
    """A pretrained-style VGG16 file: every bias plus conv1_1's weight (the rest stay lazy)."""
    arrays = {}
    for key, owner, name, _ in M.VGG16()._state_entries():
        if name == "b":
            arrays[key] = rng.standard_normal(getattr(owner, name).shape).astype(np.float32)
    arrays["conv1_1/W"] = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    np.savez(path, **arrays)  # written the way DeZero writes its files
    return arrays


def test_vgg16_pretrained_from_a_local_path(tmp_path, rng):
    path = tmp_path / "vgg16.npz"
    arrays = _vgg16_weights_file(path, rng)
    model = M.VGG16(pretrained=str(path))
    np.testing.assert_array_equal(host(model.conv1_1.W), arrays["conv1_1/W"])
    np.testing.assert_array_equal(host(model.fc8.b), arrays["fc8/b"])
    assert model.conv1_1.in_channels == 3 and model.conv1_2.W.data is None


def test_pretrained_true_uses_the_data_dir(tmp_path, rng, monkeypatch):
    arrays = _vgg16_weights_file(tmp_path / "vgg16.npz", rng)
    monkeypatch.setenv("DEZERO_XP_DATA_DIR", str(tmp_path))
    model = M.VGG16(pretrained=True)
    np.testing.assert_array_equal(host(model.conv1_1.b), arrays["conv1_1/b"])


def test_pretrained_missing_local_file_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "resnet50.npz"
    with pytest.raises(FileNotFoundError, match="resnet50.npz") as info:
        M.ResNet50(pretrained=str(missing))
    assert "resnet50.npz" in str(info.value) and "https://" in str(info.value)


def test_pretrained_download_failure_says_where_to_put_the_file(monkeypatch):
    def offline(url, *args, **kwargs):
        raise DownloadError(f"could not download {url}; put the file into the cache")

    monkeypatch.setattr(M, "get_file", offline)
    with pytest.raises(DownloadError) as info:
        M.VGG16(pretrained=True)
    message = str(info.value)
    assert "vgg16.npz" in message and "pretrained='path/to/vgg16.npz'" in message


def test_vgg16_preprocess():
    image_module = pytest.importorskip("PIL.Image")
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    image = image_module.fromarray(rgb)
    out = M.VGG16.preprocess(image, size=(3, 2))
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    # BGR order with ImageNet means subtracted: channel 2 is red
    np.testing.assert_allclose(out[2], 200 - 123.68, rtol=1e-6)
    np.testing.assert_allclose(out[0], -103.939, rtol=1e-6)


def test_mlp_creates_its_parameters_on_the_requested_device(xb):
    model = dz.models.MLP((4, 2), activation=F.relu, device=xb.backend)
    assert all(p.backend is xb.backend for p in model.params() if p.data is not None)
    y = model(xb.variable(np.ones((3, 5), dtype=np.float32)))
    assert y.backend is xb.backend and y.shape == (3, 2)
    assert all(p.backend is xb.backend for p in model.params())
    assert model.l0.W.dtype == xb.dtype("float32")
