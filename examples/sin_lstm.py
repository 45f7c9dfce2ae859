"""A sine wave with an LSTM (the book's step 60): truncated backpropagation through time.

DeZero's settings: SinCurve (999 noisy steps of a sine; predict the next value), an LSTM with
100 hidden units and a linear read-out, Adam, SeqDataLoader batches of 30 parallel stretches of
the sequence, the graph cut every 30 steps (``loss.unchain_backward()``), 100 epochs. Then the
trained network is run one step at a time over two periods of a cosine, which it never saw,
and its predictions are compared with the true next values.

Writes ``sin_lstm.png`` to the output folder: the loss per epoch and the predictions against
the true curve.

    python examples/sin_lstm.py                 # CUDA when usable, else the CPU
    python examples/sin_lstm.py --device cpu
    python examples/sin_lstm.py --smoke         # two epochs, for CI
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _common import (  # noqa: E402 - examples/ is on sys.path when a script runs
    EpochLog,
    epoch_label,
    example_parser,
    progress_bar,
    pyplot,
    save_figure,
    to_float,
)

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
import dezero_xp.layers as L  # noqa: E402
from dezero_xp.cuda import as_numpy  # noqa: E402
from dezero_xp.dataloaders import SeqDataLoader  # noqa: E402
from dezero_xp.datasets import SinCurve  # noqa: E402
from dezero_xp.models import Model  # noqa: E402
from dezero_xp.optimizers import Adam  # noqa: E402


class BetterRNN(Model):
    """The book's model: an LSTM step followed by a linear read-out."""

    def __init__(self, hidden_size, out_size=1):
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


def train(device="cpu", hidden_size=100, epochs=100, batch_size=30, bptt_length=30, seed=0,
          progress=False):  # fmt: skip
    """Seed, build and train the LSTM; returns ``(model, mean loss per epoch, seconds)``."""
    backend = dz.get_backend(device)
    dz.seed(seed)  # the noise of SinCurve and the initial weights
    loader = SeqDataLoader(SinCurve(train=True), batch_size=batch_size, device=backend)
    model = BetterRNN(hidden_size).to(backend)
    optimizer = Adam().setup(model)
    steps = len(loader)  # time steps per epoch
    losses = []
    start = time.perf_counter()
    log = EpochLog("sin lstm", epochs, every=max(1, epochs // 10))
    with progress_bar(epochs * steps, "sin lstm", progress) as bar:
        for epoch in range(epochs):
            bar.set_description(epoch_label("sin lstm", epoch, epochs))
            model.reset_state()
            loss, total, count = 0, 0.0, 0
            for x, t in loader:
                loss = loss + F.mean_squared_error(model(x), t)
                count += 1
                # Every bptt_length steps, and at the end of the sequence (DeZero compared with
                # the dataset length, which the step count never reaches), backprop and cut.
                if count % bptt_length == 0 or count == steps:
                    model.cleargrads()
                    loss.backward()
                    loss.unchain_backward()  # truncated BPTT: forget the graph before here
                    optimizer.update()
                    total += to_float(loss)
                    loss = 0
                bar.update(1)
            losses.append(total / count)
            bar.set_postfix(loss=f"{losses[-1]:.5f}")
            log(epoch, {"loss": f"{losses[-1]:.6f}"})
    return model, losses, time.perf_counter() - start


def predict_cosine(model, backend, num_points=1000):
    """Run the model one step at a time over ``cos`` on [0, 4 pi]; ``(inputs, predictions)``."""
    xs = np.cos(np.linspace(0, 4 * np.pi, num_points)).astype(np.float32)
    model.reset_state()
    predictions = []
    with dz.no_grad(), dz.test_mode():
        for value in xs:
            y = model(backend.from_host(value.reshape(1, 1)))
            predictions.append(float(as_numpy(y).reshape(())))
    return xs, np.array(predictions)


def plot(losses, xs, predictions, path: Path) -> Path:
    """The loss per epoch (log scale) and the predictions against the true next values."""
    plt = pyplot()
    fig, (ax_loss, ax_pred) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(range(1, len(losses) + 1), losses)
    ax_loss.set(xlabel="epoch", ylabel="mean squared error", title="training loss", yscale="log")
    ax_loss.grid(alpha=0.3)
    steps = np.arange(1, len(xs))
    ax_pred.plot(steps, xs[1:], label="cos (true next value)")
    ax_pred.plot(steps, predictions[:-1], "--", label="LSTM prediction")
    ax_pred.set(xlabel="step", ylabel="y", title="one-step predictions on an unseen cosine")
    ax_pred.grid(alpha=0.3)
    # Room above the curves (they stay within about [-1, 1]) for a legend that covers none of it.
    low, high = ax_pred.get_ylim()
    ax_pred.set_ylim(low, high + 0.45 * (high - low))
    ax_pred.legend(loc="upper center", ncol=2, fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="passes over the training set")
    parser.add_argument("--hidden", type=int, default=100, help="LSTM hidden size")
    parser.add_argument(
        "--batch-size", type=int, default=30, help="parallel stretches of the sequence"
    )
    parser.add_argument("--bptt-length", type=int, default=30, help="steps between graph cuts")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 2

    backend = args.backend
    print(f"dezero_xp {dz.__version__}: SinCurve LSTM (hidden {args.hidden}) on {backend}")
    model, losses, seconds = train(
        backend,
        args.hidden,
        args.epochs,
        args.batch_size,
        args.bptt_length,
        args.seed,
        progress=not args.no_progress,
    )
    for epoch in sorted({1, len(losses) // 2, len(losses)} - {0}):
        print(f"  epoch {epoch:3d}: loss {losses[epoch - 1]:.6f}")
    xs, predictions = predict_cosine(model, backend)
    mse = float(np.mean((predictions[:-1] - xs[1:]) ** 2))
    print(
        f"after {len(losses)} epochs ({seconds:.1f} s): training loss {losses[-1]:.6f}; "
        f"one-step prediction error on the cosine (MSE) {mse:.6f}"
    )
    path = plot(losses, xs, predictions, args.output_dir / "sin_lstm.png")
    print(f"plot saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
