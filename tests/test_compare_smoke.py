"""Smoke test of the comparison harness (``python -m benchmarks.compare``).

Runs the dezero_xp and NumPy-floor workers once, at tiny sizes, through the real driver code
(separate processes, JSON, checksum verification, table), then checks that the verification
catches a deliberately wrong result. Needs neither DeZero nor PyTorch.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package lives next to tests/, not installed

from benchmarks.compare import run, verify  # noqa: E402
from benchmarks.compare.common import WORKLOADS  # noqa: E402
from benchmarks.compare.report import render  # noqa: E402


@pytest.fixture(scope="module")
def smoke_docs():
    """Worker documents of dezero_xp and the NumPy floor on every workload, smoke sizes."""
    args = run.parse_args(["--smoke", "--impls", "dezero_xp,numpy", "--no-save"])
    assert args.isolate == "impl"  # one process per implementation keeps this fast
    return run.collect(args)


def test_floor_runs_every_workload(smoke_docs):
    floor = smoke_docs["numpy"]
    assert "unavailable" not in floor
    assert set(floor["workloads"]) == set(WORKLOADS)
    for name, result in floor["workloads"].items():
        assert result["status"] == "ok", (name, result.get("reason"))
        for metric in WORKLOADS[name].metrics:
            assert metric.key in result["metrics"], (name, metric.key)


def test_dezero_xp_runs_and_agrees_with_the_floor(smoke_docs):
    ours = smoke_docs["dezero_xp"]
    assert "unavailable" not in ours, ours.get("unavailable")
    statuses = {name: result["status"] for name, result in ours["workloads"].items()}
    assert set(statuses) == set(WORKLOADS)
    assert "error" not in statuses.values(), {
        name: r.get("reason") for name, r in ours["workloads"].items() if r["status"] == "error"
    }
    # Pending only for a missing library function, never for the scalar-graph workloads.
    for name in ("chain_1k", "chain_10k", "chain_100k", "elementwise_1m", "tanh_3rd"):
        assert statuses[name] == "ok", name
    report = verify.verify(smoke_docs)
    checked = [name for name, entry in report.items() if "dezero_xp" in entry["checked"]]
    assert checked == [name for name, status in statuses.items() if status == "ok"]
    verify.assert_agreement(report)
    assert run.exit_code(smoke_docs, report) == 0


def test_table_lists_every_metric(smoke_docs):
    report = verify.verify(smoke_docs)
    machine = run.machine_info()
    text = render(smoke_docs, report, machine, threads=1)
    for workload in WORKLOADS.values():
        for metric in workload.metrics:
            assert any(
                line.startswith(workload.name) and metric.label in line
                for line in text.splitlines()
            ), (workload.name, metric.label)
    assert "xp/floor" in text


@pytest.mark.parametrize(
    ("workload", "key", "corrupt"),
    [
        pytest.param(
            "tanh_3rd", "gx3", lambda c: [c[0] + 1e-3 * c[1], c[1], c[2]], id="sum-off-by-1e-3"
        ),
        pytest.param(
            "mlp_b100", "grad2", lambda c: [c[0], c[1] * (1 + 1e-4), c[2]], id="abs-sum-off-1e-4"
        ),
        pytest.param("chain_1k", "gx", lambda c: [float("nan"), c[1], c[2]], id="nan"),
        pytest.param("elementwise_1m", "gx", lambda c: [c[0], c[1], "float64"], id="silent-upcast"),
    ],
)
def test_verification_catches_a_wrong_result(smoke_docs, workload, key, corrupt):
    docs = copy.deepcopy(smoke_docs)
    result = docs["dezero_xp"]["workloads"][workload]
    if result["status"] != "ok":
        pytest.skip(f"dezero_xp {workload} is {result['status']}: {result.get('reason')}")
    result["checksums"][key] = corrupt(result["checksums"][key])
    report = verify.verify(docs)
    assert list(report[workload]["mismatches"]["dezero_xp"])[0].startswith(f"{key}:")
    assert run.exit_code(docs, report) == 2
    with pytest.raises(verify.ChecksumMismatch, match=f"{workload}: dezero_xp disagrees"):
        verify.assert_agreement(report)


def test_verification_catches_a_missing_checksum(smoke_docs):
    docs = copy.deepcopy(smoke_docs)
    del docs["dezero_xp"]["workloads"]["chain_1k"]["checksums"]["gx"]
    report = verify.verify(docs)
    assert report["chain_1k"]["mismatches"]["dezero_xp"] == ["gx: present in only one of the two"]


def test_rounding_noise_within_tolerance_passes(smoke_docs):
    docs = copy.deepcopy(smoke_docs)
    sums = docs["dezero_xp"]["workloads"]["tanh_3rd"]["checksums"]
    s, abs_sum, dtype = sums["gx3"]
    sums["gx3"] = [s + 1e-13 * abs_sum, abs_sum * (1 + 1e-13), dtype]
    assert verify.verify(docs)["tanh_3rd"]["mismatches"] == {}


def test_unavailable_interpreter_is_skipped_with_the_reason():
    args = run.parse_args(
        ["--smoke", "--impls", "dezero", "--workloads", "chain_1k", "--no-save"]
        + ["--dezero-python", str(ROOT / "no-such-python")]
    )
    docs = run.collect(args)
    assert docs["dezero"]["unavailable"].startswith("interpreter not found")
    assert run.exit_code(docs, verify.verify(docs)) == 0


# --------------------------------------------------------------------------- dezero_xp on torch


@pytest.fixture(scope="module")
def torch_smoke_docs(smoke_docs):
    """dezero_xp on torch CPU tensors and PyTorch eager, next to the documents above."""
    pytest.importorskip("torch")
    args = run.parse_args(["--smoke", "--impls", "dezero_xp_torch,torch", "--no-save"])
    return {**smoke_docs, **run.collect(args)}


def test_torch_backend_is_a_default_implementation_in_dezero_xps_interpreter():
    args = run.parse_args(["--dezero-xp-python", "/some/python"])
    assert "dezero_xp_torch" in args.impls
    assert run.INTERPRETER_OF["dezero_xp_torch"] == "dezero_xp"
    assert args.python[run.INTERPRETER_OF["dezero_xp_torch"]] == "/some/python"


def test_dezero_xp_on_torch_runs_and_agrees_with_the_floor(torch_smoke_docs):
    ours = torch_smoke_docs["dezero_xp_torch"]
    assert "unavailable" not in ours, ours.get("unavailable")
    assert ours["environment"]["backend"] == "torch:cpu"
    statuses = {name: result["status"] for name, result in ours["workloads"].items()}
    assert statuses == dict.fromkeys(WORKLOADS, "ok"), {
        name: r.get("reason") for name, r in ours["workloads"].items()
    }
    report = verify.verify(torch_smoke_docs)
    for name, entry in report.items():
        assert entry["reference"] == "numpy"
        assert "dezero_xp_torch" in entry["checked"], name
    verify.assert_agreement(report)
    assert run.exit_code(torch_smoke_docs, report) == 0


def test_verification_catches_a_wrong_result_on_torch(torch_smoke_docs):
    docs = copy.deepcopy(torch_smoke_docs)
    sums = docs["dezero_xp_torch"]["workloads"]["mlp_b100"]["checksums"]
    sums["grad0"] = [sums["grad0"][0], sums["grad0"][1], "float64"]
    report = verify.verify(docs)
    assert report["mlp_b100"]["mismatches"]["dezero_xp_torch"] == [
        "grad0: dtype float64 vs float32"
    ]
    assert run.exit_code(docs, report) == 2


def test_table_has_the_torch_backend_ratio(torch_smoke_docs):
    docs = copy.deepcopy(torch_smoke_docs)
    docs["dezero_xp_torch"]["workloads"]["mlp_b100"]["metrics"]["step_ms"] = 5.0
    docs["torch"]["workloads"]["mlp_b100"]["metrics"]["step_ms"] = 4.0
    text = render(docs, verify.verify(docs), run.machine_info(), threads=1)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("workload"))
    assert header.split()[-1] == "xp_torch/torch" and "dezero_xp_torch" in header.split()
    row = next(line for line in lines if line.startswith("mlp_b100") and "train step" in line)
    assert row.split()[-1] == "1.25x"


def test_dezero_xp_on_torch_is_skipped_with_the_reason_without_torch(tmp_path, monkeypatch):
    blocked = tmp_path / "torch"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    args = run.parse_args(
        ["--smoke", "--impls", "dezero_xp_torch", "--workloads", "chain_1k", "--no-save"]
    )
    docs = run.collect(args)
    reason = docs["dezero_xp_torch"]["unavailable"]
    assert "torch is blocked in this test" in reason
    assert "--dezero-xp-python" in reason and "$DEZERO_XP_PYTHON" in reason
    assert run.exit_code(docs, verify.verify(docs)) == 0


# --------------------------------------------------------------------------- rounds


def _doc(step_ms, status="ok"):
    result = {"status": status, "reason": "boom"} if status != "ok" else {"status": "ok"}
    if status == "ok":
        result.update(metrics={"step_ms": step_ms, "mem": None}, checksums={"loss": [1, 1, "f"]})
    return {"impl": "x", "workloads": {"mlp_b100": result}}


def test_rounds_report_the_median_of_each_metric():
    merged = run.merge_rounds([_doc(3.0), _doc(9.0), _doc(4.0)])
    result = merged["workloads"]["mlp_b100"]
    assert result["metrics"] == {"step_ms": 4.0, "mem": None}
    assert [m["step_ms"] for m in result["rounds"]] == [3.0, 9.0, 4.0]
    assert result["checksums"] == {"loss": [1, 1, "f"]}


def test_rounds_keep_a_failure_of_any_round():
    merged = run.merge_rounds([_doc(3.0), _doc(None, status="error")])
    assert merged["workloads"]["mlp_b100"] == {"status": "error", "reason": "boom"}


def test_rounds_interleave_implementations(monkeypatch):
    calls = []

    def fake_worker(python, impl, workloads, args):
        calls.append(impl)
        return {"impl": impl, "workloads": {w: {"status": "ok", "metrics": {}} for w in workloads}}

    monkeypatch.setattr(run, "run_worker", fake_worker)
    args = run.parse_args(
        ["--impls", "dezero_xp,numpy", "--workloads", "chain_1k", "--rounds", "3", "--no-save"]
    )
    run.collect(args)
    assert calls == ["dezero_xp", "numpy", "numpy", "dezero_xp", "dezero_xp", "numpy"]
