#!/usr/bin/env bash
# The main job: builds the Fashion-MNIST trainer, draws a sample grid from the shipped
# class-conditional model (models/fashion-tiny-classes: a row per class), then trains the tiny
# model (class-conditional, as `fashion train` is by default) from scratch for a short time budget
# so you can watch it learn. About 12 minutes on 2 CPU cores, build included.
#   LDM_TRAIN_SECONDS=3600 scripts/main.sh    # train for an hour instead of 8 minutes
#   LDM_OUT=runs/mine scripts/main.sh         # write somewhere else than runs/quickstart
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ldm_ensure_packages "${LDM_PACKAGES[@]}"
seconds=${LDM_TRAIN_SECONDS:-480}
out=${LDM_OUT:-runs/quickstart}
fashion=build/host/examples/fashion

echo "ldm: building the trainer (preset 'host')"
cmake --preset host >/dev/null
cmake --build --preset host -j "$(ldm_jobs)" --target fashion

if [ -e "$out" ]; then
  echo "ldm: replacing the previous quick-start run in $out"
  rm -rf "$out"
fi
mkdir -p "$out"
echo
echo "ldm: 1/2 sampling 80 images from the shipped class-conditional model, a row per class"
"$fashion" sample --model models/fashion-tiny-classes --out "$out/shipped_samples.png"
echo
echo "ldm: 2/2 training the tiny model from scratch for $seconds s (Ctrl-C saves and stops)"
"$fashion" train --out "$out" --time-budget "$seconds" --images-every 100 --checkpoint-every 250
echo
echo "ldm: done. In $out/: shipped_samples.png (the shipped model), reconstructions.png and"
echo "     samples.png (this run), log.csv (every step's loss), loss.png (log.csv drawn),"
echo "     validation.csv (held-out measures), checkpoint/ (a diffusers folder)."
echo "     Train longer: $fashion train --out runs/long --autoencoder-steps 2500 --diffusion-steps 12000"
