#!/usr/bin/env python3
"""Writes tests/golden/class_unet.safetensors: a small class-conditional UNet2DModel from diffusers.

The model: diffusers' UNet2DModel with num_class_embeds=4 (ldm's reading: 3 classes and the null
class of classifier-free guidance), block_out_channels (8, 16), one ResNet block per level,
attention at the coarser level (head dim 8), 4 GroupNorm groups, 2x8x8 samples. Its GroupNorm
weights and every bias are redrawn (make_model_golden.py's randomise), and so is the class
embedding (N(0, 1), its default, but drawn after the rest).

The file holds:
- param.<name>: every parameter under diffusers' name (float32, as the float64 run used them);
- forward.x [2,2,8,8], forward.timesteps [2], forward.labels [2], forward.output
  (model(x, t, class_labels=labels).sample), in float64;
- step.x0, step.noise, step.timesteps, step.labels, step.loss: the epsilon training loss of ldm's
  train/diffusion_loss.hpp (linear betas, 1000 steps), F.mse_loss(unet(x_t, t, labels), noise),
  and grad.<name> for every parameter, class_embedding.weight included (float64).

Run by hand (not in CI): python tools/golden/make_class_unet_golden.py [--out DIR]
"""

import argparse
import pathlib

import diffusers
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel

import make_model_golden
from make_model_golden import (REPO, add_noise, linear_alphas_cumprod, parameter_gradients,
                               public_config, randomise, write)

make_model_golden.SCRIPT = "tools/golden/make_class_unet_golden.py"

CONFIG = dict(sample_size=8, in_channels=2, out_channels=2, block_out_channels=(8, 16),
              layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
              up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=8,
              norm_num_groups=4, num_class_embeds=4)
MODEL_SEED, DATA_SEED = 41, 42
SHAPE = (2, 2, 8, 8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    options = parser.parse_args()
    torch.set_num_threads(1)
    diffusers.utils.logging.set_verbosity_error()
    torch.manual_seed(MODEL_SEED)
    model = UNet2DModel(**CONFIG)
    randomise(model)
    with torch.no_grad():
        model.class_embedding.weight.normal_()
    model = model.double()
    generator = torch.Generator().manual_seed(DATA_SEED)

    tensors = {f"param.{k}": v for k, v in model.state_dict().items()}
    x = torch.randn(SHAPE, generator=generator)
    timesteps = torch.tensor([17, 640])
    labels = torch.tensor([2, 3])  # a class, and the null class
    with torch.no_grad():
        output = model(x.double(), timesteps, class_labels=labels).sample
    tensors.update({"forward.x": x, "forward.timesteps": timesteps, "forward.labels": labels,
                    "forward.output": output})

    x0 = torch.randn(SHAPE, generator=generator)
    noise = torch.randn(SHAPE, generator=generator)
    timesteps = torch.tensor([5, 903])
    labels = torch.tensor([0, 1])
    xt = add_noise(linear_alphas_cumprod(), x0.double(), noise.double(), timesteps)
    loss = F.mse_loss(model(xt, timesteps, class_labels=labels).sample, noise.double())
    loss.backward()
    tensors.update({"step.x0": x0, "step.noise": noise, "step.timesteps": timesteps,
                    "step.labels": labels, "step.loss": loss})
    tensors.update(parameter_gradients(model))
    config = {"model": public_config(model), "seed": MODEL_SEED, "data_seed": DATA_SEED,
              "precision": "float64; stored as float32"}
    options.out.mkdir(parents=True, exist_ok=True)
    write(options.out / "class_unet.safetensors", tensors, config)


if __name__ == "__main__":
    main()
