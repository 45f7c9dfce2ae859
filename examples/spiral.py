"""The spiral (the book's step 48): a two-layer MLP learns three interleaved arms.

DeZero's settings: 300 2-D points, MLP (2 -> 10 -> 3, sigmoid), plain SGD with lr 1.0,
mini-batches of 30, 300 epochs. The training loss falls from about 1.1 to about 0.1 and the
network separates the arms: about 96% accuracy on the test set, DeZero's second spiral (another
seed). Seconds on a CPU.

Writes ``spiral.png`` to the output folder: the loss and accuracy per epoch and the decision
boundary over the plane with the training points on top.

    python examples/spiral.py                  # CUDA when usable, else the CPU
    python examples/spiral.py --device cpu
    python examples/spiral.py --smoke          # five epochs, for CI
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _common import (  # noqa: E402 - examples/ is on sys.path when a script runs
    draw_history,
    example_parser,
    fit_classifier,
    pyplot,
    save_figure,
)

import dezero_xp as dz  # noqa: E402
from dezero_xp.cuda import as_numpy  # noqa: E402
from dezero_xp.datasets import Spiral  # noqa: E402
from dezero_xp.models import MLP  # noqa: E402
from dezero_xp.optimizers import SGD  # noqa: E402

NUM_CLASSES = 3


def train(
    device="cpu",
    hidden_size: int = 10,
    epochs: int = 300,
    batch_size: int = 30,
    lr: float = 1.0,
    seed: int = 0,
    progress: bool = False,
):
    """Seed, build and train the book's MLP with SGD; returns ``(model, history)``."""
    backend = dz.get_backend(device)
    dz.seed(seed)
    train_loader = dz.DataLoader(Spiral(train=True), batch_size, shuffle=True, device=backend)
    test_loader = dz.DataLoader(Spiral(train=False), 300, shuffle=False, device=backend)
    model = MLP((hidden_size, NUM_CLASSES)).to(backend)  # sigmoid between layers, as DeZero's
    optimizer = SGD(lr=lr).setup(model)
    history = fit_classifier(
        model,
        optimizer,
        train_loader,
        test_loader,
        epochs,
        progress=progress,
        desc="spiral",
        log_every=max(1, epochs // 10),
    )
    return model, history


def predict_grid(model, backend, low=-1.1, high=1.1, steps=200):
    """Class predictions over a ``steps x steps`` grid of the plane: ``(xx, yy, classes)``."""
    xx, yy = np.meshgrid(np.linspace(low, high, steps), np.linspace(low, high, steps))
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    with dz.no_grad(), dz.test_mode():
        scores = model(backend.from_host(points))
    classes = np.argmax(as_numpy(scores), axis=1).reshape(xx.shape)
    return xx, yy, classes


def plot(model, backend, history, path: Path) -> Path:
    """Loss, accuracy and the decision boundary side by side."""
    plt = pyplot()
    fig, (ax_loss, ax_acc, ax_boundary) = plt.subplots(1, 3, figsize=(15, 4.5))
    draw_history(history, ax_loss, ax_acc)
    xx, yy, classes = predict_grid(model, backend)
    colors = [f"C{c}" for c in range(NUM_CLASSES)]  # the regions in their points' colours
    levels = np.arange(NUM_CLASSES + 1) - 0.5
    ax_boundary.contourf(xx, yy, classes, levels=levels, colors=colors, alpha=0.25)
    data = Spiral(train=True)
    for c, marker in zip(range(NUM_CLASSES), ("o", "x", "^")):
        points = data.data[data.label == c]
        ax_boundary.scatter(points[:, 0], points[:, 1], marker=marker, s=25, label=f"class {c}")
    ax_boundary.set(title="decision boundary (training points)", aspect="equal")
    ax_boundary.legend(loc="upper right", fontsize="small")
    fig.suptitle("Spiral: MLP (2-10-3, sigmoid), SGD lr=1.0")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=30, help="examples per mini-batch")
    parser.add_argument("--hidden", type=int, default=10, help="hidden layer size")
    parser.add_argument("--lr", type=float, default=1.0, help="SGD learning rate")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 5

    backend = args.backend
    print(f"dezero_xp {dz.__version__}: spiral, MLP (2-{args.hidden}-3) on {backend}")
    model, history = train(
        backend,
        args.hidden,
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed,
        progress=not args.no_progress,
    )
    for epoch in sorted({1, history.epochs // 3, 2 * history.epochs // 3, history.epochs} - {0}):
        print(
            f"  epoch {epoch:3d}: loss {history.train_loss[epoch - 1]:.4f}, "
            f"train accuracy {history.train_acc[epoch - 1]:.4f}"
        )
    print(
        f"after {history.epochs} epochs ({history.seconds:.1f} s): train loss "
        f"{history.train_loss[-1]:.4f}, test loss {history.test_loss[-1]:.4f}, "
        f"test accuracy {history.test_acc[-1]:.4f}"
    )
    path = plot(model, backend, history, args.output_dir / "spiral.png")
    print(f"plot saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
