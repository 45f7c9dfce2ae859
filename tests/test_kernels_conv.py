"""The im2col/col2im kernels of every kernel table (dezero_xp/_backends) against loop references.

Each backend's own table is tested through the ``xb`` fixture; the standard-only fallback
(``GenericKernels``) is also run on every backend's arrays, where the fast tables would otherwise
hide it. The loop references below are also used by tests/test_functions_conv.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import dezero_xp as dz
from dezero_xp._backends import GenericKernels
from dezero_xp._backends.cupy import CupyKernels

# (image shape, kernel, stride, pad): square and non-square kernels, strides and pads, windows
# that do not reach the last row/column, and a 1x1 kernel.
COMBOS = [
    ((2, 3, 5, 4), (3, 2), (1, 1), (0, 0)),
    ((1, 2, 6, 7), (3, 3), (2, 2), (1, 1)),
    ((2, 2, 5, 6), (2, 3), (2, 1), (1, 0)),
    ((1, 1, 4, 4), (1, 1), (1, 1), (0, 0)),
    ((2, 1, 7, 5), (2, 2), (3, 2), (0, 1)),
]


def outsize(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def padded(x, pad, value=0.0):
    """``x`` (NCHW) with ``pad`` = (ph, pw) borders of ``value``, by assignment (no np.pad)."""
    n, c, h, w = x.shape
    ph, pw = pad
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def im2col_ref(x, kernel, stride, pad, pad_value=0.0):
    """(N, C, KH, KW, OH, OW) patches, one output position at a time."""
    (kh, kw), (sh, sw) = kernel, stride
    img = padded(x, pad, pad_value)
    n, c, h, w = x.shape
    oh, ow = outsize(h, kh, sh, pad[0]), outsize(w, kw, sw, pad[1])
    col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            col[:, :, :, :, i, j] = img[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
    return col


def col2im_ref(col, img_shape, kernel, stride, pad):
    """Each patch added back onto the (padded) image at its position, then the pad cropped."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    n, c, h, w = img_shape
    img = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(col.shape[4]):
        for j in range(col.shape[5]):
            img[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += col[:, :, :, :, i, j]
    return img[:, :, ph : ph + h, pw : pw + w]


def col_shape(img_shape, kernel, stride, pad):
    n, c, h, w = img_shape
    return (
        (n, c)
        + tuple(kernel)
        + (
            outsize(h, kernel[0], stride[0], pad[0]),
            outsize(w, kernel[1], stride[1], pad[1]),
        )
    )


class _Tables:
    """A kernel table plus the helpers to feed and read its backend."""

    def __init__(self, name, ops, backend):
        self.name = name
        self.ops = ops
        self.backend = backend

    def __repr__(self):
        return self.name

    def asarray(self, host):
        return self.backend.from_host(np.asarray(host))

    @staticmethod
    def numpy(x):
        return np.asarray(dz.backend.to_host(x))


@pytest.fixture(params=["own", "generic"])
def tables(request, xb):
    """The backend's own kernel table, or the standard-only fallback on the same arrays."""
    if request.param == "own":
        return _Tables(xb.name, xb.backend.ops, xb.backend)
    return _Tables(f"generic-on-{xb.name}", GenericKernels(xb.backend), xb.backend)


@pytest.mark.parametrize("combo", COMBOS, ids=str)
def test_im2col_matches_reference(tables, combo, rng):
    shape, kernel, stride, pad = combo
    x = rng.standard_normal(shape)
    got = tables.numpy(tables.ops.im2col(tables.asarray(x), kernel, stride, pad))
    np.testing.assert_array_equal(got, im2col_ref(x, kernel, stride, pad))


@pytest.mark.parametrize("combo", COMBOS, ids=str)
def test_col2im_matches_reference(tables, combo, rng):
    shape, kernel, stride, pad = combo
    col = rng.standard_normal(col_shape(shape, kernel, stride, pad))
    got = tables.numpy(tables.ops.col2im(tables.asarray(col), shape, kernel, stride, pad))
    np.testing.assert_allclose(got, col2im_ref(col, shape, kernel, stride, pad), rtol=1e-12)
    assert got.shape == shape


@pytest.mark.parametrize("combo", COMBOS, ids=str)
def test_col2im_is_the_adjoint_of_im2col(tables, combo, rng):
    shape, kernel, stride, pad = combo
    x = rng.standard_normal(shape)
    c = rng.standard_normal(col_shape(shape, kernel, stride, pad))
    col = tables.numpy(tables.ops.im2col(tables.asarray(x), kernel, stride, pad))
    img = tables.numpy(tables.ops.col2im(tables.asarray(c), shape, kernel, stride, pad))
    np.testing.assert_allclose(np.sum(col * c), np.sum(x * img), rtol=1e-12)


def test_im2col_pad_value_fills_the_border(tables, rng):
    x = rng.standard_normal((1, 2, 3, 4))
    kernel, stride, pad = (2, 2), (1, 1), (1, 1)
    got = tables.numpy(tables.ops.im2col(tables.asarray(x), kernel, stride, pad, -np.inf))
    np.testing.assert_array_equal(got, im2col_ref(x, kernel, stride, pad, -np.inf))
    assert np.isneginf(got[0, 0, 0, 0, 0, 0]) and np.isfinite(got[0, 0, 1, 1, 0, 0])


def test_kernels_keep_float32_and_integers(tables, rng):
    x32 = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    col = tables.ops.im2col(tables.asarray(x32), (2, 2), (1, 2), (1, 0))
    assert tables.numpy(col).dtype == np.float32
    img = tables.ops.col2im(col, x32.shape, (2, 2), (1, 2), (1, 0))
    assert tables.numpy(img).dtype == np.float32
    xi = np.arange(40, dtype=np.int64).reshape(1, 2, 4, 5)
    got = tables.numpy(tables.ops.im2col(tables.asarray(xi), (3, 2), (1, 2), (1, 1)))
    np.testing.assert_array_equal(got, im2col_ref(xi, (3, 2), (1, 2), (1, 1)))
    assert got.dtype == np.int64


def test_numpy_im2col_is_a_read_only_view_without_padding(rng):
    ops = dz.get_backend("cpu").ops
    x = rng.standard_normal((2, 3, 5, 4))
    col = ops.im2col(x, (3, 2), (1, 1), (0, 0))
    assert np.shares_memory(col, x), "no padding: the NumPy kernel should not copy"
    with pytest.raises(ValueError):
        col[0, 0, 0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(col, im2col_ref(x, (3, 2), (1, 1), (0, 0)))


class _HostDevice:
    """Stands in for ``cupy.cuda.Device``: a context manager that records its use."""

    def __init__(self):
        self.entered = 0

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, *exc):
        return False


def test_cupy_table_logic_on_a_numpy_stand_in(rng):
    # CuPy mirrors NumPy's API, so the CuPy table's code runs on NumPy standing in for it:
    # this checks its logic (device context held, results right) on machines without a GPU.
    device = _HostDevice()
    backend = SimpleNamespace(xp=np, native_device=device)
    ops = CupyKernels(backend, cupy=np, cupyx=None)
    for shape, kernel, stride, pad in COMBOS:
        x = rng.standard_normal(shape)
        np.testing.assert_array_equal(
            ops.im2col(x, kernel, stride, pad), im2col_ref(x, kernel, stride, pad)
        )
        col = rng.standard_normal(col_shape(shape, kernel, stride, pad))
        np.testing.assert_allclose(
            ops.col2im(col, shape, kernel, stride, pad),
            col2im_ref(col, shape, kernel, stride, pad),
            rtol=1e-12,
        )
    assert device.entered >= 2 * len(COMBOS)
