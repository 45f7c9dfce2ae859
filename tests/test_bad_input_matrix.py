"""The bad-input matrix: every public name, generated from the package's ``__all__``.

For each function of ``dezero_xp.functions.__all__`` a valid call is built from its signature
(parameters are named as DeZero names them: ``x``, ``W``, ``t``, ...; :data:`VALID` holds the
ops whose valid arguments need more than the defaults), checked to work, then every array
argument is replaced in turn by values that are not arrays, and every numeric hyperparameter by
a string: each must raise a TypeError (ValueError for a hyperparameter of the right type and a
wrong value) whose message names the op. NumPy-scalar hyperparameters must keep float32 float32.
Layers and optimizers get the same treatment from ``dezero_xp.layers.__all__`` and
``dezero_xp.optimizers.__all__``. A new public name without a way to call it fails here, with a
message saying where to add one.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import BackendCase

import dezero_xp as dz
import dezero_xp.functions as F
import dezero_xp.layers as L
import dezero_xp.optimizers as O
from dezero_xp.distributed.base import SingleCommunicator
from dezero_xp.functions._public import ARRAY_PARAMETERS

NOT_ARRAYS = [None, "abc", object(), {"a": 1}]
NOT_SEQUENCES = ["abc", None, [None], [object()]]


def _f32(xb, shape, low=0.1, high=0.9, seed=0):
    data = np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)
    return xb.variable(data)


def _ints(xb, values):
    return xb.asarray(np.asarray(values, dtype=np.int64))


# Valid arguments of the ops that need more than "x is a (2, 3) float32 Variable".
VALID = {
    "clip": lambda xb: dict(x=_f32(xb, (2, 3)), x_min=0.2, x_max=0.8),
    "pow": lambda xb: dict(x=_f32(xb, (2, 3)), c=2.0),
    "rpow": lambda xb: dict(x=_f32(xb, (2, 3)), c=2.0),
    "where": lambda xb: dict(
        condition=xb.asarray(np.array([[True, False, True]] * 2)),
        x0=_f32(xb, (2, 3)),
        x1=_f32(xb, (2, 3), seed=1),
    ),
    "dot": lambda xb: dict(x=_f32(xb, (2, 3)), W=_f32(xb, (3, 4))),
    "matmul": lambda xb: dict(x=_f32(xb, (2, 3)), W=_f32(xb, (3, 4))),
    "accuracy": lambda xb: dict(y=_f32(xb, (2, 3)), t=_ints(xb, [0, 2])),
    "binary_cross_entropy": lambda xb: dict(
        p=_f32(xb, (2, 3)), t=xb.asarray(np.array([[0, 1, 1], [1, 0, 0]], dtype=np.float32))
    ),
    "sigmoid_cross_entropy": lambda xb: dict(
        x=_f32(xb, (2, 3)), t=_ints(xb, [[0, 1, 1], [1, 0, 0]])
    ),
    "softmax_cross_entropy": lambda xb: dict(x=_f32(xb, (2, 3)), t=_ints(xb, [0, 2])),
    "softmax_cross_entropy_simple": lambda xb: dict(x=_f32(xb, (2, 3)), t=_ints(xb, [0, 2])),
    "batch_norm": lambda xb: dict(
        x=_f32(xb, (2, 3)),
        gamma=xb.asarray(np.ones(3, np.float32)),
        beta=xb.asarray(np.zeros(3, np.float32)),
        mean=xb.asarray(np.zeros(3, np.float32)),
        var=xb.asarray(np.ones(3, np.float32)),
    ),
    "embed_id": lambda xb: dict(x=_ints(xb, [0, 1]), W=_f32(xb, (3, 4))),
    "linear": lambda xb: dict(x=_f32(xb, (2, 3)), W=_f32(xb, (3, 4)), b=_f32(xb, (4,))),
    "conv2d": lambda xb: dict(x=_f32(xb, (1, 1, 4, 4)), W=_f32(xb, (2, 1, 3, 3)), b=_f32(xb, (2,))),
    "deconv2d": lambda xb: dict(
        x=_f32(xb, (1, 2, 3, 3)), W=_f32(xb, (2, 1, 3, 3)), b=_f32(xb, (1,))
    ),
    "im2col": lambda xb: dict(x=_f32(xb, (1, 1, 4, 4)), kernel_size=3),
    "col2im": lambda xb: dict(
        x=_f32(xb, (1, 1, 3, 3, 2, 2)), input_shape=(1, 1, 4, 4), kernel_size=3, to_matrix=False
    ),
    "pooling": lambda xb: dict(x=_f32(xb, (1, 1, 4, 4)), kernel_size=2),
    "average_pooling": lambda xb: dict(x=_f32(xb, (1, 1, 4, 4)), kernel_size=2),
    "broadcast_to": lambda xb: dict(x=_f32(xb, (1, 3)), shape=(2, 3)),
    "sum_to": lambda xb: dict(x=_f32(xb, (2, 3)), shape=(1, 3)),
    "concat": lambda xb: dict(xs=[_f32(xb, (2, 3)), _f32(xb, (2, 3), seed=1)]),
    "stack": lambda xb: dict(xs=[_f32(xb, (2, 3)), _f32(xb, (2, 3), seed=1)]),
    "expand_dims": lambda xb: dict(x=_f32(xb, (2, 3)), axis=0),
    "get_item": lambda xb: dict(x=_f32(xb, (2, 3)), slices=1),
    "reshape": lambda xb: dict(x=_f32(xb, (2, 3)), shape=(3, 2)),
    "squeeze": lambda xb: dict(x=_f32(xb, (1, 3))),
    "all_reduce": lambda xb: dict(x=_f32(xb, (2, 3)), comm=SingleCommunicator()),
}
VALID["batch_nrom"] = VALID["batch_norm"]
for _name in ("linear_simple",):
    VALID[_name] = VALID["linear"]
VALID["conv2d_simple"] = VALID["conv2d"]
VALID["pooling_simple"] = VALID["pooling"]
VALID["sync_batch_norm"] = lambda xb: dict(VALID["batch_norm"](xb), comm=SingleCommunicator())


def _squash(text: str) -> str:
    return text.lower().replace("_", "")


def _public_functions():
    return [
        name
        for name in F.__all__
        if callable(getattr(F, name)) and not isinstance(getattr(F, name), type)
    ]


def _valid_args(name, xb):
    if name in VALID:
        return VALID[name](xb)
    signature = inspect.signature(getattr(F, name))
    args = {}
    for i, (pname, p) in enumerate(signature.parameters.items()):
        if p.default is not inspect.Parameter.empty:
            continue
        if pname not in ARRAY_PARAMETERS:
            pytest.fail(
                f"F.{name}: no valid value known for its parameter {pname!r}; add the op to "
                "VALID in tests/test_bad_input_matrix.py"
            )
        args[pname] = _f32(xb, (2, 3), seed=i)
    return args


def _expect_error(call, kinds, name, failures, what):
    try:
        call()
    except kinds as exc:
        if _squash(name) not in _squash(str(exc)):
            failures.append(f"{what}: {type(exc).__name__} does not name {name}: {exc}")
    except Exception as exc:  # noqa: BLE001 - the wrong type is what is being reported
        failures.append(f"{what}: {type(exc).__name__} instead of {kinds}: {exc}")
    else:
        failures.append(f"{what}: accepted")


@pytest.mark.parametrize("name", _public_functions())
def test_every_function_refuses_non_arrays_by_name(name, xb):
    fn = getattr(F, name)
    valid = _valid_args(name, xb)
    fn(**valid)  # the recipe itself must stay valid
    signature = inspect.signature(fn)
    failures: list[str] = []
    for pname in [p for p in signature.parameters if p in ARRAY_PARAMETERS and p in valid]:
        optional = signature.parameters[pname].default is None
        bad_values = NOT_SEQUENCES if pname == "xs" else NOT_ARRAYS
        for bad in bad_values:
            if bad is None and optional:
                continue
            args = dict(valid, **{pname: bad})
            _expect_error(lambda a=args: fn(**a), TypeError, name, failures, f"{pname}={bad!r}")
    assert not failures, f"F.{name} on {xb.name}:\n" + "\n".join(failures)


def _numeric_hyperparameters(name):
    signature = inspect.signature(getattr(F, name))
    return [
        (pname, p.default)
        for pname, p in signature.parameters.items()
        if pname not in ARRAY_PARAMETERS
        and type(p.default) in (int, float)
        and pname not in ("axis",)  # axis=1 defaults: a string there is a TypeError too
    ]


@pytest.mark.parametrize(
    "name", [n for n in _public_functions() if n in VALID or _numeric_hyperparameters(n)]
)
def test_string_hyperparameters_are_refused_by_name(name):
    xb = _numpy_case()
    failures: list[str] = []
    for pname, _default in _numeric_hyperparameters(name):
        args = dict(_valid_args(name, xb), **{pname: "abc"})
        _expect_error(
            lambda a=args: getattr(F, name)(**a), (TypeError, ValueError), name, failures, pname
        )
    assert not failures, f"F.{name}:\n" + "\n".join(failures)


FLOAT_HYPERPARAMETERS = [
    (name, pname, default)
    for name in _public_functions()
    for pname, default in _numeric_hyperparameters(name)
    if type(default) is float
] + [("clip", "x_min", 0.2), ("clip", "x_max", 0.8), ("pow", "c", 2.0)]


@pytest.mark.parametrize("name, pname, value", FLOAT_HYPERPARAMETERS)
def test_numpy_scalar_hyperparameters_keep_float32(name, pname, value, xb):
    fn = getattr(F, name)
    with dz.test_mode():  # dropout off: the same output either way
        plain = fn(**dict(_valid_args(name, xb), **{pname: value}))
        numpy_scalar = fn(**dict(_valid_args(name, xb), **{pname: np.float64(value)}))
    plain = plain[0] if isinstance(plain, (tuple, list)) else plain
    numpy_scalar = numpy_scalar[0] if isinstance(numpy_scalar, (tuple, list)) else numpy_scalar
    assert numpy_scalar.dtype == plain.dtype
    np.testing.assert_array_equal(xb.numpy(numpy_scalar), xb.numpy(plain))


def test_the_matrix_covers_every_public_function():
    # A parameter name outside the convention would make its checks silently weaker.
    conventional = ARRAY_PARAMETERS | {
        "axis", "axes", "keepdims", "shape", "slices", "slope", "c", "x_min", "x_max",
        "dropout_ratio", "decay", "eps", "kernel_size", "stride", "pad", "to_matrix",
        "outsize", "input_shape", "comm",
    }  # fmt: skip
    unknown = {
        f"F.{name}({pname})"
        for name in _public_functions()
        for pname in inspect.signature(getattr(F, name)).parameters
        if pname not in conventional
    }
    assert not unknown, (
        f"parameters outside the naming convention: {sorted(unknown)}; name array parameters as "
        "in dezero_xp.functions._public.ARRAY_PARAMETERS, or add the hyperparameter here"
    )
    assert set(F.__all__) >= set(_public_functions())
    assert len(_public_functions()) >= 70


def _numpy_case():
    return BackendCase("numpy", dz.get_backend("numpy"))


# --------------------------------------------------------------------------- layers
LAYERS = {
    "Linear": lambda: (L.Linear(4), (2, 3)),
    "Conv2d": lambda: (L.Conv2d(2, 3), (1, 1, 4, 4)),
    "Deconv2d": lambda: (L.Deconv2d(2, 3), (1, 2, 3, 3)),
    "BatchNorm": lambda: (L.BatchNorm(), (2, 3)),
    "EmbedID": lambda: (L.EmbedID(3, 4), None),
    "RNN": lambda: (L.RNN(4), (2, 3)),
    "LSTM": lambda: (L.LSTM(4), (2, 3)),
}
NOT_LAYER_CLASSES = {"Layer", "Parameter"}


@pytest.mark.parametrize(
    "name",
    [n for n in L.__all__ if isinstance(getattr(L, n), type) and n not in NOT_LAYER_CLASSES],
)
def test_every_layer_refuses_non_arrays_by_name(name):
    assert name in LAYERS, f"L.{name}: add a constructor to LAYERS in this file"
    failures: list[str] = []
    for bad in NOT_ARRAYS + [[1.0, 2.0]]:
        layer, _shape = LAYERS[name]()
        _expect_error(lambda b=bad, l=layer: l(b), TypeError, name, failures, repr(bad))
    assert not failures, f"L.{name}:\n" + "\n".join(failures)


# --------------------------------------------------------------------------- optimizers
OPTIMIZER_HYPERPARAMETERS = {
    "SGD": "lr",
    "MomentumSGD": "lr",
    "AdaGrad": "lr",
    "AdaDelta": "rho",
    "Adam": "alpha",
    "AdamW": "alpha",
}


@pytest.mark.parametrize("name", sorted(OPTIMIZER_HYPERPARAMETERS))
@pytest.mark.parametrize("bad", ["0.1", float("nan"), -1.0, None])
def test_optimizer_hyperparameters_are_refused_by_name(name, bad):
    cls = getattr(O, name)
    with pytest.raises((TypeError, ValueError), match=name):
        cls(**{OPTIMIZER_HYPERPARAMETERS[name]: bad})


def test_the_optimizer_table_covers_every_optimizer():
    updating = {
        n
        for n in O.__all__
        if isinstance(getattr(O, n), type)
        and issubclass(getattr(O, n), O.Optimizer)
        and getattr(O, n) is not O.Optimizer
    }
    assert updating == set(OPTIMIZER_HYPERPARAMETERS), "add the new optimizer to the table"


# --------------------------------------------------------------------------- dezero_xp itself
# Top-level names a bad first argument cannot reach, and why.
DZ_EXEMPT = {
    "as_array": "DeZero's helper: it converts scalars and returns anything else unchanged",
    "Dataset": "its first parameter is the train flag, any truth value (as in DeZero)",
}


def _dz_callables():
    names = []
    for name in dz.__all__:
        obj = getattr(dz, name)
        if not callable(obj) or name in DZ_EXEMPT:
            continue
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue
        try:
            params = list(inspect.signature(obj).parameters.values())
        except (TypeError, ValueError):
            continue
        if params and params[0].kind in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        ):
            names.append(name)
    return names


@pytest.mark.parametrize("name", _dz_callables())
@pytest.mark.parametrize("bad", [object(), "abc?"], ids=["object", "str"])
def test_every_top_level_name_refuses_a_bad_first_argument_by_name(name, bad):
    obj = getattr(dz, name)
    with pytest.raises((TypeError, ValueError)) as info:
        # Names with more required parameters get valid ones after the bad first argument.
        extra = {"full": (1.0,), "full_like": (1.0,), "DataLoader": (2,), "SeqDataLoader": (2,)}
        obj(bad, *extra.get(name, ()))
    message = _squash(str(info.value))
    # get_backend is the device parser: its messages name the device spec it could not read
    assert _squash(name) in message or (name == "get_backend" and "device" in message), (
        f"dz.{name}({bad!r}): {info.value}"
    )
