"""Helpers shared by the example scripts: command line, datasets in memory, training, plots.

Not an example itself (``nox -s examples`` skips files whose names start with ``_``). Every
example imports it as ``_common`` (the folder of a running script is on ``sys.path``).

- :func:`example_parser`: the options every example has (``--device``, ``--smoke``,
  ``--seed``, ``--output-dir``, ``--no-progress``), defaults shown by ``--help``, the device
  checked as it is parsed, smoke runs' files kept apart in ``output/smoke``.
- :class:`ArrayDataset`: a dataset over arrays already in memory (already transformed), so the
  DataLoader copies whole batches at once.
- :func:`fit_classifier` / :func:`evaluate`: the classification loop, with a tqdm bar on a
  terminal and one flushed line per epoch when stdout is not one (a log, a pipe).
- :func:`plot_history`: loss and accuracy per epoch as a PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.cuda import as_numpy  # noqa: E402

DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "output"
SMOKE_OUTPUT_DIR = DEFAULT_OUTPUT_DIR / "smoke"  # never a real run's files

# Exit codes shared by the examples (argparse uses 2 for a bad command line).
EXIT_BELOW_THRESHOLD = 1  # trained, but the result is worse than promised
EXIT_MISSING_DATA = 3  # a dataset's files are not on this machine
EXIT_MISSING_GRAPHVIZ = 4  # Graphviz's `dot` program is not installed


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (``None``, a
    flag's ``False``) or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or "default:" in text:
            return text
        return super()._get_help_string(action)


class ExampleParser(argparse.ArgumentParser):
    """An ArgumentParser whose ``--device`` is checked as it is parsed: a device whose library
    is not installed (``torch:cpu``, ``strict``), or an unknown one, is a usage error naming the
    fix (exit status 2), not a traceback. ``args.backend`` is the resolved Backend.

    With ``--output-dir``, a ``--smoke`` run that names no folder writes to ``SMOKE_OUTPUT_DIR``,
    so smoke runs never overwrite a real run's plots and weights.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if hasattr(parsed, "device"):
            parsed.backend = resolve_device(self, parsed.device)
        if hasattr(parsed, "output_dir") and parsed.output_dir is None:
            smoke = getattr(parsed, "smoke", False)
            parsed.output_dir = SMOKE_OUTPUT_DIR if smoke else DEFAULT_OUTPUT_DIR
        return parsed


def resolve_device(parser: argparse.ArgumentParser, spec: str):
    """The Backend for ``--device spec``; a usage error (exit 2) with the fix when there is none."""
    try:
        return dz.get_backend(spec)
    except ImportError as exc:  # the library of that device is not installed: says how to
        parser.error(f"--device {spec}: {exc}")
    except (ValueError, TypeError, dz.DeviceUnavailableError) as exc:
        parser.error(f"--device {spec}: {exc}")


def example_parser(description: str, outputs: bool = True) -> ExampleParser:
    """An ArgumentParser with the options every example has (``--output-dir`` and
    ``--no-progress`` only when ``outputs``)."""
    parser = ExampleParser(description=description)
    parser.add_argument(
        "--device",
        default="auto",
        help='"auto" (CUDA when usable, else the CPU), "cpu", "cuda", "cuda:N", or any '
        'dezero_xp device such as "strict" (needs array-api-strict) or "torch:cpu" (needs '
        'torch). "cuda" without a usable GPU runs on the CPU after one DeviceFallbackWarning',
    )
    parser.add_argument("--smoke", action="store_true", help="tiny settings, for CI")
    parser.add_argument("--seed", type=int, default=0, help="seed for dz.seed")
    if outputs:
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=None,
            help=f"where plots and weights are written (default: {_shown(DEFAULT_OUTPUT_DIR)}, "
            f"or {_shown(SMOKE_OUTPUT_DIR)} under --smoke)",
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="no progress bar (it is only shown when stderr is a terminal)",
        )
    return parser


def _shown(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it (for --help)."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def to_float(x) -> float:
    """A 0-d Variable or array of any backend as a Python float."""
    return float(as_numpy(x))


class ArrayDataset(dz.Dataset):
    """Examples already in memory as NumPy arrays (``data[i]``, ``label[i]``).

    With no per-example transform the DataLoader copies each batch with one indexing operation,
    which matters for tens of thousands of images.
    """

    def __init__(self, data, label):
        super().__init__(train=True)
        if len(data) != len(label):
            raise ValueError(f"ArrayDataset: {len(data)} examples but {len(label)} labels")
        self.data = data
        self.label = label


@dataclass
class History:
    """Per-epoch figures of a training run (test figures are None without a test set)."""

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    seconds: float = 0.0
    logged_epochs: int = 0  # epoch lines already printed while training

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


def evaluate(model, loader, loss_fn=F.softmax_cross_entropy) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, in test mode without a graph."""
    total_loss = total_hits = 0.0
    count = 0
    with dz.no_grad(), dz.test_mode():
        for x, t in loader:
            y = model(x)
            n = int(t.shape[0])
            loss, hits = loss_fn(y, t), F.accuracy(y, t)
            # Summed on the device (under its scope: CuPy computes on its current device);
            # read back once per evaluation, not once per batch.
            with loss.backend:
                total_loss = total_loss + loss.data * n
                total_hits = total_hits + hits.data * n
            count += n
    return to_float(total_loss) / count, to_float(total_hits) / count


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, shown when stderr is a terminal (not in logs or pipes)."""
    from tqdm.auto import tqdm

    # disable=None: tqdm turns itself off when stderr is not a TTY.
    disable = None if enabled else True
    return tqdm(total=total, desc=desc, disable=disable, mininterval=0.5, dynamic_ncols=True)


def epoch_label(desc: str, epoch: int, epochs: int) -> str:
    """The bar's label while epoch ``epoch`` (0-based) of ``epochs`` runs: ``desc epoch 1/3``."""
    return f"{desc} epoch {epoch + 1}/{epochs}"


class EpochLog:
    """One line per finished epoch, flushed at once, when stdout is not a terminal (a log file
    or a pipe shows the run as it goes, not all at the end); on a terminal the bar shows it.

    ``every``: only each ``every``-th epoch (and the last) gets a line, for runs of hundreds of
    short epochs.
    """

    def __init__(self, desc: str, epochs: int, every: int = 1, enabled: bool | None = None):
        self.desc, self.epochs, self.every = desc, epochs, max(1, every)
        self.enabled = (not sys.stdout.isatty()) if enabled is None else enabled
        self.lines = 0

    def __call__(self, epoch: int, figures: dict) -> None:
        """Report epoch ``epoch`` (0-based) with ``figures`` ({"loss": "0.1234", ...})."""
        last = epoch + 1 == self.epochs
        if not self.enabled or ((epoch + 1) % self.every and not last):
            return
        text = ", ".join(f"{name} {value}" for name, value in figures.items())
        print(f"  {self.desc} epoch {epoch + 1}/{self.epochs}: {text}", flush=True)
        self.lines += 1


def fit_classifier(
    model,
    optimizer,
    train_loader,
    test_loader=None,
    epochs: int = 10,
    loss_fn=F.softmax_cross_entropy,
    progress: bool = True,
    desc: str = "training",
    log_every: int = 1,
) -> History:
    """Train ``model`` for ``epochs`` epochs and record loss and accuracy after each one.

    The training figures are the means over the epoch's batches as they were trained; the test
    figures are measured after the epoch, in test mode. Progress: a bar on a terminal, one line
    per epoch (each ``log_every``-th) when stdout is not a terminal.
    """
    history = History()
    log = EpochLog(desc, epochs, log_every)
    start = time.perf_counter()
    with progress_bar(epochs * len(train_loader), desc, progress) as bar:
        for epoch in range(epochs):
            bar.set_description(epoch_label(desc, epoch, epochs))
            total_loss = total_hits = 0.0
            count = 0
            for x, t in train_loader:
                y = model(x)
                loss = loss_fn(y, t)
                model.cleargrads()
                loss.backward()
                optimizer.update()
                n = int(t.shape[0])
                hits = F.accuracy(y, t)
                with loss.backend:  # CuPy computes on its current device
                    total_loss = total_loss + loss.data * n
                    total_hits = total_hits + hits.data * n
                count += n
                bar.update(1)
            history.train_loss.append(to_float(total_loss) / count)
            history.train_acc.append(to_float(total_hits) / count)
            figures = {"loss": f"{history.train_loss[-1]:.4f}"}
            if test_loader is not None:
                test_loss, test_acc = evaluate(model, test_loader, loss_fn)
                history.test_loss.append(test_loss)
                history.test_acc.append(test_acc)
                figures["test_acc"] = f"{test_acc:.4f}"
            bar.set_postfix(figures)
            log(epoch, figures)
    history.seconds = time.perf_counter() - start
    history.logged_epochs = log.lines
    return history


def ensure_dir(path: Path) -> Path:
    """``path`` as a folder that exists (made with its parents when missing)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_history(history: History, ax_loss, ax_acc) -> None:
    """Loss and accuracy per epoch (train, and test when recorded) on two matplotlib axes."""
    from matplotlib.ticker import MaxNLocator

    epochs = range(1, history.epochs + 1)
    marker = "." if history.epochs <= 50 else None
    ax_loss.plot(epochs, history.train_loss, marker=marker, label="train")
    ax_acc.plot(epochs, history.train_acc, marker=marker, label="train")
    if history.test_loss:
        ax_loss.plot(epochs, history.test_loss, marker=marker, label="test")
        ax_acc.plot(epochs, history.test_acc, marker=marker, label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()


def plot_history(history: History, path: Path, title: str) -> Path:
    """Loss (left) and accuracy (right) per epoch, train and test, saved to ``path``."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    draw_history(history, ax_loss, ax_acc)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure (making its folder) and close it."""
    path = Path(path)
    ensure_dir(path.parent)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path
