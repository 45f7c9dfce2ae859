"""The public API is annotated, and mypy agrees with the annotations.

- Every public callable of ``dz``, ``F`` (each family module's ``__all__``), ``L``, the
  optimizers, models, data loaders, datasets, transforms, utils and serialization, and the
  public methods and properties of their classes (Variable, Parameter and Function too), has an
  annotation on every parameter and a return annotation: a new public function without hints
  fails here. (mypy's ``disallow_untyped_defs`` in pyproject.toml says the same for most of
  these modules in ``nox -s lint``; the op modules and the core are checked only here.)
- ``mypy`` on the package reports nothing, and on ``tests/typing_usage.py`` (DeZero-style user
  code) exactly the mistakes marked there: the annotations are neither too strict for real code
  nor too loose to catch a wrong argument. Run through ``mypy.api`` when mypy is installed and
  the sources are a checkout (not an installed copy); ``nox -s lint`` runs the pinned mypy.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import time
from pathlib import Path

import pytest

import dezero_xp

ROOT = Path(__file__).resolve().parent.parent

FUNCTION_FAMILIES = [
    "activation",
    "collective",
    "conv",
    "elementwise",
    "linalg",
    "loss",
    "nn",
    "pooling",
    "reduce",
    "shape",
]
PUBLIC_MODULES = [
    "dezero_xp",
    "dezero_xp.backend",
    "dezero_xp.core",
    "dezero_xp.creation",
    "dezero_xp.interop",
    *(f"dezero_xp.functions.{name}" for name in FUNCTION_FAMILIES),
    "dezero_xp.layers",
    "dezero_xp.optimizers",
    "dezero_xp.models",
    "dezero_xp.dataloaders",
    "dezero_xp.datasets",
    "dezero_xp.transforms",
    "dezero_xp.utils",
    "dezero_xp.serialization",
    "dezero_xp.typing",
]
# Special methods that are part of the public surface (the rest of the dunders are not).
PUBLIC_DUNDERS = {"__init__", "__call__", "__getitem__", "__len__", "__iter__", "__next__"}


def missing_annotations(func) -> list[str]:
    """The parameters of ``func`` without an annotation (``self``/``cls`` excepted), plus
    ``"return"`` when it has no return annotation."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: not ours
        return []
    missing = [
        ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + name
        for i, (name, p) in enumerate(signature.parameters.items())
        if p.annotation is inspect.Parameter.empty and not (i == 0 and name in ("self", "cls"))
    ]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _defined_here(func, cls: type) -> bool:
    """A function written in the body of ``cls`` (not one installed on it from elsewhere, such
    as the operators ``dezero_xp/__init__.py`` gives Variable: those are declared for type
    checkers in the class, under TYPE_CHECKING)."""
    return getattr(func, "__qualname__", "").startswith(cls.__qualname__ + ".")


def _members(cls: type):
    """``(name, function)`` for the public methods, properties (getter and setter) and
    special methods of ``cls`` written in its own body."""
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in PUBLIC_DUNDERS:
            continue
        if isinstance(value, property):
            for accessor in (value.fget, value.fset):
                if accessor is not None and _defined_here(accessor, cls):
                    yield name, accessor
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) and _defined_here(value, cls):
            yield name, value


def public_callables(module_name: str):
    """``(qualified name, function)`` for every public function and class member of a module
    (its ``__all__``), for the classes and functions dezero_xp defines."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        owner = getattr(obj, "__module__", "") or ""
        if owner.split(".")[0] != "dezero_xp":
            continue  # constants, re-exported library objects
        if inspect.isclass(obj):
            for member, func in _members(obj):
                yield f"{module_name}.{name}.{member}", func
        elif inspect.isfunction(obj):
            yield f"{module_name}.{name}", obj


def _unannotated(module_name: str) -> list[str]:
    return [
        f"{where}: {', '.join(missing)}"
        for where, func in public_callables(module_name)
        if (missing := missing_annotations(func))
    ]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_api_is_annotated(module_name):
    problems = _unannotated(module_name)
    assert not problems, (
        "public callables without type annotations (annotate every parameter and the return; "
        "dezero_xp.typing has the aliases: VariableLike, ArrayLike, Axis, DeviceLike, ...):\n"
        + "\n".join(problems)
    )


def test_the_surface_checked_is_not_empty():
    """The walk finds what it should: ops, layers' forward, Variable's methods and properties."""
    found = {where for module in PUBLIC_MODULES for where, _ in public_callables(module)}
    for expected in [
        "dezero_xp.functions.elementwise.exp",
        "dezero_xp.functions.shape.reshape",
        "dezero_xp.layers.Linear.forward",
        "dezero_xp.layers.Layer.__call__",
        "dezero_xp.optimizers.Adam.update_one",
        "dezero_xp.core.Variable.shape",
        "dezero_xp.core.Variable.data",
        "dezero_xp.core.Function.__call__",
        "dezero_xp.dataloaders.DataLoader.__next__",
        "dezero_xp.serialization.save_checkpoint",
        "dezero_xp.zeros",
    ]:
        assert expected in found
    assert len(found) > 300


# The checker itself catches what it is meant to catch.
def _no_hints(x, y=1):
    return x


def _no_return(x: int):
    return x


def _star_args(*args, **kwargs) -> None:
    pass


def _complete(x: int, *args: int, y: str = "", **kwargs: float) -> int:
    return x


class _Sample:
    def method(self, x):
        return x

    @property
    def value(self):
        return 1

    def fine(self, x: int) -> int:
        return x


_Sample.installed = lambda self: None  # installed from elsewhere: not its own body


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (_no_hints, ["x", "y", "return"]),
        (_no_return, ["return"]),
        (_star_args, ["*args", "**kwargs"]),
        (_complete, []),
        (_Sample.method, ["x", "return"]),
        (_Sample.fine, []),
    ],
)
def test_checker_finds_missing_annotations(func, expected):
    assert missing_annotations(func) == expected


def test_checker_walks_methods_and_properties_defined_in_the_class():
    members = dict(_members(_Sample))
    assert set(members) == {"method", "value", "fine"}
    assert missing_annotations(members["value"]) == ["return"]


# --------------------------------------------------------------------------- F's stub


def _stub_names(path: Path) -> set[str]:
    """The names ``functions/__init__.pyi`` provides: its star imports' ``__all__`` and the names
    it imports or declares one by one."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    names |= set(importlib.import_module(node.module).__all__)
                else:
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_functions_stub_names_everything_F_exports():
    """``F``'s namespace is filled in a loop, so type checkers read ``__init__.pyi`` instead:
    every public function and op class of ``F`` must be there (a new family, or a new op class
    exported by ``__init__.py``, goes into the stub too)."""
    import dezero_xp.functions as F

    stub = Path(F.__file__).with_suffix(".pyi")
    assert stub.is_file()
    families = {m.__name__.rpartition(".")[2] for m in F.FAMILIES}
    exported = set(F.__all__) | {
        name
        for name, value in vars(F).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or (inspect.ismodule(value) and name in families))
    }
    assert exported - _stub_names(stub) == set()


# --------------------------------------------------------------------------- mypy


USAGE = Path(__file__).with_name("typing_usage.py")
EXPECTED_ERROR = re.compile(r"# error: ([a-z-]+)$")
MYPY_ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def _expected_usage_errors() -> set[tuple[int, str]]:
    lines = USAGE.read_text(encoding="utf-8").splitlines()
    return {
        (number, match.group(1))
        for number, line in enumerate(lines, 1)
        if (match := EXPECTED_ERROR.search(line))
    }


def test_mypy_passes_on_the_package(tmp_path):
    """mypy with the project's settings (pyproject.toml): no error in the package, and in the
    usage file exactly the marked ones (5-15 s)."""
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (nox -s lint has it)")
    if Path(dezero_xp.__file__).resolve().parent != ROOT / "dezero_xp":
        pytest.skip("dezero_xp is an installed copy here, not this checkout's sources")
    start = time.perf_counter()
    out, err, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            str(ROOT / "dezero_xp"),
            str(USAGE),
        ]
    )
    elapsed = time.perf_counter() - start
    assert not err, err
    found = [m for line in out.splitlines() if (m := MYPY_ERROR.match(line))]
    in_package = [m.group(0) for m in found if Path(m["path"]).name != USAGE.name]
    assert not in_package, f"mypy errors in dezero_xp ({elapsed:.0f} s):\n" + "\n".join(in_package)
    in_usage = {(int(m["line"]), m["code"]) for m in found if Path(m["path"]).name == USAGE.name}
    assert in_usage == _expected_usage_errors(), out
    assert status == (1 if in_usage else 0)


def test_the_usage_file_marks_mistakes():
    assert len(_expected_usage_errors()) >= 5
