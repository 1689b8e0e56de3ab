#!/usr/bin/env bash
# Data-parallel training under mpirun (issue 19's promises, on the host):
# - 2 processes at 32 images each equal 1 process at 64, bit for bit (weights, optimiser state,
#   log.csv but its seconds), after 10 steps of each phase;
# - a run interrupted by SIGUSR1 and resumed under mpirun ends exactly as an uninterrupted one;
# - a 2-process checkpoint resumes in 1 process (to float rounding: the note says so);
# - a killed rank ends the whole job with an error, without a hang.
#   fashion_mpi.sh <fashion> <mpirun> <scratch folder>
set -euo pipefail
source "$(dirname "$0")/run_helpers.sh"
fashion=$1
mpirun=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
# CI runs as root, which OpenMPI refuses unless told, in containers that may forbid the ptrace
# its shared-memory single copy needs.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
       OMPI_MCA_btl_vader_single_copy_mechanism=none
two=("$mpirun" --oversubscribe -np 2)
steps=(--autoencoder-steps 10 --diffusion-steps 10 --batch 64 --checkpoint-every 4
       --images-every 100 --validate-every 0 --sample-steps 2)

# The ranks (not mpirun itself) of the job writing to folder $1; with $2, only that rank.
rank_pids() {
  for pid in $(pgrep -f -- "--out $1 "); do
    tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null |
      grep -qx "OMPI_COMM_WORLD_RANK=${2:-[0-9]*}" && echo "$pid"
  done
  true
}

"$fashion" train --out "$work/one" "${steps[@]}" > "$work/one.txt"
"${two[@]}" "$fashion" train --out "$work/two" "${steps[@]}" > "$work/two.txt"
grep -q "batch 64 (2 processes x 1 micro-batch of 32)" "$work/two.txt" ||
  { echo "FAIL: the 2-process run does not say how it shares the batch"; cat "$work/two.txt"; exit 1; }
same_run "$work/one" "$work/two"
# Only rank 0 printed.
[ "$(grep -c '^device: ' "$work/two.txt")" -eq 1 ] && [ "$(grep -c '^data: ' "$work/two.txt")" -eq 1 ] ||
  { echo "FAIL: more than one rank printed"; cat "$work/two.txt"; exit 1; }

# Interrupt the job once a few steps are logged, as a user would: SIGUSR1 to mpirun, which
# forwards it to every rank at once; resume under mpirun.
"${two[@]}" "$fashion" train --out "$work/resumed" "${steps[@]}" > "$work/interrupted.txt" &
job=$!
wait_for_log_lines "$work/resumed" 4
kill -USR1 "$job"
status=0
wait "$job" || status=$?
grep -q "stopped by SIGUSR1" "$work/interrupted.txt" ||
  { echo "FAIL: the interrupted run did not stop on SIGUSR1 (status $status)"; cat "$work/interrupted.txt"; exit 1; }
"${two[@]}" "$fashion" train --out "$work/resumed" "${steps[@]}" --resume > "$work/resumed.txt"
same_run "$work/two" "$work/resumed"

# A 2-process checkpoint continued by 1 process: allowed, and said to be exact to rounding only.
cp -r "$work/two" "$work/fewer"
"$fashion" train --out "$work/fewer" "${steps[@]}" --diffusion-steps 12 --resume > "$work/fewer.txt"
grep -q "had 2 processes, this one 1" "$work/fewer.txt" ||
  { echo "FAIL: no note on the change of processes"; cat "$work/fewer.txt"; exit 1; }

# --batch must split into whole micro-batches on every rank.
if "${two[@]}" "$fashion" train --out "$work/bad" --batch 32 "${steps[@]:0:4}" 2> "$work/bad.txt" > /dev/null; then
  echo "FAIL: --batch 32 over 2 processes of micro-batches of 32 was accepted"; exit 1
fi
grep -q -- "--batch.*a multiple of 64 (2 processes" "$work/bad.txt"

# Kill rank 1 in the middle of a long run: the job ends with an error, well before the timeout.
"${two[@]}" "$fashion" train --out "$work/killed" --autoencoder-steps 100000 --batch 64 \
  > "$work/killed.txt" 2>&1 &
job=$!
wait_for_log_lines "$work/killed" 3
victim=$(rank_pids "$work/killed" 1)
[ -n "$victim" ] || { echo "FAIL: no rank 1 process found"; exit 1; }
start=$(date +%s)
kill -KILL "$victim"
status=0
timeout 120 tail --pid="$job" -f /dev/null || { echo "FAIL: the job hung after a rank died"; kill -KILL "$job"; exit 1; }
wait "$job" || status=$?
[ "$status" -ne 0 ] || { echo "FAIL: the job exited 0 after a rank was killed"; exit 1; }
echo "fashion under mpirun: 2 ranks equal 1 process bit for bit; resume exact; a killed rank ended the job in $(( $(date +%s) - start )) s"
