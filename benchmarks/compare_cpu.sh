#!/usr/bin/env bash
# The tiny training steps at batch 32, ldm and PyTorch (float32, same thread count), alternating
# in one run so that both see the same machine; prints the medians and the ratio ldm / PyTorch.
# Needs the host build (cmake --preset host) and pip's torch and diffusers. LDM_BUILD_DIR names
# another configured build folder (default build/host); LDM_CPU_ISA reaches ldm's side.
#   [LDM_BUILD_DIR=build/avx512] [LDM_CPU_ISA=avx2] benchmarks/compare_cpu.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=$(nproc)
build=${LDM_BUILD_DIR:-build/host}
cmake --build "$build" --target bench_pipeline >/dev/null
results=$(mktemp)
for round in $(seq "$rounds"); do
  OMP_NUM_THREADS=$threads "$build/benchmarks/bench_pipeline" --benchmark_format=csv 2>/dev/null |
    awk -F, '/BM_autoencoder_step/ {print "ldm autoencoder_step", $3} /BM_diffusion_step/ {print "ldm diffusion_step", $3}' >>"$results"
  python3 benchmarks/pytorch/cpu_steps.py --threads "$threads" --seconds 6 2>/dev/null |
    awk '/_step/ {print "pytorch", $1, $3}' >>"$results"
done
python3 - "$results" "$threads" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    system, step, ms = line.split()
    times.setdefault((system, step), []).append(float(ms))
print(f"batch 32, {sys.argv[2]} threads, medians of {len(next(iter(times.values())))} rounds (ms per step)")
print(f"{'step':18s} {'ldm':>8s} {'PyTorch':>8s} {'ldm/PyTorch':>12s}   ldm range, PyTorch range")
for step in ("autoencoder_step", "diffusion_step"):
    l, p = times[("ldm", step)], times[("pytorch", step)]
    print(f"{step:18s} {statistics.median(l):8.1f} {statistics.median(p):8.1f} "
          f"{statistics.median(l) / statistics.median(p):12.2f}   "
          f"{min(l):.0f}-{max(l):.0f}, {min(p):.0f}-{max(p):.0f}")
PY
rm -f "$results"
