"""The package's import rules (DESIGN.md section 2), checked on the source with ``ast``.

- Imports flow one way down ``LAYERS``: a module may import modules of its own layer or of layers
  above it, never below. Modules that do not exist yet are skipped; a module that exists but is
  missing from ``LAYERS`` fails, so every new module gets a place in the order.
- Only the backend layer imports cupy; numpy only where ``NUMPY_ALLOWED`` says (never inside
  ``functions/``: ops use ``self.xp``).
- No module imports the package root (``__init__`` only assembles).
- Imports under ``if TYPE_CHECKING:`` never run, so they are exempt from the order (annotations
  may name a class of a lower layer); the cupy and numpy rules still apply to them.
- Every module opens with a docstring that says what it may import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import dezero_xp

PACKAGE = "dezero_xp"
PACKAGE_DIR = Path(dezero_xp.__file__).resolve().parent

# Top to bottom; a module may import from its own row and the rows above it.
# A unit is a top-level module ("core") or a subpackage ("functions", "_backends").
LAYERS: list[tuple[str, ...]] = [
    # typing: the public type aliases (its imports of lower layers are for type checkers only).
    ("_config", "_install", "typing"),
    ("backend", "_backends", "_random"),
    ("_shape", "_download", "_npz", "_errors"),
    ("_variable",),
    ("core", "core_simple"),
    ("_engine",),
    # Both need only backend/core: Layer.save_weights and Model.plot use them.
    ("serialization", "visualize"),
    # Variables made on a device (creation) and shared with other libraries (interop).
    ("creation", "interop"),
    ("functions",),
    ("layers",),
    ("models",),
    ("optimizers", "_optim_checks", "_optim_hooks"),
    ("datasets", "dataloaders", "transforms"),
    # Communicators and the data-parallel optimizer (DESIGN.md section 7).
    ("distributed",),
    ("testing",),
    ("utils", "cuda", "functions_conv"),
]
LEVEL = {unit: i for i, row in enumerate(LAYERS) for unit in row}

# Only the CuPy adapter imports cupy (DESIGN.md section 3: one adapter file per library); it
# also hands NCCL's bindings to distributed/nccl.py.
CUPY_ALLOWED_FILES = {Path("_backends/cupy.py")}
NUMPY_ALLOWED = {
    "backend",
    "_backends",
    "_random",  # seeds and NumPy's global generator (DeZero's default)
    "testing",
    "datasets",
    "dataloaders",
    "transforms",
    "serialization",
    "_npz",
    "_optim_checks",
    "utils",
    "distributed",  # MPI and torch.distributed move host buffers
    "typing",  # numpy.ndarray and numpy.generic in the aliases
}
CUPY_MODULES = {"cupy", "cupyx", "cupy_backends"}
# importlib.import_module("cupy") / __import__("cupy") would dodge the ast check.
DYNAMIC_CUPY = re.compile(r"""(import_module|__import__)\(\s*['"]cupy""")


def _unit_of(relative: Path) -> str:
    """``core.py`` -> ``core``; ``functions/shape.py`` -> ``functions``."""
    parts = relative.with_suffix("").parts
    return parts[0]


def _package_modules() -> list[Path]:
    return sorted(p.relative_to(PACKAGE_DIR) for p in PACKAGE_DIR.rglob("*.py"))


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def _is_package(relative: Path) -> bool:
    return relative.name == "__init__.py"


def imported_modules(source: str, module_name: str, is_package: bool) -> list[tuple[str, int]]:
    """Every module an ``import`` statement in ``source`` names (absolute), with its line.

    ``from pkg import name`` yields ``pkg.name`` (it may be a submodule) as well as ``pkg``
    (except for the package root, which is then only the namespace of the submodules).
    Imports inside functions count too.
    """
    found = []
    package = module_name if is_package else module_name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            if base != PACKAGE:  # ``from dezero_xp import x`` names x, not the root itself
                found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _is_type_checking_test(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def type_only_import_lines(source: str) -> set[int]:
    """The lines of the imports inside ``if TYPE_CHECKING:`` blocks (they never run)."""
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and _is_type_checking_test(node.test):
            for statement in node.body:
                for inner in ast.walk(statement):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        lines.add(inner.lineno)
    return lines


def _internal_unit(name: str) -> str | None:
    """The unit an absolute module name belongs to, "" for the root package, None if external."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return ""
    return parts[1]


def _existing_units() -> set[str]:
    return {_unit_of(p) for p in _package_modules()}


def import_violations(source: str, relative: Path) -> list[str]:
    """Every broken rule in one module's source (an empty list when it is clean)."""
    unit = _unit_of(relative)
    module_name = _module_name(relative)
    problems = []
    existing = _existing_units() | set(LEVEL)
    type_only = type_only_import_lines(source)
    for name, line in imported_modules(source, module_name, _is_package(relative)):
        where = f"{relative}:{line} imports {name}"
        top = name.split(".")[0]
        if top in CUPY_MODULES and relative not in CUPY_ALLOWED_FILES:
            problems.append(f"{where}: only _backends/cupy.py may import cupy")
        if top == "numpy" and unit not in NUMPY_ALLOWED:
            problems.append(f"{where}: numpy is not allowed here (use the backend's xp/ops)")
        target = _internal_unit(name)
        if target is None or unit == "__init__":
            continue
        if target == "":
            problems.append(f"{where}: import from the defining module, not the package root")
            continue
        if target not in existing:
            # ``from dezero_xp import Variable``: a name of the root package, not a module
            problems.append(f"{where}: import {target!r} from the module that defines it")
            continue
        if (
            target in LEVEL
            and unit in LEVEL
            and LEVEL[target] > LEVEL[unit]
            and line not in type_only
        ):
            problems.append(
                f"{where}: {target!r} is listed below {unit!r} in the import order "
                "(DESIGN.md section 2)"
            )
    if DYNAMIC_CUPY.search(source) and relative not in CUPY_ALLOWED_FILES:
        problems.append(
            f"{relative}: imports cupy dynamically; only _backends/cupy.py may import cupy"
        )
    return problems


MODULES = _package_modules()


def test_every_module_has_a_place_in_the_import_order():
    unplaced = sorted({_unit_of(p) for p in MODULES} - set(LEVEL) - {"__init__"})
    assert not unplaced, (
        f"modules {unplaced} are not in LAYERS of tests/test_architecture.py: add each to its "
        "row of the import order (and to DESIGN.md section 2)"
    )


@pytest.mark.parametrize("relative", MODULES, ids=str)
def test_imports_follow_the_design(relative):
    source = (PACKAGE_DIR / relative).read_text(encoding="utf-8")
    assert import_violations(source, relative) == []


@pytest.mark.parametrize("relative", MODULES, ids=str)
def test_module_docstring_says_what_it_may_import(relative):
    source = (PACKAGE_DIR / relative).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, f"{relative} has no module docstring"
    if not _is_package(relative):
        assert "May import" in docstring, f"{relative}: the docstring should say 'May import: ...'"


# The checker itself must catch what it is meant to catch.
@pytest.mark.parametrize(
    ("relative", "source", "fragment"),
    [
        ("core.py", "from dezero_xp.layers import Layer\n", "listed below 'core'"),
        ("core.py", "def f():\n    from dezero_xp import optimizers\n", "listed below"),
        ("functions/shape.py", "import numpy as np\n", "numpy is not allowed"),
        ("functions/shape.py", "from numpy import zeros\n", "numpy is not allowed"),
        ("layers.py", "import cupy\n", "only _backends/cupy.py may import cupy"),
        ("distributed/mpi.py", "import cupy\n", "only _backends/cupy.py may import cupy"),
        ("backend.py", "import cupy\n", "only _backends/cupy.py may import cupy"),
        ("_backends/torch.py", "import cupyx.scatter_add\n", "only _backends/cupy.py"),
        ("cuda.py", "import importlib\nimportlib.import_module('cupy')\n", "dynamically"),
        ("layers.py", "from dezero_xp import Variable\n", "from the module that defines it"),
        ("layers.py", "import dezero_xp\n", "not the package root"),
        ("functions/reduce.py", "from ..layers import Linear\n", "listed below 'functions'"),
        ("backend.py", "from . import core\n", "listed below 'backend'"),
        # Outside the TYPE_CHECKING block, or a cupy import inside it: still caught.
        (
            "backend.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nfrom . import core\n",
            "listed below 'backend'",
        ),
        ("layers.py", "if TYPE_CHECKING:\n    import cupy\n", "only _backends/cupy.py"),
        ("layers.py", "if TYPE_CHECKING:\n    import numpy\n", "numpy is not allowed"),
    ],
)
def test_checker_catches_violations(relative, source, fragment):
    problems = import_violations(source, Path(relative))
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("functions/reduce.py", "from dezero_xp.functions.elementwise import exp\n"),
        ("functions/reduce.py", "from .shape import reshape\nfrom dezero_xp import _shape\n"),
        ("utils.py", "import numpy as np\nfrom dezero_xp import functions as F\n"),
        ("_backends/cupy.py", "def f():\n    import cupy\n    from dezero_xp import backend\n"),
        ("backend.py", "from dezero_xp._backends import ADAPTERS\n"),
        ("__init__.py", "from dezero_xp.utils import sum_to\n"),
        # Type-only imports never run: an annotation may name a class of a lower layer.
        ("typing.py", "if TYPE_CHECKING:\n    from dezero_xp.core import Variable\n"),
        ("backend.py", "import typing\nif typing.TYPE_CHECKING:\n    from . import core\n"),
    ],
)
def test_checker_accepts_allowed_imports(relative, source):
    assert import_violations(source, Path(relative)) == []


# DESIGN.md section 3: backend.py is the public face and knows no library by name; each library
# is one adapter module under _backends/ and one entry in ADAPTERS.
LIBRARY_NAMES = re.compile(r"\b(cupy|cupyx|torch|array_api_strict)\b", re.IGNORECASE)


def _code_without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0] = ast.Pass()
    return ast.unparse(tree)


def test_backend_py_knows_no_library_by_name():
    code = _code_without_docstrings((PACKAGE_DIR / "backend.py").read_text(encoding="utf-8"))
    assert LIBRARY_NAMES.findall(code) == []
    assert 'name == "' not in code and "name == '" not in code


def test_every_adapter_module_is_in_the_one_tuple():
    from dezero_xp._backends import ADAPTERS

    modules = {
        p.stem
        for p in (PACKAGE_DIR / "_backends").glob("*.py")
        if p.stem not in ("__init__", "base")
    }
    assert {type(a).__module__.rsplit(".", 1)[-1] for a in ADAPTERS} == modules
    assert type(ADAPTERS[-1]).__module__.endswith(".generic")  # the catch-all comes last


def test_checker_sees_library_names_in_backend_code():
    assert LIBRARY_NAMES.findall(_code_without_docstrings('x = "torch:cpu"\n'))
    assert not LIBRARY_NAMES.findall(_code_without_docstrings('"""About torch."""\nx = 1\n'))


# Library modules stay small (DESIGN.md section 2). Files being split right now are allowed
# temporarily and leave this list when their split lands; nothing else may be added to it.
MAX_MODULE_LINES = 450
OVER_CEILING_FOR_NOW: set[str] = set()


@pytest.mark.parametrize("relative", MODULES, ids=str)
def test_module_stays_within_the_line_ceiling(relative):
    lines = (PACKAGE_DIR / relative).read_text(encoding="utf-8").count("\n")
    if str(relative) in OVER_CEILING_FOR_NOW:
        pytest.skip(f"{relative} is being split ({lines} lines)")
    assert lines <= MAX_MODULE_LINES, (
        f"{relative} has {lines} lines, over the ceiling of {MAX_MODULE_LINES}: split it into "
        "modules with one purpose each"
    )


def test_line_ceiling_allow_list_names_existing_oversized_modules_only():
    """An entry that is gone or already small must leave the allow-list."""
    for name in OVER_CEILING_FOR_NOW:
        path = PACKAGE_DIR / name
        if path.exists():
            lines = path.read_text(encoding="utf-8").count("\n")
            assert lines > MAX_MODULE_LINES, f"{name} is within the ceiling: drop it from the list"
