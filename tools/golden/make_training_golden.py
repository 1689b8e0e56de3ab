#!/usr/bin/env python3
"""Writes tests/golden/min_snr.json and tests/golden/lr_schedules.json from diffusers.

min_snr.json: diffusers' compute_snr at a few timesteps of two DDPMScheduler schedules, and the
Min-SNR-gamma loss weights of train_text_to_image.py --snr_gamma for each prediction type:
    epsilon:      min(snr, gamma) / snr
    v_prediction: min(snr, gamma) / (snr + 1)
and, for one batch of predictions and targets, the weighted loss that script computes (the
per-sample mean squared error times the weight, averaged over the batch). The schedules are built
in float64 (make_scheduler_golden.py's float64_construction), so that the reference differs from
ldm's double computation only by compute_snr's own float32 arithmetic.

lr_schedules.json: the learning rate of a one-parameter SGD under diffusers' get_scheduler (base
rate 1, so the rate is the LambdaLR factor) after k = 0, 1, ... scheduler steps, as a training
loop sees it before its optimiser step k + 1 (optimizer.step(), then lr_scheduler.step()). Cosine
with num_cycles other than 0.5 comes from get_cosine_schedule_with_warmup, as get_scheduler does
not pass num_cycles to it.

Run by hand from anywhere (not in CI), with torch and diffusers installed:
    python tools/golden/make_training_golden.py [--out DIR]
Nothing is random: a rerun with the same versions writes the same files.
"""

import argparse
import json
import pathlib
import sys

import diffusers
import torch
from diffusers import DDPMScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup, get_scheduler
from diffusers.training_utils import compute_snr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_scheduler_golden import float64_construction  # noqa: E402

SCRIPT = "tools/golden/make_training_golden.py"
REPO = pathlib.Path(__file__).resolve().parents[2]
SCHEDULES = {
    "linear": dict(beta_schedule="linear"),
    "scaled_linear": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
}
TIMESTEPS = [0, 1, 10, 100, 250, 500, 750, 999]
GAMMAS = [1.0, 5.0]
LOSS_SHAPE = (4, 2, 3, 3)
LOSS_TIMESTEPS = [3, 120, 600, 990]
LR_CASES = [
    dict(name="constant", warmup=0, total=10),
    dict(name="constant_with_warmup", warmup=4, total=10),
    dict(name="constant_with_warmup", warmup=0, total=10),
    dict(name="linear", warmup=3, total=10),
    dict(name="linear", warmup=0, total=7),
    dict(name="cosine", warmup=2, total=12),
    dict(name="cosine", warmup=0, total=9),
    dict(name="cosine", warmup=3, total=11, cycles=1.5),
]


def versions():
    return {"script": SCRIPT, "torch": torch.__version__, "diffusers": diffusers.__version__}


def min_snr_weights(snr, gamma, prediction_type):
    """train_text_to_image.py's mse_loss_weights."""
    clamped = torch.stack([snr, gamma * torch.ones_like(snr)], dim=1).min(dim=1)[0]
    return clamped / snr if prediction_type == "epsilon" else clamped / (snr + 1)


def min_snr():
    generator = torch.Generator().manual_seed(3)
    prediction = torch.randn(LOSS_SHAPE, generator=generator)
    target = torch.randn(LOSS_SHAPE, generator=generator)
    cases = []
    for name, config in SCHEDULES.items():
        with float64_construction():
            scheduler = DDPMScheduler(**config)
        assert scheduler.alphas_cumprod.dtype == torch.float64
        snr = compute_snr(scheduler, torch.tensor(TIMESTEPS))
        loss_snr = compute_snr(scheduler, torch.tensor(LOSS_TIMESTEPS))
        for prediction_type in ("epsilon", "v_prediction"):
            for gamma in GAMMAS:
                weights = min_snr_weights(snr, gamma, prediction_type)
                loss_weights = min_snr_weights(loss_snr, gamma, prediction_type)
                per_sample = ((prediction.double() - target.double()) ** 2).mean(dim=[1, 2, 3])
                loss = (per_sample * loss_weights.double()).mean()
                cases.append({"schedule": name, "config": config,
                              "prediction_type": prediction_type, "gamma": gamma,
                              "snr": snr.tolist(), "weights": weights.tolist(),
                              "loss": float(loss)})
    return {"made_by": versions(), "timesteps": TIMESTEPS,
            "loss_batch": {"shape": list(LOSS_SHAPE), "timesteps": LOSS_TIMESTEPS,
                           "prediction": prediction.flatten().tolist(),
                           "target": target.flatten().tolist()},
            "cases": cases}


def lr_schedules():
    cases = []
    for case in LR_CASES:
        parameter = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([parameter], lr=1.0)
        cycles = case.get("cycles", 0.5)
        if case["name"] == "cosine" and cycles != 0.5:
            scheduler = get_cosine_schedule_with_warmup(optimizer, case["warmup"], case["total"],
                                                        num_cycles=cycles)
        else:
            scheduler = get_scheduler(case["name"], optimizer, num_warmup_steps=case["warmup"],
                                      num_training_steps=case["total"])
        factors = []
        for _ in range(case["total"] + 3):
            factors.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        cases.append({"type": case["name"], "warmup_steps": case["warmup"],
                      "total_steps": case["total"], "num_cycles": cycles, "factors": factors})
    return {"made_by": versions(), "cases": cases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "golden")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, content in (("min_snr.json", min_snr()), ("lr_schedules.json", lr_schedules())):
        path = args.out / name
        path.write_text(json.dumps(content, indent=1) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
