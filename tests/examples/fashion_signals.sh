#!/usr/bin/env bash
# SIGTERM and SIGHUP (what batch schedulers and closed terminals send before a kill) save a
# checkpoint and stop as Ctrl-C does, and a run killed with SIGKILL continues from its last
# checkpoint: after --resume, each ends with exactly the weights and log.csv (but for its seconds
# column) of a run that was never stopped. fashion_resume.sh does the same with SIGINT.
#   fashion_signals.sh <path to the fashion program> <scratch folder>
set -euo pipefail
fashion=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
steps=(--autoencoder-steps 12 --diffusion-steps 12 --batch 32 --checkpoint-every 5
       --images-every 5 --sample-steps 2)

"$fashion" train --out "$work/straight" "${steps[@]}" > "$work/straight.txt"

# signal  exit status expected  log.csv lines (header included) before the signal
for run in "TERM 143 7" "HUP 129 7" "KILL 137 9"; do
  read -r signal expected lines <<< "$run"
  out="$work/$signal"
  "$fashion" train --out "$out" "${steps[@]}" > "$out.txt" &
  pid=$!
  for _ in $(seq 600); do
    [ -f "$out/log.csv" ] && [ "$(wc -l < "$out/log.csv")" -ge "$lines" ] && break
    sleep 0.1
  done
  kill -"$signal" "$pid"
  status=0
  wait "$pid" || status=$?
  if [ "$status" -ne "$expected" ]; then
    echo "FAIL: after SIG$signal the run exited with $status, expected $expected"
    cat "$out.txt"
    exit 1
  fi
  if [ "$signal" != KILL ]; then
    grep -q "stopped by SIG$signal; continue with the same command and --resume" "$out.txt" ||
      { echo "FAIL: no word of SIG$signal"; cat "$out.txt"; exit 1; }
  fi

  "$fashion" train --out "$out" "${steps[@]}" --resume > "$out-resumed.txt"
  grep -q "^resumed " "$out-resumed.txt"
  # (training_state.safetensors holds the seconds trained too)
  for file in vae/diffusion_pytorch_model.safetensors unet/diffusion_pytorch_model.safetensors; do
    if ! cmp -s "$work/straight/checkpoint/$file" "$out/checkpoint/$file"; then
      echo "FAIL: after SIG$signal and --resume, $file differs from the straight run's"
      exit 1
    fi
  done
  if ! cmp -s <(cut -d, -f1-4 "$work/straight/log.csv") <(cut -d, -f1-4 "$out/log.csv"); then
    echo "FAIL: after SIG$signal and --resume, log.csv differs from the straight run's"
    diff <(cut -d, -f1-4 "$work/straight/log.csv") <(cut -d, -f1-4 "$out/log.csv") | head
    exit 1
  fi
done
echo "fashion: runs stopped by SIGTERM, SIGHUP and SIGKILL resume to the straight run exactly"
