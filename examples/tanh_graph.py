"""The graph of the n-th derivative of tanh (the book's step 35), drawn with Graphviz.

Each derivative is computed by backpropagating through the graph of the previous one
(``backward(create_graph=True)``), so the graphs grow quickly with the order. The script checks
the value of the derivative at x = 1 against the exact one (the n-th derivative of tanh is a
polynomial in tanh), prints the size of the graph and draws it with ``plot_dot_graph``.

Writes ``tanh_<n>.dot`` to the output folder always, and renders it when Graphviz's ``dot``
program is installed: ``tanh_<n>.svg`` at full size and ``tanh_<n>.png`` scaled down to at most
``--max-png-inches`` inches at 96 dpi (the 6th derivative's graph is about 100 inches across:
9540 x 9851 pixels and 7.5 MB uncapped); ``--format svg``/``pdf`` renders only that file.
Without ``dot`` it says so, with how to install it, and exits with status 4 (status 0 under
``--smoke``).

    python examples/tanh_graph.py                # the 6th derivative, as the book's figure
    python examples/tanh_graph.py --order 2
    python examples/tanh_graph.py --smoke        # the 2nd derivative, for CI
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _common import EXIT_MISSING_GRAPHVIZ, ensure_dir, example_parser, to_float  # noqa: E402

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.visualize import GraphvizNotFoundError, get_dot_graph, plot_dot_graph  # noqa: E402


def nth_derivative(order: int, x_value: float = 1.0, device="cpu"):
    """``(x, gx)``: the ``order``-th derivative of tanh at ``x_value``, with its whole graph."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    x = dz.Variable(np.array(x_value), name="x", device=device)
    y = F.tanh(x)
    y.name = "y"
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    gx = x.grad
    gx.name = f"gx{order}"
    return x, gx


def exact_nth_derivative(order: int, x_value: float = 1.0) -> float:
    """d^n tanh / dx^n at ``x_value``: with t = tanh(x), d/dx P(t) = P'(t) (1 - t^2)."""
    poly = np.polynomial.Polynomial([0.0, 1.0])  # tanh itself, as a polynomial in t
    one_minus_t2 = np.polynomial.Polynomial([1.0, 0.0, -1.0])
    for _ in range(order):
        poly = poly.deriv() * one_minus_t2
    return float(poly(np.tanh(x_value)))


def graph_size(dot_text: str) -> tuple[int, int]:
    """(functions, variables) drawn in a DOT text made by ``get_dot_graph``."""
    functions = dot_text.count("shape=box")
    variables = dot_text.count("color=orange")
    return functions, variables


PNG_DPI = 96


def render_capped_png(dot_file: Path, png: Path, max_inches: float) -> Path:
    """Render ``dot_file`` to ``png``, scaled down (never up) to fit ``max_inches`` square."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFoundError(f"Graphviz's `dot` program was not found to render {png}")
    size = f"{max_inches:g},{max_inches:g}"
    command = [dot, str(dot_file), "-T", "png", f"-Gsize={size}", f"-Gdpi={PNG_DPI}", "-o"]
    result = subprocess.run([*command, str(png)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`dot -T png` failed ({result.returncode}): {result.stderr.strip()}")
    return png


def main(argv=None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, default=6, help="which derivative to draw (>= 1)")
    parser.add_argument(
        "--format",
        default="png",
        choices=("png", "svg", "pdf"),
        help="png: a full-size SVG and a PNG of at most --max-png-inches; svg or pdf: that file",
    )
    parser.add_argument(
        "--max-png-inches",
        type=float,
        default=30.0,
        help=f"the PNG's longer side at most this many inches, at {PNG_DPI} dpi",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.order = 2
    if args.order < 1:
        parser.error(f"--order must be >= 1, got {args.order}")

    backend = args.backend
    print(f"dezero_xp {dz.__version__}: derivative {args.order} of tanh at x = 1 on {backend}")
    _, gx = nth_derivative(args.order, 1.0, backend)
    value, exact = to_float(gx), exact_nth_derivative(args.order, 1.0)
    functions, variables = graph_size(get_dot_graph(gx, verbose=False))
    print(f"  value {value:.10g} (exact {exact:.10g})")
    print(f"  its graph: {functions} functions, {variables} variables")
    if not np.isclose(value, exact, rtol=1e-9, atol=1e-12):
        print(f"FAILED: derivative {args.order} is {value}, expected {exact}")
        return 1

    image = ensure_dir(args.output_dir) / f"tanh_{args.order}.{args.format}"
    vector = image.with_suffix(".svg") if args.format == "png" else image
    try:
        plot_dot_graph(gx, verbose=False, to_file=str(vector))
        if args.format == "png":
            render_capped_png(image.with_suffix(".dot"), image, args.max_png_inches)
    except GraphvizNotFoundError as exc:
        print(f"The graph was not rendered: {exc}")
        if args.smoke:
            print("Smoke run: the DOT file was written, rendering skipped.")
            return 0
        return EXIT_MISSING_GRAPHVIZ
    drawn = image if vector == image else f"{vector} (full size) and {image}"
    print(f"graph written to {image.with_suffix('.dot')} and drawn to {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
