#!/usr/bin/env bash
# SIGTERM and SIGHUP (what batch schedulers and closed terminals send before a kill) save a
# checkpoint and stop as Ctrl-C does, and a run killed with SIGKILL continues from its last
# checkpoint: after --resume, each ends with exactly the weights and log.csv (but for its seconds
# column) of a run that was never stopped. fashion_resume.sh does the same with SIGINT.
#   fashion_signals.sh <path to the fashion program> <scratch folder>
set -euo pipefail
source "$(dirname "$0")/run_helpers.sh"
fashion_and_scratch "$@"
steps=(--autoencoder-steps 12 --diffusion-steps 12 --batch 32 --checkpoint-every 5
       --images-every 5 --sample-steps 2)

"$fashion" train --out "$work/straight" "${steps[@]}" > "$work/straight.txt"

# signal  exit status expected  log.csv lines (header included) before the signal
for run in "TERM 143 7" "HUP 129 7" "KILL 137 9"; do
  read -r signal expected lines <<< "$run"
  out="$work/$signal"
  "$fashion" train --out "$out" "${steps[@]}" > "$out.txt" &
  pid=$!
  wait_for_log_lines "$out" "$lines"
  stop_run "$pid" "$signal" "$expected" "$out.txt"
  if [ "$signal" != KILL ]; then
    grep -q "stopped by SIG$signal; continue with the same command and --resume" "$out.txt" ||
      { echo "FAIL: no word of SIG$signal"; cat "$out.txt"; exit 1; }
  fi

  "$fashion" train --out "$out" "${steps[@]}" --resume > "$out-resumed.txt"
  grep -q "^resumed " "$out-resumed.txt"
  same_run "$work/straight" "$out"
done
echo "fashion: runs stopped by SIGTERM, SIGHUP and SIGKILL resume to the straight run exactly"
