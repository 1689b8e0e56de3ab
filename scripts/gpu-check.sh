#!/usr/bin/env bash
# What runs on a GPU machine: builds everything for Hopper (sm_90a), runs the GPU tests, runs them
# again under compute-sanitizer (memcheck and racecheck), runs the GPU benchmarks, and writes every
# log to one folder:
#   scripts/gpu-check.sh [log-folder]        (or LDM_GPU_LOGS=folder; default runs/gpu-check)
# Exit status: 0 when the build, the tests and both sanitizers pass.
#
# Machines without Debian's libstb-dev (the lent H200 runs Ubuntu without it and cannot install
# packages) use a copy made on a Debian machine by `scripts/gpu-check.sh --bundle-deps` under
# .deps/ (ignored by git; carry it).
set -uo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
if [ "${1:-}" = "--bundle-deps" ]; then
  ldm_bundle_deps
  exit 0
fi

logs=${1:-${LDM_GPU_LOGS:-runs/gpu-check}}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
export PATH="$PATH:/usr/local/cuda/bin"
ldm_use_bundled_deps
jobs=$(nproc 2>/dev/null || echo 4)
status=0
step() { echo "== $1 ($(date -u +%H:%M:%S))" | tee -a "$logs/summary.txt"; }
result() { echo "   $1: exit $2" | tee -a "$logs/summary.txt"; [ "$2" -eq 0 ] || status=1; }

step "machine"
{ nvidia-smi; nvcc --version; cmake --version | head -1; } > "$logs/machine.txt" 2>&1
head -15 "$logs/machine.txt"

step "configure and build (preset cuda-sm90a)"
cmake --preset cuda-sm90a > "$logs/configure.log" 2>&1
result configure $?
cmake --build --preset cuda-sm90a -j "$jobs" > "$logs/build.log" 2>&1
rc=$?
result build $rc
if [ $rc -ne 0 ]; then
  tail -40 "$logs/build.log"
  exit 1
fi
build=build/cuda-sm90a

step "ctest -L gpu"
ctest --test-dir "$build" -L gpu --output-on-failure -j 4 > "$logs/ctest-gpu.log" 2>&1
result "ctest -L gpu" $?
tail -25 "$logs/ctest-gpu.log"

step "compute-sanitizer memcheck and racecheck on every GPU test program"
for program in "$build"/tests/cuda/test_*; do
  [ -x "$program" ] || continue
  name=$(basename "$program")
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 1 "$program" \
      > "$logs/sanitizer-$tool-$name.log" 2>&1
    rc=$?
    result "$tool $name" $rc
    [ $rc -eq 0 ] || tail -20 "$logs/sanitizer-$tool-$name.log"
  done
done

step "GPU benchmark: the tiny steps beside the host (the protocol comparison is scripts/gpu-bench.sh)"
for program in "$build"/benchmarks/bench_pipeline_cuda; do
  [ -x "$program" ] || continue
  name=$(basename "$program")
  "$program" --benchmark_min_time=1s --benchmark_out="$logs/$name.json" \
    --benchmark_out_format=json > "$logs/$name.log" 2>&1
  result "$name" $?
  cat "$logs/$name.log"
done

step "done: status $status; logs in $logs"
exit $status
