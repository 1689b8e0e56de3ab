#!/usr/bin/env python3
"""Checks the UNet2DConditionModel folders ldm writes against diffusers' from_pretrained.

tests/test_models_unet_condition.cpp writes, into the folder LDM_EXPORT_UNET_CONDITION names,
conv/ and linear/ (config.json + diffusion_pytorch_model.safetensors, by ldm's
pipeline::save_model_folder and unet_condition_config) and conv_io.safetensors /
linear_io.safetensors (x, t, context, labels where the model has classes, and ldm's output y, in
PyTorch's layouts). This loads each folder with UNet2DConditionModel.from_pretrained, runs it in
float64 on the same inputs, and prints the largest difference from ldm's output relative to the
output's largest magnitude; it exits with 1 when one is above 1e-5.

By hand (not in CI):
  LDM_EXPORT_UNET_CONDITION=/tmp/x build/host/tests/test_models_unet_condition -tc='*from_pretrained*'
  python tools/golden/check_unet_condition_folder.py /tmp/x
"""

import argparse
import pathlib
import sys

import diffusers
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

TOLERANCE = 1e-5


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=pathlib.Path)
    options = parser.parse_args()
    diffusers.utils.logging.set_verbosity_error()
    worst = 0.0
    for name in ("conv", "linear"):
        model = UNet2DConditionModel.from_pretrained(options.folder / name).double()
        io = load_file(str(options.folder / f"{name}_io.safetensors"))
        extra = {"class_labels": io["labels"].long()} if "labels" in io else {}
        with torch.no_grad():
            y = model(io["x"].double(), io["t"].double(),
                      encoder_hidden_states=io["context"].double(), **extra).sample
        error = ((y - io["y"].double()).abs().max() / y.abs().max()).item()
        worst = max(worst, error)
        print(f"{name}: largest relative error {error:.3g} (largest |y| {y.abs().max().item():.3g})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
