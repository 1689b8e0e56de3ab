#!/usr/bin/env python3
"""Writes tests/golden/schedulers.safetensors from diffusers' DDPMScheduler and DDIMScheduler.

Contents (tensor names in the file):
- alphas_cumprod.<beta_schedule> (F64, T = 1000) for linear, scaled_linear (Stable Diffusion's
  0.00085 .. 0.012) and squaredcos_cap_v2.
- timesteps.<name>: set_timesteps results (stored as float32; they are small integers).
- forward.x0, forward.noise, forward.timesteps, forward.noisy (add_noise), forward.velocity
  (get_velocity), one timestep per sample.
- inputs.<group>.sample and inputs.<group>.model_output: a noisy sample made by add_noise from a
  known x0 and noise, and that noise (epsilon) or velocity (v_prediction) plus a model error;
  noise: the variance noise that every stochastic step adds.
- case.<k>.prev_sample, case.<k>.pred_original_sample and, for DDPM, case.<k>.mean (prev_sample
  with zero variance noise): one step() each.

The metadata says which script, torch, numpy and diffusers made the file, and holds JSON: "shape"
(every step tensor has it; the schedulers are elementwise, so its layout does not matter),
"schedules", "configs" (name -> scheduler class and its full config, defaults included),
"timesteps" (config name and step count of each entry), "forward" (config name, timesteps) and
"cases" (config name, num_inference_steps, timestep, eta, input group of each case).

Precision: diffusers builds betas and alphas_cumprod in float32, and the cumulative product alone
then differs from the exact one by up to ~1e-5 relative (squaredcos_cap_v2 near t = 999; metadata
"float32_alphas_cumprod_max_rel_diff"). The reference here is diffusers' own code in float64: while
a scheduler is constructed, its float32 requests to torch.linspace and torch.tensor are widened to
float64. Inputs are float32 values; the steps run in float64 on them; results are stored as float32.

Variance noise: DDIMScheduler.step takes it as variance_noise=. DDPMScheduler.step draws it with
randn_tensor inside, so while it runs the script replaces the module's randn_tensor by a function
that returns the stored noise tensor (or zeros, for case.<k>.mean).

Run by hand from anywhere (not in CI), with torch, diffusers and safetensors installed:
    python tools/golden/make_scheduler_golden.py [--out DIR]
The draws are seeded and torch runs on one thread, so a rerun with the same versions writes the
same tensors and metadata (the header may list them in another order).
"""

import argparse
import contextlib
import json
import pathlib
from unittest import mock

import diffusers
import numpy
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.schedulers import scheduling_ddpm
from safetensors.torch import save_file

SCRIPT = "tools/golden/make_scheduler_golden.py"
REPO = pathlib.Path(__file__).resolve().parents[2]
SHAPE = (3, 2, 3, 4)
SEED = 20

STABLE_DIFFUSION = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
SCHEDULES = {
    "linear": dict(beta_schedule="linear"),
    "scaled_linear": STABLE_DIFFUSION,
    "squaredcos_cap_v2": dict(beta_schedule="squaredcos_cap_v2"),
}


@contextlib.contextmanager
def float64_construction():
    """Widens dtype=torch.float32 to float64 in torch.linspace and torch.tensor, the two calls
    through which diffusers' constructors make their betas."""
    originals = {name: getattr(torch, name) for name in ("linspace", "tensor")}

    def widened(function):
        def call(*args, **kwargs):
            if kwargs.get("dtype") == torch.float32:
                kwargs["dtype"] = torch.float64
            return function(*args, **kwargs)
        return call

    for name, function in originals.items():
        setattr(torch, name, widened(function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(torch, name, function)


def build(cls, config, steps=None):
    with float64_construction():
        scheduler = cls(**config)
    assert scheduler.alphas_cumprod.dtype == torch.float64, "a float32 schedule escaped the patch"
    if steps is not None:
        scheduler.set_timesteps(steps)
    return scheduler


def full_config(scheduler):
    """The scheduler's whole configuration, defaults included, as diffusers reports it."""
    return {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}


class Writer:
    def __init__(self):
        self.generator = torch.Generator().manual_seed(SEED)
        self.tensors = {}
        self.timesteps = {}
        self.cases = []
        self.groups = {}
        self.configs = {}

    def config_name(self, scheduler):
        """Cases share a few configurations; the metadata lists each once, by name."""
        entry = {"class": type(scheduler).__name__, "config": full_config(scheduler)}
        key = json.dumps(entry, sort_keys=True)
        if key not in self.configs:
            self.configs[key] = (f"config.{len(self.configs)}", entry)
        return self.configs[key][0]

    def normal(self, scale=1.0):
        return (scale * torch.randn(SHAPE, generator=self.generator)).double()

    def store(self, name, value, dtype=torch.float32):
        assert name not in self.tensors, name
        self.tensors[name] = value.detach().to(dtype).contiguous()

    def stored(self, name):
        """A stored float32 tensor as float64: what the C++ side reads."""
        return self.tensors[name].double()

    def schedules(self):
        differences = {}
        for name, config in SCHEDULES.items():
            exact = build(DDPMScheduler, config).alphas_cumprod
            self.store(f"alphas_cumprod.{name}", exact, torch.float64)
            stock = DDPMScheduler(**config).alphas_cumprod.double()
            differences[name] = float(((stock - exact).abs() / exact).max())
        return differences

    def set_timesteps(self, name, cls, config, steps):
        scheduler = build(cls, config, steps)
        self.store(f"timesteps.{name}", scheduler.timesteps)
        self.timesteps[name] = {"config": self.config_name(scheduler),
                                "num_inference_steps": steps}

    def forward(self):
        scheduler = build(DDPMScheduler, STABLE_DIFFUSION)
        timesteps = torch.tensor([0, 417, 999])
        self.store("forward.x0", self.normal())
        self.store("forward.noise", self.normal())
        self.store("forward.timesteps", timesteps)
        x0, noise = self.stored("forward.x0"), self.stored("forward.noise")
        self.store("forward.noisy", scheduler.add_noise(x0, noise, timesteps))
        self.store("forward.velocity", scheduler.get_velocity(x0, noise, timesteps))
        return {"config": self.config_name(scheduler), "timesteps": timesteps.tolist()}

    def inputs(self, setup, scheduler, t):
        """x0 partly outside [-1, 1] so that clipping bites on some elements only; the model's
        output is the exact target plus an error, so that x0 is not recovered exactly."""
        key = (setup, scheduler.config.prediction_type, t)
        if key not in self.groups:
            group = f"{setup}.{scheduler.config.prediction_type}.t{t}"
            x0 = 1.3 * (2 * torch.rand(SHAPE, generator=self.generator).double() - 1)
            noise = self.normal()
            t_batch = torch.full((SHAPE[0],), t)
            target = (noise if scheduler.config.prediction_type == "epsilon"
                      else scheduler.get_velocity(x0, noise, t_batch))
            self.store(f"inputs.{group}.sample", scheduler.add_noise(x0, noise, t_batch))
            self.store(f"inputs.{group}.model_output", target + self.normal(0.2))
            self.groups[key] = group
        return self.groups[key]

    def case(self, setup, cls, config, steps, t, eta=None):
        scheduler = build(cls, config, steps)
        assert t in scheduler.timesteps.tolist(), f"{t} is not among {scheduler.timesteps}"
        group = self.inputs(setup, scheduler, t)
        sample = self.stored(f"inputs.{group}.sample")
        model_output = self.stored(f"inputs.{group}.model_output")
        noise = self.stored("noise")
        name = f"case.{len(self.cases)}"
        if cls is DDPMScheduler:
            outputs = {}
            for key, variance_noise in (("prev_sample", noise), ("mean", torch.zeros_like(noise))):
                drawn = mock.Mock(return_value=variance_noise)
                with mock.patch.object(scheduling_ddpm, "randn_tensor", drawn):
                    outputs[key] = scheduler.step(model_output, t, sample)
                assert drawn.called == (t > 0), "DDPMScheduler.step no longer calls randn_tensor"
            result = outputs["prev_sample"]
            self.store(f"{name}.mean", outputs["mean"].prev_sample)
        else:
            result = scheduler.step(model_output, t, sample, eta=eta,
                                    variance_noise=noise if eta > 0 else None)
        self.store(f"{name}.prev_sample", result.prev_sample)
        self.store(f"{name}.pred_original_sample", result.pred_original_sample)
        case = {"name": name, "config": self.config_name(scheduler),
                "num_inference_steps": steps, "timestep": t, "inputs": f"inputs.{group}"}
        if eta is not None:
            case["eta"] = eta
        self.cases.append(case)


def make(out_dir):
    torch.set_num_threads(1)
    w = Writer()
    differences = w.schedules()

    sd_leading_offset = dict(**STABLE_DIFFUSION, steps_offset=1)
    for name, cls, config, steps in [
        ("ddpm.leading.50", DDPMScheduler, {}, 50),
        ("ddpm.leading.7.offset1", DDPMScheduler, sd_leading_offset, 7),
        ("ddpm.trailing.7", DDPMScheduler, dict(timestep_spacing="trailing"), 7),
        ("ddim.leading.50", DDIMScheduler, {}, 50),
        ("ddim.trailing.50", DDIMScheduler, dict(timestep_spacing="trailing"), 50),
        ("ddim.leading.7.offset1", DDIMScheduler, sd_leading_offset, 7),
        ("ddim.trailing.7", DDIMScheduler, dict(timestep_spacing="trailing"), 7),
        ("ddim.linspace.7", DDIMScheduler, dict(timestep_spacing="linspace"), 7),
        # 1000 - 3 * 1000/48 is 937.5 exactly, but numpy's arange computes 937.4999...: 936.
        ("ddim.trailing.48", DDIMScheduler, dict(timestep_spacing="trailing"), 48),
        # np.arange with a float step gives one value too many here: diffusers ends with -1.
        ("ddim.trailing.61", DDIMScheduler, dict(timestep_spacing="trailing"), 61),
    ]:
        w.set_timesteps(name, cls, config, steps)

    forward = w.forward()
    w.store("noise", w.normal())

    for prediction in ("epsilon", "v_prediction"):
        for t in (980, 500, 0):
            for clip in (True, False):
                w.case("ddpm_linear", DDPMScheduler,
                       dict(prediction_type=prediction, clip_sample=clip), 50, t)
    # The last step of a schedule that ends at t = 1: diffusers still adds noise, scaled by the
    # square root of the variance's floor (1e-20).
    for clip in (True, False):
        w.case("ddpm_sd", DDPMScheduler,
               dict(**sd_leading_offset, clip_sample=clip, clip_sample_range=1.5), 7, 1)

    for prediction in ("epsilon", "v_prediction"):
        for t in (980, 500, 0):
            variants = ([(c, e) for c in (True, False) for e in (0.0, 0.5)] if t == 500
                        else [(True, 0.0), (False, 0.5)])
            for clip, eta in variants:
                w.case("ddim_linear", DDIMScheduler,
                       dict(prediction_type=prediction, clip_sample=clip), 50, t, eta)
    # Stable Diffusion's configuration; at t = 1 the previous timestep is negative, so
    # alpha_prod_t_prev is alphas_cumprod[0] (set_alpha_to_one=False).
    for t in (853, 1):
        for prediction, eta in (("epsilon", 0.0), ("v_prediction", 0.5)):
            w.case("ddim_sd", DDIMScheduler,
                   dict(**sd_leading_offset, set_alpha_to_one=False, clip_sample=False,
                        prediction_type=prediction), 7, t, eta)
    for t in (999, 19):
        for set_alpha_to_one, eta in ((True, 1.0), (False, 0.0)):
            w.case("ddim_cosine", DDIMScheduler,
                   dict(beta_schedule="squaredcos_cap_v2", timestep_spacing="trailing",
                        prediction_type="v_prediction", clip_sample_range=2.0,
                        set_alpha_to_one=set_alpha_to_one), 50, t, eta)
    for t in (832, 0):
        w.case("ddim_linspace", DDIMScheduler,
               dict(timestep_spacing="linspace", clip_sample=False), 7, t, 0.5)

    metadata = {
        "script": SCRIPT,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "diffusers": diffusers.__version__,
        "shape": json.dumps(list(SHAPE)),
        "schedules": json.dumps({name: full_config(build(DDPMScheduler, config))
                                 for name, config in SCHEDULES.items()}),
        "configs": json.dumps(dict(w.configs.values())),
        "float32_alphas_cumprod_max_rel_diff": json.dumps(differences),
        "timesteps": json.dumps(w.timesteps),
        "forward": json.dumps(forward),
        "cases": json.dumps(w.cases),
        "seed": str(SEED),
        "precision": "diffusers' code in float64 (float32 betas widened) on float32 inputs; "
                     "alphas_cumprod stored as F64, everything else as float32",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "schedulers.safetensors"
    save_file(w.tensors, str(path), metadata=metadata)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    print(f"{shown}: {len(w.tensors)} tensors, {len(w.cases)} step cases, "
          f"{path.stat().st_size} bytes")
    print(f"float32 diffusers vs float64, alphas_cumprod max relative difference: {differences}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    make(parser.parse_args().out)


if __name__ == "__main__":
    main()
