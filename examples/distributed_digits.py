"""Data-parallel Digits MLP: the same training as one process, on every rank of an MPI job.

    mpiexec -n 2 python examples/distributed_digits.py            # two processes, one machine
    python examples/distributed_digits.py                         # one process, same numbers
    mpiexec -n 4 -f hosts python examples/distributed_digits.py   # several machines (host file)
    mpiexec -n 2 python examples/distributed_digits.py --device cuda   # one GPU each, NCCL

Each rank trains on its own shard of every epoch (a shared seed shuffles the epoch; rank r
takes examples r, r + n, ...) with a local batch of ``--batch-size / n``, and the
DistributedOptimizer averages the gradients, so n ranks take exactly the steps of one process
with ``--batch-size``: the final accuracy is the one process's. Rank 0 prints the global
throughput (examples per second over all ranks) and saves the weights; every rank reloads
them and checks its score.

Writes ``distributed_digits.npz`` to the output folder. Exits with status 1 when the reloaded
model disagrees or the accuracy is below ``--min-accuracy`` (not with ``--smoke``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# Runnable from a clean clone without installing the package.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from _common import EXIT_BELOW_THRESHOLD, ensure_dir, evaluate, example_parser  # noqa: E402

import dezero_xp as dz  # noqa: E402
import dezero_xp.distributed as dist  # noqa: E402
import dezero_xp.functions as F  # noqa: E402
from dezero_xp.datasets import Digits  # noqa: E402
from dezero_xp.models import MLP  # noqa: E402
from dezero_xp.optimizers import Adam  # noqa: E402

NUM_CLASSES = 10


def build_model(hidden_sizes, dtype) -> MLP:
    return MLP((*hidden_sizes, NUM_CLASSES), activation=F.relu, dtype=dtype)


def train(comm, args):
    """Train on this rank's shards; returns ``(model, seconds, examples seen by this rank)``."""
    backend = comm.device
    if args.batch_size % comm.size:
        raise SystemExit(
            f"--batch-size {args.batch_size} must be a multiple of the {comm.size} ranks"
        )
    local_batch = args.batch_size // comm.size
    dz.seed(args.seed)  # the same initial weights on every rank (rank 0's are broadcast anyway)
    shard = dist.scatter_dataset(Digits(train=True), comm, seed=args.seed, batch_size=local_batch)
    loader = dz.DataLoader(shard, local_batch, shuffle=False, device=backend, dtype=args.dtype)
    model = build_model(args.hidden, args.dtype).to(backend)
    optimizer = dist.DistributedOptimizer(Adam(alpha=args.lr).setup(model), comm)
    seen = 0
    comm.barrier()
    start = time.perf_counter()
    for epoch in range(args.epochs):
        shard.set_epoch(epoch)
        loader.reset()
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            seen += int(t.shape[0])
    comm.barrier()
    return model, time.perf_counter() - start, seen


def main(argv=None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (all ranks)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128], help="hidden sizes")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's step size")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "float64"], help="the model's dtype"
    )
    parser.add_argument(
        "--transport",
        default="auto",
        choices=list(dist.TRANSPORTS),
        help="how the ranks exchange gradients",
    )
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=0.95,
        help="exit with status 1 below this test accuracy",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 2

    comm = dist.init(args.transport, device=args.device)
    say = print if comm.rank == 0 else (lambda *a, **k: None)
    say(f"dezero_xp {dz.__version__}: Digits MLP, {comm.size} rank(s), {comm.transport} transport")
    say(f"  ({comm.reason}); rank 0 trains on {comm.device}")
    model, seconds, seen = train(comm, args)
    total = comm.allreduce(dz.get_backend("cpu").asarray([seen]))[0]
    slowest = float(comm.allreduce(dz.get_backend("cpu").asarray([seconds]), op="max")[0])
    test_loader = dz.DataLoader(Digits(train=False), 256, shuffle=False, device=comm.device)
    test_loss, test_acc = evaluate(model, test_loader)
    n_test = len(test_loader.dataset)
    say(
        f"after {args.epochs} epochs: {int(total)} examples in {slowest:.2f} s = "
        f"{total / slowest:,.0f} examples/s over {comm.size} rank(s); test loss "
        f"{test_loss:.4f}, test accuracy {test_acc:.4f} ({round(test_acc * n_test)}/{n_test})"
    )

    out = ensure_dir(args.output_dir)
    weights = dist.save_weights(comm, model, out / "distributed_digits.npz")
    reloaded = build_model(args.hidden, args.dtype).to(comm.device)
    dist.load_weights(comm, reloaded, weights)
    _, reloaded_acc = evaluate(reloaded, test_loader)
    say(f"weights saved by rank 0 to {weights}; reloaded on every rank")

    if reloaded_acc != test_acc:
        print(f"FAILED on rank {comm.rank}: reloaded model scores {reloaded_acc}, not {test_acc}")
        return EXIT_BELOW_THRESHOLD
    if not args.smoke and test_acc < args.min_accuracy:
        say(f"FAILED: test accuracy {test_acc:.4f} is below {args.min_accuracy}")
        return EXIT_BELOW_THRESHOLD
    return 0


if __name__ == "__main__":
    sys.exit(main())
