#!/usr/bin/env python3
"""Writes the golden files of tests/golden/ from PyTorch and diffusers themselves.

Each file holds one module's parameters (under its state_dict names, PyTorch layouts: NCHW
activations, OIHW convolution weights), its inputs, its output, a random upstream gradient and
the gradients that backward gives for the inputs ("grad_input", "grad_temb") and for every
parameter ("grad.<name>"). Modules run in float64 on values that are exact in float32, and
everything is stored as float32, so a float32 implementation is compared with the exact answer.
adamw.safetensors records ten steps of torch.optim.AdamW in float32.

The metadata of each file says which script, torch and diffusers made it, and "config" is a JSON
string with the constructor arguments (defaults included), the sizes and the seed.

Run by hand from anywhere (not in CI): python tools/golden/make_golden.py [--out DIR] [NAME ...]
"""

import argparse
import inspect
import json
import pathlib

import diffusers
import torch
from diffusers.models.attention import BasicTransformerBlock, FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.downsampling import Downsample2D
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from safetensors.torch import save_file

SCRIPT = "tools/golden/make_golden.py"
REPO = pathlib.Path(__file__).resolve().parents[2]


def constructor_args(cls, **kwargs):
    """Every constructor argument, defaults included, so the file says what was built."""
    bound = inspect.signature(cls).bind(**kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def randomise(module):
    """Default initialisation leaves biases small and GroupNorm and LayerNorm at (1, 0); draw them
    so that a kernel that ignored them would fail."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                sub.weight.normal_(1.0, 0.3)
            if getattr(sub, "bias", None) is not None:
                sub.bias.normal_(0.0, 0.3)


def write(out_dir, name, tensors, config):
    metadata = {
        "script": SCRIPT,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "config": json.dumps(config, sort_keys=True),
    }
    stored = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    path = out_dir / f"{name}.safetensors"
    save_file(stored, str(path), metadata=metadata)
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: "
          f"{len(stored)} tensors, {path.stat().st_size} bytes")


def module_golden(out_dir, name, seed, cls, args, inputs, call=None):
    """Builds cls(**args) under the seed, runs forward and backward in float64, writes the file.

    inputs: name -> shape, drawn from N(0, 1) in float32 in this order after the parameters.
    call(module, **inputs) runs the forward pass; the default passes the inputs positionally.
    """
    torch.manual_seed(seed)
    module = cls(**args)
    randomise(module)
    module = module.double()
    values = {k: torch.randn(shape).double().requires_grad_() for k, shape in inputs.items()}
    output = call(module, **values) if call else module(*values.values())
    grad_output = torch.randn(output.shape).double()
    output.backward(grad_output)

    params = dict(module.named_parameters())
    state = module.state_dict()
    assert list(state) == list(params), f"{name}: state_dict has entries that are not parameters"
    tensors = dict(state)
    tensors.update(values)
    tensors["output"] = output
    tensors["grad_output"] = grad_output
    for k, v in values.items():
        tensors[f"grad_{k}"] = v.grad
    for k, p in params.items():
        tensors[f"grad.{k}"] = p.grad

    config = {
        "module": f"{cls.__module__}.{cls.__qualname__}",
        "args": constructor_args(cls, **args),
        "sizes": {**{k: list(shape) for k, shape in inputs.items()}, "output": list(output.shape)},
        "seed": seed,
        "precision": "computed in float64 from float32 values, stored as float32",
    }
    if isinstance(module, ResnetBlock2D):
        config["use_in_shortcut"] = module.use_in_shortcut
    if isinstance(module, Attention):
        config["processor"] = type(module.processor).__name__
        config["scale"] = module.scale
    write(out_dir, name, tensors, config)


def attention_args(channels, head_dim, groups, eps):
    """Attention as diffusers' AttnDownBlock2D and UNetMidBlock2D build it."""
    return dict(query_dim=channels, heads=channels // head_dim, dim_head=head_dim,
                rescale_output_factor=1.0, eps=eps, norm_num_groups=groups,
                residual_connection=True, bias=True, upcast_softmax=True,
                _from_deprecated_attn_block=True)


def resnet_call(module, input, temb=None):
    return module(input, temb)


def context_call(module, input, context):
    """Attention, BasicTransformerBlock: the context is encoder_hidden_states."""
    return module(input, encoder_hidden_states=context)


def transformer_2d_call(module, input, context):
    return module(input, encoder_hidden_states=context, return_dict=False)[0]


def cross_attention_args(dim, head_dim, cross_dim):
    """attn2 as diffusers' BasicTransformerBlock builds it (attention_bias False, out_bias True);
    cross_dim None is attn1, the self-attention."""
    return dict(query_dim=dim, cross_attention_dim=cross_dim, heads=dim // head_dim,
                dim_head=head_dim, dropout=0.0, bias=False, upcast_attention=False, out_bias=True)


def transformer_2d_args(linear, layers):
    """Transformer2DModel as CrossAttnDownBlock2D builds it, at 8 channels in 4 groups."""
    return dict(num_attention_heads=2, attention_head_dim=4, in_channels=8, num_layers=layers,
                norm_num_groups=4, cross_attention_dim=6, use_linear_projection=linear)


# name -> (seed, class, constructor arguments, input shapes, forward call or None)
MODULES = {
    "conv2d_3x3": (1, torch.nn.Conv2d, dict(in_channels=5, out_channels=7, kernel_size=3, padding=1),
                   {"input": (2, 5, 9, 11)}, None),
    "conv2d_1x1": (2, torch.nn.Conv2d, dict(in_channels=6, out_channels=4, kernel_size=1),
                   {"input": (2, 6, 5, 7)}, None),
    "conv2d_3x3_stride2": (3, torch.nn.Conv2d,
                           dict(in_channels=5, out_channels=7, kernel_size=3, stride=2, padding=1),
                           {"input": (2, 5, 9, 11)}, None),
    "linear": (4, torch.nn.Linear, dict(in_features=7, out_features=5), {"input": (3, 4, 7)}, None),
    "group_norm": (5, torch.nn.GroupNorm, dict(num_groups=4, num_channels=12, eps=1e-6),
                   {"input": (2, 12, 5, 7)}, None),
    "resnet_block_temb_shortcut": (
        6, ResnetBlock2D,
        dict(in_channels=8, out_channels=12, temb_channels=16, groups=4, eps=1e-5, dropout=0.0),
        {"input": (2, 8, 6, 5), "temb": (2, 16)}, resnet_call),
    "resnet_block_no_temb": (
        7, ResnetBlock2D, dict(in_channels=8, out_channels=8, temb_channels=None, groups=4, eps=1e-6),
        {"input": (2, 8, 6, 5)}, resnet_call),
    # UNet2DModel's attention: heads = channels / head dim, GroupNorm eps = norm_eps (1e-5).
    "attention": (8, Attention, attention_args(channels=8, head_dim=4, groups=4, eps=1e-5),
                  {"input": (2, 8, 3, 5)}, None),
    # The autoencoder's mid-block attention: one head over all channels, eps 1e-6.
    "attention_one_head": (9, Attention, attention_args(channels=8, head_dim=8, groups=4, eps=1e-6),
                           {"input": (2, 8, 3, 5)}, None),
    # name="op" as the down blocks build it; the default name registers the conv twice.
    "downsample_conv": (10, Downsample2D,
                        dict(channels=6, use_conv=True, out_channels=6, padding=1, name="op"),
                        {"input": (2, 6, 7, 9)}, None),
    "downsample_asymmetric": (11, Downsample2D,
                              dict(channels=6, use_conv=True, out_channels=6, padding=0, name="op"),
                              {"input": (2, 6, 8, 10)}, None),
    "upsample": (12, Upsample2D, dict(channels=6, use_conv=True, out_channels=6),
                 {"input": (2, 6, 4, 5)}, None),
    # The transformer of UNet2DConditionModel's cross-attention blocks and its parts, over tokens
    # [N, L, C] and a context (encoder_hidden_states) [N, Lc, Cc].
    "layer_norm": (15, torch.nn.LayerNorm, dict(normalized_shape=12, eps=1e-5),
                   {"input": (2, 5, 12)}, None),
    "feed_forward_geglu": (16, FeedForward, dict(dim=8, activation_fn="geglu"),
                           {"input": (2, 5, 8)}, None),
    "self_attention": (17, Attention, cross_attention_args(dim=8, head_dim=4, cross_dim=None),
                       {"input": (2, 5, 8)}, None),
    "cross_attention": (18, Attention, cross_attention_args(dim=8, head_dim=4, cross_dim=6),
                        {"input": (2, 5, 8), "context": (2, 3, 6)}, context_call),
    "basic_transformer_block": (
        19, BasicTransformerBlock,
        dict(dim=8, num_attention_heads=2, attention_head_dim=4, cross_attention_dim=6),
        {"input": (2, 5, 8), "context": (2, 3, 6)}, context_call),
    "transformer_2d_conv": (20, Transformer2DModel, transformer_2d_args(linear=False, layers=1),
                            {"input": (2, 8, 3, 5), "context": (2, 3, 6)}, transformer_2d_call),
    "transformer_2d_linear": (21, Transformer2DModel, transformer_2d_args(linear=True, layers=2),
                              {"input": (2, 8, 3, 5), "context": (2, 3, 6)},
                              transformer_2d_call),
}


def timestep_embedding(out_dir, name="timestep_embedding", seed=13):
    """Timesteps (no parameters, float32 inside diffusers whatever the model's dtype) feeding
    TimestepEmbedding, as UNet2DModel wires them; the file holds TimestepEmbedding's parameters."""
    torch.manual_seed(seed)
    proj_args = dict(num_channels=8, flip_sin_to_cos=True, downscale_freq_shift=0)
    embed_args = dict(in_channels=8, time_embed_dim=32)
    proj = Timesteps(**proj_args)
    embed = TimestepEmbedding(**embed_args)
    randomise(embed)
    embed = embed.double()
    timesteps = torch.tensor([0.0, 1.0, 17.0, 999.0])
    sinusoidal = proj(timesteps)
    inner = sinusoidal.double().requires_grad_()
    output = embed(inner)
    grad_output = torch.randn(output.shape).double()
    output.backward(grad_output)

    params = dict(embed.named_parameters())
    tensors = dict(embed.state_dict())
    tensors.update(timesteps=timesteps, sinusoidal=sinusoidal, output=output,
                   grad_output=grad_output, grad_sinusoidal=inner.grad)
    for k, p in params.items():
        tensors[f"grad.{k}"] = p.grad
    config = {
        "module": "diffusers.models.embeddings.Timesteps -> TimestepEmbedding",
        "args": {"Timesteps": constructor_args(Timesteps, **proj_args),
                 "TimestepEmbedding": constructor_args(TimestepEmbedding, **embed_args)},
        "sizes": {"timesteps": list(timesteps.shape), "sinusoidal": list(sinusoidal.shape),
                  "output": list(output.shape)},
        "seed": seed,
        "precision": "sinusoidal in float32 as diffusers computes it; TimestepEmbedding in "
                     "float64 from float32 values; stored as float32",
    }
    write(out_dir, name, tensors, config)


def adamw(out_dir, name="adamw", seed=14):
    """Ten float32 AdamW steps on one 37-element parameter, lr 1e-3 then 5e-4 from step 6."""
    torch.manual_seed(seed)
    size, steps, lr_change_after, new_lr = 37, 10, 5, 5e-4
    args = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, foreach=False)
    param = torch.nn.Parameter(torch.randn(size))
    tensors = {"param_init": param.detach().clone()}
    optimizer = torch.optim.AdamW([param], **args)
    lrs = []
    for k in range(1, steps + 1):
        if k == lr_change_after + 1:
            for group in optimizer.param_groups:
                group["lr"] = new_lr
        lrs.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.randn(size)
        tensors[f"grad.{k}"] = param.grad.clone()
        optimizer.step()
        state = optimizer.state[param]
        tensors[f"param.{k}"] = param.detach().clone()
        tensors[f"exp_avg.{k}"] = state["exp_avg"].clone()
        tensors[f"exp_avg_sq.{k}"] = state["exp_avg_sq"].clone()
    config = {
        "optimizer": "torch.optim.AdamW",
        "args": {k: v for k, v in constructor_args(torch.optim.AdamW, params=[param], **args).items()
                 if k != "params"},
        "sizes": {"param": [size]},
        "steps": steps,
        "lr_change": {"after_step": lr_change_after, "lr": new_lr},
        "lr_per_step": lrs,
        "seed": seed,
        "precision": "float32 throughout (the single-tensor CPU path)",
    }
    write(out_dir, name, tensors, config)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    parser.add_argument("names", nargs="*", help="files to write (default: all)")
    options = parser.parse_args()
    # One thread: the same script and versions then write the same bytes.
    torch.set_num_threads(1)
    options.out.mkdir(parents=True, exist_ok=True)
    makers = {name: (lambda out, spec=spec, name=name: module_golden(out, name, *spec))
              for name, spec in MODULES.items()}
    makers["timestep_embedding"] = timestep_embedding
    makers["adamw"] = adamw
    unknown = set(options.names) - set(makers)
    if unknown:
        parser.error(f"unknown names: {sorted(unknown)}; known: {sorted(makers)}")
    for name in options.names or makers:
        makers[name](options.out)


if __name__ == "__main__":
    main()
