#!/usr/bin/env python3
"""Writes tests/golden/lpips_vgg_random.safetensors with the lpips package itself.

The network is lpips.LPIPS(net='vgg', version='0.1', pretrained=False, pnet_rand=True), in eval
mode, called on images in [-1, 1] (normalize=False): pnet_rand=True builds torchvision's VGG16
without weights (no download), and pretrained=False skips loading the package's calibrated heads,
leaving lin0..lin4 at nn.Conv2d's default initialisation. Every weight is then overwritten.

Why the weights come from a formula: VGG16's 14.7M convolution weights are 59 MB in float32, too
large to commit, and a torch.manual_seed stream is not promised to stay the same across torch
versions. So each weight is a function of its tensor's position and its own index, computed
exactly in integer arithmetic and float64 and rounded once to float32; tests/test_train_perceptual.cpp
computes the same numbers. The file stores only inputs, outputs and gradients.

The formula. Tensors are numbered t = 0..30 in the state_dict order of the lpips package, without
the ScalingLayer buffers and the lins.* aliases of lin0..lin4:
net.slice1.0.weight, net.slice1.0.bias, net.slice1.2.weight, ..., net.slice5.28.bias (t = 0..25),
lin0.model.1.weight, ..., lin4.model.1.weight (t = 26..30). Element i counts in PyTorch's layout
(OIHW for convolutions). With 32-bit unsigned arithmetic (wrapping multiplication):
    mix(v):  v *= 0x9E3779B1; v ^= v >> 16; v *= 0x2C1B3C6D; v ^= v >> 13;
             v *= 0x297A2D39; v ^= v >> 16
    u(t, i) = (mix(i ^ mix(t + 1)) >> 8) / 2^24            (in [0, 1), exact)
    convolution weight: (2 u - 1) * sqrt(6 / fan_in), fan_in = Cin * 3 * 3 (He's uniform
                        initialisation, which keeps activations of order one through 13 ReLU
                        layers)
    convolution bias:   (2 u - 1) * 0.1
    lin weight:         u (non-negative, as the published heads are)
each computed in float64 and rounded to float32.

Contents (float32; NCHW images):
- rgb.reconstruction, rgb.target [2, 3, 32, 32]: the target uniform in [-1, 1), the
  reconstruction (1 - a) * target + a * noise with noise uniform in [-1, 1), a = 1 for sample 0
  and 0.2 for sample 1;
  rgb.distance [2] = LPIPS(reconstruction, target);
  rgb.grad_reconstruction [2, 3, 32, 32] = d sum(distance * upstream) / d reconstruction.
- gray.*: the same for [2, 1, 32, 32] images, which ldm replicates to three channels; the
  distance is the package's on x.expand(-1, 3, -1, -1), and the gradient is with respect to the
  one-channel image (autograd sums the three channel gradients through the expand).
- upstream [2]: N(0, 1), shared by both cases.
The network and the inputs run in float64 (inputs are float32 values), so a float32
implementation is compared with the exact answer. Metadata: the script, the torch, torchvision
and lpips versions, the formula, and "config" (JSON: constructor and call arguments, sizes, seed).

Run by hand from anywhere (not in CI): python tools/golden/make_lpips_golden.py [--out DIR]
"""

import argparse
import importlib.metadata
import json
import pathlib
import warnings

import lpips
import numpy
import torch
import torchvision
from safetensors.torch import save_file

SCRIPT = "tools/golden/make_lpips_golden.py"
REPO = pathlib.Path(__file__).resolve().parents[2]
SEED = 2024
BATCH, SIZE = 2, 32
NOISE = torch.tensor([1.0, 0.2])  # per sample: the share of noise in the reconstruction

# VGG16's features as the lpips package slices them: (torchvision indices of the convolutions).
SLICES = [(0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28)]
CHANNELS = [64, 128, 256, 512, 512]

FORMULA = (
    "t = tensor position in state_dict order (net.slice*.*.weight/bias, then lin0..lin4), "
    "i = element index in PyTorch layout; uint32 mix(v): v *= 0x9E3779B1; v ^= v >> 16; "
    "v *= 0x2C1B3C6D; v ^= v >> 13; v *= 0x297A2D39; v ^= v >> 16; "
    "u = (mix(i ^ mix(t + 1)) >> 8) / 2^24; conv weight (2u - 1) * sqrt(6 / (Cin * 9)), "
    "conv bias (2u - 1) * 0.1, lin weight u; float64, rounded to float32"
)


def mix(v):
    v = v.astype(numpy.uint32)
    v = v * numpy.uint32(0x9E3779B1)
    v ^= v >> numpy.uint32(16)
    v = v * numpy.uint32(0x2C1B3C6D)
    v ^= v >> numpy.uint32(13)
    v = v * numpy.uint32(0x297A2D39)
    v ^= v >> numpy.uint32(16)
    return v


def uniform(t, count):
    key = mix(numpy.array([t + 1], dtype=numpy.uint32))[0]
    i = numpy.arange(count, dtype=numpy.uint32)
    return (mix(i ^ key) >> numpy.uint32(8)).astype(numpy.float64) / 2.0**24


def parameter_names():
    names = []
    for k, indices in enumerate(SLICES):
        for index in indices:
            names += [f"net.slice{k + 1}.{index}.weight", f"net.slice{k + 1}.{index}.bias"]
    return names + [f"lin{k}.model.1.weight" for k in range(len(CHANNELS))]


def formula_weights(model):
    """Overwrites every parameter with the formula; returns the names in order."""
    names = parameter_names()
    params = dict(model.named_parameters())
    assert sorted(names) == sorted(params), "the lpips package's parameters are not the expected"
    with torch.no_grad():
        for t, name in enumerate(names):
            p = params[name]
            u = uniform(t, p.numel())
            if name.startswith("lin"):
                values = u
            elif name.endswith(".bias"):
                values = (2 * u - 1) * 0.1
            else:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                values = (2 * u - 1) * numpy.sqrt(6.0 / fan_in)
            p.copy_(torch.from_numpy(values.astype(numpy.float32)).reshape(p.shape))
    return names


def run(model, reconstruction, target, upstream, replicate):
    r = reconstruction.double().requires_grad_()
    t = target.double()
    if replicate:
        r3, t3 = r.expand(-1, 3, -1, -1), t.expand(-1, 3, -1, -1)
    else:
        r3, t3 = r, t
    distance = model(r3, t3, normalize=False).flatten()
    (distance * upstream.double()).sum().backward()
    return distance, r.grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    args = parser.parse_args()

    torch.set_num_threads(1)
    # torchvision deprecates the pretrained= argument that the lpips package passes.
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
    model = lpips.LPIPS(net="vgg", version="0.1", lpips=True, spatial=False, pretrained=False,
                        pnet_rand=True, verbose=False)
    names = formula_weights(model)
    model = model.double().eval()

    generator = torch.Generator().manual_seed(SEED)

    def pair(channels):
        """A target and a reconstruction that mixes it with noise: sample 0 is all noise, sample 1
        mostly target, so that the two distances differ."""
        target, noise = (torch.rand(BATCH, channels, SIZE, SIZE, generator=generator) * 2 - 1
                         for _ in range(2))
        weight = NOISE.reshape(BATCH, 1, 1, 1)
        return (1 - weight) * target + weight * noise, target

    rgb, gray = pair(3), pair(1)
    upstream = torch.randn(BATCH, generator=generator)

    tensors = {"upstream": upstream}
    for case, (reconstruction, target), replicate in (("rgb", rgb, False), ("gray", gray, True)):
        distance, grad = run(model, reconstruction, target, upstream, replicate)
        tensors[f"{case}.reconstruction"] = reconstruction
        tensors[f"{case}.target"] = target
        tensors[f"{case}.distance"] = distance
        tensors[f"{case}.grad_reconstruction"] = grad
        print(f"{case}: distance {distance.tolist()}")

    config = {
        "constructor": dict(net="vgg", version="0.1", lpips=True, spatial=False,
                            pretrained=False, pnet_rand=True, eval_mode=True),
        "call": dict(normalize=False, retPerLayer=False),
        "gray": "x.expand(-1, 3, -1, -1) for reconstruction and target",
        "parameters": names,
        "sizes": {"batch": BATCH, "height": SIZE, "width": SIZE},
        "noise_share": NOISE.tolist(),
        "seed": SEED,
        "precision": "computed in float64 from float32 inputs and weights, stored as float32",
    }
    metadata = {
        "script": SCRIPT,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lpips": importlib.metadata.version("lpips"),
        "weights": FORMULA,
        "config": json.dumps(config, sort_keys=True),
    }
    stored = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    path = args.out / "lpips_vgg_random.safetensors"
    save_file(stored, str(path), metadata=metadata)
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: "
          f"{len(stored)} tensors, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
