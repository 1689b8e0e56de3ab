#!/usr/bin/env bash
# The trainer's promise: Ctrl-C saves a checkpoint, and the same command with --resume ends with
# exactly the weights and log.csv (but for its seconds column) of a run that was never stopped.
# Also checks the checkpoint is a complete diffusers folder that names the ldm version, that
# `fashion sample` reads it, that `fashion plot` redraws loss.png, and that a new run refuses a
# folder with a checkpoint's remnants in it. fashion_signals.sh does the same with SIGTERM,
# SIGHUP and SIGKILL.
#   fashion_resume.sh <path to the fashion program> <scratch folder>
set -euo pipefail
source "$(dirname "$0")/run_helpers.sh"
fashion_and_scratch "$@"
steps=(--autoencoder-steps 12 --diffusion-steps 12 --batch 32 --checkpoint-every 5
       --images-every 5 --sample-steps 2)

"$fashion" train --out "$work/straight" "${steps[@]}" > "$work/straight.txt"

# Interrupt the second run once it has logged a few steps, wherever that lands.
"$fashion" train --out "$work/resumed" "${steps[@]}" > "$work/interrupted.txt" &
pid=$!
wait_for_log_lines "$work/resumed" 7
stop_run "$pid" INT 130 "$work/interrupted.txt"
grep -q "continue with the same command and --resume" "$work/interrupted.txt"

"$fashion" train --out "$work/resumed" "${steps[@]}" --resume > "$work/resumed.txt"
grep -q "^resumed " "$work/resumed.txt"

same_run "$work/straight" "$work/resumed"
for file in samples.png reconstructions.png log.csv loss.png; do
  [ -s "$work/resumed/$file" ] || { echo "FAIL: no $file"; exit 1; }
done
# The checkpoint names the ldm version that wrote it.
grep -q '"_ldm_version": "[0-9]*\.[0-9]*\.[0-9]*"' "$work/resumed/checkpoint/unet/config.json" ||
  { echo "FAIL: unet/config.json records no _ldm_version"; exit 1; }

# `fashion plot` redraws loss.png from log.csv, and names the file it cannot read.
rm "$work/resumed/loss.png"
"$fashion" plot "$work/resumed" > "$work/plot.txt"
[ -s "$work/resumed/loss.png" ] || { echo "FAIL: fashion plot wrote no loss.png"; exit 1; }
if "$fashion" plot "$work/nothing-here" 2> "$work/plot-missing.txt"; then
  echo "FAIL: fashion plot accepted a folder without log.csv"
  exit 1
fi
grep -q "nothing-here/log.csv" "$work/plot-missing.txt"

"$fashion" sample --model "$work/resumed/checkpoint" --out "$work/sampled.png" --count 16 \
  --sample-steps 2 > "$work/sample.txt"
[ -s "$work/sampled.png" ] || { echo "FAIL: fashion sample wrote nothing"; exit 1; }

# A wrong option is an error naming it, not a silent default.
if "$fashion" train --out "$work/bad" --batch 7 2> "$work/bad.txt"; then
  echo "FAIL: --batch 7 was accepted"
  exit 1
fi
grep -q -- "--batch" "$work/bad.txt"

# A run without --resume refuses a folder holding only a crashed save's partial checkpoint, and
# leaves it there.
mkdir -p "$work/remnant/checkpoint.000002.partial"
if "$fashion" train --out "$work/remnant" "${steps[@]}" 2> "$work/remnant.txt" > /dev/null; then
  echo "FAIL: a new run started in a folder with a partial checkpoint"
  exit 1
fi
grep -q "a run is already there" "$work/remnant.txt"
[ -d "$work/remnant/checkpoint.000002.partial" ] || { echo "FAIL: the partial was removed"; exit 1; }
echo "fashion: an interrupted and resumed run matches the straight run exactly"
