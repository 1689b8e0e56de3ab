#!/usr/bin/env python3
"""Writes the golden files of the whole `tiny` models (docs/models.md) from diffusers.

1. tests/golden/diffusers_tiny/vae/ and .../unet/: an AutoencoderKL and a UNet2DModel in the
   `tiny` configuration, saved by diffusers itself (save_pretrained, safetensors, BF16). Every
   GroupNorm weight and bias and every bias is redrawn first, so that an implementation that
   ignored one would fail; the weights are then rounded to bfloat16 once, and every reference below
   is computed from exactly those values (the folders are loaded back with from_pretrained).
   .../scheduler/: DDIMScheduler(clip_sample=False) (linear betas, epsilon), saved by
   save_pretrained, so that the folder is a whole pipeline as diffusers and ldm load it.
2. tests/golden/tiny_autoencoder.safetensors:
   - encode.x [2,1,32,32] uniform in [-1, 1]; encode.mean, encode.logvar (latent_dist, logvar
     clamped by diffusers); decode.z [2,4,8,8]; decode.output (decode(z).sample);
   - the training step of ldm's train/autoencoder_loss.hpp with an L1 pixel loss, no perceptual
     term and KL weight 1e-6: step.x, step.eps, z = mean + std * eps,
       step.pixel = sum|decode(z) - x| / N,  step.kl = 1e-6 * mean over n of KL_n
       (diffusers' DiagonalGaussianDistribution.kl()), step.loss = pixel + kl,
     and grad.<name> for every parameter.
3. tests/golden/tiny_unet.safetensors:
   - forward.x [2,4,8,8], forward.timesteps [2], forward.output;
   - the training step of ldm's train/diffusion_loss.hpp (epsilon prediction, `linear` betas,
     1000 steps): step.x0, step.noise, step.timesteps, step.loss (F.mse_loss(unet(x_t, t), noise))
     and grad.<name> for every parameter;
   - adamw.<k>.x0, adamw.<k>.noise, adamw.<k>.timesteps for k = 1..10 and adamw.losses [10]:
     ten torch.optim.AdamW(lr=1e-4, weight_decay=1e-2) steps of that objective in float32 (as a
     training run is), from the same weights; loss k is computed before update k.

Precision: the forward passes and the single training steps run in float64 from float32 inputs and
the bf16 weights; diffusers computes the sinusoidal timestep embedding in float32 whatever the
model's dtype. Everything is stored as float32 (timesteps are small integers). x_t uses
alphas_cumprod in float64 (diffusers' scheduler keeps it in float32; the two agree to 1e-6,
checked here), evaluated in float64 and rounded once, as ldm's add_noise does.

The metadata of the two golden files names the script, the torch and diffusers versions, and holds
"config" (JSON): both models' diffusers configs, the seeds, the sizes and the loss settings.

Run by hand from anywhere (not in CI): python tools/golden/make_model_golden.py [--out DIR]
"""

import argparse
import json
import pathlib

import diffusers
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

SCRIPT = "tools/golden/make_model_golden.py"
REPO = pathlib.Path(__file__).resolve().parents[2]

VAE_CONFIG = dict(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                  up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 32, 64),
                  layers_per_block=1, latent_channels=4, norm_num_groups=32, sample_size=32)
UNET_CONFIG = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                   layers_per_block=2, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                   up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=32,
                   norm_num_groups=32)
VAE_SEED, UNET_SEED, DATA_SEED = 31, 32, 33
BATCH = 2
KL_WEIGHT = 1e-6
TRAIN_TIMESTEPS = 1000
ADAMW = dict(lr=1e-4, weight_decay=1e-2, foreach=False)
ADAMW_STEPS = 10


def randomise(model):
    """Default initialisation leaves GroupNorm at (1, 0) and the biases small: draw them."""
    with torch.no_grad():
        for sub in model.modules():
            if isinstance(sub, torch.nn.GroupNorm):
                sub.weight.normal_(1.0, 0.1)
            if getattr(sub, "bias", None) is not None:
                sub.bias.normal_(0.0, 0.1)


def save_bf16(model, folder):
    """Writes the model as diffusers does and reads it back in float64 with diffusers."""
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    return type(model).from_pretrained(folder, torch_dtype=torch.float64)


def parameter_gradients(model):
    params = dict(model.named_parameters())
    assert list(model.state_dict()) == list(params), "the state_dict holds non-parameters"
    return {f"grad.{k}": p.grad for k, p in params.items()}


def public_config(model):
    """The model's diffusers config without the private keys (a local path, the version)."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def write(path, tensors, config):
    metadata = {
        "script": SCRIPT,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "config": json.dumps(config, sort_keys=True),
    }
    stored = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    save_file(stored, str(path), metadata=metadata)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    print(f"{shown}: {len(stored)} tensors, {path.stat().st_size} bytes")


def linear_alphas_cumprod():
    """The `linear` schedule in float64, tied to diffusers' name by comparing with its scheduler."""
    betas = torch.linspace(1e-4, 2e-2, TRAIN_TIMESTEPS, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    theirs = DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear")
    assert torch.allclose(alphas_cumprod, theirs.alphas_cumprod.double(), rtol=1e-6, atol=0)
    return alphas_cumprod


def add_noise(alphas_cumprod, x0, noise, timesteps):
    """x_t in float64, rounded once to the inputs' dtype."""
    abar = alphas_cumprod[timesteps].view(-1, 1, 1, 1)
    xt = abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise.double()
    return xt.to(x0.dtype)


def autoencoder(folder, out_path, generator, base_config):
    torch.manual_seed(VAE_SEED)
    vae = AutoencoderKL(**VAE_CONFIG)
    randomise(vae)
    vae = save_bf16(vae, folder)
    shape, latent = (BATCH, 1, 32, 32), (BATCH, 4, 8, 8)

    x = torch.rand(shape, generator=generator) * 2 - 1
    z = torch.randn(latent, generator=generator)
    with torch.no_grad():
        posterior = vae.encode(x.double()).latent_dist
        decoded = vae.decode(z.double()).sample
    tensors = {"encode.x": x, "encode.mean": posterior.mean, "encode.logvar": posterior.logvar,
               "decode.z": z, "decode.output": decoded}

    x = torch.rand(shape, generator=generator) * 2 - 1
    eps = torch.randn(latent, generator=generator)
    posterior = vae.encode(x.double()).latent_dist
    reconstruction = vae.decode(posterior.mean + posterior.std * eps.double()).sample
    pixel = (reconstruction - x.double()).abs().sum() / BATCH
    kl = KL_WEIGHT * posterior.kl().mean()
    loss = pixel + kl
    loss.backward()
    tensors.update({"step.x": x, "step.eps": eps, "step.pixel": pixel, "step.kl": kl,
                    "step.loss": loss})
    tensors.update(parameter_gradients(vae))

    config = dict(base_config, model=public_config(vae), seed=VAE_SEED,
                  sizes={"x": list(shape), "latents": list(latent)},
                  step={"pixel": "l1, sum / N", "perceptual_weight": 0.0, "kl_weight": KL_WEIGHT})
    write(out_path, tensors, config)


def unet_training_loss(unet, alphas_cumprod, x0, noise, timesteps):
    xt = add_noise(alphas_cumprod, x0, noise, timesteps)
    return F.mse_loss(unet(xt, timesteps).sample, noise)


def unet(folder, out_path, generator, base_config):
    torch.manual_seed(UNET_SEED)
    model = UNet2DModel(**UNET_CONFIG)
    randomise(model)
    model = save_bf16(model, folder)
    shape = (BATCH, 4, 8, 8)
    alphas_cumprod = linear_alphas_cumprod()

    x = torch.randn(shape, generator=generator)
    timesteps = torch.tensor([3, 801])
    with torch.no_grad():
        output = model(x.double(), timesteps).sample
    tensors = {"forward.x": x, "forward.timesteps": timesteps, "forward.output": output}

    model.train()
    x0 = torch.randn(shape, generator=generator)
    noise = torch.randn(shape, generator=generator)
    timesteps = torch.randint(0, TRAIN_TIMESTEPS, (BATCH,), generator=generator)
    loss = unet_training_loss(model, alphas_cumprod, x0.double(), noise.double(), timesteps)
    loss.backward()
    tensors.update({"step.x0": x0, "step.noise": noise, "step.timesteps": timesteps,
                    "step.loss": loss})
    tensors.update(parameter_gradients(model))

    model = model.float()
    optimizer = torch.optim.AdamW(model.parameters(), **ADAMW)
    losses = []
    for k in range(1, ADAMW_STEPS + 1):
        x0 = torch.randn(shape, generator=generator)
        noise = torch.randn(shape, generator=generator)
        timesteps = torch.randint(0, TRAIN_TIMESTEPS, (BATCH,), generator=generator)
        optimizer.zero_grad()
        loss = unet_training_loss(model, alphas_cumprod, x0, noise, timesteps)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        tensors.update({f"adamw.{k}.x0": x0, f"adamw.{k}.noise": noise,
                        f"adamw.{k}.timesteps": timesteps})
    tensors["adamw.losses"] = torch.tensor(losses)

    adamw_args = {k: v for k, v in optimizer.defaults.items() if not callable(v)}
    config = dict(base_config, model=public_config(model), seed=UNET_SEED, sizes={"x": list(shape)},
                  step={"prediction_type": "epsilon", "beta_schedule": "linear",
                        "num_train_timesteps": TRAIN_TIMESTEPS},
                  adamw={"args": adamw_args, "steps": ADAMW_STEPS,
                         "precision": "float32 model, inputs and optimizer"})
    write(out_path, tensors, config)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    options = parser.parse_args()
    # One thread: the same script and versions then write the same tensors.
    torch.set_num_threads(1)
    # Its warnings here (no accelerate; casting with to() when no module must stay in float32)
    # concern nothing these small models do.
    diffusers.utils.logging.set_verbosity_error()
    options.out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(DATA_SEED)
    base_config = {
        "data_seed": DATA_SEED,
        "weights": "GroupNorm weights N(1, 0.1), every bias N(0, 0.1), then rounded to bfloat16",
        "precision": "float64 from float32 inputs and the bf16 weights (timestep sinusoid in "
                     "float32, as diffusers computes it); stored as float32",
    }
    folder = options.out / "diffusers_tiny"
    autoencoder(folder / "vae", options.out / "tiny_autoencoder.safetensors", generator,
                base_config)
    unet(folder / "unet", options.out / "tiny_unet.safetensors", generator, base_config)
    DDIMScheduler(clip_sample=False).save_pretrained(folder / "scheduler")


if __name__ == "__main__":
    main()
