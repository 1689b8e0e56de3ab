"""The same two training steps as benchmarks/bench_pipeline.cpp, with PyTorch and diffusers on the
CPU in float32: the tiny configuration of docs/models.md at batch 32.

  autoencoder step: encode, z = mean + std * eps, decode, sum|x_hat - x| / N + 1e-6 KL, backward,
                    clip_grad_norm_(1.0), AdamW
  diffusion step:   frozen encode (posterior mean) * scaling factor, t and noise, x_t, UNet, MSE,
                    backward, clip_grad_norm_(1.0), AdamW, EMA (diffusers' EMAModel)

Needs: pip install torch diffusers. Run with the same thread count as the ldm benchmark:
  python3 benchmarks/pytorch/cpu_steps.py --threads 2
"""
import argparse
import statistics
import time

import torch
from diffusers import AutoencoderKL, UNet2DModel
from diffusers.training_utils import EMAModel

BATCH = 32


def tiny_autoencoder():
    return AutoencoderKL(in_channels=1, out_channels=1,
                         down_block_types=("DownEncoderBlock2D",) * 3,
                         up_block_types=("UpDecoderBlock2D",) * 3,
                         block_out_channels=(32, 32, 64), layers_per_block=1, latent_channels=4,
                         norm_num_groups=32, sample_size=32)


def tiny_unet():
    return UNet2DModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                       layers_per_block=2, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=32,
                       norm_num_groups=32)


def time_steps(step, seconds):
    step()  # warm-up
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, len(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    vae = tiny_autoencoder()
    vae_optimizer = torch.optim.AdamW(vae.parameters(), lr=4e-4)
    x = torch.rand(BATCH, 1, 32, 32) * 2 - 1

    def autoencoder_step():
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn_like(posterior.mean)
        reconstruction = vae.decode(z).sample
        loss = (reconstruction - x).abs().sum() / BATCH + 1e-6 * posterior.kl().sum() / BATCH
        vae_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        vae_optimizer.step()

    unet = tiny_unet()
    unet_optimizer = torch.optim.AdamW(unet.parameters(), lr=4e-4)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, power=0.75)
    alphas_cumprod = torch.cumprod(1 - torch.linspace(1e-4, 2e-2, 1000, dtype=torch.float64), 0).float()

    def diffusion_step():
        with torch.no_grad():
            z0 = vae.encode(x).latent_dist.mean * 0.5
        noise = torch.randn_like(z0)
        t = torch.randint(0, 1000, (BATCH,))
        abar = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = abar.sqrt() * z0 + (1 - abar).sqrt() * noise
        loss = torch.nn.functional.mse_loss(unet(xt, t).sample, noise)
        unet_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        unet_optimizer.step()
        ema.step(unet.parameters())

    print(f"PyTorch {torch.__version__}, {args.threads} threads, batch {BATCH}, float32")
    for name, step in (("autoencoder_step", autoencoder_step), ("diffusion_step", diffusion_step)):
        ms, count = time_steps(step, args.seconds)
        print(f"{name:18s} median {ms:8.1f} ms over {count} steps ({BATCH / ms * 1000:.1f} images/s)")


if __name__ == "__main__":
    main()
