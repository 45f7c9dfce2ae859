"""Handwritten digits with an MLP: scikit-learn's 8x8 Digits, >= 95% test accuracy in seconds.

The data ship inside scikit-learn (1797 images, nothing to download): 80% train, 20% test, a
fixed split. A two-layer MLP (64 -> 128 -> 10, ReLU) trained with Adam for 30 epochs reaches
about 97-98% test accuracy. The script then saves the weights, loads them into a new model and
checks that the reloaded model scores exactly the same.

Writes to the output folder: ``digits_mlp_history.png`` (loss and accuracy per epoch) and
``digits_mlp.npz`` (the weights). Exits with status 1 when the test accuracy is below
``--min-accuracy`` (not with ``--smoke``) or when the reloaded model disagrees.

    python examples/digits_mlp.py                    # CUDA when usable, else the CPU
    python examples/digits_mlp.py --device cpu
    python examples/digits_mlp.py --device cuda      # falls back to the CPU without a GPU
    python examples/digits_mlp.py --smoke            # two epochs, for CI
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _common import (  # noqa: E402 - examples/ is on sys.path when a script runs
    EXIT_BELOW_THRESHOLD,
    ensure_dir,
    evaluate,
    example_parser,
    fit_classifier,
    plot_history,
)

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.datasets import Digits  # noqa: E402
from dezero_xp.models import MLP  # noqa: E402
from dezero_xp.optimizers import Adam  # noqa: E402

NUM_CLASSES = 10


def build_model(hidden_sizes) -> MLP:
    """An MLP with ReLU between layers: ``hidden_sizes`` then the 10 class scores."""
    return MLP((*hidden_sizes, NUM_CLASSES), activation=F.relu)


def make_loaders(backend, batch_size: int):
    """Train and test loaders of the Digits split, batches on ``backend``."""
    train_loader = dz.DataLoader(Digits(train=True), batch_size, shuffle=True, device=backend)
    test_loader = dz.DataLoader(Digits(train=False), 256, shuffle=False, device=backend)
    return train_loader, test_loader


def train(
    device="cpu",
    hidden_sizes=(128,),
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
):
    """Seed, build and train the MLP; returns ``(model, history, test_loader)``."""
    backend = dz.get_backend(device)
    dz.seed(seed)  # initial weights and the shuffling order
    train_loader, test_loader = make_loaders(backend, batch_size)
    model = build_model(hidden_sizes).to(backend)
    optimizer = Adam(alpha=lr).setup(model)
    history = fit_classifier(
        model, optimizer, train_loader, test_loader, epochs, progress=progress, desc="digits"
    )
    return model, history, test_loader


def main(argv=None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per mini-batch")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128], help="hidden sizes")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's step size")
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=0.95,
        help="exit with status 1 below this test accuracy",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 2

    backend = args.backend
    print(f"dezero_xp {dz.__version__}: Digits MLP {[64, *args.hidden, NUM_CLASSES]} on {backend}")
    model, history, test_loader = train(
        backend,
        tuple(args.hidden),
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed,
        progress=not args.no_progress,
    )
    test_loss, test_acc = history.test_loss[-1], history.test_acc[-1]
    print(
        f"after {history.epochs} epochs ({history.seconds:.1f} s): train loss "
        f"{history.train_loss[-1]:.4f}, test loss {test_loss:.4f}, "
        f"test accuracy {test_acc:.4f} ({round(test_acc * len(test_loader.dataset))}"
        f"/{len(test_loader.dataset)})"
    )

    out = ensure_dir(args.output_dir)
    weights = model.save_weights(out / "digits_mlp.npz")
    reloaded = build_model(args.hidden).to(backend)
    reloaded.load_weights(weights)
    _, reloaded_acc = evaluate(reloaded, test_loader)
    print(f"weights saved to {weights}; reloaded model's test accuracy {reloaded_acc:.4f}")
    plot = plot_history(history, out / "digits_mlp_history.png", "Digits, MLP + Adam")
    print(f"plot saved to {plot}")

    if reloaded_acc != test_acc:
        print(f"FAILED: the reloaded model scores {reloaded_acc} instead of {test_acc}")
        return EXIT_BELOW_THRESHOLD
    if not args.smoke and test_acc < args.min_accuracy:
        print(f"FAILED: test accuracy {test_acc:.4f} is below {args.min_accuracy}")
        return EXIT_BELOW_THRESHOLD
    return 0


if __name__ == "__main__":
    sys.exit(main())
