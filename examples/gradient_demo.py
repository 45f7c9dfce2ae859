"""Gradients with dezero_xp: the book's test functions, higher-order derivatives, a line fit.

1. Gradients of the sphere, Matyas and Goldstein-Price functions at (1, 1).
2. Newton's method on f(x) = x^4 - 2x^2 with the second derivative from double backprop.
3. The first derivatives of sin, each one differentiated from the previous one's graph.
4. Linear regression with plain Variables and hand-written gradient descent.

Every result is checked against its known value; the script exits with an error if one is off.

    python examples/gradient_demo.py                  # on the CPU
    python examples/gradient_demo.py --device cuda    # on the GPU (falls back to the CPU)
    python examples/gradient_demo.py --smoke          # a short line fit, for CI
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import dezero_xp as dz  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.cuda import as_numpy  # noqa: E402


def sphere(x, y):
    return x**2 + y**2


def matyas(x, y):
    return 0.26 * (x**2 + y**2) - 0.48 * x * y


def goldstein(x, y):
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


def check(label: str, got, expected, rtol=1e-9) -> None:
    """Print a result and fail loudly when it is not the known value."""
    values = got if isinstance(got, list) else [got]
    got = np.asarray([as_numpy(v) for v in values], dtype=np.float64).reshape(np.shape(expected))
    print(f"  {label:34s} {np.array2string(got, precision=6)}")
    if not np.allclose(got, expected, rtol=rtol, atol=1e-12):
        sys.exit(f"{label}: expected {expected}, got {got}")


def test_function_gradients(device) -> None:
    print("Gradients at (x, y) = (1, 1):")
    expected = {sphere: (2.0, 2.0), matyas: (0.04, 0.04), goldstein: (-5376.0, 8064.0)}
    for f, (gx, gy) in expected.items():
        x = dz.Variable(np.array(1.0), device=device)
        y = dz.Variable(np.array(1.0), device=device)
        f(x, y).backward()
        check(f"d{f.__name__}/dx, d{f.__name__}/dy", [x.grad, y.grad], [gx, gy])


def newton_minimize(device, iterations: int) -> None:
    print("Newton's method on f(x) = x^4 - 2x^2 from x = 2 (f'' by double backprop):")
    x = dz.Variable(np.array(2.0), device=device)
    for _ in range(iterations):
        y = x**4 - 2 * x**2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()  # the derivative of the derivative
        x.data = x.data - gx.data / x.grad.data
    check(f"x after {iterations} steps", x, 1.0)


def sin_derivatives(device, order: int) -> None:
    print(f"The first {order} derivatives of sin at x = 1, each from the previous one's graph:")
    x = dz.Variable(np.array(1.0), device=device)
    y = F.sin(x)
    cycle = [math.cos(1.0), -math.sin(1.0), -math.cos(1.0), math.sin(1.0)]
    for n in range(order):
        x.cleargrad()
        y.backward(create_graph=True)
        y = x.grad
        check(f"d^{n + 1} sin / dx^{n + 1}", y, cycle[n % 4])


def fit_line(device, iterations: int, seed: int) -> None:
    print(f"Fitting y = 5 + 2x + noise with plain Variables ({iterations} steps, lr 0.1):")
    rng = np.random.default_rng(seed)
    x_host = rng.random((100, 1))
    y_host = 5 + 2 * x_host + rng.random((100, 1))  # noise in [0, 1): the intercept is ~5.5
    x = dz.Variable(x_host, device=device)
    y = dz.Variable(y_host, device=device)
    W = dz.Variable(np.zeros((1, 1)), device=device)
    b = dz.Variable(np.zeros(1), device=device)
    losses = []
    for _ in range(iterations):
        diff = F.matmul(x, W) + b - y
        loss = F.sum(diff**2) / len(diff)  # mean squared error
        W.cleargrad()
        b.cleargrad()
        loss.backward()
        W.data = W.data - 0.1 * W.grad.data
        b.data = b.data - 0.1 * b.grad.data
        losses.append(float(as_numpy(loss)))
    w_value, b_value = float(as_numpy(W)[0, 0]), float(as_numpy(b)[0])
    print(f"  loss {losses[0]:.4f} -> {losses[-1]:.4f}; W = {w_value:.4f}, b = {b_value:.4f}")
    if not losses[-1] < losses[0]:
        sys.exit("line fit: the loss did not decrease")
    # Least squares would reach the noise variance (1/12 ~ 0.083); 200 steps come close.
    if iterations >= 200 and not losses[-1] < 0.12:
        sys.exit(f"line fit: loss {losses[-1]:.4f} is still above 0.12 after {iterations} steps")


def main(argv=None) -> None:
    # Standalone on purpose (benchmarks/gpu_check.sh runs it where only dezero_xp, numpy and
    # cupy are installed): argparse's defaults in --help, except the flag's False.
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help='"cpu", "cuda" (the CPU, with one warning, without a usable GPU), "auto", '
        '"strict" (needs array-api-strict), "torch:cpu" (needs torch), ...',
    )
    parser.add_argument(
        "--smoke", action="store_true", default=argparse.SUPPRESS, help="a short line fit (for CI)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the line fit's data")
    args = parser.parse_args(argv)
    args.smoke = getattr(args, "smoke", False)

    try:
        device = dz.get_backend(args.device)  # "cuda" without a GPU: the CPU, with one warning
    except (ImportError, ValueError, TypeError, dz.DeviceUnavailableError) as exc:
        parser.error(f"--device {args.device}: {exc}")  # the install command, not a traceback
    print(f"dezero_xp {dz.__version__} on {device}\n")
    test_function_gradients(device)
    newton_minimize(device, iterations=7)
    sin_derivatives(device, order=6)
    fit_line(device, iterations=20 if args.smoke else 500, seed=args.seed)
    print("\nAll gradients match their known values.")


if __name__ == "__main__":
    main()
