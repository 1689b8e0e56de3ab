#!/usr/bin/env bash
# The README's user program (examples/train_rgb64.cpp) on a folder of colour images: a run with
# gradient accumulation (--batch 16 of micro-batches of 8), flips, a cosine schedule with warm-up,
# min-SNR weighting, offset noise and validation passes is interrupted by Ctrl-C and resumed, and
# ends with exactly the weights, log.csv and validation.csv (but for their seconds column) of a
# run that was never stopped. The second run reads the decoded images from the data cache.
#   train_rgb64.sh <train_rgb64> <make_shapes> <scratch folder>
set -euo pipefail
source "$(dirname "$0")/run_helpers.sh"
trainer=$1
make_shapes=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
"$make_shapes" --out "$work/shapes" --count 48 --seed 3 > /dev/null
steps=(--data "$work/shapes" --data-cache "$work/shapes.cache" --autoencoder-steps 6
       --diffusion-steps 6 --batch 16 --checkpoint-every 2 --images-every 3 --validate-every 2
       --sample-steps 2 --flip --lr-schedule cosine --lr-warmup-steps 2 --snr-gamma 5
       --noise-offset 0.1)

"$trainer" --out "$work/straight" "${steps[@]}" > "$work/straight.txt"
grep -q "data cache: $work/shapes.cache (images decoded and written in" "$work/straight.txt" ||
  { echo "FAIL: the first run wrote no data cache"; cat "$work/straight.txt"; exit 1; }
grep -q "batch 16 (2 micro-batches of 8), random horizontal flips" "$work/straight.txt" ||
  { echo "FAIL: the run does not say it accumulates 2 micro-batches"; exit 1; }

# Interrupt the second run once it has logged a few steps, wherever that lands.
"$trainer" --out "$work/resumed" "${steps[@]}" > "$work/interrupted.txt" &
pid=$!
wait_for_log_lines "$work/resumed" 4
stop_run "$pid" INT 130 "$work/interrupted.txt"
grep -q "data cache: $work/shapes.cache (read in" "$work/interrupted.txt" ||
  { echo "FAIL: the second run decoded the folder again"; cat "$work/interrupted.txt"; exit 1; }

"$trainer" --out "$work/resumed" "${steps[@]}" --resume > "$work/resumed.txt"
grep -q "^resumed " "$work/resumed.txt"

same_run "$work/straight" "$work/resumed"
if ! cmp -s <(cut -d, -f1-4 "$work/straight/validation.csv") \
            <(cut -d, -f1-4 "$work/resumed/validation.csv"); then
  echo "FAIL: validation.csv differs between the straight run and the resumed one"
  exit 1
fi
# Validation measured both reconstruction numbers at steps 2, 4 and 6 of the autoencoder.
[ "$(grep -c '^autoencoder,[246],psnr,' "$work/resumed/validation.csv")" -eq 3 ] ||
  { echo "FAIL: validation.csv lacks the autoencoder's PSNR rows"; cat "$work/resumed/validation.csv"; exit 1; }
# The cosine schedule with warm-up: the first step's learning rate is 0, the second's half.
awk -F, 'NR == 2 && $5 != 0 { exit 1 } NR == 3 && $5 != 0.0002 { exit 1 }' "$work/resumed/log.csv" ||
  { echo "FAIL: the warm-up's learning rates are not 0 and 2e-4"; head -4 "$work/resumed/log.csv"; exit 1; }
for file in samples.png reconstructions.png log.csv loss.png validation.csv; do
  [ -s "$work/resumed/$file" ] || { echo "FAIL: no $file"; exit 1; }
done
# The scheduler config records the prediction type the run trained.
grep -q '"prediction_type": "epsilon"' "$work/resumed/checkpoint/scheduler/scheduler_config.json"

# A resume must keep what shaped the run; each difference is refused by name.
no_flip=()
for arg in "${steps[@]}"; do [ "$arg" = --flip ] || no_flip+=("$arg"); done
if "$trainer" --out "$work/resumed" "${no_flip[@]}" --resume 2> "$work/noflip.txt" > /dev/null; then
  echo "FAIL: a resume without --flip was accepted"; exit 1
fi
grep -q -- "--flip" "$work/noflip.txt"
if "$trainer" --out "$work/resumed" "${steps[@]}" --batch 24 --resume 2> "$work/batch.txt" > /dev/null; then
  echo "FAIL: a resume with another --batch was accepted"; exit 1
fi
grep -q -- "--batch" "$work/batch.txt"
# v-prediction end to end: trained, written into the scheduler config, kept on resume.
vpred=(--data "$work/shapes" --data-cache "$work/shapes.cache" --autoencoder-steps 1
       --diffusion-steps 1 --batch 8 --sample-steps 1 --validate-every 0)
"$trainer" --out "$work/vpred" "${vpred[@]}" --prediction-type v_prediction > "$work/vpred.txt"
grep -q "v_prediction MSE" "$work/vpred.txt" || { echo "FAIL: not trained on v"; exit 1; }
grep -q '"prediction_type": "v_prediction"' "$work/vpred/checkpoint/scheduler/scheduler_config.json" ||
  { echo "FAIL: the scheduler config does not say v_prediction"; exit 1; }
if "$trainer" --out "$work/vpred" "${vpred[@]}" --diffusion-steps 2 --resume 2> "$work/vpred-epsilon.txt" > /dev/null; then
  echo "FAIL: an epsilon resume of a v_prediction run was accepted"; exit 1
fi
grep -q -- "--prediction-type.*v_prediction (the checkpoint's).*found epsilon" "$work/vpred-epsilon.txt"
# --batch must be a multiple of the compiled micro-batch.
if "$trainer" --out "$work/bad" --data "$work/shapes" --batch 12 2> "$work/bad.txt"; then
  echo "FAIL: --batch 12 was accepted"; exit 1
fi
grep -q -- "--batch.*a multiple of 8.*found 12" "$work/bad.txt"
echo "train_rgb64: an interrupted and resumed run with accumulation and schedules matches exactly"
