"""Data-parallel training over processes, GPUs and machines (MPI, NCCL, torch.distributed).

    import dezero_xp.distributed as dist

    comm = dist.init()                       # mpi / nccl / torch / single, picked and logged
    model = MLP((1000, 10)).to(comm.device)
    optimizer = dist.DistributedOptimizer(Adam().setup(model), comm)
    shard = dist.scatter_dataset(train_set, comm, seed=0)
    loader = DataLoader(shard, batch_size, shuffle=False)
    for epoch in range(epochs):
        shard.set_epoch(epoch)
        for x, t in loader:
            ...; loss.backward(); optimizer.update()
    dist.save_weights(comm, model, "model.npz")   # rank 0 writes

Run it with ``mpiexec -n 2 python train.py`` (or without a launcher, as one process).
This file only assembles the modules of the package.
"""

from dezero_xp.distributed.base import (
    Communicator,
    DistributedError,
    SingleCommunicator,
)
from dezero_xp.distributed.checkpoint import (
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from dezero_xp.distributed.context import TRANSPORTS, get_communicator, init, launched_by_mpi
from dezero_xp.distributed.data import DatasetShard, DistributedSampler, scatter_dataset
from dezero_xp.distributed.failure import install_abort_handler, uninstall_abort_handler
from dezero_xp.distributed.optimizer import (
    DEFAULT_BUCKET_BYTES,
    DistributedOptimizer,
    create_multi_node_optimizer,
)

create_communicator = init  # ChainerMN's name

__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "TRANSPORTS",
    "Communicator",
    "DatasetShard",
    "DistributedError",
    "DistributedOptimizer",
    "DistributedSampler",
    "SingleCommunicator",
    "create_communicator",
    "create_multi_node_optimizer",
    "get_communicator",
    "init",
    "install_abort_handler",
    "launched_by_mpi",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
    "scatter_dataset",
    "uninstall_abort_handler",
]
