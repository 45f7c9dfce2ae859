"""DeZero-style user code that type checkers must accept, and mistakes they must catch.

Never run: ``tests/test_typing.py`` hands it to mypy with the package. A line ending in
``# error: <code>`` must be reported with that error code; every other line must be clean.
"""

from __future__ import annotations

import numpy as np

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp import optimizers
from dezero_xp.dataloaders import DataLoader
from dezero_xp.datasets import Spiral
from dezero_xp.models import MLP
from dezero_xp.typing import VariableLike

x = dz.Variable(np.array(2.0))
y = x**2 + 3 * x - 1 / x
y.backward(create_graph=True)
gx = x.grad
assert gx is not None
gx.backward()
z = F.sin(x) * F.exp(np.ones(3)) + x
shape: tuple[int, ...] = z.shape
w = z.reshape(3, 1).T @ dz.randn(3, 2, device="cpu")
s = F.sum(w, axis=0).mean() + F.matmul(w.mT, w).sum(axis=(0, 1))
model = MLP((10, 3))
optimizer = optimizers.Adam(alpha=0.01).setup(model)
optimizer.add_hook(optimizers.WeightDecay(1e-4))
for xb, tb in DataLoader(Spiral(), batch_size=30):
    loss = F.softmax_cross_entropy(model(xb), tb)
    model.cleargrads()
    loss.backward()
    optimizer.update()
linear = L.Linear(5, in_size=3).to("cpu")
out = linear(np.zeros((2, 3), dtype=np.float32))
p: dz.Parameter = dz.Parameter(np.zeros(3)).to("cpu")


def step(a: VariableLike, device: str | None = None) -> dz.Variable:
    return F.relu(dz.as_variable(a)) + dz.ones(2, device=device)


with dz.no_grad(), dz.using_config("train", False):
    step(np.ones(2))

dz.Variable([1, 2])  # error: arg-type
F.relu("x")  # error: arg-type
F.sum(x, axis="0")  # error: arg-type
dz.zeros(2, 3, dtype="float32", devce="cpu")  # error: call-arg
print(x.grad.data)  # error: union-attr
