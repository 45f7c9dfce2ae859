"""Data-parallel benchmarks: gradient all-reduce bandwidth and training throughput, 2 ranks vs 1.

    python benchmarks/bench_distributed.py            # launches mpiexec itself; prints a table
    python benchmarks/bench_distributed.py --smoke    # tiny sizes, a few seconds (CI)

1. **All-reduce**: the gradients of a 784-1000-1000-10 MLP (float32, 1.79 M values, 7.2 MB)
   averaged by ``DistributedOptimizer.average_gradients`` (flags exchange, packing into buckets,
   one all-reduce per bucket, scaling, views back) against a raw mpi4py
   ``Allreduce(IN_PLACE, buffer)`` of the same bytes, interleaved in one ``mpiexec -n 2`` run.
   Figure: raw time / DistributedOptimizer time (1.0 = no overhead; the target is >= 0.9).
2. **Throughput**: SGD training steps of the same MLP on synthetic data with a local batch of
   100, ``mpiexec -n 1`` against ``mpiexec -n 2`` (weak scaling: each rank its own batch), one
   BLAS thread per process, the launches alternated; figure: examples/s of 2 ranks over 1
   (the target is >= 1.7 on a 2-core machine). As a control, two independent one-process jobs
   run at the same time (no communication): what the machine itself allows at that moment.

Times are the slowest rank's; minima and medians over the rounds (on a shared machine the two
differ a lot: see benchmarks/README.md). Not a pytest-benchmark module: it needs
several processes. Results also go to ``benchmarks/results/distributed-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = (784, 1000, 1000, 10)
SMOKE_SIZES = (64, 32, 10)


def build(sizes):
    import dezero_xp as dz
    import dezero_xp.layers as L

    dz.seed(0)
    model = dz.Model()
    model.layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        setattr(model, f"l{i}", L.Linear(n_out, in_size=n_in))
        model.layers.append(getattr(model, f"l{i}"))
    return model


def forward(model, x):
    import dezero_xp.functions as F

    for layer in model.layers[:-1]:
        x = F.relu(layer(x))
    return model.layers[-1](x)


def _slowest(comm, seconds: float) -> float:
    return float(comm.allreduce(np.array([seconds]), op="max")[0])


def worker_allreduce(sizes, rounds, bucket_bytes):
    import dezero_xp as dz
    import dezero_xp.distributed as dist
    from dezero_xp.optimizers import SGD

    comm = dist.init("mpi")
    model = build(sizes)
    opt = dist.DistributedOptimizer(SGD().setup(model), comm, bucket_bytes=bucket_bytes)
    params = list(model.params())
    rng = np.random.default_rng(comm.rank)
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    total = sum(g.size for g in grads)
    raw = np.concatenate([g.ravel() for g in grads])
    MPI = comm.MPI
    dist_s, raw_s = [], []

    def ours():
        opt.average_gradients(params)

    def raw_allreduce():
        comm.comm.Allreduce(MPI.IN_PLACE, raw)

    for i in range(rounds):
        for p, g in zip(params, grads):
            p.grad = dz.Variable(g)
        pair = [(ours, dist_s), (raw_allreduce, raw_s)]
        for fn, times in pair if i % 2 else pair[::-1]:  # alternate which goes first
            comm.barrier()
            start = time.perf_counter()
            fn()
            times.append(_slowest(comm, time.perf_counter() - start))
    expected = sum(np.random.default_rng(r).standard_normal(params[0].shape) for r in range(2))
    np.testing.assert_allclose(params[0].grad.data, expected / 2, rtol=1e-5, atol=1e-6)
    return {
        "values": int(total),
        "bytes": int(total * 4),
        "buckets": len(opt._buckets(params)),
        "dist_s": min(dist_s),
        "raw_s": min(raw_s),
        "dist_median_s": float(np.median(dist_s)),
        "raw_median_s": float(np.median(raw_s)),
    }


def worker_train(sizes, batch, steps):
    import dezero_xp.distributed as dist
    import dezero_xp.functions as F
    from dezero_xp.optimizers import SGD

    comm = dist.init("mpi")
    model = build(sizes)
    opt = dist.DistributedOptimizer(SGD(lr=0.01).setup(model), comm)
    rng = np.random.default_rng(comm.rank)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    t = rng.integers(0, sizes[-1], batch)

    def step():
        loss = F.softmax_cross_entropy(forward(model, x), t)
        model.cleargrads()
        loss.backward()
        opt.update()

    step()  # warm-up
    comm.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = _slowest(comm, time.perf_counter() - start)
    return {"ranks": comm.size, "examples_per_s": comm.size * batch * steps / seconds}


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def _command(n: int, args, smoke: bool):
    command = [_mpiexec(), "-n", str(n), sys.executable, __file__, "--worker", *args]
    return command + (["--smoke"] if smoke else [])


def _env():
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _result(command, stdout, stderr, returncode) -> dict:
    if returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stdout}\n{stderr}")
    return json.loads(stdout.strip().splitlines()[-1])


def _launch(n: int, *args: str, smoke: bool = False) -> dict:
    command = _command(n, args, smoke)
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600)
    return _result(command, done.stdout, done.stderr, done.returncode)


def _launch_pair(*args: str, smoke: bool = False) -> float:
    """Two one-process jobs at the same time, no communication: the machine's own ceiling."""
    command = _command(1, args, smoke)
    procs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        for _ in range(2)
    ]
    total = 0.0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        total += _result(command, out, err, proc.returncode)["examples_per_s"]
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--bucket-mb", type=float, default=16.0)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = SMOKE_SIZES if args.smoke else SIZES
    if args.worker:
        kind, *rest = args.worker
        if kind == "allreduce":
            out = worker_allreduce(sizes, int(rest[0]), int(float(rest[1])))
        else:
            out = worker_train(sizes, int(rest[0]), int(rest[1]))
        from dezero_xp.distributed import get_communicator

        if get_communicator().rank == 0:
            print(json.dumps(out))
        return 0

    rounds = args.rounds or (2 if args.smoke else 20)
    bucket = int(args.bucket_mb * 2**20)
    reduce = _launch(2, "allreduce", str(rounds), str(bucket), smoke=args.smoke)
    ratio = reduce["raw_s"] / reduce["dist_s"]
    median_ratio = reduce["raw_median_s"] / reduce["dist_median_s"]
    batch, steps = (10, 2) if args.smoke else (100, 20)
    one = two = pair = 0.0
    train = ("train", str(batch), str(steps))
    for _ in range(1 if args.smoke else 3):  # alternate, keep the best of each
        one = max(one, _launch(1, *train, smoke=args.smoke)["examples_per_s"])
        two = max(two, _launch(2, *train, smoke=args.smoke)["examples_per_s"])
        pair = max(pair, _launch_pair(*train, smoke=args.smoke))
    speedup = two / one
    mb = reduce["bytes"] / 1e6
    print(f"MLP {'-'.join(map(str, sizes))}, float32 gradients: {mb:.1f} MB")
    print(
        f"all-reduce, 2 ranks: DistributedOptimizer {reduce['dist_s'] * 1e3:.2f} ms "
        f"({reduce['buckets']} bucket(s)), raw mpi4py Allreduce {reduce['raw_s'] * 1e3:.2f} ms: "
        f"{ratio:.2f}x the raw bandwidth (target >= 0.9); medians "
        f"{reduce['dist_median_s'] * 1e3:.2f} vs {reduce['raw_median_s'] * 1e3:.2f} ms: "
        f"{median_ratio:.2f}x"
    )
    print(
        f"training, local batch {batch}: 1 rank {one:,.0f} examples/s, 2 ranks {two:,.0f} "
        f"examples/s: {speedup:.2f}x (target >= 1.7); two independent 1-rank jobs at once "
        f"(no communication, the machine's ceiling): {pair:,.0f} examples/s = {pair / one:.2f}x"
    )
    results = {
        "allreduce": reduce,
        "ratio": ratio,
        "median_ratio": median_ratio,
        "one": one,
        "two": two,
        "speedup": speedup,
    }
    if not args.smoke:
        folder = ROOT / "benchmarks" / "results"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (folder / f"distributed-{stamp}.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
