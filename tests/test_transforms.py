"""Host-side transforms: array semantics checked by hand or against Pillow, PIL-image paths."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp import transforms as T

HAS_PIL = importlib.util.find_spec("PIL") is not None
needs_pil = pytest.mark.skipif(not HAS_PIL, reason="Pillow is not installed")


def test_compose_applies_in_order():
    assert T.Compose([lambda x: x + 1, lambda x: x * 10])(1) == 20
    assert T.Compose([lambda x: x * 10, lambda x: x + 1])(1) == 11
    assert T.Compose()(5) == 5
    assert T.Compose([])(5) == 5


def test_normalize_scalar_keeps_float32():
    x = np.array([[0.0, 127.5, 255.0]], np.float32)
    y = T.Normalize(127.5, 127.5)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[-1.0, 0.0, 1.0]])


def test_normalize_per_channel():
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    y = T.Normalize(mean=[1.0, 2.0, 3.0], std=[1.0, 2.0, 4.0])(x)
    expected = (x - np.array([1.0, 2.0, 3.0])[:, None, None]) / np.array([1.0, 2.0, 4.0])[
        :, None, None
    ]
    np.testing.assert_allclose(y, expected)
    assert y.dtype == np.float32
    # a one-element sequence applies to every channel (DeZero's rule)
    np.testing.assert_allclose(T.Normalize(mean=[2.0], std=[2.0])(x), (x - 2) / 2)


def test_flatten_astype_toint():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    flat = T.Flatten()(x)
    assert flat.shape == (6,)
    flat[0] = 99
    assert x[0, 0, 0] == 0  # a copy
    assert T.ToFloat()(x).dtype == np.float32
    assert T.AsType(np.float64)(x).dtype == np.float64
    assert T.ToInt()(np.array([1.7, 2.2])).dtype == np.int64
    np.testing.assert_array_equal(T.ToInt()(np.array([1.7, 2.2])), [1, 2])
    assert T.ToFloat is T.AsType


def test_convert_arrays():
    gray = np.arange(4, dtype=np.uint8).reshape(1, 2, 2)
    rgb = T.Convert("RGB")(gray)
    assert rgb.shape == (3, 2, 2)
    assert all(np.array_equal(rgb[c], gray[0]) for c in range(3))
    assert T.Convert("RGB")(gray[0]).shape == (3, 2, 2)
    color = np.stack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30)])
    bgr = T.Convert("BGR")(color)
    assert [int(bgr[c, 0, 0]) for c in range(3)] == [30, 20, 10]
    rgba = np.concatenate([color, np.full((1, 2, 2), 255, np.uint8)])
    assert T.Convert("RGB")(rgba).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="2 channels"):
        T.Convert("RGB")(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="PIL images only"):
        T.Convert("CMYK")(color)
    with pytest.raises(TypeError, match="Convert"):
        T.Convert("RGB")([1, 2, 3])


@needs_pil
def test_convert_to_luma_matches_pil():
    from PIL import Image

    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    ours = T.Convert("L")(chw)
    theirs = np.asarray(Image.fromarray(np.transpose(chw, (1, 2, 0))).convert("L"))
    assert ours.shape == (1, 5, 7) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours[0], theirs)


@needs_pil
def test_convert_pil_images():
    from PIL import Image

    img = Image.fromarray(np.dstack([np.full((2, 3), v, np.uint8) for v in (10, 20, 30)]))
    assert T.Convert("BGR")(img).getpixel((0, 0)) == (30, 20, 10)
    assert T.Convert("L")(img).mode == "L"


def test_resize_nearest_by_hand():
    x = np.array([[1, 2], [3, 4]], np.uint8)
    y = T.Resize((4, 4), mode="nearest")(x)
    np.testing.assert_array_equal(y, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    chw = np.stack([x, x + 10])
    assert T.Resize((4, 2), mode="nearest")(chw).shape == (2, 2, 4)  # size is (width, height)


def test_resize_bilinear_properties():
    const = np.full((3, 5, 6), 0.25, np.float32)
    y = T.Resize((9, 4))(const)
    assert y.shape == (3, 4, 9) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.25)
    # a ramp along the width stays a ramp: sampled at half-pixel centres, clamped at the edges
    ramp = np.tile(np.arange(4, dtype=np.float64), (2, 1))
    y = T.Resize((8, 2))(ramp)
    pos = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(y, np.tile(pos, (2, 1)))
    with pytest.raises(ValueError, match="mode"):
        T.Resize(4, mode="bicubic")


@needs_pil
def test_resize_bilinear_upscale_matches_pil():
    from PIL import Image

    rng = np.random.default_rng(1)
    x = rng.random((5, 4)).astype(np.float32)
    ours = T.Resize((11, 13))(x)
    theirs = np.asarray(Image.fromarray(x, mode="F").resize((11, 13), Image.BILINEAR))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@needs_pil
def test_resize_pil_image():
    from PIL import Image

    img = Image.fromarray(np.zeros((4, 6), np.uint8))
    assert T.Resize((3, 2))(img).size == (3, 2)


def test_center_crop_arrays():
    x = np.arange(5 * 6).reshape(1, 5, 6)
    y = T.CenterCrop((2, 3))(x)  # width 2, height 3
    np.testing.assert_array_equal(y, x[:, 1:4, 2:4])
    np.testing.assert_array_equal(T.CenterCrop(3)(x[0]), x[0, 1:4, 1:4])
    with pytest.raises(ValueError, match="larger"):
        T.CenterCrop(7)(x)


@needs_pil
def test_center_crop_pil_matches_array():
    from PIL import Image

    rng = np.random.default_rng(2)
    hw = rng.integers(0, 256, (7, 10), dtype=np.uint8)
    ours = T.CenterCrop((5, 4))(hw)
    theirs = np.asarray(T.CenterCrop((5, 4))(Image.fromarray(hw)))
    np.testing.assert_array_equal(ours, theirs)


@needs_pil
def test_to_array_and_to_pil():
    from PIL import Image

    rng = np.random.default_rng(3)
    hwc = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    arr = T.ToArray()(Image.fromarray(hwc))
    assert arr.shape == (3, 4, 5) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, np.transpose(hwc, (2, 0, 1)))
    gray = T.ToArray(np.uint8)(Image.fromarray(hwc[..., 0]))
    assert gray.shape == (1, 4, 5) and gray.dtype == np.uint8
    back = T.ToPIL()(np.transpose(hwc, (2, 0, 1)).copy())
    np.testing.assert_array_equal(np.asarray(back), hwc)
    assert T.ToPIL()(gray).size == (5, 4)


def test_to_array_passes_arrays_and_rejects_others():
    x = np.zeros((1, 2, 2), np.uint8)
    assert T.ToArray()(x) is x
    with pytest.raises(TypeError, match="ToArray"):
        T.ToArray()([1, 2])


def test_random_horizontal_flip():
    x = np.arange(6).reshape(1, 2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(x) is x

    def flips(n):
        t = T.RandomHorizontalFlip()
        return [not np.array_equal(t(x), x) for _ in range(n)]

    dz.seed(4)
    a = flips(40)
    dz.seed(4)
    b = flips(40)
    assert a == b
    assert 5 < sum(a) < 35  # about half
