#!/usr/bin/env python3
"""Writes tests/golden/samplers/<SchedulerClass>.safetensors: whole sampling trajectories of
diffusers' schedulers, for tests/test_sampler_trajectories.cpp.

Each case runs the loop of diffusers' pipelines: x = init_noise_sigma * noise, then for every t
in scheduler.timesteps: model_output = model(scale_model_input(x, t), t), x = step(...).prev_sample.
The model is fixed:
- "unet": the shipped models/fashion-tiny/unet (a UNet2DModel, float32, as diffusers loads it);
- "closed_form": model_output = x * (0.3 + 0.6 * t / 1000), elementwise, for any t.
Latents have the fashion-tiny shape, batch 2: diffusers' (2, 4, 8, 8); they are stored in ldm's
layout (2, 8, 8, 4), so the C++ test reads them as they are.

Tensors per case (name = the case's name):
- <name>.timesteps (F64, [E]): scheduler.timesteps, the E model evaluations;
- <name>.input_scales (F64, [E]): scale_model_input's factor at each evaluation;
- <name>.signal, <name>.noise_level (F64, [E]): add_noise(x0, eps, t) = signal x0 + noise_level eps
  at each evaluation's timestep (what image-to-image and inpainting noise to);
- <name>.init_noise_sigma (F64, [1]);
- <name>.noise (F32, [E + 1, 2, 8, 8, 4]): [0] the initial standard normal noise, [i + 1] the
  standard normal noise evaluation i may draw (diffusers' randn_tensor inside step() returns it
  while step() runs; samplers that add no noise never ask for it);
- <name>.samples (F32, [E + 1, 2, 8, 8, 4]): [0] the starting sample, [i + 1] after evaluation i.
The metadata "cases" (JSON) lists each case: name, class, steps, model, and "config": the
scheduler's whole config as diffusers reports it (defaults included) plus the step() arguments
ldm keeps in its config (DDIM's eta), which the C++ test reads with ldm's scheduler_config parser.

Schedules are built in float64 (make_scheduler_golden.float64_construction), so the reference is
diffusers' algorithm on exact alphas_cumprod; the steps then run as diffusers runs them, in
float32.

Run by hand from the repository root (not in CI), with torch, diffusers and safetensors:
    python tools/golden/make_sampler_golden.py [SchedulerClass ...]
"""

import argparse
import json
import pathlib
import sys
from unittest import mock

import diffusers
import numpy
import torch
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       HeunDiscreteScheduler, UNet2DModel, UniPCMultistepScheduler)
from safetensors.torch import save_file

from make_scheduler_golden import float64_construction

SCRIPT = "tools/golden/make_sampler_golden.py"
REPO = pathlib.Path(__file__).resolve().parents[2]
SHAPE = (2, 4, 8, 8)
SEED = 31

LINEAR = dict(beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
SCALED_LINEAR = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
SPACINGS = ("leading", "trailing", "linspace")
PREDICTIONS = ("epsilon", "v_prediction")


def closed_form(x, t):
    return x * (0.3 + 0.6 * float(t) / 1000)


def shipped_unet():
    unet = UNet2DModel.from_pretrained(REPO / "models" / "fashion-tiny" / "unet")
    unet.eval()

    def model(x, t):
        with torch.no_grad():
            return unet(x, t).sample

    return model


def grid(schedule, steps, extra=None, unet_cases=()):
    """Every spacing and prediction type with the closed-form model, then the named settings with
    the shipped UNet (which predicts epsilon on the linear schedule)."""
    cases = []
    for spacing in SPACINGS:
        for prediction in PREDICTIONS:
            config = dict(schedule, timestep_spacing=spacing, prediction_type=prediction,
                          **(extra or {}))
            cases.append(dict(name=f"closed_form.{spacing}.{prediction}", config=config,
                              steps=steps, model="closed_form"))
    for name, settings, count in unet_cases:
        cases.append(dict(name=f"unet.{name}", config=dict(LINEAR, **settings), steps=count,
                          model="unet"))
    return cases


def renamed(word, cases):
    """The closed-form cases of a grid() named closed_form.<word>...: a second grid of settings."""
    return [dict(case, name=case["name"].replace("closed_form.", f"closed_form.{word}.", 1))
            for case in cases if case["model"] == "closed_form"]


KARRAS = dict(use_karras_sigmas=True)
# EulerDiscreteScheduler.step()'s churn: from sigma 10 down to 0.5, gamma = min(s_churn / steps,
# sqrt(2) - 1).
CHURN = dict(s_churn=1.0, s_tmin=0.5, s_tmax=10.0, s_noise=1.003)


# The cases of each scheduler class. "step" holds step() arguments (DDIM's eta), which ldm reads
# from its config.
CASES = {
    "DDIMScheduler": grid(SCALED_LINEAR, 10, dict(clip_sample=False),
                          [("leading", dict(clip_sample=False), 20)])
    + [dict(name="unet.eta", config=dict(LINEAR, clip_sample=False), step=dict(eta=0.6), steps=8,
            model="unet")],
    "DDPMScheduler": grid(SCALED_LINEAR, 10, dict(clip_sample=False),
                          [("leading", dict(clip_sample=False), 20)]),
    "EulerDiscreteScheduler": grid(SCALED_LINEAR, 10, None,
                                   [("linspace", {}, 10), ("karras", KARRAS, 10)])
    + renamed("karras", grid(SCALED_LINEAR, 6, KARRAS))
    + [dict(name="closed_form.leading_offset", steps=6, model="closed_form",
            config=dict(SCALED_LINEAR, timestep_spacing="leading", steps_offset=1)),
       dict(name="closed_form.karras_bounds_sigma_min", steps=6, model="closed_form",
            config=dict(SCALED_LINEAR, **KARRAS, sigma_min=0.1, sigma_max=10.0,
                        final_sigmas_type="sigma_min")),
       dict(name="closed_form.churn.epsilon", steps=10, model="closed_form",
            config=dict(SCALED_LINEAR), step=CHURN),
       dict(name="closed_form.churn_capped.v_prediction", steps=10, model="closed_form",
            config=dict(SCALED_LINEAR, prediction_type="v_prediction"),
            step=dict(CHURN, s_churn=8.0)),
       dict(name="unet.churn", steps=10, model="unet", config=dict(LINEAR), step=CHURN)],
    "EulerAncestralDiscreteScheduler": grid(SCALED_LINEAR, 10, None, [
        ("linspace", {}, 10), ("leading", dict(timestep_spacing="leading", steps_offset=1), 8)]),
    "HeunDiscreteScheduler": grid(SCALED_LINEAR, 6, None,
                                  [("linspace", {}, 8), ("karras", KARRAS, 6)])
    + renamed("karras", grid(SCALED_LINEAR, 4, KARRAS))
    + [dict(name="closed_form.clip", steps=4, model="closed_form",
            config=dict(SCALED_LINEAR, clip_sample=True, clip_sample_range=2.0))],
}
# The multistep solvers: each spacing and prediction type at their default order 2, then orders
# 1 and 3, Karras sigmas, the final sigma, the solver variants and the UNet at 10-25 steps.
MULTISTEP_UNET = [("linspace", {}, 15), ("karras", dict(use_karras_sigmas=True), 20),
                  ("order3.leading", dict(solver_order=3, timestep_spacing="leading"), 25),
                  ("karras.order1", dict(use_karras_sigmas=True, solver_order=1), 10)]


def variants(schedule, steps, settings):
    return [dict(name=f"closed_form.{name}", config=dict(schedule, **extra), steps=steps,
                 model="closed_form") for name, extra in settings]


# The settings both multistep classes read, then each class's own.
MULTISTEP_SHARED = [
    ("order1", dict(solver_order=1)),
    ("order3", dict(solver_order=3)),
    ("order3.v.trailing", dict(solver_order=3, prediction_type="v_prediction",
                               timestep_spacing="trailing")),
    ("karras", dict(use_karras_sigmas=True)),
    ("karras.v.sigma_min", dict(use_karras_sigmas=True, prediction_type="v_prediction",
                                final_sigmas_type="sigma_min"))]
CASES["DPMSolverMultistepScheduler"] = grid(SCALED_LINEAR, 10, None, MULTISTEP_UNET) + variants(
    SCALED_LINEAR, 12, MULTISTEP_SHARED +
    [("heun", dict(solver_type="heun")),
     ("sigma_min.no_lower_order_final", dict(final_sigmas_type="sigma_min",
                                             lower_order_final=False)),
     ("sigma_min.order3.no_lower_order_final", dict(final_sigmas_type="sigma_min",
                                                    lower_order_final=False, solver_order=3)),
     ("euler_at_final.sigma_min", dict(final_sigmas_type="sigma_min", euler_at_final=True,
                                       lower_order_final=False)),
     ("leading.offset", dict(timestep_spacing="leading", steps_offset=1)),
     ("cosine.clipped.trailing", dict(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1,
                                      timestep_spacing="trailing")),
     ("cosine.clipped.linspace", dict(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1))])
CASES["UniPCMultistepScheduler"] = grid(SCALED_LINEAR, 10, None, MULTISTEP_UNET) + variants(
    SCALED_LINEAR, 12, MULTISTEP_SHARED +
    # bh1's last step to sigma 0 is NaN in diffusers (-inf * 0; ldm takes the limit, x0).
    [("bh1.sigma_min", dict(solver_type="bh1", final_sigmas_type="sigma_min")),
     ("bh1.order3.sigma_min", dict(solver_type="bh1", solver_order=3,
                                   final_sigmas_type="sigma_min")),
     ("sigma_min.no_lower_order_final", dict(final_sigmas_type="sigma_min",
                                             lower_order_final=False, solver_order=3)),
     ("disable_corrector", dict(disable_corrector=[0, 3, 4])),
     ("leading.offset", dict(timestep_spacing="leading", steps_offset=1)),
     ("cosine", dict(beta_schedule="squaredcos_cap_v2"))])
CLASSES = {"DDIMScheduler": DDIMScheduler, "DDPMScheduler": DDPMScheduler,
           "EulerDiscreteScheduler": EulerDiscreteScheduler,
           "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler,
           "HeunDiscreteScheduler": HeunDiscreteScheduler,
           "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler,
           "UniPCMultistepScheduler": UniPCMultistepScheduler}


def to_ldm_layout(x):
    return x.permute(0, 2, 3, 1).contiguous()


def scalar_of(tensor):
    """The factor of an elementwise-scaled tensor of ones."""
    return float(tensor.flatten()[0])


def trajectory(cls, case, models, generator):
    with float64_construction():
        scheduler = cls.from_config(case["config"])
    assert scheduler.alphas_cumprod.dtype == torch.float64, "a float32 schedule escaped the patch"
    scheduler.set_timesteps(case["steps"])
    model = models[case["model"]]
    step_kwargs = case.get("step", {})
    module = sys.modules[cls.__module__]

    noise = [torch.randn(SHAPE, generator=generator)]
    x = noise[0] * scheduler.init_noise_sigma
    samples = [x]
    ones, zeros = torch.ones(SHAPE), torch.zeros(SHAPE)
    scales, signals, levels = [], [], []
    for t in scheduler.timesteps:
        fresh = torch.randn(SHAPE, generator=generator)
        noise.append(fresh)
        signals.append(scalar_of(scheduler.add_noise(ones, zeros, t.reshape(1))))
        levels.append(scalar_of(scheduler.add_noise(zeros, ones, t.reshape(1))))
        model_input = scheduler.scale_model_input(x, t)
        scales.append(scalar_of(scheduler.scale_model_input(ones, t)))
        output = model(model_input, t)
        # create: a scheduler that draws no noise (Heun) has no randn_tensor to replace.
        with mock.patch.object(module, "randn_tensor", lambda *a, **k: fresh.clone(),
                               create=True):
            x = scheduler.step(output, t, x, **step_kwargs).prev_sample
        samples.append(x)
    # JSON has no infinity: DPM-Solver's lambda_min_clipped = -inf (its default) is left out.
    config = {k: v for k, v in dict(scheduler.config).items()
              if not k.startswith("_") and v != float("-inf")}
    config["_class_name"] = cls.__name__
    config.update(step_kwargs)
    tensors = {
        "timesteps": scheduler.timesteps.double(),
        "input_scales": torch.tensor(scales, dtype=torch.float64),
        "signal": torch.tensor(signals, dtype=torch.float64),
        "noise_level": torch.tensor(levels, dtype=torch.float64),
        "init_noise_sigma": torch.tensor([float(scheduler.init_noise_sigma)], dtype=torch.float64),
        "noise": torch.stack([to_ldm_layout(n) for n in noise]).float(),
        "samples": torch.stack([to_ldm_layout(s) for s in samples]).float(),
    }
    entry = dict(name=case["name"], steps=case["steps"], model=case["model"], config=config)
    return entry, tensors


def write(class_name, out_dir, models):
    generator = torch.Generator().manual_seed(SEED)
    cls = CLASSES[class_name]
    tensors, cases = {}, []
    for case in CASES[class_name]:
        entry, values = trajectory(cls, case, models, generator)
        cases.append(entry)
        for key, value in values.items():
            tensors[f"{case['name']}.{key}"] = value.contiguous()
    metadata = {
        "script": SCRIPT,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "diffusers": diffusers.__version__,
        "class": class_name,
        "cases": json.dumps(cases),
    }
    path = out_dir / f"{class_name}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    print(f"wrote {path}: {len(cases)} cases")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("classes", nargs="*", help="scheduler classes (default: all)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden" / "samplers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    models = {"closed_form": closed_form, "unet": shipped_unet()}
    for class_name in args.classes or CASES:
        write(class_name, args.out, models)


if __name__ == "__main__":
    main()
