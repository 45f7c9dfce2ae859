"""Fashion-MNIST with an MLP: 28x28 clothing images, 10 classes, about 87% in five epochs.

An MLP (784 -> 256 -> 10, ReLU) trained with Adam on mini-batches of 100. The data are read
from a local folder (see ``--data-dir``); nothing is downloaded. Without the files the script
says which files and where to put them and exits with status 3, under ``--smoke`` too
(``nox -s examples`` then reports it as skipped). ``--train-size N`` trains on the first N
training images only.

Writes ``fashion_mnist_mlp_history.png`` (loss and accuracy per epoch) to the output folder.

    python examples/fashion_mnist_mlp.py                       # all 60000 images, 5 epochs
    python examples/fashion_mnist_mlp.py --data-dir ~/data/fashion-mnist --device cuda
    python examples/fashion_mnist_mlp.py --smoke               # 1000 images, one epoch
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _common import example_parser, fit_classifier  # noqa: E402
from _fashion import add_data_options, load_or_exit, report  # noqa: E402

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.models import MLP  # noqa: E402
from dezero_xp.optimizers import Adam  # noqa: E402


def train(train_set, test_set, device="cpu", hidden_sizes=(256,), epochs=5, batch_size=100,
          lr=1e-3, seed=0, progress=False):  # fmt: skip
    """Seed, build and train the MLP; returns ``(model, history)``."""
    backend = dz.get_backend(device)
    dz.seed(seed)
    train_loader = dz.DataLoader(train_set, batch_size, shuffle=True, device=backend)
    test_loader = dz.DataLoader(test_set, 1000, shuffle=False, device=backend)
    model = MLP((*hidden_sizes, 10), activation=F.relu).to(backend)
    optimizer = Adam(alpha=lr).setup(model)
    history = fit_classifier(
        model, optimizer, train_loader, test_loader, epochs, progress=progress, desc="fashion mlp"
    )
    return model, history


def main(argv=None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    add_data_options(parser)
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=100, help="examples per mini-batch")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256], help="hidden sizes")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's step size")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 1

    backend = args.backend
    train_set, test_set = load_or_exit(args, flatten=True)
    print(
        f"dezero_xp {dz.__version__}: Fashion-MNIST MLP {[784, *args.hidden, 10]} on {backend}, "
        f"{len(train_set)} training / {len(test_set)} test images"
    )
    _, history = train(
        train_set,
        test_set,
        backend,
        tuple(args.hidden),
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed,
        progress=not args.no_progress,
    )
    return report(
        history, args.output_dir / "fashion_mnist_mlp_history.png", "Fashion-MNIST, MLP + Adam"
    )


if __name__ == "__main__":
    sys.exit(main())
