#!/usr/bin/env bash
# One-shot check of dezero_xp on a CUDA machine, offline, in under 8 minutes: the test suite on
# the GPU backends, one example on the GPU, the GPU benchmarks. `bash benchmarks/gpu_check.sh`.
#
# - Needs only numpy, cupy, torch, pytest and pytest-benchmark installed; array-api-compat and
#   array-api-strict are installed from wheels carried in the tree when missing (WHEELS, default
#   wheels/ or .whl/), made on a connected machine with
#   `pip download array-api-compat array-api-strict -d wheels/`.
# - Logs and results go to $OUT (default benchmarks/results/gpu-check-<time>/): summary.txt (one
#   screen: device, versions, GPU case counts, every benchmark ratio), env.txt, tests-gpu.log,
#   example.log, bench_gpu.log, bench_gpu.json.
# - The whole run has a budget (TOTAL_LIMIT, default 450 s); each step gets its own limit
#   (TESTS_LIMIT 320, EXAMPLE_LIMIT 30, BENCH_LIMIT 90) or what is left of the budget if less.
#   The exit status is that of the first failing step; a GPU that is not usable fails the run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/benchmarks/results/gpu-check-$(date +%Y%m%d-%H%M%S)}
PY=${PYTHON:-python3}
TOTAL_LIMIT=${TOTAL_LIMIT:-450}
mkdir -p "$OUT"
: >"$OUT/summary.txt"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME LIMIT LOG command...
  local name=$1 limit=$2 log=$3; shift 3
  local left=$((TOTAL_LIMIT - SECONDS))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -le 5 ]; then
    note "$name: not run, the ${TOTAL_LIMIT} s budget is spent"
    [ "$status" -eq 0 ] && status=124
    return
  fi
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$log" 2>&1
  local rc=$?
  note "$name: exit $rc in $((SECONDS - start)) s (limit $limit s, log: $log)"
  if [ "$rc" -ne 0 ]; then tail -n 3 "$OUT/$log" | sed 's/^/    /' | tee -a "$OUT/summary.txt"; fi
  if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

# 1. Dependencies: install carried wheels only for what is missing (no network needed).
if ! "$PY" -c "import array_api_compat, array_api_strict" 2>/dev/null; then
  WHEELS=${WHEELS:-$( [ -d wheels ] && echo wheels || echo .whl )}
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/dezero-site \
    --find-links "$WHEELS" array-api-compat array-api-strict \
    && export PYTHONPATH="$PYTHONPATH:/tmp/dezero-site" \
    || note "deps: could not install array-api-compat/array-api-strict from $WHEELS"
fi
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
    || echo "nvidia-smi: not available"
  "$PY" - <<'EOF' 2>&1
import sys
import numpy
print("python", sys.version.split()[0], "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as exc:
    print("cupy: not usable:", type(exc).__name__, exc)
try:
    import torch
    print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as exc:
    print("torch: not usable:", type(exc).__name__, exc)
import array_api_compat
print("array-api-compat", array_api_compat.__version__)
from dezero_xp import backend as B
print("dezero_xp CUDA status:", B._cuda_status())
EOF
} >"$OUT/env.txt"
sed 's/^/env: /' "$OUT/env.txt" | tee -a "$OUT/summary.txt"

# 2. The whole suite on the GPU backends, selected explicitly: an unusable one fails the run
#    (what `nox -s tests-gpu` does; nox itself is not needed here).
BACKENDS=${GPU_BACKENDS:-$("$PY" -c "import torch; print('cupy,torch:cuda' if torch.cuda.is_available() else 'cupy')" 2>/dev/null || echo cupy)}
PARALLEL=()
if "$PY" -c "import xdist" 2>/dev/null; then PARALLEL=(-n "${TEST_WORKERS:-4}"); fi
step tests-gpu "${TESTS_LIMIT:-320}" tests-gpu.log env DEZERO_XP_TEST_BACKENDS="$BACKENDS" \
  "$PY" -m pytest -p no:cacheprovider -q "${PARALLEL[@]}"
counts=$(grep -E '^[0-9]+ (passed|failed|skipped)|^=+ .*(passed|failed|error)' "$OUT/tests-gpu.log" | tail -n 1 | tr -d '=')
note "tests ($BACKENDS): ${counts:-no pytest summary (see tests-gpu.log)}"
grep -E '^GPU cases:' "$OUT/tests-gpu.log" | tail -n 1 | tee -a "$OUT/summary.txt"

# 3. One example on the GPU (numpy and dezero_xp only); strict device mode, so a silent CPU
#    fallback fails the step.
EXAMPLE=${EXAMPLE:-examples/gradient_demo.py}
step example "${EXAMPLE_LIMIT:-30}" example.log env DEZERO_XP_STRICT_DEVICES=1 \
  "$PY" "$EXAMPLE" --device cuda --smoke

# 4. GPU benchmarks, dezero_xp vs torch in the same run (BENCH_ARGS=--smoke for a quick one);
#    --require-gpu: no usable GPU is a failure here, not a skip.
step bench_gpu "${BENCH_LIMIT:-90}" bench_gpu.log env DEZERO_XP_STRICT_DEVICES=1 \
  "$PY" benchmarks/bench_gpu.py --require-gpu --json "$OUT/bench_gpu.json" ${BENCH_ARGS:-}
if [ -f "$OUT/bench_gpu.json" ]; then
  "$PY" - "$OUT/bench_gpu.json" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys
report = json.load(open(sys.argv[1]))
print(f"bench: {report['gpu']} cupy {report['cupy']} torch {report['torch']}")
raw = {r["workload"]: r["us"] for r in report["rows"] if r["framework"].startswith("raw CuPy")}
for r in report["rows"]:
    extra = f"  {r['vs_torch']:.2f}x torch" if "vs_torch" in r else ""
    if r["workload"] in raw and not r["framework"].startswith("raw"):
        extra += f"  {r['us'] / raw[r['workload']]:.2f}x raw CuPy"
    print(f"bench: {r['workload']:<9} {r['framework']:<28} {r['us']:9.2f} us{extra}")
EOF
fi

note "gpu_check: exit $status in $SECONDS s; results in $OUT"
exit "$status"
