#!/usr/bin/env python3
"""Writes the LPIPS (VGG16) weights that ldm::train::LPIPS loads, from the lpips package.

ldm's LPIPS (include/ldm/train/lpips.hpp) is lpips.LPIPS(net='vgg', version='0.1'). It loads the
31 tensors of that module's state_dict that carry weights, under the package's names and in
PyTorch's layouts (OIHW convolutions), as float32:
  net.slice{1..5}.{index}.weight/.bias  VGG16's 13 convolutions (torchvision's ImageNet weights;
                                        index is the layer's position in vgg16().features)
  lin{0..4}.model.1.weight              the five linear heads, calibrated on human judgements
Left out: scaling_layer.shift/scale (constants in ldm) and lins.{0..4}.* (aliases of lin{0..4}).

Where the weights come from:
  - the heads ship with the package (lpips/weights/v0.1/vgg.pth); --lin names another file.
  - VGG16's ImageNet weights are not in the package: torchvision downloads them
    (vgg16-397923af.pth, 528 MB) into the torch hub cache ($TORCH_HOME/hub/checkpoints, by default
    ~/.cache/torch/hub/checkpoints) the first time. Run this on a machine that can reach
    download.pytorch.org, or copy that file into the cache beforehand.

Usage:
  pip install torch torchvision lpips safetensors
  python tools/convert_lpips_weights.py lpips_vgg.safetensors
and give lpips_vgg.safetensors to ldm::train::LPIPS::load (through io::SafetensorsFile::open).
"""

import argparse
import importlib.metadata
import os
import pathlib
import warnings

import lpips
import torch
import torchvision
from safetensors.torch import save_file

SCRIPT = "tools/convert_lpips_weights.py"
HEADS = [f"lin{k}.model.1.weight" for k in range(5)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=pathlib.Path, help="the safetensors file to write")
    parser.add_argument("--lin", type=pathlib.Path,
                        help="a .pth with lin0..lin4 (default: the package's weights/v0.1/vgg.pth)")
    args = parser.parse_args()

    heads_path = args.lin or pathlib.Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    heads = torch.load(heads_path, map_location="cpu")
    # The package loads the heads with strict=False: a file without them would leave the random
    # initialisation in place without a word.
    missing = [name for name in HEADS if name not in heads]
    if missing:
        raise SystemExit(f"{heads_path}: no {', '.join(missing)}")

    # torchvision deprecates the pretrained= argument that the lpips package passes.
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
    model = lpips.LPIPS(net="vgg", version="0.1", lpips=True, spatial=False, pretrained=True,
                        pnet_rand=False, model_path=os.fspath(heads_path), verbose=False)
    state = model.state_dict()
    names = [name for name in state if name.startswith("net.")] + HEADS
    assert len(names) == 31, f"expected 31 weight tensors, found {len(names)}"
    for name in HEADS:
        assert torch.equal(state[name], heads[name].to(state[name].dtype)), name

    tensors = {name: state[name].detach().to(torch.float32).contiguous() for name in names}
    metadata = {
        "script": SCRIPT,
        "model": "lpips.LPIPS(net='vgg', version='0.1', lpips=True)",
        "heads": os.fspath(heads_path),
        "trunk": "torchvision vgg16 ImageNet weights (IMAGENET1K_V1)",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lpips": importlib.metadata.version("lpips"),
    }
    save_file(tensors, os.fspath(args.output), metadata=metadata)
    print(f"{args.output}: {len(tensors)} tensors, {args.output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
