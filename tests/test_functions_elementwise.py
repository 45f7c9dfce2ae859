"""Elementwise ops (dezero_xp/functions/elementwise.py) through the declarative checker."""

import numpy as np
from opcheck import make_op_tests, op_case

import dezero_xp.functions as F


def _away_from_clip_bounds(rng, shape):
    """Values in [-1.5, 1.5] but not within 0.1 of the clip bounds -0.8 and 0.9."""
    v = rng.uniform(-1.5, 1.5, shape)
    return np.where(np.abs(np.abs(v) - 0.85) < 0.1, 0.0, v)


def _away_from_zero(rng, shape):
    """Values in +-[0.3, 1.5]: no kink of abs or clip within a finite-difference step."""
    return rng.uniform(0.3, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


CASES = [
    op_case(
        "add", F.add, np.add, [[(3, 2), (3, 2)], [(3, 2), (2,)], [(), (2, 3)], [(4, 1), (1, 3)]]
    ),
    op_case("sub", F.sub, np.subtract, [[(3, 2), (3, 2)], [(2, 3), ()]]),
    op_case("mul", F.mul, np.multiply, [[(3, 2), (3, 2)], [(3, 1), (1, 2)]]),
    op_case("div", F.div, np.divide, [[(3, 2), (3, 2)], [(3, 2), (2,)]], domain=(0.5, 2.0)),
    op_case("neg", F.neg, np.negative, [(), (2, 3)]),
    op_case("pow3", lambda x: F.pow(x, 3), lambda x: x**3, [(), (2, 3)]),
    op_case("pow_half", lambda x: x**0.5, np.sqrt, [(2, 3)], domain=(0.5, 2.0)),
    op_case("pow_var", F.pow, np.power, [[(2, 3), (2, 3)], [(2, 3), ()]], domain=(0.5, 2.0)),
    op_case("rpow", lambda x: 2.0**x, lambda x: 2.0**x, [(2, 3)]),
    op_case("exp", F.exp, np.exp, [(), (3, 2)]),
    op_case("log", F.log, np.log, [(), (3, 2)], domain=(0.5, 2.0)),
    op_case("sin", F.sin, np.sin, [(), (3, 2)]),
    op_case("cos", F.cos, np.cos, [(), (3, 2)]),
    op_case("tanh", F.tanh, np.tanh, [(), (3, 2)]),
    op_case("sqrt", F.sqrt, np.sqrt, [(), (3, 2)], domain=(0.5, 2.0)),
    op_case("square", F.square, np.square, [(), (3, 2)]),
    op_case("abs", F.abs, np.abs, [(3, 4)], sampler=_away_from_zero),
    op_case(
        "clip",
        lambda x: F.clip(x, -0.8, 0.9),
        lambda x: np.clip(x, -0.8, 0.9),
        [(4, 5)],
        sampler=_away_from_clip_bounds,
    ),
    op_case("maximum", F.maximum, np.maximum, [[(3, 4), (3, 4)], [(3, 4), (4,)]]),
    op_case("minimum", F.minimum, np.minimum, [[(3, 4), (3, 4)]]),
    op_case("rsub_scalar", lambda x: 1.0 - x, lambda x: 1.0 - x, [(2, 3)]),
    op_case("rdiv_scalar", lambda x: 2.0 / x, lambda x: 2.0 / x, [(2, 3)], domain=(0.5, 2.0)),
]

test_elementwise = make_op_tests(CASES)
