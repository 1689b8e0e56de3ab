#!/usr/bin/env python3
"""Checkpoints both ways for a class-conditional model (run by hand; needs torch and diffusers).

1. diffusers' UNet2DModel.from_pretrained loads the unet/ of a folder ldm wrote (a
   `fashion train --conditioning class` checkpoint) and computes its output for fixed inputs.
2. It perturbs the weights, writes them with save_pretrained into OUT/rev/unet (beside a copy of
   the folder's vae/ and scheduler/) and computes that model's output too.
Both outputs and the inputs go to OUT/io.safetensors; class_unet.cpp then loads both folders
with ldm and compares.

  python tools/roundtrip/class_unet.py runs/classes/checkpoint /tmp/roundtrip
"""
import os
import shutil
import sys

import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

source, out = os.path.realpath(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
x = torch.randn(4, 4, 8, 8)
timesteps = torch.tensor([999, 500, 20, 0])
labels = torch.tensor([0, 3, 9, 10])  # classes, and the null class
unet = UNet2DModel.from_pretrained(source + "/unet").double()
with torch.no_grad():
    written_by_ldm = unet(x.double(), timesteps, class_labels=labels).sample
    for p in unet.parameters():
        p.add_(0.01 * torch.randn_like(p))
shutil.rmtree(out + "/rev", ignore_errors=True)
os.makedirs(out + "/rev")
for part in ("vae", "scheduler"):
    shutil.copytree(source + "/" + part, out + "/rev/" + part)
unet.float().save_pretrained(out + "/rev/unet")
with torch.no_grad():
    written_by_diffusers = unet.double()(x.double(), timesteps, class_labels=labels).sample
save_file({"x": x, "t": timesteps.float(), "labels": labels.float(),
           "out_a": written_by_ldm.float(), "out_b": written_by_diffusers.float()},
          out + "/io.safetensors")
print(f"diffusers loaded {source}/unet (num_class_embeds {unet.config.num_class_embeds}) and "
      f"wrote {out}/rev/unet")
