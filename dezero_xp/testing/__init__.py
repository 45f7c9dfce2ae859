"""Checks for users' own ops: gradient checks (``gradcheck``) and the declarative op checker
(``opcase``: one ``op_case(...)`` line per op, run over every check on any backend).

This file only assembles.
"""

from dezero_xp.testing.gradcheck import (
    array_allclose,
    array_equal,
    check_backward,
    check_double_backward,
    gradient_check,
    numerical_grad,
)
from dezero_xp.testing.opcase import (
    CHECKS,
    BackendHelper,
    OpCase,
    check_op,
    make_op_tests,
    op_case,
    run_check,
)

__all__ = [
    "CHECKS",
    "BackendHelper",
    "OpCase",
    "array_allclose",
    "array_equal",
    "check_backward",
    "check_double_backward",
    "check_op",
    "gradient_check",
    "make_op_tests",
    "numerical_grad",
    "op_case",
    "run_check",
]
