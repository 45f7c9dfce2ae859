"""dezero_xp.distributed: multi-process checks under ``mpiexec -n 2`` and one-process unit tests.

The multi-process checks live in tests/distributed_checks.py and run in ONE ``mpiexec`` launch
(a few seconds); each check is reported here as its own test. The abort-on-exception path needs
a launch of its own (the job must die). They skip, saying why, only where mpi4py or an
``mpiexec`` cannot be found (``pip install .[mpi]`` provides both).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from opcheck import make_op_tests, op_case
from test_functions_nn import ref_batch_norm_train

import dezero_xp as dz
import dezero_xp.distributed as dist
import dezero_xp.functions as F
import dezero_xp.layers as L
from dezero_xp import optimizers as O
from dezero_xp._install import install_command

HERE = Path(__file__).resolve().parent
CHECKS_SCRIPT = HERE / "distributed_checks.py"
LAUNCH_TIMEOUT = 240  # seconds for the one launch of every check (about 5 s alone)

sys.path.insert(0, str(HERE))
import distributed_checks  # noqa: E402


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _skip_reason() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return f"mpi4py is not installed ({install_command('mpi')} gives mpi4py and mpich)"
    if _mpiexec() is None:
        return f"no mpiexec found beside the interpreter or on PATH ({install_command('mpi')})"
    return None


needs_mpi = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def _launch(out_dir: Path, *names: str, timeout: float = LAUNCH_TIMEOUT):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    for key in ("DEZERO_XP_STRICT_DEVICES", "DEZERO_XP_DEVICE"):
        env.pop(key, None)
    command = [_mpiexec(), "-n", "2", sys.executable, str(CHECKS_SCRIPT), str(out_dir), *names]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def mpi_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("mpi-checks")
    result = _launch(out_dir)
    output = f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    ranks = []
    for r in range(2):  # a failed check ends the job: the files then hold the checks so far
        path = out_dir / f"rank{r}.json"
        ranks.append(json.loads(path.read_text()) if path.exists() else {})
    return ranks, output


@needs_mpi
@pytest.mark.parametrize("name", sorted(distributed_checks.CHECKS))
def test_under_mpiexec(mpi_results, name):
    ranks, output = mpi_results
    for rank, results in enumerate(ranks):
        assert name in results, f"rank {rank} did not report {name!r}:\n{output}"
        assert results[name] == "ok", f"rank {rank}:\n{results[name]}"


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job(tmp_path):
    start = time.monotonic()
    result = _launch(tmp_path, "abort", timeout=60)
    elapsed = time.monotonic() - start
    assert result.returncode != 0, result.stdout + result.stderr
    assert elapsed < 30, f"the job took {elapsed:.0f} s to end"
    assert "[rank 1/2] uncaught ValueError" in result.stderr, result.stderr
    assert "boom from rank 1" in result.stderr, result.stderr  # that rank's traceback
    assert "passed the barrier" not in result.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed (nox -s tests-torch runs the torch transport's checks)",
)
def test_torch_transport_with_gloo(tmp_path):
    # Two processes with the environment torchrun would give them: no MPI involved.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), DIST_CHECK_TRANSPORT="torch")
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        command = [
            sys.executable,
            str(CHECKS_SCRIPT),
            str(tmp_path),
            *distributed_checks.TORCH_CHECKS,
        ]
        procs.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=LAUNCH_TIMEOUT)[0].decode())
    finally:
        for proc in procs:
            proc.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    for rank in range(2):
        results = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for name in distributed_checks.TORCH_CHECKS:
            assert results[name] == "ok", f"rank {rank} {name}:\n{results[name]}"


# --------------------------------------------------------------------------- one process


class TwinComm(dist.Communicator):
    """Two ranks holding identical data, simulated in one process: a sum doubles."""

    transport = "twin"

    def __init__(self):
        super().__init__(rank=0, size=2)

    def allreduce_buffer(self, buffer, op="sum"):
        return buffer * 2 if op == "sum" else buffer


TWIN = TwinComm()


def _running_stats():
    return (np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0]))


CASES = [
    op_case("all_reduce", lambda x: F.all_reduce(x, TWIN), lambda x: 2 * x, [(), (3, 2)]),
    op_case(
        "sync_batch_norm",
        lambda x, g, b, mean, var: F.sync_batch_norm(x, g, b, mean, var, TWIN),
        ref_batch_norm_train,  # the global batch is two copies: the same statistics
        [[(6, 3), (3,), (3,)], [(2, 3, 2, 3), (3,), (3,)]],
        consts=_running_stats,
    ),
]
test_collective_ops = make_op_tests(CASES)


def test_sync_batch_norm_updates_running_stats_over_the_global_batch():
    x = np.random.default_rng(0).standard_normal((4, 3))
    mean, var = np.zeros(3), np.ones(3)
    F.sync_batch_norm(dz.Variable(x), np.ones(3), np.zeros(3), mean, var, TWIN, decay=0.5)
    both = np.concatenate([x, x])
    np.testing.assert_allclose(mean, 0.5 * both.mean(axis=0))
    np.testing.assert_allclose(var, 0.5 + 0.5 * both.var(axis=0, ddof=1))


def test_batchnorm_layer_with_a_communicator_is_synchronised():
    x = np.random.default_rng(1).standard_normal((5, 2))
    layer = L.BatchNorm(dtype="float64", comm=TWIN)
    y = layer(x)
    np.testing.assert_allclose(y.data, ref_batch_norm_train(x, np.ones(2), np.zeros(2)))
    avg_var = getattr(layer.avg_var, "data", layer.avg_var)  # an array or a Variable
    np.testing.assert_allclose(avg_var, 0.9 + 0.1 * np.concatenate([x, x]).var(0, ddof=1))


def test_single_communicator_collectives_are_copies():
    comm = dist.SingleCommunicator()
    x = np.arange(6.0).reshape(2, 3)
    for got in (comm.allreduce(x), comm.allreduce(x, op="mean"), comm.broadcast(x)):
        np.testing.assert_array_equal(got, x)
        assert got is not x
    np.testing.assert_array_equal(comm.allgather(x), x[None])
    v = comm.allreduce(dz.Variable(x))
    assert isinstance(v, dz.Variable)


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda c: c.allreduce(np.ones(2), op="prod"), ValueError, "op must be one of"),
        (lambda c: c.allreduce(np.ones(2, dtype=np.int64), op="mean"), TypeError, "floating"),
        (lambda c: c.broadcast(np.ones(2), root=1), ValueError, "root must be a rank in 0..0"),
        (lambda c: c.allreduce([1, 2]), TypeError, "expected an array or a Variable, got list"),
    ],
)
def test_collectives_reject_bad_arguments(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call(dist.SingleCommunicator())


def test_init_without_a_launcher_is_one_process(monkeypatch):
    for key in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(dist.context, "_current", None)
    comm = dist.init()
    assert (comm.transport, comm.rank, comm.size) == ("single", 0, 1)
    assert "not launched by mpiexec" in comm.reason
    assert dist.init() is comm
    with pytest.raises(ValueError, match="transport must be one of"):
        dist.init("carrier-pigeon")


def test_distributed_optimizer_on_one_process_is_the_plain_optimizer():
    def run(wrap):
        dz.seed(0)
        model = L.Linear(3, dtype="float64", in_size=4)
        opt = O.Adam().setup(model)
        opt.add_hook(O.WeightDecay(1e-2))
        opt = dist.DistributedOptimizer(opt, dist.SingleCommunicator()) if wrap else opt
        x = np.random.default_rng(0).standard_normal((8, 4))
        for _ in range(3):
            model.cleargrads()
            (model(x) ** 2).sum().backward()
            opt.update()
        return [p.data.copy() for p in model.params()], opt

    plain, _ = run(False)
    wrapped, opt = run(True)
    for a, b in zip(plain, wrapped):
        np.testing.assert_array_equal(a, b)
    assert opt.t == 3 and opt.lr == opt.actual_optimizer.lr  # the wrapped optimizer's names
    opt.alpha = 0.5  # a schedule sets the wrapped optimizer's value
    assert opt.actual_optimizer.alpha == 0.5 and "alpha" not in vars(opt)
    assert dist.create_multi_node_optimizer(O.SGD().setup(L.Linear(2)), dist.SingleCommunicator())


def test_distributed_optimizer_needs_a_set_up_optimizer():
    with pytest.raises(RuntimeError, match=r"call optimizer.setup\(model\) before"):
        dist.DistributedOptimizer(O.SGD(), dist.SingleCommunicator())
    with pytest.raises(ValueError, match="bucket_bytes must be >= 1"):
        dist.DistributedOptimizer(O.SGD().setup(L.Linear(2)), dist.SingleCommunicator(), 0)


def test_mismatch_message_names_the_first_difference_per_rank():
    ranks = [
        [("l0/W", (3, 4), "float32", "numpy"), ("l0/b", (4,), "float32", "numpy")],
        [("l0/W", (3, 4), "float32", "numpy"), ("l0/b", (5,), "float32", "numpy")],
        [("l0/W", (3, 4), "float64", "numpy")],
    ]
    message = dist.optimizer.mismatch_message(ranks)
    first = "parameter #1: rank 0 has l0/b shape (4,) float32 (numpy), rank 1 has l0/b shape (5,)"
    second = "parameter #0: rank 0 has l0/W shape (3, 4) float32 (numpy), rank 2 has l0/W shape"
    assert first in message and second in message and "(3, 4) float64" in message
    assert "rank 0: 2, rank 1: 2, rank 2: 1" in message
    assert dist.optimizer.mismatch_message(ranks[:1] * 2) is None


def test_sampler_needs_rank_and_size_without_a_communicator():
    with pytest.raises(ValueError, match="give a communicator, or both rank and size"):
        dist.DistributedSampler(10)
    with pytest.raises(ValueError, match="cannot give each of 4 ranks one"):
        dist.DistributedSampler(3, rank=0, size=4)
    sampler = dist.DistributedSampler(10, rank=1, size=3, drop_last=False)
    assert len(sampler) == 4 and len(list(sampler)) == 4


@needs_mpi
@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="Digits needs sklearn")
def test_distributed_example_matches_one_process(tmp_path):
    script = HERE.parent / "examples" / "distributed_digits.py"
    args = [str(script), "--smoke", "--device", "cpu", "--dtype", "float64", "--output-dir"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    one = subprocess.run(
        [sys.executable, *args, str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    two = subprocess.run(
        [_mpiexec(), "-n", "2", sys.executable, *args, str(tmp_path / "two")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert one.returncode == 0 and two.returncode == 0, one.stdout + one.stderr + two.stderr
    figures = [
        re.search(r"test loss \S+ test accuracy \S+", r.stdout.replace(",", "")) for r in (one, two)
    ]
    assert figures[0] and figures[1], one.stdout + two.stdout
    assert figures[0].group(0) == figures[1].group(0)
    assert "over 2 rank(s)" in two.stdout and "mpi transport" in two.stdout
    assert (tmp_path / "two" / "distributed_digits.npz").is_file()


@needs_mpi
def test_distributed_benchmark_smoke_run():
    script = HERE.parent / "benchmarks" / "bench_distributed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["allreduce"]["values"] == 64 * 32 + 32 + 32 * 10 + 10
    assert figures["ratio"] > 0 and figures["speedup"] > 0


@pytest.mark.gpu
def test_nccl_and_staging_on_a_real_gpu_with_one_rank():
    # NCCL cannot run two ranks on one GPU: one rank checks the real bindings end to end.
    from dezero_xp import backend as backend_module

    if not backend_module.cuda_available():
        pytest.skip(f"no usable GPU: {backend_module._cuda_status()[1]}")
    pytest.importorskip("mpi4py", reason="pip install .[mpi]")
    from dezero_xp.distributed.mpi import MPICommunicator
    from dezero_xp.distributed.nccl import NCCLCommunicator, import_nccl

    try:
        import_nccl()
    except ImportError as exc:
        pytest.skip(str(exc))
    mpi = MPICommunicator(cuda_aware_mpi=False)
    comm = NCCLCommunicator(mpi, device="cuda:0")
    gpu = dz.get_backend("cuda:0")
    for dtype in ("float32", "float64", "int64"):
        host = np.arange(12).reshape(3, 4).astype(dtype)
        x = gpu.from_host(host)
        for got in (comm.allreduce(x), comm.broadcast(x), mpi.allreduce(x)):
            assert dz.backend.backend_of(got) is gpu
            np.testing.assert_array_equal(gpu.to_host(got), host)
        np.testing.assert_array_equal(gpu.to_host(comm.allgather(x)), host[None])
    model = L.Linear(3, in_size=4, dtype="float32").to(gpu)
    opt = dist.DistributedOptimizer(O.SGD().setup(model), comm)
    (model(gpu.from_host(np.ones((2, 4), dtype=np.float32))) ** 2).sum().backward()
    opt.average_gradients(list(model.params()))
    assert dz.backend.backend_of(model.W.grad.data) is gpu


class EchoComm(TwinComm):
    """Two identical ranks in one process, counting the control exchanges."""

    def __init__(self):
        super().__init__()
        self.object_exchanges = 0

    def broadcast_buffer(self, buffer, root=0):
        return buffer

    def allgather_obj(self, obj):
        self.object_exchanges += 1
        return [obj, obj]


def test_identical_ranks_train_as_one_and_check_once():
    def run(comm):
        dz.seed(0)
        model = dz.Model()
        model.used = L.Linear(3, dtype="float64", in_size=4)
        model.never_called = L.Linear(2, dtype="float64")  # lazy, never initialised
        opt = O.MomentumSGD().setup(model)
        opt = dist.DistributedOptimizer(opt, comm) if comm else opt
        x = np.random.default_rng(0).standard_normal((8, 4))
        for _ in range(4):
            model.cleargrads()
            (model.used(x) ** 2).sum().backward()
            opt.update()
        return [p.data.copy() for p in model.used.params()]

    comm = EchoComm()
    for a, b in zip(run(None), run(comm)):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    assert comm.object_exchanges == 1  # the parameter check ran once, at construction
