#!/usr/bin/env bash
# The GPU benchmark of docs/models.md, in one run on the GPU machine: builds
# bench_workloads_cuda (preset cuda-sm90a), times the three workloads and the dominant ops with
# ldm, times the same workloads with PyTorch + diffusers eager and under torch.compile, and prints
# one comparison table, also written to <log-folder>/table.md with the versions used.
#   scripts/gpu-bench.sh [log-folder]          (default runs/gpu-bench)
#   scripts/gpu-bench.sh --bundle-wheels       (here, with pip and network: diffusers into .whl/)
#
# Environment: LDM_BENCH_STEPS (timed steps, default 20; the protocol asks for at least 20),
# LDM_BENCH_WARMUP (default 3), LDM_BENCH_FILTER (a --benchmark_filter regex for ldm's program,
# default all), LDM_BENCH_PHASES (default "build ldm eager compile table"). The whole run can
# outlast one 10-minute device command; the phases can then run in consecutive commands on the
# same warm machine with the same log folder, e.g. "build ldm", then "eager compile table".
#
# The GPU machine has PyTorch, huggingface_hub, safetensors, numpy, regex, requests, filelock and
# Pillow, which is all `import diffusers` needs (on Python >= 3.8 it reads importlib.metadata from
# the standard library, so the importlib_metadata requirement is not needed). diffusers itself
# travels as a wheel in .whl/: name `.whl` in the run's carry. stb travels as
# .deps/ (made by `scripts/gpu-check.sh --bundle-deps`): name `.deps` in the carry too.
# Exit status: 0 when ldm's benchmark and both PyTorch modes ran without a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ "${1:-}" = "--bundle-wheels" ]; then
  set -e
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || grep -qx '/.whl/' .gitignore ||
    echo '/.whl/' >>.git/info/exclude
  # Pure Python (py3-none-any), so no platform options are needed; --no-deps: the GPU machine
  # has every requirement import needs (see above). Keep one diffusers wheel: two stop the install.
  rm -f .whl/diffusers-*.whl
  python3 -m pip download --no-deps --only-binary=:all: -d .whl "diffusers==${LDM_DIFFUSERS_VERSION:-0.42.1}"
  ls -l .whl
  exit 0
fi

logs=${1:-${LDM_GPU_LOGS:-runs/gpu-bench}}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
steps=${LDM_BENCH_STEPS:-20}
warmup=${LDM_BENCH_WARMUP:-3}
export PATH="$PATH:/usr/local/cuda/bin"
export PYTHONUNBUFFERED=1
ldm_use_bundled_deps
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
phases=" ${LDM_BENCH_PHASES:-build ldm eager compile table} "
wants() { [[ $phases == *" $1 "* ]]; }
status=0
step() { echo "== $1 ($(date -u +%H:%M:%S))" | tee -a "$logs/summary.txt"; }
result() { echo "   $1: exit $2" | tee -a "$logs/summary.txt"; [ "$2" -eq 0 ] || status=1; }

step "machine"
{ nvidia-smi; nvcc --version; cmake --version | head -1; } >"$logs/machine.txt" 2>&1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
nvcc_version=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
echo "   $gpu, driver $driver, nvcc $nvcc_version" | tee -a "$logs/summary.txt"

build=build/cuda-sm90a
if wants build; then
  step "configure and build bench_workloads_cuda (preset cuda-sm90a)"
  cmake --preset cuda-sm90a >"$logs/configure.log" 2>&1
  result configure $?
  cmake --build --preset cuda-sm90a --target bench_workloads_cuda >"$logs/build.log" 2>&1
  rc=$?
  result build $rc
  [ $rc -eq 0 ] || tail -40 "$logs/build.log"
fi

if wants ldm; then
  step "ldm: bench_workloads_cuda ($steps timed steps after $warmup)"
  if [ -x "$build/benchmarks/bench_workloads_cuda" ]; then
    "$build/benchmarks/bench_workloads_cuda" --ldm_steps="$steps" --ldm_warmup="$warmup" \
      --benchmark_filter="${LDM_BENCH_FILTER:-.}" --benchmark_out="$logs/ldm.json" \
      --benchmark_out_format=json >"$logs/ldm.log" 2>&1
    result bench_workloads_cuda $?
    cat "$logs/ldm.log"
  else
    result "bench_workloads_cuda (not built)" 1
  fi
fi

for mode in eager compile; do
  wants "$mode" || continue
  step "PyTorch + diffusers, $mode"
  python3 benchmarks/pytorch/gpu_steps.py --mode "$mode" --steps "$steps" --warmup "$warmup" \
    --out "$logs/pytorch-$mode.jsonl" >"$logs/pytorch-$mode.log" 2>&1
  result "gpu_steps.py $mode" $?
  tail -5 "$logs/pytorch-$mode.log"
done

wants table || exit $status
step "table"
revision=unknown
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
  revision=$commit
  git diff --quiet HEAD 2>/dev/null || revision="$commit with uncommitted changes"
fi
python3 benchmarks/pytorch/table.py --ldm "$logs/ldm.json" --eager "$logs/pytorch-eager.jsonl" \
  --compile "$logs/pytorch-compile.jsonl" --out "$logs/table.md" \
  --note "GPU: $gpu" --note "driver: $driver" --note "nvcc: $nvcc_version" \
  --note "ldm: $revision"
result table $?

step "done: status $status; logs in $logs"
exit $status
