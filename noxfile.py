"""Developer tasks: ``nox -s <session>`` (``nox -l`` lists them).

- ``tests``: the suite on NumPy and array-api-strict (torch/cupy cases skip, visibly).
- ``tests-gpu``: the whole suite on CuPy (and torch:cuda), against the interpreter's installed
  packages (no venv, no downloads: it works on an offline GPU machine); skips with a message
  without a usable GPU, fails when DEZERO_XP_TEST_BACKENDS names an unusable GPU backend.
- ``tests-torch``: the suite on torch tensors; skips with a message when torch cannot be installed.
- ``tests-oracle``: the property-based gradient suite and the op edge cases with torch
  installed (torch autograd is the oracle; CI runs it).
- ``tests-floor``: the suite with the oldest array-api-compat allowed (``ARRAY_API_COMPAT_FLOOR``).
- ``benchmark``: pytest-benchmark over benchmarks/, JSON saved under benchmarks/results/.
- ``tests-python-3.10`` .. ``tests-python-3.13``: the suite on each claimed Python version that
  is installed (missing ones are skipped).
- ``sdist``: build the sdist, install it in a fresh venv and run its own suite from it (CI).
- ``lint``: ruff check and ruff format --check (ruff pinned), then mypy on the package (mypy
  pinned too, ``MYPY_SPEC``; its settings are ``[tool.mypy]`` in pyproject.toml). mypy is
  installed here only, not in the ``test`` extra.
- ``examples``: every script in examples/ with ``--smoke``.
- ``docs``: the documentation site (Sphinx, warnings are errors) into docs/_build/html; its code
  blocks run in ``tests`` (tests/test_docs.py).
- ``compare``: dezero_xp vs DeZero 0.0.13, PyTorch (CPU) and a NumPy floor; see
  benchmarks/compare/README.md.

Extra arguments after ``--`` go to pytest (or to the examples): ``nox -s tests -- -k conv -x``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
RESULTS_DIR = ROOT / "benchmarks" / "results"
LINT_PATHS = ["dezero_xp", "tests", "benchmarks", "examples", "noxfile.py"]

# torch for `tests-torch`. A bare "torch" can pull a multi-GB CUDA build; override to taste, e.g.
# DEZERO_XP_TORCH_SPEC="torch==2.13.0" or "torch --index-url <a CPU-only wheel index>".
TORCH_SPEC_ENV = "DEZERO_XP_TORCH_SPEC"
DEFAULT_TORCH_SPEC = "torch==2.13.0"

# One ruff for everyone: a newer ruff can change what `format --check` accepts.
RUFF_SPEC = "ruff==0.17.6"
# Likewise one mypy: a newer one finds new errors. It checks against NumPy's own annotations, so
# NumPy is installed next to it (the optional array libraries are never analysed).
MYPY_SPEC = "mypy==2.4.1"

# Interpreter for `tests-gpu` (it runs without a venv); defaults to the one running nox.
GPU_PYTHON_ENV = "DEZERO_XP_GPU_PYTHON"
# Which backends the suite runs on (tests/conftest.py); naming a GPU one makes it required.
SELECT_ENV = "DEZERO_XP_TEST_BACKENDS"

# Every example must accept --smoke (tiny settings). Files starting with "_" are helpers.
# Add per-example extra arguments here when one needs them.
EXAMPLE_ARGS: dict[str, list[str]] = {}

nox.options.sessions = ["lint", "tests", "examples"]
nox.options.reuse_venv = "yes"


def _pytest_args(session: nox.Session, *extra: str) -> list[str]:
    return ["-m", "pytest", *extra, *session.posargs]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on NumPy and array-api-strict (what CI runs)."""
    session.install("-e", ".[test,examples]")
    # mpi4py + MPICH for the `mpiexec -n 2` tests of dezero_xp.distributed; where they cannot
    # be installed those tests skip and say so.
    try:
        session.install("-e", ".[mpi]")
    except nox.command.CommandFailed:
        session.warn("could not install .[mpi] (mpi4py, mpich): the mpiexec tests will skip")
    session.run("python", *_pytest_args(session, "-p", "no:cacheprovider"))


_GPU_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
try:
    from dezero_xp import backend
except Exception as exc:
    print(f"cannot import dezero_xp here: {type(exc).__name__}: {exc}")
    sys.exit(2)
usable, reason = backend._cuda_status()
if not usable:
    print(reason)
    sys.exit(3)
try:  # a device count is not enough: compile a kernel, run it, read the result back
    import cupy
    kernel = cupy.ElementwiseKernel("float32 x", "float32 y", "y = 2 * x + 1", "dezero_xp_probe")
    got = kernel(cupy.arange(4, dtype=cupy.float32)).get().tolist()
    assert got == [1.0, 3.0, 5.0, 7.0], got
    import dezero_xp as dz
    x = dz.Variable(cupy.arange(3, dtype=cupy.float32))
    (x * x).sum().backward()
    assert dz.backend.to_host(x.grad.data).tolist() == [0.0, 2.0, 4.0]
except Exception as exc:
    print(f"CuPy imports but cannot run a kernel: {type(exc).__name__}: {exc}")
    sys.exit(3)
print(f"CuPy {cupy.__version__}, {cupy.cuda.runtime.getDeviceCount()} CUDA device(s), kernel ok")
try:
    import torch
    assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
    assert (torch.ones(2, device="cuda") * 2).sum().item() == 4.0
    print(f"torch {torch.__version__}: torch:cuda ok")
except Exception as exc:
    print(f"torch:cuda not tested: {type(exc).__name__}: {exc}")
"""

GPU_TEST_NAMES = ("cupy", "torch:cuda")


# The versions pyproject.toml claims (requires-python and the classifiers). Each one that is not
# installed here is skipped with a message; with pyenv, make them all visible first, e.g.
# `pyenv shell 3.10.13 3.11.7 3.12.1 3.13.0` (any patch releases).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
nox.options.error_on_missing_interpreters = False  # also under CI=true, where nox defaults to True


@nox.session(name="tests-python", python=PYTHONS)
def tests_python(session: nox.Session) -> None:
    """The suite on each claimed Python version that is installed (``tests-python-3.10`` ...)."""
    session.install("-e", ".[test]")
    session.run("python", *_pytest_args(session, "-p", "no:cacheprovider"))


@nox.session(name="tests-gpu", venv_backend="none")
def tests_gpu(session: nox.Session) -> None:
    """The whole suite on the GPU backends (cupy, torch:cuda), with this interpreter's packages.

    torch:cuda runs where torch sees a CUDA device.

    Needs numpy, array-api-compat, pytest (and cupy-cuda12x/13x) installed for the interpreter
    running nox, or for the one named by DEZERO_XP_GPU_PYTHON. The probe compiles and runs a
    CUDA kernel. Without a usable GPU it skips (exit 0), unless DEZERO_XP_TEST_BACKENDS names
    a GPU backend explicitly: then an unusable one fails the session with the reason. The
    pytest summary says how many GPU cases ran.
    """
    python = os.environ.get(GPU_PYTHON_ENV) or sys.executable
    explicit = [n.strip() for n in os.environ.get(SELECT_ENV, "").split(",") if n.strip()]
    try:
        probe = subprocess.run(
            [python, "-c", _GPU_PROBE, str(ROOT)], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        session.error(f"cannot run the interpreter {python!r} ({exc}); check {GPU_PYTHON_ENV}")
    message = (probe.stdout + probe.stderr).strip()
    if probe.returncode == 2:  # a missing dependency is an error, not a machine without a GPU
        session.error(
            f"{python} cannot import dezero_xp: {message}. Offline, install its dependencies "
            "from wheels: pip install --no-index --find-links wheels/ array-api-compat "
            "array-api-strict (see the README's GPU section)"
        )
    if probe.returncode != 0:
        if any(name in GPU_TEST_NAMES for name in explicit):
            session.error(f"{SELECT_ENV}={','.join(explicit)} but CUDA is not usable: {message}")
        session.skip(f"no usable CUDA GPU for {python}: {message}")
    session.log(message)
    names = explicit or ["cupy", *(["torch:cuda"] if "torch:cuda ok" in message else [])]
    session.run(
        python,
        *_pytest_args(session, "-p", "no:cacheprovider", "-rs"),
        env={SELECT_ENV: ",".join(names)},
        external=True,
    )


# The lowest array-api-compat dezero_xp supports (pyproject.toml says the same): 1.11-1.15 break
# maximum(x, 0) and reshape(copy=True) on torch tensors.
ARRAY_API_COMPAT_FLOOR = "1.16"


@nox.session(name="tests-floor")
def tests_floor(session: nox.Session) -> None:
    """The suite against the oldest array-api-compat allowed (and torch, when it installs)."""
    session.install("-e", ".[test]", f"array-api-compat=={ARRAY_API_COMPAT_FLOOR}.*")
    try:
        session.install(*os.environ.get(TORCH_SPEC_ENV, DEFAULT_TORCH_SPEC).split())
    except nox.command.CommandFailed:
        session.warn("tests-floor: torch did not install; its cases are skipped")
    session.run(
        "python", "-c", "import array_api_compat as c; print('array-api-compat', c.__version__)"
    )
    session.run("python", *_pytest_args(session, "-p", "no:cacheprovider"))


def _install_torch(session: nox.Session) -> None:
    """torch from DEZERO_XP_TORCH_SPEC into the session, or skip the session saying why."""
    spec = os.environ.get(TORCH_SPEC_ENV, DEFAULT_TORCH_SPEC).split()
    try:
        session.install(*spec)
    except nox.command.CommandFailed:
        session.skip(
            f"could not install {' '.join(spec)!r}; set {TORCH_SPEC_ENV} "
            "to a torch requirement this machine can install"
        )


@nox.session(name="tests-torch")
def tests_torch(session: nox.Session) -> None:
    """The suite with DEZERO_XP_TEST_BACKENDS=torch (torch from DEZERO_XP_TORCH_SPEC)."""
    session.install("-e", ".[test]")
    _install_torch(session)
    session.run(
        "python",
        *_pytest_args(session, "-p", "no:cacheprovider"),
        env={"DEZERO_XP_TEST_BACKENDS": "torch"},
    )


# The suites that compare with torch autograd (the property-based gradient suite uses it as the
# oracle, finite differences without it) and the torch backend's own edge cases: CI runs them
# with torch installed, so the oracle is not only ever used on a developer's machine.
ORACLE_TESTS = [
    "tests/test_gradients_property.py",
    "tests/test_op_hardening.py",
    "tests/test_backend_edges.py",
    "tests/test_gradient_semantics.py",
]


@nox.session(name="tests-oracle")
def tests_oracle(session: nox.Session) -> None:
    """The gradient suites against torch autograd, on every backend installed (torch too)."""
    session.install("-e", ".[test]")
    _install_torch(session)
    session.run(
        "python",
        "-c",
        "import torch; print('torch', torch.__version__, 'is the oracle')",
    )
    session.run("python", *_pytest_args(session, "-p", "no:cacheprovider", *ORACLE_TESTS))


@nox.session
def sdist(session: nox.Session) -> None:
    """Build the sdist, install it into this session's fresh venv, run its own suite from it.

    The suite runs in the unpacked archive with its ``dezero_xp/`` folder removed, so the tests
    (and the examples they run) import the installed package: what a user of the sdist gets.
    Arguments after ``--`` go to pytest.
    """
    session.install("build")
    work = Path(session.create_tmp()).resolve()
    for stale in ("dist", "unpacked"):
        shutil.rmtree(work / stale, ignore_errors=True)
    session.run("python", "-m", "build", "--sdist", "--outdir", str(work / "dist"), str(ROOT))
    (archive,) = (work / "dist").glob("dezero_xp-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(work / "unpacked", filter="data")
    (source,) = (work / "unpacked").iterdir()
    session.install(f"{archive}[test,examples]", "nox")
    try:  # as in `tests`: the mpiexec tests skip, and say so, without mpi4py and MPICH
        session.install(f"{archive}[mpi]")
    except nox.command.CommandFailed:
        session.warn("could not install [mpi] (mpi4py, mpich): the mpiexec tests will skip")
    shutil.rmtree(source / "dezero_xp")
    session.chdir(source)
    session.run("python", "-c", "import dezero_xp, sys; print('testing', dezero_xp.__file__)")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def benchmark(session: nox.Session) -> None:
    """pytest-benchmark over benchmarks/; saves the JSON in benchmarks/results/."""
    session.install("-e", ".[test]")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    session.run(
        "python",
        *_pytest_args(
            session,
            "-p",
            "no:cacheprovider",
            "-o",
            "python_files=bench_*.py",
            "--benchmark-only",
            f"--benchmark-json={RESULTS_DIR / f'bench-{stamp}.json'}",
            "benchmarks",
        ),
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check (RUFF_SPEC), then mypy on dezero_xp (MYPY_SPEC)."""
    session.install(RUFF_SPEC, MYPY_SPEC, "numpy>=2")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)
    session.run("mypy")  # files and settings: [tool.mypy] in pyproject.toml


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors (docs/_build/html)."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


def example_scripts() -> list[Path]:
    """Every runnable example: examples/*.py except helpers named _*.py."""
    return sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))


# What an example needs beyond its packages: script -> a probe that prints why it cannot run
# here (nothing when it can). Those examples exit non-zero without it; the session skips them.
_FASHION_PROBE = """
from dezero_xp.datasets import DatasetNotFoundError, FashionMNIST
for train in (True, False):
    try:
        FashionMNIST(train=train, transform=None)
    except DatasetNotFoundError as exc:
        print(str(exc).split(". Put the files", 1)[0])
        break
"""
EXAMPLE_NEEDS = {
    "fashion_mnist_cnn.py": _FASHION_PROBE,
    "fashion_mnist_mlp.py": _FASHION_PROBE,
}


@nox.session
def examples(session: nox.Session) -> None:
    """Smoke-run every example with --smoke (tiny settings; files go to examples/output/smoke).

    An example whose data are not on this machine is skipped, and said so, with the reason.
    """
    session.install("-e", ".[examples]")
    scripts = example_scripts()
    if not scripts:
        session.error("no examples found in examples/")
    skipped = []
    for script in scripts:
        probe = EXAMPLE_NEEDS.get(script.name)
        reason = probe and session.run("python", "-c", probe, silent=True).strip()
        if reason:
            skipped.append(f"{script.name}: {reason}")
            session.warn(f"SKIPPED {script.name}: {reason}")
            continue
        args = [*EXAMPLE_ARGS.get(script.name, []), *session.posargs]
        session.run("python", str(script.relative_to(ROOT)), "--smoke", *args)
    session.log(f"{len(scripts) - len(skipped)} examples ran, {len(skipped)} skipped")
    for line in skipped:
        session.log(f"skipped {line}")


# `compare`: each peer lives in its own venv beside the session's (DeZero 0.0.13 needs
# NumPy < 1.24, which has wheels only up to Python 3.11, hence the session's Python).
# DEZERO_PYTHON / TORCH_PYTHON name existing interpreters instead.
COMPARE_PEERS = {
    "dezero": ("DEZERO_PYTHON", lambda: ["numpy<1.24", "dezero==0.0.13", "threadpoolctl"]),
    "torch": (
        "TORCH_PYTHON",
        lambda: [
            *os.environ.get(TORCH_SPEC_ENV, DEFAULT_TORCH_SPEC).split(),
            "numpy",
            "threadpoolctl",
        ],
    ),
}


def _peer_python(session: nox.Session, name: str) -> str | None:
    """The interpreter for peer ``name``: $<ENV>, else a venv made once beside the session's."""
    variable, requirements = COMPARE_PEERS[name]
    if os.environ.get(variable):
        return os.environ[variable]
    venv = Path(session.virtualenv.location).parent / f"compare-{name}"
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    try:
        if not python.exists():
            session.run("python", "-m", "venv", str(venv))
        session.run(str(python), "-m", "pip", "install", "-q", *requirements(), external=True)
    except nox.command.CommandFailed:
        session.warn(f"compare: could not set up {name}; it is skipped (set {variable})")
        return None
    return str(python)


@nox.session(python="3.11")
def compare(session: nox.Session) -> None:
    """dezero_xp vs DeZero 0.0.13, PyTorch (CPU) and a NumPy floor; JSON in benchmarks/results/.

    Arguments after -- go to the driver: ``nox -s compare -- --smoke`` or
    ``-- --workloads mlp_b100,cnn_small --threads 1``.
    """
    session.install("-e", ".", "threadpoolctl")
    # dezero_xp on torch tensors too, when torch installs here (else that column is skipped).
    try:
        session.install(*os.environ.get(TORCH_SPEC_ENV, DEFAULT_TORCH_SPEC).split())
    except nox.command.CommandFailed:
        session.warn("compare: torch did not install; dezero_xp_torch is skipped")
    args = []
    for name in COMPARE_PEERS:
        python = _peer_python(session, name)
        args += [f"--{name}-python", python] if python else []
    impls = [
        "dezero_xp",
        "dezero_xp_torch",
        "numpy",
        *(n for n in COMPARE_PEERS if f"--{n}-python" in args),
    ]
    session.run(
        "python", "-m", "benchmarks.compare", "--impls", ",".join(impls), *args, *session.posargs
    )
