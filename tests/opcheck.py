"""The declarative op checker, from its public home ``dezero_xp.testing`` (see its ``opcase``
module): one ``op_case(...)`` line per op, ``make_op_tests(CASES)`` with the ``xb`` fixture."""

from dezero_xp.testing import CHECKS, OpCase, make_op_tests, op_case, run_check

__all__ = ["CHECKS", "OpCase", "make_op_tests", "op_case", "run_check"]
