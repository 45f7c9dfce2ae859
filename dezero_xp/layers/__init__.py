"""Layers: objects that own Parameters (DeZero's ``dezero.layers``, imported as ``L``).

- ``base``: :class:`Layer` (registration, ``params()``, devices, save/load of weights);
- ``feedforward``: :class:`Linear`, :class:`Conv2d`, :class:`Deconv2d`, :class:`BatchNorm`,
  :class:`EmbedID`;
- ``recurrent``: :class:`RNN`, :class:`LSTM`.

This file only assembles.
"""

from dezero_xp.core import Parameter
from dezero_xp.layers.base import Layer
from dezero_xp.layers.feedforward import BatchNorm, Conv2d, Deconv2d, EmbedID, Linear
from dezero_xp.layers.recurrent import LSTM, RNN

__all__ = [
    "LSTM",
    "RNN",
    "BatchNorm",
    "Conv2d",
    "Deconv2d",
    "EmbedID",
    "Layer",
    "Linear",
    "Parameter",
]
