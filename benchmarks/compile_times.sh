#!/usr/bin/env bash
# Compile times of ldm's typical translation units, one row each: CPU seconds (user + sys, all
# compiler processes together) and peak compiler memory (the largest resident set of any of
# them), with the flags CMake's Release build gives a unit that links ldm::ldm (or ldm::cuda).
#
#   benchmarks/compile_times.sh                 # all rows, as a markdown table
#   benchmarks/compile_times.sh --no-cuda       # without the nvcc rows
#   benchmarks/compile_times.sh --opt -O2       # another optimisation level instead of Release's
#   benchmarks/compile_times.sh --rows cf       # only these rows (letters below)
#
# Rows: (a) `#include <ldm/ldm.hpp>` alone, (b) the tiny pipeline's sampling, (c) the tiny
# pipeline's two training steps, (d) a custom 3x64x64 configuration's two training steps (the
# units in benchmarks/compile_times/), (e) row (c)'s steps for ldm::cuda under nvcc, (f) row
# (c)'s steps at three batch sizes, 16, 32 and 64 (what a trainer that picks its batch at run time
# compiles; beside (c), the cost of each extra batch size), (g) the fashion program's GPU unit
# under nvcc (examples/fashion/cuda.cu: three configurations' training at micro-batch 32, and
# sampling, for ldm::cuda).
#
# The compile commands come from CMake itself: the script configures the `host` preset (and
# `cuda`, for rows (e) and (g)) into build/compile-times{,-cuda} with compile_commands.json and takes the
# command of examples/forward_diffusion.cpp (a plain ldm::ldm unit) and of
# examples/fashion/cuda.cu. Wall seconds are printed too, but on a busy machine only CPU seconds
# and memory are comparable between runs. Needs GNU time (/usr/bin/time), cmake, ninja, python3.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cuda=1
opt=""
rows_wanted=abcdefg
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-cuda) cuda=0 ;;
    --opt) opt="$2"; shift ;;
    --rows) rows_wanted="$2"; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compile_times.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%M' true >/dev/null 2>&1; then
  echo "compile_times.sh: needs GNU time at /usr/bin/time; on Debian: apt-get install -y time" >&2
  exit 1
fi
for tool in cmake ninja python3; do
  command -v "$tool" >/dev/null || { echo "compile_times.sh: needs $tool on PATH" >&2; exit 1; }
done

# The compile command CMake wrote for `source` into build directory `dir`, as one shell-quoted
# line with its -o and -c arguments removed.
command_for() {
  python3 - "$1/compile_commands.json" "$2" <<'EOF'
import json, shlex, sys
entries = json.load(open(sys.argv[1]))
match = [e for e in entries if e["file"].endswith(sys.argv[2])]
if not match:
    sys.exit(f"compile_times.sh: no compile command for {sys.argv[2]} in {sys.argv[1]}")
entry = match[0]
args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
out, skip = [], False
for a in args:
    if skip:
        skip = False
        continue
    if a in ("-o", "-c"):
        skip = True
        continue
    out.append(a)
print(shlex.join(out))
EOF
}

configure() {  # configure preset $1 into $2 with compile_commands.json, quietly
  cmake --preset "$1" -B "$2" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$2.configure.log" 2>&1 || {
    cat "$2.configure.log" >&2
    echo "compile_times.sh: configuring preset $1 failed" >&2
    exit 1
  }
}

host_dir="$root/build/compile-times"
mkdir -p "$host_dir"
configure host "$host_dir"
host_cmd=$(command_for "$host_dir" examples/forward_diffusion.cpp)
cuda_cmd=""
if [[ $cuda == 1 ]]; then
  if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
    cuda_dir="$root/build/compile-times-cuda"
    mkdir -p "$cuda_dir"
    configure cuda "$cuda_dir"
    cuda_cmd=$(command_for "$cuda_dir" examples/fashion/cuda.cu)
  else
    echo "compile_times.sh: no nvcc found; leaving out the CUDA row" >&2
    cuda=0
  fi
fi
if [[ -n $opt ]]; then  # replace the Release level (-O3) by the one asked for
  host_cmd=$(sed -E "s/(^| )-O[0-3s]( |$)/\1$opt\2/" <<<"$host_cmd")
  cuda_cmd=$(sed -E "s/(^| )-O[0-3s]( |$)/\1$opt\2/" <<<"$cuda_cmd")
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

rows=()
# measure LABEL COMPILER COMMAND SOURCE: compiles SOURCE to an object in the scratch folder, if
# the row's letter (the label's second character) is in --rows.
measure() {
  local label=$1 compiler=$2 cmd=$3 source=$4
  [[ $rows_wanted == *"${label:1:1}"* ]] || return 0
  echo "compiling $label ..." >&2
  if ! (cd "$host_dir" && eval "/usr/bin/time -f '%U %S %M %e' -o '$scratch/time' $cmd \
        -c '$source' -o '$scratch/unit.o'") >"$scratch/log" 2>&1; then
    cat "$scratch/log" >&2
    echo "compile_times.sh: $label did not compile" >&2
    exit 1
  fi
  local user sys rss wall
  read -r user sys rss wall < <(tail -n 1 "$scratch/time")
  rows+=("$(awk -v l="$label" -v c="$compiler" -v u="$user" -v s="$sys" -v m="$rss" -v w="$wall" \
    'BEGIN { printf "| %s | %s | %.1f | %.0f | %.0f |", l, c, u + s, m / 1024, w }')")
}

units="$root/benchmarks/compile_times"
measure '(a) `#include <ldm/ldm.hpp>` alone' g++ "$host_cmd" "$units/include_only.cpp"
measure '(b) tiny: sampling (load, DDIM, batch 16)' g++ "$host_cmd" "$units/tiny_sampling.cpp"
measure '(c) tiny: both training steps (batch 32)' g++ "$host_cmd" "$units/tiny_training.cpp"
measure '(d) custom 3x64x64: both training steps (batch 16)' g++ "$host_cmd" \
  "$units/custom_training.cpp"
if [[ $cuda == 1 ]]; then
  measure '(e) tiny: both training steps (batch 32), ldm::cuda' nvcc "$cuda_cmd" \
    "$units/tiny_training.cu"
fi
measure '(f) tiny: both training steps at batches 16, 32 and 64' g++ "$host_cmd" \
  "$units/tiny_training_three_batches.cpp"
if [[ $cuda == 1 ]]; then
  measure '(g) examples/fashion/cuda.cu: 3 configurations (micro-batch 32) + sampling' nvcc \
    "$cuda_cmd" "$root/examples/fashion/cuda.cu"
fi

echo "| translation unit | compiler | CPU s (user + sys) | peak memory (MiB) | wall s |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "g++: ${host_cmd}"
[[ $cuda == 1 ]] && echo "nvcc: ${cuda_cmd}"
echo "$(nproc) cores, load average $(cut -d ' ' -f 1-3 /proc/loadavg) at the end"
