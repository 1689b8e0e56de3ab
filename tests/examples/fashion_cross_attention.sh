#!/usr/bin/env bash
# `fashion train --conditioning cross-attention`: a tiny run trains the UNet2DConditionModel and
# its learned label-token table, writes label_tokens.safetensors beside unet/, resumes exactly
# (a run stopped at diffusion step 3 and continued to 6 ends as one run to 6, the table too), and
# `fashion sample --class` draws from the folder. A cross-attention folder without its label
# tokens is refused by name.
#   fashion_cross_attention.sh <path to the fashion program> <scratch folder>
set -euo pipefail
source "$(dirname "$0")/run_helpers.sh"
fashion_and_scratch "$@"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skipped: no Fashion-MNIST in /usr/share/datasets/fashion-mnist"
  exit 0
fi
steps=(--conditioning cross-attention --autoencoder-steps 3 --batch 32 --checkpoint-every 3
       --images-every 100 --validate-every 0 --sample-steps 2)

"$fashion" train --out "$work/straight" "${steps[@]}" --diffusion-steps 6 > "$work/straight.txt"
grep -q "^label tokens: 11 rows" "$work/straight.txt" ||
  { echo "FAIL: the run does not describe its label tokens"; cat "$work/straight.txt"; exit 1; }
"$fashion" train --out "$work/resumed" "${steps[@]}" --diffusion-steps 3 > "$work/first.txt"
"$fashion" train --out "$work/resumed" "${steps[@]}" --diffusion-steps 6 --resume \
  > "$work/resumed.txt"
same_run "$work/straight" "$work/resumed"
cmp "$work/straight/checkpoint/label_tokens.safetensors" \
  "$work/resumed/checkpoint/label_tokens.safetensors" ||
  { echo "FAIL: label_tokens.safetensors differs after the resume"; exit 1; }
grep -q '"_class_name": "UNet2DConditionModel"' "$work/straight/checkpoint/unet/config.json" ||
  { echo "FAIL: unet/config.json is not a UNet2DConditionModel"; exit 1; }

"$fashion" sample --model "$work/straight/checkpoint" --class 3 --count 16 --sample-steps 2 \
  --out "$work/class3.png" > "$work/sample.txt"
[ -s "$work/class3.png" ] || { echo "FAIL: fashion sample wrote no class3.png"; exit 1; }
grep -q "class 3" "$work/sample.txt" || { echo "FAIL: $(cat "$work/sample.txt")"; exit 1; }

# The same folder without its table: refused, naming the file.
cp -rL "$work/straight/checkpoint" "$work/no-tokens"
rm "$work/no-tokens/label_tokens.safetensors"
status=0
output=$(timeout 20 "$fashion" sample --model "$work/no-tokens" --out "$work/x.png" 2>&1) ||
  status=$?
if [ "$status" -ne 1 ] || [[ "$output" != *"without label_tokens.safetensors"* ]]; then
  echo "FAIL: a folder without label_tokens.safetensors: status $status, $output"
  exit 1
fi
echo "ok: fashion train/sample --conditioning cross-attention"
