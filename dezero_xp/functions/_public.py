"""The one input layer every public function of ``dezero_xp.functions`` goes through.

:func:`public` wraps a function once, at import (``dezero_xp/functions/__init__.py`` wraps every
name of every family's ``__all__``, so a new op gets it for free). It does two things:

- **The dtype rule for hyperparameters.** A NumPy scalar given for a non-array parameter
  (``slope``, ``eps``, ``dropout_ratio``, ``x_min``, an exponent ``c``, ...) is turned into the
  Python scalar it holds (``dezero_xp.backend.python_scalar``, the one rule), so
  ``F.leaky_relu(x, np.float64(.1))`` stays float32 exactly as ``F.leaky_relu(x, .1)`` does
  (NumPy 2 would promote float32 against a NumPy float64 scalar).
  The same rule meets array inputs in ``Function.__call__`` (``x * np.float64(2)``).
- **Errors that name the op.** The call runs unguarded inside ``try`` (no cost when it works).
  When it raises, the arguments are checked against the op's signature: an argument that is
  not a Variable or an array where one is needed becomes a TypeError naming the op, the
  parameter, what was given and the fix; any other error is re-raised as the same type with the
  op's name in front unless it already names it (an AttributeError, a sign of a wrong argument
  type deep inside, becomes a TypeError).

Parameters named in :data:`ARRAY_PARAMETERS` take arrays (or Variables); every other parameter
is a hyperparameter. Ops name their parameters that way (DeZero's names).

May import: the standard library, dezero_xp._errors, dezero_xp.backend and dezero_xp.core.
"""

from __future__ import annotations

import functools
import inspect

from dezero_xp._errors import names_itself, with_name
from dezero_xp.backend import NumpyScalar, as_array_data, is_scalar, python_scalar
from dezero_xp.core import Variable

__all__ = ["ARRAY_PARAMETERS", "public"]

#: Parameter names that take arrays or Variables (``xs``: a sequence of them).
ARRAY_PARAMETERS = frozenset(
    {"x", "x0", "x1", "W", "b", "t", "p", "y", "gamma", "beta", "mean", "var", "condition", "xs"}
)

# What a failing op may raise for a bad argument (torch raises RuntimeError for many).
_CAUGHT = (TypeError, ValueError, AttributeError, IndexError, KeyError, ZeroDivisionError,
           RuntimeError, NotImplementedError)  # fmt: skip


def public(fn, name: str | None = None):
    """``fn`` behind the input layer (see the module docstring)."""
    name = name or fn.__name__
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    if not all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params):
        raise TypeError(
            f"dezero_xp.functions.{name}{signature}: a public op takes plain parameters (no *args, "
            "**kwargs, keyword-only or positional-only ones), so its input layer can be generated"
        )
    op = _same_signature_wrapper(fn, name, signature, params)
    functools.update_wrapper(op, fn)
    op.__wrapped_op__ = fn  # the unguarded function (the operators of Variable use these)
    return op


# The wrapper of a function of plain parameters is generated with the function's own signature
# (as dataclasses generate __init__): no *args/**kwargs packing, one isinstance per
# hyperparameter. It costs a Python call; the ops' own work is some 30,000 instructions.
_TEMPLATE = """
def make(fn, explain, caught, numpy_scalar, plain, {defaults}):
    def {name}({parameters}):
{conversions}        try:
            return fn({arguments})
        except caught as exc:
            better = explain(({arguments},), exc)
            if better is None:
                raise
            raise better from exc
    return {name}
"""


def _same_signature_wrapper(fn, name, signature, params):
    defaults = {f"_default_{p.name}": p.default for p in params if p.default is not p.empty}
    parameters = ", ".join(
        p.name if p.default is p.empty else f"{p.name}=_default_{p.name}" for p in params
    )
    conversions = "".join(
        f"        if isinstance({p.name}, numpy_scalar):\n            {p.name} = plain({p.name})\n"
        for p in params
        if p.name not in ARRAY_PARAMETERS
    )
    source = _TEMPLATE.format(
        name=name,
        parameters=parameters,
        arguments=", ".join(p.name for p in params),
        conversions=conversions,
        defaults=", ".join(defaults) or "_unused=None",
    )
    namespace: dict = {}
    exec(compile(source, f"<dezero_xp.functions.{name}>", "exec"), namespace)  # noqa: S102

    def explain(args, exc):
        return _explain(name, signature, args, {}, exc)

    return namespace["make"](fn, explain, _CAUGHT, NumpyScalar, python_scalar, **defaults)


def _explain(name, signature, args, kwargs, exc):
    """A clearer exception for a failed call, or None to re-raise ``exc`` as it is."""
    if names_itself(str(exc), name) and isinstance(exc, TypeError):
        return None  # the op's own type check spoke: its message is the specific one
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as bind_error:
        return TypeError(f"{name}: {bind_error}; it is called as {name}{signature}")
    for pname, value in bound.arguments.items():
        if pname not in ARRAY_PARAMETERS:
            continue
        default = signature.parameters[pname].default
        problem = _not_an_array(value, pname == "xs", optional=default is None)
        if problem:
            wanted = "a Variable or an array"
            if pname == "xs":
                wanted = "a sequence of Variables or arrays"
            return TypeError(
                f"{name}: {pname} must be {wanted} (NumPy, CuPy, array-api-strict, torch), got "
                f"{problem}; convert it first, e.g. dz.tensor(...) or numpy.asarray(...)"
            )
    return with_name(exc, name)


def _not_an_array(value, sequence: bool, optional: bool) -> str | None:
    """What is wrong with ``value`` as an array argument, or None if nothing is."""
    if value is None:
        return None if optional else "None"
    if sequence:
        if not isinstance(value, (list, tuple)):
            return f"{type(value).__name__} {value!r:.40}"
        for item in value:
            found = _not_an_array(item, False, False)
            if found:
                return f"an element that is {found}"
        return None
    if isinstance(value, Variable) or is_scalar(value):
        return None  # a scalar may be fine (x1 of add); the op's own error then stands
    if isinstance(value, (str, bytes, dict, set, list, tuple)):
        return f"{type(value).__name__} {value!r:.40}"
    try:
        as_array_data(value, "argument")
    except TypeError:
        return f"{type(value).__module__}.{type(value).__name__}"
    return None
