"""The checks tests/test_distributed.py runs under ``mpiexec -n 2`` (one launch for all of them).

Run as ``mpiexec -n 2 python tests/distributed_checks.py OUT_DIR [CHECK ...]``. Every rank runs
every named check (default: all) and writes ``OUT_DIR/rank<r>.json`` mapping each check to "ok"
or its traceback, so one launch reports many checks; a failing check ends the job at once (the
other rank could be waiting in one of its collectives), after writing what it has. ``abort`` is
special: rank 1 raises, and the job must end (tested on its own launch).

Reference results are computed in the same processes, by one-process code on the whole data.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dezero_xp as dz  # noqa: E402
import dezero_xp.distributed as dist  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
import dezero_xp.layers as L  # noqa: E402
from dezero_xp import optimizers as O  # noqa: E402
from dezero_xp.backend import backend_of, to_host  # noqa: E402

CHECKS = {}
N_SAMPLES, N_FEATURES, N_CLASSES = 1000, 8, 3
LOCAL_BATCH, STEPS = 50, 20


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def host(x):
    return np.asarray(to_host(x.data if isinstance(x, dz.Variable) else x))


def rank_data(rank, shape, dtype):
    rng = np.random.default_rng(100 + rank)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(-50, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- collectives


def _collectives(comm, device):
    backend = dz.get_backend(device)
    for dtype in ("float32", "float64", "int32", "int64"):
        for shape in ((), (0,), (3, 4), (1000,)):
            mine = rank_data(comm.rank, shape, dtype)
            everyone = [rank_data(r, shape, dtype) for r in range(comm.size)]
            x = backend.from_host(mine)
            expected = {
                "sum": np.sum(everyone, axis=0),
                "max": np.max(everyone, axis=0),
                "min": np.min(everyone, axis=0),
            }
            if dtype.startswith("float"):
                expected["mean"] = np.mean(everyone, axis=0)
            for op, want in expected.items():
                got = comm.allreduce(x, op=op)
                assert backend_of(got) is backend, (op, dtype, shape, backend_of(got))
                assert host(got).dtype == np.dtype(dtype) and host(got).shape == shape
                np.testing.assert_allclose(host(got), want, rtol=1e-6, err_msg=f"{op} {dtype}")
            np.testing.assert_array_equal(host(x), mine)  # the input is untouched
            got = comm.broadcast(x, root=1)
            np.testing.assert_array_equal(host(got), everyone[1])
            got = comm.allgather(dz.Variable(x))
            assert isinstance(got, dz.Variable)
            np.testing.assert_array_equal(host(got), np.stack(everyone))
    try:
        comm.allgather(backend.from_host(np.zeros(comm.rank + 1)))
    except dist.DistributedError as exc:
        assert "rank 0: shape (1,)" in str(exc) and "rank 1: shape (2,)" in str(exc), exc
    else:
        raise AssertionError("allgather of different shapes did not raise")


@check
def collectives(comm):
    _collectives(comm, "cpu")


@check
def collectives_strict(comm):
    _collectives(comm, "strict")


# --------------------------------------------------------------------------- training


def dataset():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES))
    t = rng.integers(0, N_CLASSES, N_SAMPLES)
    return x, t


def build(device, seed, lazy=False):
    dz.seed(seed)
    model = dz.Model()
    if lazy:
        model.l0 = L.Linear(16, dtype="float64")
    else:
        model.l0 = L.Linear(16, dtype="float64", in_size=N_FEATURES)
    model.l1 = L.Linear(N_CLASSES, dtype="float64", in_size=16)
    model.to(device)
    return model


def forward(model, x):
    return model.l1(F.tanh(model.l0(x)))


OPTIMIZERS = {
    "SGD": lambda: O.SGD(lr=0.2),
    "MomentumSGD": lambda: O.MomentumSGD(lr=0.1, momentum=0.9),
    "Adam": lambda: O.Adam(alpha=0.01),
}


def train(model, optimizer, batches, backend):
    for x, t in batches:
        loss = F.softmax_cross_entropy(forward(model, backend.from_host(x)), backend.from_host(t))
        model.cleargrads()
        loss.backward()
        optimizer.update()


def one_process_batches(x, t, seed):
    sampler = dist.DistributedSampler(N_SAMPLES, rank=0, size=1, seed=seed)
    out = []
    for epoch in range(STEPS * 2 * LOCAL_BATCH // N_SAMPLES):
        sampler.set_epoch(epoch)
        order = sampler.indices()
        for k in range(N_SAMPLES // (2 * LOCAL_BATCH)):
            index = order[k * 2 * LOCAL_BATCH : (k + 1) * 2 * LOCAL_BATCH]
            out.append((x[index], t[index]))
    return out


def rank_batches(comm, x, t, seed):
    sampler = dist.DistributedSampler(N_SAMPLES, comm, seed=seed)
    out = []
    for epoch in range(STEPS * 2 * LOCAL_BATCH // N_SAMPLES):
        sampler.set_epoch(epoch)
        order = sampler.indices()
        for k in range(len(order) // LOCAL_BATCH):
            index = order[k * LOCAL_BATCH : (k + 1) * LOCAL_BATCH]
            out.append((x[index], t[index]))
    return out


def _equivalence(comm, device, bucket_bytes=dist.DEFAULT_BUCKET_BYTES, names=OPTIMIZERS):
    backend = dz.get_backend(device)
    x, t = dataset()
    for name in names:
        reference = build(device, seed=0)
        opt = OPTIMIZERS[name]().setup(reference)
        opt.add_hook(O.WeightDecay(1e-3))
        train(reference, opt, one_process_batches(x, t, seed=3), backend)

        model = build(device, seed=comm.rank)  # different initial values: broadcast fixes it
        opt = OPTIMIZERS[name]().setup(model)
        opt.add_hook(O.WeightDecay(1e-3))
        opt = dist.DistributedOptimizer(opt, comm, bucket_bytes=bucket_bytes)
        batches = rank_batches(comm, x, t, seed=3)
        assert len(batches) == STEPS
        train(model, opt, batches, backend)
        for p, q in zip(model.params(), reference.params()):
            np.testing.assert_allclose(host(p), host(q), rtol=0, atol=1e-10, err_msg=name)


@check
def equivalence(comm):
    _equivalence(comm, "cpu")


@check
def equivalence_many_buckets(comm):
    # 200-byte buckets: W of l0 (8x16 float64) alone spans several; every bucket is one call.
    calls = []
    original = comm.allreduce_buffer

    def counting(buffer, op="sum"):
        calls.append(int(buffer.shape[0]))
        return original(buffer, op)

    comm.allreduce_buffer = counting
    try:
        _equivalence(comm, "cpu", bucket_bytes=200, names=["SGD"])
    finally:
        del comm.allreduce_buffer
    # per step: the gradient buckets, with one presence slot per parameter (4)
    per_step = len(calls) // STEPS
    assert per_step > 3, calls[:10]
    n_params = 8 * 16 + 16 + 16 * 3 + 3
    assert sum(calls[:per_step]) == 4 + n_params, calls[:per_step]


@check
def equivalence_strict(comm):
    _equivalence(comm, "strict", names=["SGD", "Adam"])


# torch tensors through torch.distributed (gloo); run by test_distributed.py without mpiexec
TORCH_CHECKS = ("collectives_torch", "equivalence_torch")


def collectives_torch(comm):
    assert comm.transport == "torch", comm
    _collectives(comm, "torch:cpu")


def equivalence_torch(comm):
    _equivalence(comm, "torch:cpu", names=["SGD", "Adam"])


@check
def lazy_layers_end_equal(comm):
    x, t = dataset()
    model = build("cpu", seed=comm.rank, lazy=True)
    opt = dist.DistributedOptimizer(O.MomentumSGD(lr=0.1).setup(model), comm)
    train(model, opt, rank_batches(comm, x, t, seed=1)[:3], dz.get_backend("cpu"))
    for p in model.params():
        both = comm.allgather(p.data)
        np.testing.assert_array_equal(both[0], both[1])


@check
def missing_gradients(comm):
    # rank 1 does not use l1: its gradient there counts as zeros; l2 is used nowhere.
    model = dz.Model()
    model.l0 = L.Linear(2, dtype="float64", in_size=3)
    model.l1 = L.Linear(2, dtype="float64", in_size=3)
    model.l2 = L.Linear(2, dtype="float64", in_size=3)
    opt = dist.DistributedOptimizer(O.SGD(lr=1.0).setup(model), comm)
    before = [host(p).copy() for p in model.params()]
    x = np.ones((1, 3))
    y = model.l0(x) if comm.rank else model.l0(x) + model.l1(x)
    y.sum().backward()
    opt.update()
    after = [host(p) for p in model.params()]
    np.testing.assert_allclose(after[0], before[0] - 1.0)  # W of l0: grad 1 on both ranks
    np.testing.assert_allclose(after[2], before[2] - 0.5)  # W of l1: mean of 1 and 0
    np.testing.assert_array_equal(after[4], before[4])  # l2 untouched
    assert model.l2.W.grad is None


@check
def mismatch(comm):
    model = dz.Model()
    model.l0 = L.Linear(4, dtype="float64", in_size=3)
    model.l1 = L.Linear(2 + comm.rank, dtype="float64", in_size=4)
    try:
        dist.DistributedOptimizer(O.SGD().setup(model), comm)
    except dist.DistributedError as exc:
        message = str(exc)
        assert "parameter #2: rank 0 has l1/W shape (4, 2) float64" in message, message
        assert "rank 1 has l1/W shape (4, 3) float64" in message, message
    else:
        raise AssertionError("different models on the ranks did not raise")
    comm.barrier()  # both ranks got here: nobody hangs


# --------------------------------------------------------------------------- data


@check
def sampler_shards(comm):
    for n, drop_last in ((1000, True), (1001, True), (1001, False)):
        for epoch in (0, 1):
            sampler = dist.DistributedSampler(n, comm, seed=5, drop_last=drop_last)
            sampler.set_epoch(epoch)
            shards = comm.allgather_obj(sampler.indices().tolist())
            lengths = {len(s) for s in shards}
            assert lengths == {len(sampler)}, lengths
            flat = [i for s in shards for i in s]
            if drop_last:
                assert len(set(flat)) == len(flat) == (n // 2) * 2  # disjoint
            else:
                assert set(flat) == set(range(n))  # covering (one example repeated as padding)
            assert set(flat) <= set(range(n))
        orders = [dist.DistributedSampler(n, comm, seed=5) for _ in range(2)]
        orders[1].set_epoch(1)
        assert orders[0].indices().tolist() != orders[1].indices().tolist()  # reshuffled
    data = np.arange(20.0).reshape(10, 2)

    class Plain(dz.datasets.Dataset):
        def prepare(self):
            self.data, self.label = data, np.arange(10)

    shard = dist.scatter_dataset(Plain(), comm, seed=2)
    loader = dz.DataLoader(shard, 5, shuffle=False)
    labels = [int(v) for _, t in loader for v in host(t)]
    everyone = comm.allgather_obj(labels)
    assert sorted(everyone[0] + everyone[1]) == list(range(10)), everyone


# --------------------------------------------------------------------------- batch norm


def _sync_bn(comm, device, shape):
    backend = dz.get_backend(device)
    n_local = shape[0]
    xs = [rank_data(r, shape, "float64") * 3 + 1 for r in range(comm.size)]
    ws = [rank_data(10 + r, shape, "float64") for r in range(comm.size)]
    reference = L.BatchNorm(dtype="float64")
    gx_global = dz.Variable(backend.from_host(np.concatenate(xs)))
    y = reference(gx_global)
    (y * backend.from_host(np.concatenate(ws))).sum().backward()

    layer = L.BatchNorm(dtype="float64", comm=comm)
    x = dz.Variable(backend.from_host(xs[comm.rank]))
    y_local = layer(x)
    (y_local * backend.from_host(ws[comm.rank])).sum().backward()
    mine = slice(comm.rank * n_local, (comm.rank + 1) * n_local)
    np.testing.assert_allclose(host(y_local), host(y)[mine], rtol=0, atol=1e-12)
    np.testing.assert_allclose(host(x.grad), host(gx_global.grad)[mine], rtol=0, atol=1e-12)
    for name in ("gamma", "beta"):
        local = host(getattr(layer, name).grad)
        total = host(comm.allreduce(local))
        want = host(getattr(reference, name).grad)
        np.testing.assert_allclose(total, want, rtol=0, atol=1e-10)
    for name in ("avg_mean", "avg_var"):
        np.testing.assert_allclose(
            host(getattr(layer, name)), host(getattr(reference, name)), rtol=0, atol=1e-12
        )
    with dz.test_mode():
        np.testing.assert_allclose(host(layer(x)), host(reference(x)), rtol=0, atol=1e-12)


@check
def sync_batch_norm(comm):
    _sync_bn(comm, "cpu", (6, 3))
    _sync_bn(comm, "cpu", (2, 3, 2, 2))


@check
def sync_batch_norm_strict(comm):
    _sync_bn(comm, "strict", (5, 4))


# --------------------------------------------------------------------------- files


@check
def checkpoint(comm):
    out = Path(os.environ["DIST_CHECK_DIR"])
    model = build("cpu", seed=comm.rank)
    opt = dist.DistributedOptimizer(O.Adam().setup(model), comm)
    x, t = dataset()
    train(model, opt, rank_batches(comm, x, t, seed=0)[:2], dz.get_backend("cpu"))
    path = dist.save_checkpoint(comm, out / "ckpt.npz", model, opt, epoch=2)
    assert Path(path).exists()
    assert sorted(p.name for p in out.glob("ckpt*")) == ["ckpt.npz"]  # one file, no leftovers
    fresh = build("cpu", seed=50 + comm.rank)
    fresh_opt = O.Adam().setup(fresh)
    extras = dist.load_checkpoint(comm, path, fresh, fresh_opt)
    assert extras["epoch"] == 2 and fresh_opt.t == 2
    for p, q in zip(fresh.params(), model.params()):
        np.testing.assert_array_equal(host(p), host(q))
    weights = dist.save_weights(comm, model, out / "w.npz")
    dist.load_weights(comm, fresh, weights)
    try:
        dist.save_weights(comm, model, out / "missing-folder" / "w.npz")
    except dist.DistributedError as exc:
        assert comm.rank == 1 and "rank 0 could not save" in str(exc), exc
    except OSError:
        assert comm.rank == 0
    else:
        raise AssertionError("saving into a missing folder did not raise")


# --------------------------------------------------------------------------- NCCL, faked


@check
def nccl_with_fake_cupy(comm):
    import fakecupy
    import fakenccl
    import pytest

    from dezero_xp.distributed.mpi import MPICommunicator
    from dezero_xp.distributed.nccl import NCCLCommunicator

    with pytest.MonkeyPatch.context() as mp:
        fake = fakecupy.install(mp, n_devices=2)
        cuda = fakenccl.install(mp, fake, comm)
        nccl_comm = NCCLCommunicator(comm)
        assert str(nccl_comm.device) == f"cupy:cuda:{comm.local_rank}", nccl_comm.device
        backend = nccl_comm.device
        fake.recorder.reset()
        for dtype in ("float32", "float64", "int64"):
            for shape in ((), (0,), (5, 3)):
                mine = rank_data(comm.rank, shape, dtype)
                everyone = [rank_data(r, shape, dtype) for r in range(comm.size)]
                x = backend.from_host(mine)
                got = nccl_comm.allreduce(x)
                assert backend_of(got) is backend
                np.testing.assert_allclose(np.asarray(got.get()), np.sum(everyone, axis=0))
                got = nccl_comm.broadcast(x, root=1)
                np.testing.assert_array_equal(got.get(), everyone[1])
                got = nccl_comm.allgather(x)
                np.testing.assert_array_equal(got.get(), np.stack(everyone))
        assert fake.recorder.implicit_d2h == [], fake.recorder.implicit_d2h
        assert fake.recorder.wrong_device == [], fake.recorder.wrong_device
        # one NCCL call per collective of a non-empty array: 3 dtypes x 2 shapes
        assert cuda.calls == {"allReduce": 6, "bcast": 6, "allGather": 6}, cuda.calls
        # the unique id came from rank 0 over MPI; every rank's communicator saw the same one
        ids = comm.allgather_obj(cuda.unique_ids)
        assert ids[0] == ids[1] and len(ids[0]) == 1, ids
        try:
            nccl_comm.allreduce(
                dz.get_backend("cuda:1" if comm.local_rank == 0 else "cuda:0").from_host(np.ones(2))
            )
        except dz.DeviceMismatchError as exc:
            assert "this rank's NCCL communicator drives" in str(exc)
        else:
            raise AssertionError("an array on another GPU did not raise")
        # training: gradients of a model on this rank's GPU through NCCL, as on the CPU
        fake.recorder.reset()
        _equivalence(nccl_comm, backend, names=["MomentumSGD"])
        assert fake.recorder.wrong_device == [], fake.recorder.wrong_device
        # synchronised batch norm on the GPU, its statistics through NCCL, no hidden syncs
        fake.recorder.reset()
        _sync_bn(nccl_comm, backend, (6, 3))
        assert fake.recorder.implicit_d2h == [], fake.recorder.implicit_d2h
        assert fake.recorder.wrong_device == [], fake.recorder.wrong_device
        # CUDA-aware MPI: device buffers handed to MPI directly (after a synchronisation)
        aware = MPICommunicator(cuda_aware_mpi=True)
        before = fake.recorder.explicit_d2h
        x = backend.from_host(rank_data(comm.rank, (3, 2), "float32"))
        everyone = [rank_data(r, (3, 2), "float32") for r in range(comm.size)]
        np.testing.assert_allclose(aware.allreduce(x).get(), np.sum(everyone, axis=0), rtol=1e-6)
        np.testing.assert_array_equal(aware.allgather(x).get(), np.stack(everyone))
        assert backend_of(aware.allgather(x)) is backend
        assert fake.recorder.explicit_d2h == before + 2  # only the two .get() calls above
        staged = MPICommunicator(cuda_aware_mpi=False)
        before = fake.recorder.explicit_d2h
        got = staged.allreduce(backend.from_host(rank_data(comm.rank, (4,), "float64")))
        assert fake.recorder.explicit_d2h > before  # staged through the host, explicitly
        np.testing.assert_allclose(
            got.get(), np.sum([rank_data(r, (4,), "float64") for r in range(2)], axis=0)
        )


# --------------------------------------------------------------------------- abort


def abort(comm):
    if comm.rank == 1:
        raise ValueError("boom from rank 1")
    comm.barrier()  # rank 0 would wait here forever without the abort handler
    print("rank 0 passed the barrier: the job was not aborted", flush=True)


def main(argv):
    out_dir = Path(argv[0])
    os.environ["DIST_CHECK_DIR"] = str(out_dir)
    names = argv[1:] or list(CHECKS)
    comm = dist.init(os.environ.get("DIST_CHECK_TRANSPORT", "mpi"))
    checks = {**CHECKS, **{name: globals()[name] for name in TORCH_CHECKS}}
    if names == ["abort"]:
        abort(comm)
        return 0
    results = {}
    out_file = out_dir / f"rank{comm.rank}.json"
    for name in names:
        try:
            checks[name](comm)
            results[name] = "ok"
        except Exception:
            # The other rank may be inside a collective of this check and would wait forever:
            # record, then end the job (the test reports this traceback and the missing rest).
            results[name] = traceback.format_exc()
            out_file.write_text(json.dumps(results))
            sys.stderr.write(f"[rank {comm.rank}] check {name} failed:\n{results[name]}")
            sys.stderr.flush()
            comm.abort(1)
        comm.barrier()
    out_file.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
