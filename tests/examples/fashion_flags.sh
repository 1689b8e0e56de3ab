#!/usr/bin/env bash
# Every flag of `fashion` is checked before any work (issue 13, rows 12 and 13): a bad value ends
# the program at once with exit status 1 and a message naming the flag, the value and what is
# allowed. The training cases also pass --data with a folder that does not exist: a flag that was
# not checked first would fail on the data instead (or, worse, train), so the message tells.
#   fashion_flags.sh <path to the fashion program> <scratch folder>
set -uo pipefail
fashion=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
touch "$work/a-file"
failures=0

# expect_error <expected parts separated by |> <fashion arguments...>
expect_error() {
  local parts=$1
  shift
  local output status
  output=$(timeout 20 "$fashion" "$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -ne 1 ]; then
    echo "FAIL: fashion $*: exit status $status, expected 1 (124: still running after 20 s)"
    failures=$((failures + 1))
    return
  fi
  local part
  IFS='|' read -ra wanted <<< "$parts"
  for part in "${wanted[@]}"; do
    if [[ "$output" != *"$part"* ]]; then
      echo "FAIL: fashion $*: the message lacks '$part': $output"
      failures=$((failures + 1))
      return
    fi
  done
  echo "ok: fashion $* -> $output"
}

# The shipped (unconditional) model, and a folder whose unet/config.json says class-conditional.
repo=$(cd "$(dirname "$0")/../.." && pwd)
unconditional="$repo/models/fashion-tiny"
mkdir -p "$work/class-model"
cp -r "$unconditional/." "$work/class-model/"
sed -i 's/"num_class_embeds": null/"num_class_embeds": 11/' "$work/class-model/unet/config.json"
mkdir -p "$work/twelve"
cp -r "$unconditional/." "$work/twelve/"
sed -i 's/"num_class_embeds": null/"num_class_embeds": 12/' "$work/twelve/unet/config.json"

train=(train --out "$work/run" --data "$work/no-such-data")
expect_error "--sampler|one of ddim, ddpm|'foo'" "${train[@]}" --sampler foo
expect_error "--eta|[0, 1]|found 2" "${train[@]}" --eta 2
expect_error "--eta|--sampler ddpm" "${train[@]}" --sampler ddpm --eta 0.5
expect_error "--sample-steps|[1, 1000]|found 0" "${train[@]}" --sample-steps 0
expect_error "--sample-steps|[1, 1000]|found 1001" "${train[@]}" --sampler ddpm --sample-steps 1001
expect_error "--autoencoder-steps|at least 0|found -5" "${train[@]}" --autoencoder-steps -5
expect_error "--diffusion-steps|at least 0|found -1" "${train[@]}" --diffusion-steps -1
expect_error "--time-budget|>= 0|found -1" "${train[@]}" --time-budget -1
expect_error "--time-budget|found nan" "${train[@]}" --time-budget nan
expect_error "--autoencoder-share|[0, 1]|found 5" "${train[@]}" --autoencoder-share 5
expect_error "--unet-lr|positive finite|found inf" "${train[@]}" --unet-lr inf
expect_error "--autoencoder-lr|positive finite|found 0" "${train[@]}" --autoencoder-lr 0
expect_error "--batch|a multiple of 32|found 8" "${train[@]}" --batch 8
expect_error "--batch|fits in an int|'4294967328'" "${train[@]}" --batch 4294967328
expect_error "--checkpoint-every|at least 1|found 0" "${train[@]}" --checkpoint-every 0
expect_error "--images-every|at least 1|found -3" "${train[@]}" --images-every -3
expect_error "--seed|at least 0|found -1" "${train[@]}" --seed -1
expect_error "--device|host or cuda|'tpu'" "${train[@]}" --device tpu
expect_error "--on-unreadable|skip or reject|'maybe'" "${train[@]}" --on-unreadable maybe
# Row 13: --out that cannot be written is found before the data is loaded.
expect_error "--out $work/a-file/run|cannot create the folder|Not a directory" \
  train --out "$work/a-file/run" --data "$work/no-such-data"
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$work/read-only"
  chmod 555 "$work/read-only"
  expect_error "--out $work/read-only|cannot write there|Permission denied" \
    train --out "$work/read-only" --data "$work/no-such-data"
  chmod 755 "$work/read-only"
else
  echo "skipped: the read-only --out case (running as root, which may write anyway)"
fi
# Flags that are all valid get as far as the data, which is then what the message names.
expect_error "$work/no-such-data|no such folder" "${train[@]}"

sample=(sample --model "$work/no-such-model" --out "$work/samples.png")
expect_error "--count|[1, 10000]|found 99999999999" "${sample[@]}" --count 99999999999
expect_error "--count|[1, 10000]|found -1" "${sample[@]}" --count -1
expect_error "--class|[0, 10)|found 10" sample --model "$work/class-model" --class 10
expect_error "is not class-conditional|--class" sample --model "$unconditional" --class 3
expect_error "num_class_embeds|null (unconditional) or 11|12" sample --model "$work/twelve"
expect_error "--conditioning|none, class or cross-attention|'text'" "${train[@]}" --conditioning text
# Accepted: the run gets as far as the data.
expect_error "$work/no-such-data|no such folder" "${train[@]}" --conditioning cross-attention
expect_error "--label-dropout|found 1.5" "${train[@]}" --label-dropout 1.5
expect_error "--guidance|found -1" sample --model "$work/no-such-model" --guidance -1
expect_error "--sampler|'foo'" "${sample[@]}" --sampler foo
expect_error "--karras|--sampler ddim|no Karras sigmas" "${sample[@]}" --sampler ddim --karras
expect_error "--seed|at least 0|found -2" "${sample[@]}" --seed -2
expect_error "--out $work/a-file|cannot create the folder" \
  sample --model "$work/no-such-model" --out "$work/a-file/samples.png"
expect_error "$work/no-such-model|no checkpoint folder" "${sample[@]}"

expect_error "--samples|found 10|[32, 100000]" eval --model "$work/no-such-model" --samples 10
expect_error "--eta|found -1" eval --model "$work/no-such-model" --eta -1

samplers=(samplers --model "$work/no-such-model")
expect_error "--samplers|one of ddim, ddpm|'foo'" "${samplers[@]}" --samplers ddim,foo
expect_error "--steps|[1, 1000]|found 0" "${samplers[@]}" --steps 10,0
expect_error "--steps|separated by commas|'5x'" "${samplers[@]}" --steps 5x
expect_error "--samples|found 16" "${samplers[@]}" --samples 16
expect_error "--out $work/a-file|cannot create the folder" "${samplers[@]}" --out "$work/a-file/t.md"
expect_error "$work/no-such-model|no checkpoint folder" "${samplers[@]}"

if [ "$failures" -ne 0 ]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all flag checks passed"
