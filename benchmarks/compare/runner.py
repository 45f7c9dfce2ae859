"""Run one workload on one implementation: checksums first, then memory and timings.

The implementation object (a module or a ``DezeroAPI``) provides the builders ``chain``,
``elementwise``, ``tanh_3rd``, ``mlp``, ``cnn`` and ``to_host``; this module owns everything
that must be identical across implementations: input data, the order of the steps, what goes
into the checksums and how time is measured.

Imports: the standard library, NumPy and the benchmark's ``common`` module.
"""

from __future__ import annotations

import time

from .common import (
    CHECK_STEPS,
    SGD_LR,
    WORKLOADS,
    TimingPlan,
    chain_memory,
    checksum,
    cnn_data,
    elementwise_data,
    measure,
    median_ms,
    mlp_data,
    tanh_data,
    timed,
)

WARMUP_CHAIN_OPS = 30  # a tiny chain run before measuring memory, to load lazy code paths


def run_workload(impl, name: str, smoke: bool, plan: TimingPlan) -> dict:
    """Metrics, checksums and raw timings of workload ``name`` on ``impl``."""
    sizes = WORKLOADS[name].sizes(smoke)
    family = name.split("_")[0]
    return _RUNNERS[family](impl, sizes, plan)


def _chain(impl, sizes, plan):
    ops = sizes["ops"]
    run = impl.chain(ops)
    metrics = {}
    if sizes["memory"]:
        impl.chain(WARMUP_CHAIN_OPS)()
        metrics.update(chain_memory(run, ops, traced=impl.tracemalloc_sees_all))
    y, gx = run()
    checksums = {"y": checksum(impl.to_host(y)), "gx": checksum(impl.to_host(gx))}
    del y, gx
    timings = measure(timed(run), plan)
    metrics["fwd_bwd_ms"] = median_ms(timings)
    metrics["us_per_op"] = timings["total"]["median_s"] * 1e6 / ops
    return {"metrics": metrics, "checksums": checksums, "timings": timings}


def _elementwise(impl, sizes, plan):
    run = impl.elementwise(elementwise_data(sizes["n"]))
    y, gx = run()
    checksums = {"y": checksum(impl.to_host(y)), "gx": checksum(impl.to_host(gx))}
    del y, gx
    timings = measure(timed(run), plan)
    return {
        "metrics": {"fwd_bwd_ms": median_ms(timings)},
        "checksums": checksums,
        "timings": timings,
    }


def _tanh_3rd(impl, sizes, plan):
    run = impl.tanh_3rd(tanh_data(sizes["n"]))
    checksums = {"gx3": checksum(impl.to_host(run()))}
    timings = measure(timed(run), plan)
    metrics = {"total_us": timings["total"]["median_s"] * 1e6}
    return {"metrics": metrics, "checksums": checksums, "timings": timings}


def _mlp(impl, sizes, plan):
    params, x, t = mlp_data(sizes["sizes"], sizes["batch"])
    model = impl.mlp(params, x, t, SGD_LR)
    checksums = {}
    for k in range(CHECK_STEPS):
        loss = model.forward()
        model.backward(loss)
        checksums[f"loss{k}"] = checksum(impl.to_host(loss))
        if k == 0:
            for i, g in enumerate(model.grads()):
                checksums[f"grad{i}"] = checksum(impl.to_host(g))
        model.update()
        del loss

    clock = time.perf_counter

    def step():
        t0 = clock()
        loss = model.forward()
        t1 = clock()
        model.backward(loss)
        t2 = clock()
        model.update()
        t3 = clock()
        del loss  # releasing the step's graph is part of a training step's cost
        t4 = clock()
        return {"forward": t1 - t0, "backward": t2 - t1, "update": t3 - t2, "step": t4 - t0}

    timings = measure(step, plan)
    metrics = {f"{phase}_ms": median_ms(timings, phase) for phase in timings}
    return {"metrics": metrics, "checksums": checksums, "timings": timings}


def _cnn(impl, sizes, plan):
    params, x, t = cnn_data(sizes["batch"], sizes["hw"], sizes["channels"], sizes["classes"])
    run = impl.cnn(params, x, t)
    loss, grads = run()
    checksums = {"loss": checksum(impl.to_host(loss))}
    for name, g in zip(("W_conv", "b_conv", "W_fc", "b_fc"), grads):
        checksums[f"grad_{name}"] = checksum(impl.to_host(g))
    del loss, grads
    timings = measure(timed(run), plan)
    return {
        "metrics": {"fwd_bwd_ms": median_ms(timings)},
        "checksums": checksums,
        "timings": timings,
    }


_RUNNERS = {
    "chain": _chain,
    "elementwise": _elementwise,
    "tanh": _tanh_3rd,
    "mlp": _mlp,
    "cnn": _cnn,
}
