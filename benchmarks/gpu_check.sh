#!/usr/bin/env bash
# The GPU check in one command, from a bare checkout (no install, no network):
#
#     benchmarks/gpu_check.sh OUTDIR
#
# 1. versions of the driver, CUDA runtime, NVRTC, CuPy, PyTorch and cuDNN
# 2. every kernels/*.cu compiled by NVRTC (cupy.RawModule, minialex's options), every kernel looked up
# 3. every entry point of minialex.cuda.kernels in float32 on the GPU against the float64 references
# 4. python3 -m pytest -k cuda (per-test timeout)
# 5. the benchmark against cuDNN (benchmarks/bench_gpu.py, fewer samples than its defaults)
#
# Each step has a time limit (they add up to 8 minutes) and its own log in OUTDIR; the script goes
# on past a failed step (printing its failure lines), prints a one-line summary per step (also in
# OUTDIR/summary.txt) and exits 1 if any step failed. Without a GPU (or without CuPy) it stops at
# once with a "no GPU" line, exit 3.
# Files written (7): summary.txt, 1_versions.log, 2_compile.log, 3_kernels.log, 4_pytest.log,
# 5_bench.log, 5_bench_table.md. PYTHON=... picks the interpreter (default python3).
set -u

if [ $# -ne 1 ] || [ "${1:0:1}" = "-" ]; then
    echo "usage: benchmarks/gpu_check.sh OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out" || { echo "gpu_check: error: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
    echo "gpu_check: error: $py not found (set PYTHON)" >&2
    exit 2
fi
if ! command -v timeout >/dev/null 2>&1; then
    echo "gpu_check: error: coreutils' timeout not found" >&2
    exit 2
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"   # the checkout's minialex, no install
cd "$root" || exit 2
summary="$out/summary.txt"
: > "$summary"

# No GPU: say so and stop, before any step.
probe=$("$py" benchmarks/gpu_check.py probe 2>&1)
status=$?
echo "$probe" | tee -a "$summary"
if [ "$status" -ne 0 ]; then
    echo "gpu_check: stopped: nothing was checked (exit 3)" | tee -a "$summary"
    exit 3
fi

failed=0
started=$SECONDS
# step NUMBER NAME LIMIT_SECONDS LOG COMMAND...: run it under a time limit, log to OUTDIR/LOG
step() {
    local n=$1 name=$2 limit=$3 log=$4
    shift 4
    local t0=$SECONDS
    echo "== step $n: $name (limit ${limit} s, log $log)"
    timeout -k 5 "$limit" "$@" > "$out/$log" 2>&1
    local rc=$? took=$((SECONDS - t0)) result
    if [ "$rc" -eq 0 ]; then
        result="ok"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        result="TIMED OUT after ${limit} s"
    else
        result="FAILED (exit $rc)"
    fi
    if [ "$rc" -ne 0 ]; then   # what went wrong: the failure lines of the log, else its end
        failed=1
        { grep -m 12 -E '^(FAIL|ERROR)|[ :]FAILED( |:|$)|error:' "$out/$log" || tail -n 12 "$out/$log"; } |
            cut -c1-300 | sed 's/^/    /'
    fi
    echo "step $n $name: $result, ${took} s, log $log" >> "$summary"
    echo "-> $result (${took} s)"
}

pytest_flags=(-p no:cacheprovider -rfEs -k cuda)   # (setup.cfg adds -v: a line per test, even on a timeout)
if "$py" -c "import pytest_timeout" 2>/dev/null; then
    pytest_flags+=(--timeout 60)
else
    echo "gpu_check: pytest-timeout is missing: no per-test timeout, only the step's" | tee -a "$summary"
fi
if "$py" -c "import xdist" 2>/dev/null; then
    pytest_flags+=(-n 8)
fi

step 1 versions 40 1_versions.log "$py" benchmarks/gpu_check.py versions
step 2 "NVRTC compile" 60 2_compile.log "$py" benchmarks/gpu_check.py compile
step 3 "kernels vs float64" 100 3_kernels.log "$py" benchmarks/gpu_check.py kernels
step 4 "pytest -k cuda" 150 4_pytest.log "$py" -m pytest "${pytest_flags[@]}" tests
step 5 benchmark 130 5_bench.log "$py" benchmarks/bench_gpu.py --iters 10 --warmup 2 --calls 10 \
    --out "$out/5_bench_table.md"

echo "== summary ($((SECONDS - started)) s; logs in $out)"
cat "$summary"
exit "$failed"
