"""DeZero's ``dezero.functions_conv``: the convolution and pooling ops under their old module name.

The ops live in :mod:`dezero_xp.functions` (``F.conv2d``, ``F.pooling``, ...); this module only
re-exports them, with the op classes and DeZero's raw-array helpers ``im2col_array`` and
``col2im_array``, so ``import dezero.functions_conv`` code keeps working.

May import: dezero_xp._config and dezero_xp.functions.
"""

from __future__ import annotations

from dezero_xp._config import no_grad
from dezero_xp.functions import (
    average_pooling,
    col2im,
    conv2d,
    conv2d_simple,
    deconv2d,
    im2col,
    pooling,
    pooling_simple,
)
from dezero_xp.functions.conv import (
    Col2im,
    Conv2d,
    Conv2DGradW,
    Deconv2d,
    Im2col,
)
from dezero_xp.functions.pooling import (
    AveragePooling,
    Pooling,
    Pooling2DGrad,
    Pooling2DWithIndexes,
)

__all__ = [
    "AveragePooling",
    "Col2im",
    "Conv2DGradW",
    "Conv2d",
    "Deconv2d",
    "Im2col",
    "Pooling",
    "Pooling2DGrad",
    "Pooling2DWithIndexes",
    "average_pooling",
    "col2im",
    "col2im_array",
    "conv2d",
    "conv2d_simple",
    "deconv2d",
    "im2col",
    "im2col_array",
    "pooling",
    "pooling_simple",
]


def im2col_array(img, kernel_size, stride, pad, to_matrix=True):
    """``im2col`` on a raw array, returning a raw array (no graph is recorded)."""
    with no_grad():
        return im2col(img, kernel_size, stride, pad, to_matrix).data


def col2im_array(col, img_shape, kernel_size, stride, pad, to_matrix=True):
    """``col2im`` on a raw array, returning a raw array (no graph is recorded)."""
    with no_grad():
        return col2im(col, img_shape, kernel_size, stride, pad, to_matrix).data
