"""Memory stays flat: training steps and repeated backward passes leave nothing behind.

- After a warm-up, a small MLP trained with Adam on DataLoader batches keeps the same
  tracemalloc current size: of six windows of 150 steps, at least one grows by at most 1 kB
  (about 7 bytes a step). A leak grows memory in every window. CPython 3.10's frame free list
  does not: it makes one-off jumps of a few kB at irregular steps (the frame objects it
  resizes), which a single window can meet, and a longer run then shows that they were not
  growth.
- Repeated forward + backward over a chain of ops leaves the number of live objects of every
  type unchanged, and makes no reference cycles: the graph is freed by reference counting
  alone, without the garbage collector.

Each check is also run on a deliberately leaking variant, to show that it can fail.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp.dataloaders import DataLoader
from dezero_xp.datasets import Dataset
from dezero_xp.models import MLP
from dezero_xp.optimizers import Adam

WARMUP_STEPS = 60  # more than one epoch: the optimizer state and the loader's order exist
WINDOW_STEPS = 150
WINDOWS = 6
# Growth allowed over one window: one-off effects such as Adam's step counter outgrowing
# CPython's cached small ints. Keeping one float per step (32 B) already exceeds it.
ALLOWED_GROWTH_BYTES = 1024
CHAIN_OPS = 150


class _Blobs(Dataset):
    """400 examples of 8 float32 features, 3 classes: a tiny deterministic training set."""

    def prepare(self):
        rng = np.random.default_rng(0)
        self.label = rng.integers(0, 3, 400)
        self.data = (rng.standard_normal((400, 8)) + self.label[:, None]).astype(np.float32)


def _mlp_step(keep=None):
    """One training step of an 8-32-3 MLP with Adam; ``keep(loss)`` sees each step's loss."""
    dz.seed(0)
    model = MLP((32, 3))
    optimizer = Adam().setup(model)
    loader = DataLoader(_Blobs(), 50, shuffle=True)

    def step():
        try:
            x, t = next(loader)
        except StopIteration:  # the loader rewinds (and reshuffles) after each epoch
            x, t = next(loader)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        if keep is not None:
            keep(loss)

    return step


def _window_growths(step, warmup=WARMUP_STEPS, windows=WINDOWS, steps=WINDOW_STEPS) -> list:
    """tracemalloc current size at the end of each window of ``steps`` steps after ``warmup``,
    minus that at its start: one figure per window.

    Tracing starts before the warm-up, so every array alive at any mark was allocated under
    tracing and a buffer that a later step replaces is not counted as growth.
    """
    tracemalloc.start()
    try:
        for _ in range(warmup):
            step()
        gc.collect()
        marks = [tracemalloc.get_traced_memory()[0]]
        for _ in range(windows):
            for _ in range(steps):
                step()
            gc.collect()
            marks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    return [after - before for before, after in zip(marks, marks[1:])]


def test_training_steps_keep_memory_flat():
    growths = _window_growths(_mlp_step())
    assert min(growths) <= ALLOWED_GROWTH_BYTES, (
        f"memory grew in every window of {WINDOW_STEPS} steps (bytes per window: {growths})"
    )


def _keep_bytes(size):
    """A leak of its own: ``size`` fresh bytes kept at every step."""
    return lambda kept: lambda loss: kept.append(bytes(size))


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(lambda kept: kept.append, id="every-loss-variable"),
        pytest.param(lambda kept: lambda loss: kept.append(float(loss.data)), id="one-float"),
        pytest.param(_keep_bytes(8), id="8-bytes"),
    ],
)
def test_growth_check_catches_a_leak(keep):
    kept = []
    growths = _window_growths(_mlp_step(keep(kept)), windows=2)
    assert len(kept) == WARMUP_STEPS + 2 * WINDOW_STEPS
    # Every window sees the leak (two are enough to show it), so the check above fails on it.
    assert min(growths) > ALLOWED_GROWTH_BYTES, growths


# --------------------------------------------------------------------------- chains


def _chain_step(keep=None):
    """Forward + backward of a chain of CHAIN_OPS scalar ops; ``keep(y)`` sees each output."""
    x0 = np.array(0.5)

    def step():
        x = dz.Variable(x0)
        y = x
        for _ in range(CHAIN_OPS // 3):
            y = F.sin(y * 1.0001 + (-0.0001))
        y.backward()
        assert x.grad is not None
        if keep is not None:
            keep(y)

    return step


def _count_live_objects(into: Counter) -> None:
    """Add the objects the garbage collector tracks to ``into``, counted by type."""
    into.update(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def _object_growth(step, warmup=3, steps=20) -> dict:
    """Types whose live count changed over ``steps`` steps after ``warmup``: {type: change}."""
    # Both counters exist during both counts, and a first count primes the caches that
    # counting fills (isinstance checks inside Counter.update), so they do not show up.
    before, after = Counter(), Counter()
    _count_live_objects(Counter())
    for _ in range(warmup):
        step()
    gc.collect()
    _count_live_objects(before)
    for _ in range(steps):
        step()
    gc.collect()
    _count_live_objects(after)
    after.subtract(before)
    return {name: change for name, change in after.items() if change}


def test_repeated_backward_accumulates_no_objects():
    assert _object_growth(_chain_step()) == {}


def test_object_check_catches_kept_graphs():
    kept = []
    growth = _object_growth(_chain_step(kept.append), steps=20)
    assert growth.get("dezero_xp.core.Variable", 0) >= 20 * CHAIN_OPS
    assert any(name.startswith("dezero_xp.functions.") for name in growth)


def _garbage_after(step, steps=5) -> int:
    """Objects the cycle collector finds after ``steps`` steps run with it switched off."""
    step()  # first-call caches are not garbage
    gc.collect()
    gc.disable()
    try:
        for _ in range(steps):
            step()
        return gc.collect()
    finally:
        gc.enable()


@pytest.mark.parametrize("make_step", [_chain_step, _mlp_step], ids=["chain", "mlp"])
def test_graphs_are_freed_without_the_cycle_collector(make_step):
    assert _garbage_after(make_step()) == 0


def test_cycle_check_catches_a_cycle():
    def make_cycle(y):
        y.creator.keep_output = y  # creator -> output -> creator: only the collector frees it

    assert _garbage_after(_chain_step(make_cycle)) > 0
