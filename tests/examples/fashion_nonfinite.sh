#!/usr/bin/env bash
# The trainer's promise about numbers that are not finite: a run that diverges ends non-zero with
# an error naming the loss and the step, and leaves its last good checkpoint and images as they
# were; a model folder holding a NaN weight or `scaling_factor: 0` is refused by `sample` and
# `eval`, which then write no image.
#   fashion_nonfinite.sh <path to the fashion program> <scratch folder>
set -euo pipefail
fashion=$1
work=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$work"
mkdir -p "$work"
short=(--batch 32 --images-every 1000 --sample-steps 2)

fail() {
  echo "FAIL: $*"
  exit 1
}
# Runs a command that must fail; its stderr goes to $work/$1.err, its stdout to $work/$1.txt.
must_fail() {
  local name=$1
  shift
  if "$@" > "$work/$name.txt" 2> "$work/$name.err"; then
    cat "$work/$name.txt"
    fail "$name: exited 0"
  fi
}
# The first 4 bytes of a safetensors file's data (the first element of one parameter) become NaN.
poison() {
  local file=$1 header
  header=$(od -An -t u8 -N 8 "$file" | tr -d ' ')
  printf '\x00\x00\xc0\x7f' | dd of="$file" bs=1 seek=$((8 + header)) conv=notrunc status=none
}

"$fashion" train --out "$work/run" --autoencoder-steps 3 --diffusion-steps 3 "${short[@]}" \
  > "$work/good.txt"
cp -rL "$work/run/checkpoint" "$work/good_checkpoint"  # the link's target
cp "$work/run/samples.png" "$work/good_samples.png"

# --resume with a learning rate that diverges.
must_fail resume_diverged "$fashion" train --out "$work/run" --resume --autoencoder-steps 3 \
  --diffusion-steps 30 "${short[@]}" --unet-lr 1e10
grep -q "training diverged: the UNet's epsilon MSE loss is NaN at step [0-9]" \
  "$work/resume_diverged.err" || fail "resume_diverged: $(cat "$work/resume_diverged.err")"
grep -q "step [0-9]* not applied: its epsilon MSE loss is not finite" "$work/resume_diverged.txt" \
  || fail "resume_diverged: the skipped steps were not reported"
diff -r "$work/good_checkpoint" "$work/run/checkpoint" > /dev/null \
  || fail "resume_diverged: the checkpoint changed"
cmp -s "$work/good_samples.png" "$work/run/samples.png" \
  || fail "resume_diverged: samples.png changed"
grep -q "^diffusion,[0-9]*,-\?nan," "$work/run/log.csv" \
  || fail "resume_diverged: log.csv does not show the skipped steps"

# A fresh run whose UNet diverges keeps the checkpoint of its autoencoder phase.
must_fail unet_diverged "$fashion" train --out "$work/unet" --autoencoder-steps 2 \
  --diffusion-steps 30 "${short[@]}" --unet-lr 1e10
grep -q "training diverged: the UNet's epsilon MSE loss is NaN at step" "$work/unet_diverged.err" \
  || fail "unet_diverged: $(cat "$work/unet_diverged.err")"
[ ! -e "$work/unet/samples.png" ] || fail "unet_diverged: wrote samples.png"
"$fashion" sample --model "$work/unet/checkpoint" --out "$work/unet_sampled.png" --count 16 \
  --sample-steps 2 > /dev/null || fail "unet_diverged: its checkpoint does not sample"

# A fresh run whose autoencoder diverges writes no checkpoint at all.
must_fail autoencoder_diverged "$fashion" train --out "$work/autoencoder" \
  --autoencoder-steps 30 --diffusion-steps 2 "${short[@]}" --autoencoder-lr 1e10
grep -q "training diverged: the autoencoder's .* is \(NaN\|inf\|-inf\) at step" \
  "$work/autoencoder_diverged.err" || fail "autoencoder_diverged: $(cat "$work/autoencoder_diverged.err")"
[ ! -e "$work/autoencoder/checkpoint" ] || fail "autoencoder_diverged: wrote a checkpoint"

# Model folders as diffusers writes them (no training state), each with one defect.
for defect in unet_nan vae_nan scaling_zero; do
  model="$work/$defect"
  cp -r "$work/good_checkpoint" "$model"
  rm "$model/training_state.safetensors"
  case $defect in
    unet_nan) poison "$model/unet/diffusion_pytorch_model.safetensors" ;;
    vae_nan) poison "$model/vae/diffusion_pytorch_model.safetensors" ;;
    scaling_zero)
      sed -i -E 's/"scaling_factor": [^,}]*/"scaling_factor": 0/' "$model/vae/config.json"
      grep -q '"scaling_factor": 0' "$model/vae/config.json" || fail "could not edit config.json"
      ;;
  esac
  must_fail "sample_$defect" "$fashion" sample --model "$model" --out "$work/$defect.png" \
    --count 16 --sample-steps 2
  grep -q "holds NaN\|scaling.factor" "$work/sample_$defect.err" \
    || fail "sample $defect: $(cat "$work/sample_$defect.err")"
  [ ! -e "$work/$defect.png" ] || fail "sample $defect: wrote an image"
done
must_fail eval_vae_nan "$fashion" eval --model "$work/vae_nan" --samples 32 --sample-steps 2 \
  --classifier "$root/models/fashion_classifier.safetensors" --json "$work/eval.json"
grep -q "holds NaN" "$work/eval_vae_nan.err" || fail "eval: $(cat "$work/eval_vae_nan.err")"
[ ! -e "$work/eval.json" ] || fail "eval wrote results"
echo "fashion: diverging runs and broken model folders end non-zero and write nothing broken"
