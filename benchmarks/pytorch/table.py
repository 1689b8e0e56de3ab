"""The comparison table of the GPU benchmark protocol (docs/models.md) from what
scripts/gpu-bench.sh collected: bench_workloads_cuda's Google Benchmark JSON and gpu_steps.py's
JSON lines (eager and compile). Prints markdown and writes it to --out.

  python3 benchmarks/pytorch/table.py --ldm ldm.json --eager pytorch-eager.jsonl \
      --compile pytorch-compile.jsonl --out table.md [--note "GPU=NVIDIA H200" ...]

FLOP per step are ldm's (counted from the configuration in bench_workloads_cuda.cu); the PyTorch
columns divide the same FLOP by their own time, since both sides do the same work. A missing or
failed measurement shows as "-" (or the error), never as a number.
"""
import argparse
import json
import os
import sys

WORKLOADS = ("unet-bench/train_step", "vae-bench/train_step", "unet-bench/ddim50_decode")


def read_ldm(path):
    """name -> benchmark entry of Google Benchmark's JSON."""
    if not path or not os.path.exists(path):
        return {}, {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        print(f"table.py: cannot read {path}: {error}", file=sys.stderr)
        return {}, {}
    runs = {b["name"]: b for b in data.get("benchmarks", []) if b.get("run_type") != "aggregate"}
    return runs, data.get("context", {})


def read_pytorch(path):
    """workload -> record of gpu_steps.py's JSON lines."""
    records = {}
    if not path or not os.path.exists(path):
        return records
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                record = json.loads(line)
                records[record["workload"]] = record
    return records


def number(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def tflops(gflop, ms):
    return None if gflop is None or ms is None else gflop / ms


def pytorch_ms(record):
    if record is None:
        return None, "not run"
    if "error" in record:
        return None, record["error"].splitlines()[0][:80]
    return record["ms"], None


def workload_table(ldm, eager, compiled):
    lines = [
        "| workload | ldm ms | PyTorch eager ms | torch.compile ms | ldm/eager | ldm/compile "
        "| TFLOP/s ldm / eager / compile | peak MiB ldm / eager / compile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    problems = []
    for name in WORKLOADS:
        entry = ldm.get(name)
        if entry is not None and entry.get("error_occurred"):
            problems.append(f"ldm {name}: {entry.get('error_message', 'error')}")
            entry = None
        ms = entry.get("ms") if entry else None
        gflop = entry.get("GFLOP") if entry else None
        e_ms, e_problem = pytorch_ms(eager.get(name))
        c_ms, c_problem = pytorch_ms(compiled.get(name))
        for mode, problem in (("eager", e_problem), ("compile", c_problem)):
            if problem and problem != "not run":
                problems.append(f"PyTorch {mode} {name}: {problem}")
        rates = " / ".join(number(tflops(gflop, t)) for t in (ms, e_ms, c_ms))
        peaks = " / ".join(
            number(x, 0) for x in (entry.get("peak_MiB") if entry else None,
                                   (eager.get(name) or {}).get("peak_MiB"),
                                   (compiled.get(name) or {}).get("peak_MiB")))
        lines.append(f"| {name} | {number(ms)} | {number(e_ms)} | {number(c_ms)} | "
                     f"{ratio(ms, e_ms)} | {ratio(ms, c_ms)} | {rates} | {peaks} |")
    return lines, problems


def op_table(ldm):
    ops = [(name, b) for name, b in ldm.items() if name.startswith("op/") or name.endswith("/adamw")]
    if not ops:
        return []
    lines = ["| ldm op | ms | TFLOP/s | GB/s |", "|---|---:|---:|---:|"]
    for name, b in ops:
        lines.append(f"| {name} | {number(b.get('ms'), 3)} | {number(b.get('TFLOP/s'))} | "
                     f"{number(b.get('GB/s'), 0)} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ldm", help="bench_workloads_cuda --benchmark_out (JSON)")
    parser.add_argument("--eager", help="gpu_steps.py --mode eager --out (JSON lines)")
    parser.add_argument("--compile", help="gpu_steps.py --mode compile --out (JSON lines)")
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the versions list, such as 'GPU=NVIDIA H200'")
    args = parser.parse_args()

    ldm, context = read_ldm(args.ldm)
    eager, compiled = read_pytorch(args.eager), read_pytorch(args.compile)
    rows, problems = workload_table(ldm, eager, compiled)

    any_record = next(iter(list(eager.values()) + list(compiled.values())), {})
    versions = list(args.note)
    for key in ("device", "torch", "diffusers", "cuda", "cudnn"):
        if key in any_record:
            versions.append(f"PyTorch side {key}={any_record[key]}")
    steps = {r.get("steps") for r in list(eager.values()) + list(compiled.values()) if "steps" in r}
    ldm_steps = {b.get("iterations") for b in ldm.values()}

    out = ["# GPU benchmark: ldm (CUDA backend, float32) against PyTorch + diffusers (bf16 autocast)",
           "",
           "Medians of timed steps after warm-up, CUDA events, fresh random inputs every step "
           f"(timed steps: ldm {sorted(ldm_steps - {None}) or '-'}, "
           f"PyTorch {sorted(steps - {None}) or '-'}). Ratios are ldm / PyTorch: below 1 is ldm "
           "faster. TFLOP/s divide one FLOP count per workload (bench_workloads_cuda.cu) by each "
           "side's time. Peak memory: ldm's caching allocator in use, PyTorch's "
           "max_memory_allocated.", ""]
    out += rows
    if problems:
        out += ["", "Missing or failed:"] + [f"- {p}" for p in problems]
    counted = {name: r["counted_forward_GFLOP_per_sample"] for name, r in eager.items()
               if "counted_forward_GFLOP_per_sample" in r}
    if counted:
        out += ["", "FLOP check, one forward pass per sample (PyTorch's FlopCounterMode against "
                "ldm's formula = GFLOP per step / 3 / batch):"]
        for name, gflop in counted.items():
            entry = ldm.get(name, {})
            batch = eager[name].get("batch")
            formula = (entry["GFLOP"] / 3 / batch) if "GFLOP" in entry and batch else None
            out.append(f"- {name}: counted {gflop:.2f} GFLOP, formula {number(formula, 2)} GFLOP")
    ops = op_table(ldm)
    if ops:
        out += ["", "ldm's dominant ops at the configurations' shapes (float32):", ""] + ops
    out += ["", "Versions:"] + [f"- {v}" for v in versions]
    if context:
        out.append(f"- ldm benchmark host: {context.get('host_name', '?')}, "
                   f"{context.get('num_cpus', '?')} CPUs, {context.get('date', '?')}")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
