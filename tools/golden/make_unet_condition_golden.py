#!/usr/bin/env python3
"""Writes the golden files of a small UNet2DConditionModel (cross-attention on a context).

Two models from diffusers' UNet2DConditionModel, both over 4x8x8 latents with a context of 3
tokens of 12 channels (cross_attention_dim), block_out_channels (8, 16), one ResNet block per
level, a CrossAttnDownBlock2D / CrossAttnUpBlock2D at level 0 and a plain DownBlock2D / UpBlock2D at
level 1, the UNetMidBlock2DCrossAttn, 4 GroupNorm groups. Their GroupNorm and LayerNorm weights
and every bias are redrawn (make_model_golden.py's randomise, plus the LayerNorms here).

1. `conv`: attention_head_dim (2, 4), which diffusers reads as the number of HEADS per level (2
   heads of 4 channels at level 0, 4 heads of 4 channels in the mid block);
   transformer_layers_per_block (2, 1); 1x1 convolutions for proj_in / proj_out. Saved with
   save_pretrained (float32 safetensors) into tests/golden/diffusers_unet_condition/; the
   references are computed from those weights, which the test loads from the folder.
   tests/golden/unet_condition_conv.safetensors holds:
   - forward.x [2,4,8,8], forward.timesteps [2], forward.context [2,3,12], forward.output
     (model(x, t, encoder_hidden_states=context).sample);
   - the epsilon training loss of ldm's train/diffusion_loss.hpp (linear betas, 1000 steps) with
     the context: step.x0, step.noise, step.timesteps, step.context,
     step.loss = F.mse_loss(unet(x_t, t, context), noise), grad.<name> for every parameter and
     step.dcontext, the gradient of the loss with respect to the context.
2. `linear`: attention_head_dim 2 (one value for every level: 2 heads of 4 channels at level 0,
   2 of 8 in the mid block), use_linear_projection, num_class_embeds 3 (the class embedding is
   drawn N(0, 1) after the rest). tests/golden/unet_condition_linear.safetensors holds param.<name>
   for every parameter, the same entries as above and forward.labels, step.labels.

Precision: float64 from float32 inputs and weights (diffusers computes the timestep sinusoid in
float32); stored as float32.

Run by hand (not in CI): python tools/golden/make_unet_condition_golden.py [--out DIR]
"""

import argparse
import pathlib

import diffusers
import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel

import make_model_golden
from make_model_golden import (REPO, add_noise, linear_alphas_cumprod, parameter_gradients,
                               public_config, randomise, write)

make_model_golden.SCRIPT = "tools/golden/make_unet_condition_golden.py"

BASE = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
            layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=12,
            norm_num_groups=4)
CONFIGS = {
    "conv": dict(BASE, attention_head_dim=(2, 4), transformer_layers_per_block=(2, 1)),
    "linear": dict(BASE, attention_head_dim=2, use_linear_projection=True, num_class_embeds=3),
}
MODEL_SEED, DATA_SEED = 51, 52
SHAPE, CONTEXT = (2, 4, 8, 8), (2, 3, 12)


def make_model(name):
    torch.manual_seed(MODEL_SEED)
    model = UNet2DConditionModel(**CONFIGS[name])
    randomise(model)
    with torch.no_grad():
        for sub in model.modules():
            if isinstance(sub, torch.nn.LayerNorm):
                sub.weight.normal_(1.0, 0.1)
        if model.class_embedding is not None:
            model.class_embedding.weight.normal_()
    return model


def golden(name, model, generator, out_path, with_parameters):
    labels = (lambda *v: torch.tensor(v)) if model.class_embedding is not None else None
    model = model.double()
    tensors = {f"param.{k}": v for k, v in model.state_dict().items()} if with_parameters else {}

    x = torch.randn(SHAPE, generator=generator)
    context = torch.randn(CONTEXT, generator=generator)
    timesteps = torch.tensor([17, 640])
    extra = {}
    if labels:
        extra = {"class_labels": labels(2, 0)}
        tensors["forward.labels"] = extra["class_labels"]
    with torch.no_grad():
        output = model(x.double(), timesteps, encoder_hidden_states=context.double(), **extra).sample
    tensors.update({"forward.x": x, "forward.timesteps": timesteps, "forward.context": context,
                    "forward.output": output})

    x0 = torch.randn(SHAPE, generator=generator)
    noise = torch.randn(SHAPE, generator=generator)
    context = torch.randn(CONTEXT, generator=generator)
    timesteps = torch.tensor([5, 903])
    if labels:
        extra = {"class_labels": labels(1, 2)}
        tensors["step.labels"] = extra["class_labels"]
    xt = add_noise(linear_alphas_cumprod(), x0.double(), noise.double(), timesteps)
    context64 = context.double().requires_grad_()
    prediction = model(xt, timesteps, encoder_hidden_states=context64, **extra).sample
    loss = F.mse_loss(prediction, noise.double())
    loss.backward()
    tensors.update({"step.x0": x0, "step.noise": noise, "step.timesteps": timesteps,
                    "step.context": context, "step.loss": loss, "step.dcontext": context64.grad})
    tensors.update(parameter_gradients(model))
    config = {"model": public_config(model), "seed": MODEL_SEED, "data_seed": DATA_SEED,
              "weights": "GroupNorm and LayerNorm weights N(1, 0.1), every bias N(0, 0.1)",
              "precision": "float64 from float32 weights and inputs; stored as float32"}
    write(out_path, tensors, config)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    options = parser.parse_args()
    torch.set_num_threads(1)
    diffusers.utils.logging.set_verbosity_error()
    options.out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(DATA_SEED)

    folder = options.out / "diffusers_unet_condition"
    make_model("conv").save_pretrained(folder, safe_serialization=True)
    saved = UNet2DConditionModel.from_pretrained(folder, torch_dtype=torch.float32)
    golden("conv", saved, generator, options.out / "unet_condition_conv.safetensors", False)
    golden("linear", make_model("linear"), generator,
           options.out / "unet_condition_linear.safetensors", True)


if __name__ == "__main__":
    main()
