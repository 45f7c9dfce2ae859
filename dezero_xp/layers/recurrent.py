"""Recurrent layers: RNN and LSTM (one time step per call; DeZero's formulation).

Each keeps its hidden state between calls; :meth:`reset_state` starts a new sequence. Moving the
layer with ``to()`` moves the state too (as a new graph on the target device).

May import: dezero_xp.core, dezero_xp.functions and the modules of dezero_xp.layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dezero_xp.functions as F
from dezero_xp.core import Variable
from dezero_xp.layers._checks import check_size
from dezero_xp.layers.base import Layer
from dezero_xp.layers.feedforward import Linear

if TYPE_CHECKING:
    from dezero_xp.backend import Backend
    from dezero_xp.typing import DeviceLike, DTypeLike, VariableLike

__all__ = ["LSTM", "RNN"]


class RNN(Layer):
    """Elman RNN step: ``h = tanh(x Wx + bx + h_prev Wh)``; call :meth:`reset_state` between
    sequences."""

    h: Variable | None  # the hidden state

    def __init__(
        self,
        hidden_size: int,
        in_size: int | None = None,
        dtype: DTypeLike = "float32",
        device: DeviceLike | None = None,
    ) -> None:
        super().__init__(device)
        check_size("RNN", "hidden_size", hidden_size)
        self.x2h = Linear(hidden_size, in_size=in_size, dtype=dtype, device=device)
        # Lazy when x2h is (DeZero's draw order: x2h's weights at the first step, h2h's at the
        # second), else made now, after x2h's.
        h_in = None if in_size is None else hidden_size
        self.h2h = Linear(hidden_size, in_size=h_in, nobias=True, dtype=dtype, device=device)
        self.h = None

    def reset_state(self) -> None:
        """Forget the hidden state (start a new sequence)."""
        self.h = None

    def forward(self, x: VariableLike) -> Variable:
        if self.h is None:
            h_new = F.tanh(self.x2h(x))
        else:
            h_new = F.tanh(self.x2h(x) + self.h2h(self.h))
        self.h = h_new
        return h_new

    def _move_state(self, target: Backend) -> None:
        # A hidden state moved to another device starts a new graph there.
        if self.h is not None:
            self.h = Variable(self.h.data, device=target)


class LSTM(Layer):
    """LSTM step (DeZero's formulation); call :meth:`reset_state` between sequences."""

    h: Variable | None  # the hidden state
    c: Variable | None  # the cell state

    def __init__(
        self,
        hidden_size: int,
        in_size: int | None = None,
        dtype: DTypeLike = "float32",
        device: DeviceLike | None = None,
    ) -> None:
        super().__init__(device)
        H, I = check_size("LSTM", "hidden_size", hidden_size), in_size

        def make(in_size: int | None, nobias: bool = False) -> Linear:
            return Linear(H, nobias=nobias, dtype=dtype, in_size=in_size, device=device)

        self.x2f, self.x2i, self.x2o, self.x2u = make(I), make(I), make(I), make(I)
        self.h2f = make(H, nobias=True)
        self.h2i = make(H, nobias=True)
        self.h2o = make(H, nobias=True)
        self.h2u = make(H, nobias=True)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget the hidden and cell states (start a new sequence)."""
        self.h = None
        self.c = None

    def forward(self, x: VariableLike) -> Variable:
        if self.h is None:
            f = F.sigmoid(self.x2f(x))
            i = F.sigmoid(self.x2i(x))
            o = F.sigmoid(self.x2o(x))
            u = F.tanh(self.x2u(x))
        else:
            f = F.sigmoid(self.x2f(x) + self.h2f(self.h))
            i = F.sigmoid(self.x2i(x) + self.h2i(self.h))
            o = F.sigmoid(self.x2o(x) + self.h2o(self.h))
            u = F.tanh(self.x2u(x) + self.h2u(self.h))
        c_new = i * u if self.c is None else f * self.c + i * u
        h_new = o * F.tanh(c_new)
        self.h, self.c = h_new, c_new
        return h_new

    def _move_state(self, target: Backend) -> None:
        if self.h is not None:
            self.h = Variable(self.h.data, device=target)
        if self.c is not None:
            self.c = Variable(self.c.data, device=target)
