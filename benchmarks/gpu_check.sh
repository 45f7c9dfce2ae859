#!/usr/bin/env bash
# One-shot check of dezero_xp on a CUDA machine, offline: the test suite on CuPy, one example
# on the GPU, the GPU benchmarks. Run from anywhere: `bash benchmarks/gpu_check.sh`.
#
# - Missing pure-Python dependencies (array-api-compat, array-api-strict) are installed from
#   wheels carried in the tree (WHEELS, default: wheels/ or .whl/), made on a connected machine
#   with `pip download array-api-compat array-api-strict -d wheels/`.
# - Logs and results go to $OUT (default benchmarks/results/gpu-check-<time>/): summary.txt,
#   env.txt, tests-gpu.log, example.log, bench_gpu.log, bench_gpu.json.
# - Each step has its own time limit (TESTS_LIMIT, EXAMPLE_LIMIT, BENCH_LIMIT seconds), so a slow
#   step cannot starve the others; the exit status is that of the first failing step.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/benchmarks/results/gpu-check-$(date +%Y%m%d-%H%M%S)}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME LIMIT LOG command...
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$log" 2>&1
  local rc=$?
  note "$name: exit $rc in $((SECONDS - start)) s (log: $log)"
  tail -n 3 "$OUT/$log" | sed 's/^/    /' | tee -a "$OUT/summary.txt"
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
  nvidia-smi -L 2>&1
  "$PY" -c "import sys, numpy, cupy; print(sys.version); print('numpy', numpy.__version__, 'cupy', cupy.__version__)" 2>&1
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
  "$PY" -c "from dezero_xp import backend as B; print('dezero_xp CUDA status:', B._cuda_status())" 2>&1
} >"$OUT/env.txt"
note "env: $(tail -n 1 "$OUT/env.txt")"

# 2. The whole suite with the CuPy backend selected (what `nox -s tests-gpu` runs).
PARALLEL=()
if "$PY" -c "import xdist" 2>/dev/null; then PARALLEL=(-n "${TEST_WORKERS:-4}"); fi
if command -v nox >/dev/null 2>&1 && [ -z "${NO_NOX:-}" ]; then
  step tests-gpu "${TESTS_LIMIT:-330}" tests-gpu.log nox -s tests-gpu -- -q "${PARALLEL[@]}"
else
  step tests-gpu "${TESTS_LIMIT:-330}" tests-gpu.log env DEZERO_XP_TEST_BACKENDS=cupy \
    "$PY" -m pytest -p no:cacheprovider -rs -q "${PARALLEL[@]}"
fi

# 3. One example on the GPU; strict device mode, so a silent CPU fallback fails the step.
EXAMPLE=${EXAMPLE:-$(grep -l -- "--device" examples/[!_]*.py 2>/dev/null | head -n 1)}
if [ -n "$EXAMPLE" ]; then
  step example "${EXAMPLE_LIMIT:-90}" example.log env DEZERO_XP_STRICT_DEVICES=1 \
    "$PY" "$EXAMPLE" --device cuda --smoke
else
  note "example: none in examples/ takes --device"
fi

# 4. GPU benchmarks, dezero_xp vs torch in the same run (BENCH_ARGS=--smoke for a quick one).
step bench_gpu "${BENCH_LIMIT:-150}" bench_gpu.log env DEZERO_XP_STRICT_DEVICES=1 \
  "$PY" benchmarks/bench_gpu.py --json "$OUT/bench_gpu.json" ${BENCH_ARGS:-}

note "gpu_check: exit $status; results in $OUT"
exit "$status"
