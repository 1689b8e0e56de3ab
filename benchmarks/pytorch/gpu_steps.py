"""The GPU benchmark protocol of docs/models.md with PyTorch and diffusers: what
benchmarks/bench_workloads_cuda.cu times with ldm, as a user of PyTorch would run it.

  unet-bench/train_step     UNet2DModel, batch 64: x0 ~ N(0, 1) latents 4x32x32, t uniform in
                            [0, 1000), noise, x_t by DDPMScheduler's linear schedule, epsilon MSE,
                            backward, AdamW (lr 1e-4). No gradient clipping and no EMA.
  vae-bench/train_step      AutoencoderKL, batch 8: x uniform in [-1, 1] at 3x256x256, encode,
                            z = posterior.sample(), decode, sum|x_hat - x| / N + 1e-6 KL, backward,
                            AdamW (lr 1e-4).
  unet-bench/ddim50_decode  50 steps of DDIMScheduler (eta 0, no clipping) for 64 latents, then
                            one decode of all 64.

Mode `eager` or `compile` (torch.compile of the UNet, and of the encoder and decoder); both with
bf16 autocast, channels_last, fused AdamW, TF32 allowed and cudnn.benchmark. Every step draws
fresh inputs; each timed step is bracketed by CUDA events; the median of --steps timed steps after
--warmup steps is reported, with the peak of torch.cuda.max_memory_allocated (reset, and the cache
emptied, before each workload builds its models). One JSON object per workload is written, one
per line, to --out.

  python3 benchmarks/pytorch/gpu_steps.py --mode eager --out runs/pytorch-eager.jsonl
  python3 benchmarks/pytorch/gpu_steps.py --mode compile --out runs/pytorch-compile.jsonl

A CPU smoke test of the script itself (tiny sizes, no timing worth reading):
  python3 benchmarks/pytorch/gpu_steps.py --device cpu --config tiny --steps 1 --warmup 0 --out /tmp/x.jsonl
"""
import argparse
import json
import statistics
import sys
import time
import traceback

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("gpu_steps.py: PyTorch is missing (pip install torch)")
try:
    import diffusers
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DModel
except ImportError as error:
    sys.exit(f"gpu_steps.py: diffusers cannot be imported ({error}); pip install diffusers, or "
             "carry the wheel made by `scripts/gpu-bench.sh --bundle-wheels`")

# docs/models.md's configurations. `tiny` is only for trying the script on a CPU.
CONFIGS = {
    "bench": dict(image_channels=3, resolution=256, ae_channels=(128, 256, 512, 512),
                  ae_layers=2, latent_channels=4, unet_channels=(128, 256, 512), unet_layers=2,
                  attention_levels=(1, 2), head_dim=32, unet_batch=64, vae_batch=8,
                  sample_batch=64, parameters=(83_653_863, 64_145_924)),
    "tiny": dict(image_channels=1, resolution=32, ae_channels=(32, 32, 64), ae_layers=1,
                 latent_channels=4, unet_channels=(32, 64), unet_layers=2, attention_levels=(1,),
                 head_dim=32, unet_batch=4, vae_batch=2, sample_batch=4,
                 parameters=(731_589, 1_003_460)),
}
DDIM_STEPS = 50
LEARNING_RATE = 1e-4


def make_autoencoder(c):
    levels = len(c["ae_channels"])
    return AutoencoderKL(in_channels=c["image_channels"], out_channels=c["image_channels"],
                         down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels,
                         block_out_channels=c["ae_channels"], layers_per_block=c["ae_layers"],
                         latent_channels=c["latent_channels"], norm_num_groups=32,
                         sample_size=c["resolution"])


def make_unet(c):
    levels = len(c["unet_channels"])
    attention = [level in c["attention_levels"] for level in range(levels)]
    return UNet2DModel(sample_size=latent_resolution(c), in_channels=c["latent_channels"],
                       out_channels=c["latent_channels"], block_out_channels=c["unet_channels"],
                       layers_per_block=c["unet_layers"],
                       down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D"
                                              for a in attention),
                       up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D"
                                            for a in reversed(attention)),
                       attention_head_dim=c["head_dim"], norm_num_groups=32)


def latent_resolution(c):
    return c["resolution"] >> (len(c["ae_channels"]) - 1)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


class Timer:
    """Milliseconds of one step: CUDA events on a GPU, the wall clock on a CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, step):
        if self.cuda:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop)
        begin = time.perf_counter()
        step()
        return (time.perf_counter() - begin) * 1e3


def counted_forward_gflop(forward):
    """FLOP of one forward pass as PyTorch's own counter sees them (convolutions, matrix products,
    attention): a check of the formula bench_workloads_cuda.cu uses, not a timing."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward()
    return counter.get_total_flops() / 1e9


def unet_train_step(c, device, compile_models, autocast):
    batch, res, z = c["unet_batch"], latent_resolution(c), c["latent_channels"]
    unet = make_unet(c).to(device, memory_format=torch.channels_last).train()
    count = parameter_count(unet)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=LEARNING_RATE, fused=True)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    model = torch.compile(unet) if compile_models else unet
    extra = {}
    if not compile_models:
        x = torch.randn(1, z, res, res, device=device)
        extra["counted_forward_GFLOP_per_sample"] = counted_forward_gflop(
            lambda: unet(x, torch.zeros(1, device=device, dtype=torch.long)))

    def step():
        x0 = torch.randn(batch, z, res, res, device=device).contiguous(
            memory_format=torch.channels_last)
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), device=device)
        xt = scheduler.add_noise(x0, noise, t)
        with autocast():
            prediction = model(xt, t).sample
        loss = F.mse_loss(prediction.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, count, batch, extra


def vae_train_step(c, device, compile_models, autocast):
    batch, res = c["vae_batch"], c["resolution"]
    vae = make_autoencoder(c).to(device, memory_format=torch.channels_last).train()
    count = parameter_count(vae)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=LEARNING_RATE, fused=True)
    extra = {}
    if not compile_models:
        x = torch.rand(1, c["image_channels"], res, res, device=device) * 2 - 1
        extra["counted_forward_GFLOP_per_sample"] = counted_forward_gflop(
            lambda: vae.decode(vae.encode(x).latent_dist.mean))
    if compile_models:
        vae.encoder = torch.compile(vae.encoder)
        vae.decoder = torch.compile(vae.decoder)

    def step():
        x = (torch.rand(batch, c["image_channels"], res, res, device=device) * 2 - 1).contiguous(
            memory_format=torch.channels_last)
        with autocast():
            posterior = vae.encode(x).latent_dist
            reconstruction = vae.decode(posterior.sample()).sample
        loss = ((reconstruction.float() - x).abs().sum() / batch
                + 1e-6 * posterior.kl().float().sum() / batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, count, batch, extra


def ddim50_decode(c, device, compile_models, autocast):
    batch, res, z = c["sample_batch"], latent_resolution(c), c["latent_channels"]
    unet = make_unet(c).to(device, memory_format=torch.channels_last).eval()
    vae = make_autoencoder(c).to(device, memory_format=torch.channels_last).eval()
    count = parameter_count(unet) + parameter_count(vae)
    for p in list(unet.parameters()) + list(vae.parameters()):
        p.requires_grad_(False)
    model = torch.compile(unet) if compile_models else unet
    if compile_models:
        vae.decoder = torch.compile(vae.decoder)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
                              set_alpha_to_one=True, timestep_spacing="leading")
    scheduler.set_timesteps(DDIM_STEPS, device=device)

    @torch.no_grad()
    def step():
        x = torch.randn(batch, z, res, res, device=device).contiguous(
            memory_format=torch.channels_last)
        with autocast():
            for t in scheduler.timesteps:
                x = scheduler.step(model(x, t).sample, t, x).prev_sample
            vae.decode(x).sample

    return step, count, batch, {}


WORKLOADS = {
    "unet-bench/train_step": unet_train_step,
    "vae-bench/train_step": vae_train_step,
    "unet-bench/ddim50_decode": ddim50_decode,
}


def run(name, build, args, c, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    torch.manual_seed(0)
    step, count, batch, extra = build(c, device, args.mode == "compile", autocast)
    timer = Timer(device)
    for _ in range(args.warmup):
        step()
    times = sorted(timer(step) for _ in range(args.steps))
    record = dict(workload=name, mode=args.mode, batch=batch, parameters=count,
                  ms=statistics.median(times), ms_min=times[0], ms_max=times[-1],
                  steps=args.steps, warmup=args.warmup, **extra)
    if device.type == "cuda":
        record["peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("eager", "compile"), default="eager")
    parser.add_argument("--out", required=True, help="JSON lines, one per workload")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="bench")
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS),
                        help="run only this workload (repeatable)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_steps.py: CUDA is not available to PyTorch (use --device cpu for a smoke test)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    c = CONFIGS[args.config]

    environment = dict(torch=torch.__version__, diffusers=diffusers.__version__,
                       cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                       device=(torch.cuda.get_device_name(device) if device.type == "cuda"
                               else "cpu"))
    print(f"PyTorch {environment['torch']}, diffusers {environment['diffusers']}, "
          f"{environment['device']}, mode {args.mode}, {args.steps} timed steps", flush=True)
    failed = False
    with open(args.out, "w") as out:
        for name, build in WORKLOADS.items():
            if args.only and name not in args.only:
                continue
            try:
                record = run(name, build, args, c, device)
            except Exception as error:  # one workload failing must not lose the others' numbers
                traceback.print_exc()
                record = dict(workload=name, mode=args.mode, error=f"{type(error).__name__}: {error}")
                failed = True
            record.update(environment)
            expected = c["parameters"][0 if name.startswith("vae") else 1]
            if name.endswith("train_step") and record.get("parameters", expected) != expected:
                print(f"warning: {name} has {record['parameters']} parameters, "
                      f"docs/models.md says {expected}", file=sys.stderr)
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(json.dumps(record), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
