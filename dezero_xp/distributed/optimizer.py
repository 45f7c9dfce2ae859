"""Data-parallel training: :class:`DistributedOptimizer` (ChainerMN's
``create_multi_node_optimizer`` beside it) averages gradients over all ranks in flat buckets.

``update()`` does, on every rank:

1. once (and again when new parameters appear, e.g. lazily sized layers): check that every rank
   holds the same parameter names, shapes and dtypes, then broadcast rank 0's values of the
   parameters not broadcast yet; a mismatch raises :class:`DistributedError` on *every* rank,
   naming the first differing parameter of each, instead of hanging in a collective;
2. pack the gradients into flat buffers of at most ``bucket_bytes`` each (one dtype and device
   per bucket; the buffers are reused from step to step), all-reduce each bucket once (not
   once per parameter; each rank's gradients are divided by the number of ranks while they are
   packed, so the sum is the mean) and hand each parameter a view of its slice as its gradient.
   A gradient missing on some ranks counts as zeros there; one missing on every rank stays
   None (each bucket ends with one presence slot per parameter, summed with the gradients, so
   this costs no extra exchange on host arrays);
3. run the wrapped optimizer, hooks included, exactly as in one process.

Parameters that exist when the DistributedOptimizer is made are checked and broadcast right
then, so the first gradients are already computed on rank 0's values. Lazily created
parameters get theirs at the first update, after their first gradients were computed on each
rank's own initial values; seed every rank alike (``dz.seed``) and those are equal anyway.

May import: numpy (the host fast path), the standard library, dezero_xp.backend, dezero_xp.core and
dezero_xp.distributed.base.
"""

from __future__ import annotations

import numpy as np

from dezero_xp.backend import get_backend, to_host
from dezero_xp.core import wrap_array
from dezero_xp.distributed.base import DistributedError

__all__ = ["DEFAULT_BUCKET_BYTES", "DistributedOptimizer", "create_multi_node_optimizer"]

DEFAULT_BUCKET_BYTES = 16 * 2**20


def _named_params(target) -> list:
    """``[(name, Parameter)]`` of ``target``, each parameter once, in ``params()`` order."""
    names: dict = {}
    entries = getattr(target, "_state_entries", None)
    if callable(entries):
        for key, owner, attr, is_param in entries():
            if is_param:
                names.setdefault(id(owner.__dict__[attr]), key)
    out, seen = [], set()
    for i, param in enumerate(target.params()):
        if id(param) not in seen:
            seen.add(id(param))
            out.append((names.get(id(param)) or param.name or f"param{i}", param))
    return out


def _describe(meta) -> str:
    name, shape, dtype, library = meta
    if shape is None:
        return f"{name} (not initialised yet)"
    return f"{name} shape {shape} {dtype} ({library})"


def _meta(name, param):
    if param.data is None:
        return (name, None, None, None)
    return (name, tuple(int(n) for n in param.shape), str(param.dtype), param.backend.name)


def mismatch_message(everyone: list) -> str | None:
    """None when every rank's parameter list matches rank 0's, else what differs on each."""
    reference = everyone[0]
    lines = []
    for rank, metas in enumerate(everyone[1:], start=1):
        if metas == reference:
            continue
        for i in range(max(len(metas), len(reference))):
            mine = metas[i] if i < len(metas) else None
            theirs = reference[i] if i < len(reference) else None
            if mine != theirs:
                ours = _describe(theirs) if theirs else "no such parameter"
                here = _describe(mine) if mine else "no such parameter"
                lines.append(f"parameter #{i}: rank 0 has {ours}, rank {rank} has {here}")
                break
    if not lines:
        return None
    counts = ", ".join(f"rank {r}: {len(m)}" for r, m in enumerate(everyone))
    return (
        "DistributedOptimizer: the ranks hold different models (parameters per rank: "
        f"{counts}); first difference per rank: " + "; ".join(lines) + ". Build the same model "
        "on every rank (same layer sizes and dtype) before training."
    )


class _Bucket:
    """Parameters packed into one flat buffer: ``(param, start, stop, shape)`` entries.

    With ``presence``, the buffer ends with one slot per parameter: 1 where this rank has a
    gradient for it, else 0; after the all-reduce the slots count the ranks that had one.
    """

    __slots__ = ("backend", "dtype", "entries", "values", "presence", "buffer")

    def __init__(self, backend, dtype, presence=False):
        self.backend, self.dtype, self.presence = backend, dtype, presence
        self.entries, self.values, self.buffer = [], 0, None

    def add(self, param):
        n = _numel(param)
        self.entries.append((param, self.values, self.values + n, tuple(param.shape)))
        self.values += n

    @property
    def size(self) -> int:
        return self.values + (len(self.entries) if self.presence else 0)


class DistributedOptimizer:
    """Wrap ``optimizer`` (already ``setup`` on the model) so that it trains with ``comm``.

    Everything else (``lr``, ``add_hook``, ``state_dict``, ...) is the wrapped optimizer's, for
    reading and for setting (``optimizer.lr = 0.01`` changes the wrapped optimizer's).
    ``bucket_bytes`` bounds the bytes of one all-reduce.
    """

    def __init__(self, optimizer, comm, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        if getattr(optimizer, "target", None) is None:
            raise RuntimeError(
                "DistributedOptimizer: call optimizer.setup(model) before wrapping the optimizer"
            )
        if int(bucket_bytes) < 1:
            raise ValueError(f"DistributedOptimizer: bucket_bytes must be >= 1, got {bucket_bytes}")
        self.actual_optimizer = optimizer
        self.comm = comm
        self.bucket_bytes = int(bucket_bytes)
        self._broadcast_ids: set = set()
        self._checked_ids: frozenset = frozenset()
        self._layouts: dict = {}
        self.broadcast_parameters()

    _OWN = frozenset(
        ("actual_optimizer", "comm", "bucket_bytes", "_broadcast_ids", "_checked_ids", "_layouts")
    )

    def __getattr__(self, name):
        if name == "actual_optimizer":  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.actual_optimizer, name)

    def __setattr__(self, name, value):
        # ``optimizer.lr = 0.01`` (a schedule) must reach the optimizer that uses it.
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.actual_optimizer, name, value)

    def setup(self, target):
        """Point the wrapped optimizer at ``target``; its parameters are synchronised again."""
        self.actual_optimizer.setup(target)
        self._broadcast_ids, self._checked_ids, self._layouts = set(), frozenset(), {}
        self.broadcast_parameters()
        return self

    def add_hook(self, f):
        """Add a hook to the wrapped optimizer (it runs after the gradients are averaged)."""
        self.actual_optimizer.add_hook(f)

    # ------------------------------------------------------------------ synchronisation
    def check_parameters(self, params=None) -> None:
        """Raise DistributedError on every rank unless all ranks hold the same parameters."""
        params = _named_params(self.actual_optimizer.target) if params is None else params
        metas = [_meta(name, p) for name, p in params]
        message = mismatch_message(self.comm.allgather_obj(metas))
        if message is not None:
            raise DistributedError(message)
        self._checked_ids = frozenset(id(p) for _, p in params)

    def broadcast_parameters(self) -> None:
        """Check the parameters, then give every rank rank 0's values of the initialised ones
        not broadcast before (a collective: call it on every rank)."""
        params = _named_params(self.actual_optimizer.target)
        self.check_parameters(params)
        if self.comm.size == 1:
            return
        todo = [p for _, p in params if p.data is not None and id(p) not in self._broadcast_ids]
        for bucket in self._buckets(todo):
            buffer = self.comm.broadcast_buffer(self._pack(bucket, lambda p: p.data), 0)
            xp = bucket.backend.xp
            with bucket.backend:
                for param, value in self._unpack(bucket, buffer):
                    param.data = xp.asarray(value, copy=True)  # its own array, not a view
        self._broadcast_ids.update(id(p) for p in todo)

    # ------------------------------------------------------------------ update
    def update(self, *args, **kwargs):
        """Average the gradients over all ranks, then run the wrapped optimizer's update."""
        if self.comm.size > 1:
            params = [p for _, p in _named_params(self.actual_optimizer.target)]
            if frozenset(id(p) for p in params) != self._checked_ids or any(
                p.data is not None and id(p) not in self._broadcast_ids for p in params
            ):
                self.broadcast_parameters()
            self.average_gradients(params)
        return self.actual_optimizer.update(*args, **kwargs)

    def average_gradients(self, params) -> None:
        """Replace every gradient by its mean over the ranks: one all-reduce per bucket.

        Host buckets carry the presence slots (see ``_Bucket``), so they need no other
        exchange; for GPU buckets the presence flags go over the host first (no device sync).
        """
        params = [p for p in params if p.data is not None]  # lazy ones have no gradient yet
        key = tuple(id(p) for p in params)
        buckets = self._layouts.get(key)
        if buckets is None:
            buckets = self._layouts[key] = self._buckets(params, presence=True)
        on_gpu = [entry[0] for b in buckets if not b.presence for entry in b.entries]
        present = {}
        if on_gpu:
            cpu = get_backend("cpu")
            flags = cpu.xp.asarray([p.grad is not None for p in on_gpu], dtype=cpu.xp.int32)
            flags = cpu.to_host(self.comm.allreduce_buffer(flags, "sum"))
            present = {id(p): bool(f) for p, f in zip(on_gpu, flags)}
        scale = 1.0 / self.comm.size
        for bucket in buckets:
            # Each rank's share is scaled while packing: the sum is then the mean.
            buffer = self._pack(bucket, _grad_data, reuse=True, scale=scale)
            reduced = self.comm.allreduce_buffer(buffer, "sum")
            if bucket.presence:
                with bucket.backend:
                    counts = to_host(reduced[bucket.values :])
                flags = [bool(c) for c in counts > 0]
            else:
                flags = [present[id(entry[0])] for entry in bucket.entries]
            backend = bucket.backend
            for (param, value), flag in zip(self._unpack(bucket, reduced), flags):
                param.grad = wrap_array(value, backend) if flag else None

    # ------------------------------------------------------------------ buckets
    def _buckets(self, params, presence=False) -> list:
        """Consecutive parameters of one backend and dtype, at most ``bucket_bytes`` a bucket
        (``presence``: with presence slots, on host backends)."""
        buckets, open_ = [], {}  # type: ignore[var-annotated]
        for param in params:
            key = (id(param.backend), str(param.dtype))
            bucket = open_.get(key)
            itemsize = _itemsize(param)
            nbytes = itemsize * _numel(param)
            if (
                bucket is not None
                and bucket.values
                and (bucket.values * itemsize + nbytes) > self.bucket_bytes
            ):
                bucket = None
            if bucket is None:
                host = presence and not param.backend.is_gpu
                bucket = open_[key] = _Bucket(param.backend, param.dtype, host)
                buckets.append(bucket)
            bucket.add(param)
        return buckets

    @staticmethod
    def _pack(bucket, read, reuse=False, scale=None):
        """One flat buffer holding ``read(param)`` (times ``scale``) of each parameter, zeros
        where it is None. NumPy buffers are filled in one pass (``multiply(..., out=)``)."""
        backend, xp = bucket.backend, bucket.backend.xp
        with backend:
            buffer = bucket.buffer if reuse else None
            if buffer is None:
                buffer = xp.empty((bucket.size,), dtype=bucket.dtype)
                if reuse:
                    bucket.buffer = buffer
            host = type(buffer) is np.ndarray
            for i, (param, start, stop, _shape) in enumerate(bucket.entries):
                value = read(param)
                if bucket.presence:
                    buffer[bucket.values + i] = 0 if value is None else 1
                if value is None:
                    buffer[start:stop] = 0
                elif host:
                    np.multiply(
                        value,
                        1 if scale is None else scale,
                        out=buffer[start:stop].reshape(np.shape(value)),
                    )
                elif scale is None:
                    buffer[start:stop] = xp.reshape(value, (-1,))
                else:
                    buffer[start:stop] = xp.reshape(value, (-1,)) * scale
        return buffer

    @staticmethod
    def _unpack(bucket, buffer) -> list:
        """``(param, view of its slice of buffer in its shape)`` for each parameter."""
        xp = bucket.backend.xp
        with bucket.backend:
            return [
                (param, xp.reshape(buffer[start:stop], shape))
                for param, start, stop, shape in bucket.entries
            ]


def _grad_data(param):
    return None if param.grad is None else param.grad.data


def _numel(param) -> int:
    n = 1
    for d in param.shape:
        n *= int(d)
    return n


def _itemsize(param) -> int:
    bits = (
        param.backend.xp.finfo(param.dtype).bits
        if param.backend.xp.isdtype(param.dtype, "real floating")
        else param.backend.xp.iinfo(param.dtype).bits
    )
    return bits // 8


def create_multi_node_optimizer(actual_optimizer, communicator, bucket_bytes=DEFAULT_BUCKET_BYTES):
    """ChainerMN's name for :class:`DistributedOptimizer` (same arguments, same object)."""
    return DistributedOptimizer(actual_optimizer, communicator, bucket_bytes)
