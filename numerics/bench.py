"""Benchmarks: each fast path against a plain baseline, in one run, on one named device.

Records are {name, baseline_s, fast_s, ratio = baseline_s / fast_s, device, ...}: the two timed
computations are described in 'baseline' and 'fast', the project's goal for the ratio (or, for the
command line, the seconds) in 'goal' and 'passed'. Timing: one warm-up call, then the median of
several repeats, with `torch.cuda.synchronize()` around each on a GPU. Peak memory of each side
is measured too, in a separate call ('peak_memory_*_bytes', 'memory_method'): on a GPU
`torch.cuda.max_memory_allocated` above the memory already allocated; on the CPU the C heap in
use (glibc's mallinfo2, which sees torch's tensors; tracemalloc does not, and the resident set
size hides memory the allocator reuses), sampled from a thread every `timing.SAMPLE_S` seconds, above
its value at the start, so allocations shorter than that can be missed; without glibc the
ru_maxrss delta, which only shows a new high-water mark. On a GPU the run also measures the device's
peaks, a large matrix product and a large copy, and states the training step's achieved FLOP/s
and bandwidth as fractions of them. Each record also notes the torch threads and the load
average at its start: on a shared 2-core machine other processes' load changes the times a lot.

The command line timings run `rnnmemory` in fresh interpreters, imports included, as a user would.
"""
from __future__ import annotations

import datetime
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from .timing import device_peaks, median_time, peak_memory

# The project's goals (ratios, except the command line's seconds on a 2-core CPU).
CLI_GOAL_S = 2.0
GOALS = {"cpu": {"ntk": 200.0, "step": 10.0, "ensemble": 2.0, "plrnn": 0.5, "packed-8": 3.0},
         "cuda": {"step": 30.0, "ensemble": 8.0}}
# Sizes: (full, quick). The quick ones only check that everything runs.
SIZES = {
    "ntk": ({"width": 1024, "lags": 32}, {"width": 32, "lags": 6}),
    "step": ({"width": 1024, "length": 256, "batch": 64}, {"width": 32, "length": 70, "batch": 4}),
    "ensemble": ({"members": 32, "widths": (64, 128, 256), "steps": 100, "length": 40, "samples": 20},
                 {"members": 3, "widths": (8,), "steps": 3, "length": 5, "samples": 4}),
    # eigen E1's shapes: digits (64 steps) and tomita:3 (≤ 12 steps), batch 64, hidden 32; a pack of 8
    # runs (E1's pack size: 4 initializers × 2 seeds) of one cell
    "eigen": ({"tasks": ("digits", "tomita:3"), "cells": ("rnn", "gru", "lstm"), "hiddens": (32,), "seeds": 2,
               "steps": 30},
              {"tasks": ("tomita:3",), "cells": ("gru",), "hiddens": (4,), "seeds": 1, "steps": 2}),
}
# the rPLRNN paper's step: M = 40 units, its batch of 500, T = 100 and 400 (quick: tiny)
SIZES["plrnn"] = ({"hidden": 40, "batch": 500, "lengths": (100, 400)}, {"hidden": 8, "batch": 4, "lengths": (20,)})
# packed PLRNN training (P1's runs: M = 40, batch 64): K runs as one pack against the same K alone
SIZES["packed"] = ({"hidden": 40, "batch": 64, "lengths": (100, 200), "packs": (1, 4, 8, 16), "steps": 20,
                    "threads": (1, 2)},
                   {"hidden": 8, "batch": 4, "lengths": (20,), "packs": (1, 2), "steps": 2, "threads": (1,)})
EIGEN_INITS = ("xavier", "orthogonal", "nprnn", "spectral")


# Every family whose lag kernel has a rule (empirical and spectral files reuse the measured path).
INIT_FAMILIES = ("orthogonal", "identity", "nprnn", "spectral", "attractor:p=0.25")


def wall_time(args: list[str], repeats: int) -> float:
    """Median wall time of a command in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_cli(device_name: str, repeats: int = 5) -> list[dict]:
    """`rnnmemory derive` and `emit` wall time, against the bare imports they cannot avoid."""
    python = sys.executable
    imports = wall_time([python, "-c", "import sympy, numpy, click"], repeats)
    records = []
    with tempfile.TemporaryDirectory() as out:
        for name, args in (("derive (default spec, json, --eval)", ["derive", "--format", "json", "--eval", "sigma_W=0.8"]),
                           ("derive (convention B, standard)", ["derive", "--convention", "B", "--param", "standard"]),
                           ("emit --target torch (default spec)", ["emit", "--target", "torch", "--out", out]),
                           ("emit --target c (convention B)", ["emit", "--target", "c", "--convention", "B", "--out", out]),
                           *((f"derive --init {init} --eval", ["derive", "--init", init, "--eval", "sigma_W=0.9"])
                             for init in INIT_FAMILIES)):
            seconds = wall_time([python, "-m", "cli", *args], repeats)
            records.append({"name": name, "baseline": "python -c 'import sympy, numpy, click'",
                            "baseline_s": imports, "fast_s": seconds, "ratio": imports / seconds,
                            "goal_s": CLI_GOAL_S, "passed": seconds < CLI_GOAL_S, "device": device_name})
    return records


def _record(name: str, kind: str, device: torch.device, device_name: str, repeats: int,
            baseline: tuple[str, Callable[[], object]], fast: tuple[str, Callable[[], object]], **extra) -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # 1-minute load average, before
    baseline_s = median_time(baseline[1], device, repeats)
    fast_s = median_time(fast[1], device, repeats)
    baseline_memory, method = peak_memory(baseline[1], device)
    fast_memory, _ = peak_memory(fast[1], device)
    goal = GOALS.get(device.type, {}).get(kind)
    ratio = baseline_s / fast_s
    return {"name": name, "baseline": baseline[0], "fast": fast[0], "baseline_s": baseline_s, "fast_s": fast_s,
            "ratio": ratio, "device": device_name, "goal": goal, "passed": None if goal is None else ratio >= goal,
            "peak_memory_baseline_bytes": baseline_memory, "peak_memory_fast_bytes": fast_memory,
            "memory_method": method, "repeats": repeats, "threads": torch.get_num_threads(),
            "load_average": load, **extra}


def bench_ntk(device: torch.device, device_name: str, repeats: int, width: int, lags: int) -> list[dict]:
    """Structured tangent Gram against torch.func (jacrev), through plain autograd and through the
    structured gradient of `markov_parameters`, which the generic path also uses."""
    from derivations.spec import Spec

    from .kernels.empirical import generic_tangent_gram, structured_tangent_gram
    from .models.linear import LinearRNN

    model = LinearRNN(Spec(), width, sigmas={"W": 0.8}, device=device, seed=0)
    size = f"width {width}, {lags} lags"
    fast = ("structured_tangent_gram", lambda: structured_tangent_gram(model, lags))
    return [
        _record(f"tangent Gram ({size}): structured vs torch.func", "ntk", device, device_name, max(2, repeats // 2),
                ("generic_tangent_gram(method='chain'): jacrev through the plain chain",
                 lambda: generic_tangent_gram(model, lags, method="chain")), fast),
        _record(f"tangent Gram ({size}): structured vs torch.func with the structured gradient", "ntk_function",
                device, device_name, repeats,
                ("generic_tangent_gram: jacrev through markov_parameters' structured gradient",
                 lambda: generic_tangent_gram(model, lags)), fast),
    ]


def _step_flops(width: int, length: int, batch: int, block: int) -> tuple[float, float]:
    """Arithmetic (flop) and matrix traffic (bytes per element size) of one fast training step.

    Two Krylov chains (forward vectors, backward left vectors) of `length` products, the squarings
    when blocked, the gradient of W (one n×T by T×n product), the Hankel product and the update.
    """
    from .models.linear import ladder_size

    n, T = width, length
    squarings = max(ladder_size(T, block) - 1, 0)
    products = 2 * (T if block == 1 else math.ceil(T / block) + int(math.log2(block)))
    flops = 2 * 2 * n * n * T + squarings * 2 * n ** 3 + 2 * n * n * T + 2 * n * T * T + 2 * n * n
    traffic = (products + 2 * squarings + 4) * n * n  # matrix reads and writes, in elements
    fft = 2 * batch * 5 * (2 * T) * math.log2(2 * T)
    return flops + fft, traffic


def bench_step(device: torch.device, device_name: str, repeats: int, width: int, length: int, batch: int,
               peaks: dict | None = None) -> list[dict]:
    """One training step (½-MSE on every position, gradient, SGD update) through the impulse
    response and the FFT convolution, against the same step through the recurrence."""
    from derivations.spec import Spec

    from .models.linear import LinearRNN, krylov_block

    model = LinearRNN(Spec(), width, sigmas={"W": 0.9}, device=device, seed=0)
    generator = torch.Generator().manual_seed(0)
    x, y = (torch.randn(batch, length, 1, dtype=torch.float64, generator=generator).to(device) for _ in range(2))
    params = list(model.parameters())

    def step(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run():
            loss = 0.5 * (forward(x) - y).square().mean()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.sub_(1e-6 * g)  # tiny steps keep the network where it was measured
        return run

    record = _record(f"training step (width {width}, length {length}, batch {batch}): fast vs recurrence", "step",
                     device, device_name, repeats,
                     ("LinearRNN.forward: the recurrence, one step at a time", step(model)),
                     ("markov_parameters + FFT causal_convolution", step(model.forward_convolution)))
    block = krylov_block(width, length, 1, 1, device.type, 8)
    flops, traffic = _step_flops(width, length, batch, block)
    record.update(krylov_block=block, fast_flop=flops, fast_flop_per_s=flops / record["fast_s"],
                  baseline_flop=6 * batch * width * width * length,
                  baseline_flop_per_s=6 * batch * width * width * length / record["baseline_s"])
    if peaks:
        record.update(fast_fraction_of_matmul_peak=record["fast_flop_per_s"] / peaks["matmul_flop_per_s"],
                      fast_bytes_per_s=traffic * 8 / record["fast_s"],
                      fast_fraction_of_copy_peak=traffic * 8 / record["fast_s"] / peaks["copy_bytes_per_s"],
                      baseline_fraction_of_matmul_peak=record["baseline_flop_per_s"] / peaks["matmul_flop_per_s"])
    return [record]


def bench_ensemble(device: torch.device, device_name: str, repeats: int, members: int, widths: tuple[int, ...],
                   steps: int, length: int, samples: int) -> list[dict]:
    """`compare_training_many` on `members` configurations of one shape (teachers, σ_W and seeds
    differ) against `compare_training` called for each, at a few widths."""
    from .data.problem import WhiteNoise
    from .train.compare import Comparison, compare_training, compare_training_many, ensemble_size

    records = []
    for width in widths:
        configs = [(WhiteNoise(f"decay:{0.5 + 0.45 * k / members:.3f}", samples=samples, length=length),
                    Comparison(width, sigma_w=0.3 + 0.2 * (k % 4), seed=k, steps=steps, center=True,
                               device=device.type)) for k in range(members)]
        records.append(_record(
            f"ensemble of {members} (width {width}, length {length}, {steps} steps) vs {members} separate runs",
            "ensemble", device, device_name, max(1, repeats // 3),
            (f"compare_training × {members}", lambda: [compare_training(*c) for c in configs]),
            ("compare_training_many", lambda: compare_training_many(configs)),
            stack=ensemble_size(width, torch.float64, device)))
    return records


def bench_eigen(device: torch.device, device_name: str, repeats: int, tasks: tuple[str, ...], cells: tuple[str, ...],
                hiddens: tuple[int, ...], seeds: int, steps: int) -> list[dict]:
    """The eigen benchmark's runs of one task and cell (initializers × seeds) trained as one pack
    (`train_packed`) against `train_classifier` for each, one torch thread as in a sweep."""
    from .eigen.packed import train_packed
    from .eigen.train import train_classifier

    runs = [(init, seed) for init in EIGEN_INITS for seed in range(seeds)]
    options = {"steps": steps, "track_every": steps, "device": device.type, "threads": None}
    records = []
    for task, cell, hidden in itertools.product(tasks, cells, hiddens):
        records.append(_record(
            f"eigen bench: {len(runs)} runs of {cell} (hidden {hidden}) on {task}, {steps} steps, packed vs alone",
            "eigen", device, device_name, max(1, repeats // 3),
            (f"train_classifier × {len(runs)}",
             lambda: [train_classifier(task, cell, i, s, hidden=hidden, **options) for i, s in runs]),
            ("train_packed", lambda: train_packed(task, cell, runs, hidden=hidden, **options))))
    return records


def bench_plrnn(device: torch.device, device_name: str, repeats: int, hidden: int, batch: int,
                lengths: tuple[int, ...]) -> list[dict]:
    """The PLRNN training step (hand-written backward) against nn.RNN(relu) of the same width, batch and
    T — the goal: within 2×, ratio ≥ 0.5 — and against the same map under autograd, step by step."""
    from .plrnn.speed import BASELINE, reconstruction_steps, training_steps

    records = []
    for length in lengths:
        steps = training_steps(hidden, batch, length, device)
        size = f"M = {hidden}, batch {batch}, T = {length}"
        records.append(_record(f"PLRNN training step ({size}) vs nn.RNN(relu)", "plrnn", device, device_name, repeats,
                               (BASELINE, steps[BASELINE]), ("rplrnn (hand-written backward)", steps["rplrnn"])))
        records.append(_record(f"PLRNN training step ({size}): hand-written backward vs autograd", "plrnn-autograd",
                               device, device_name, repeats, ("the loop under autograd", steps["rplrnn, autograd loop"]),
                               ("rplrnn (hand-written backward)", steps["rplrnn"])))
    # reconstruction: windows of 100 steps of a 3-variable series, teacher forcing every 10
    window = min(100, lengths[-1])
    steps = reconstruction_steps(hidden=hidden, batch=min(batch, 64), window=window, tau_tf=10, observed=3,
                                 device=device)
    size = f"M = {hidden}, batch {min(batch, 64)}, window {window}, τ_tf = 10"
    for model in ("rplrnn", "gru"):  # the goal (within 2×) is the PLRNN's; the GRU's row is for comparison
        records.append(_record(f"reconstruction training step ({size}): {model} vs nn.RNN(relu)",
                               "plrnn" if model == "rplrnn" else "reconstruction-gru", device,
                               device_name, repeats, (BASELINE, steps[BASELINE]),
                               (f"{model}, teacher forcing", steps[model])))
    return records


def bench_packed(device: torch.device, device_name: str, repeats: int, hidden: int, batch: int, lengths: tuple,
                 packs: tuple, steps: int, threads: tuple) -> list[dict]:
    """K rPLRNN runs (seeds 0 … K−1) on the addition problem trained as one pack (`train_runs`) against
    the same K runs trained alone one after another (packed=False; equal numbers, tests/test_plrnn_packed.py):
    `steps` steps each, data made once per call, one validation and test score at the end. The goal
    (≥ 3× at K = 8) is the CPU's; on CUDA a pack is one kernel launch sequence for K runs, so the
    gain grows with K until the GPU is busy (expected: near K for these small matrices)."""
    from .plrnn.train import train_runs

    records = []
    sizes = {"train_size": max(256, batch * 2), "val_size": 64, "test_size": 64}
    for count in threads if device.type == "cpu" else (None,):
        for length in lengths:
            for K in packs:
                runs = [{"model": "rplrnn", "seed": seed} for seed in range(K)]

                def train(packed: bool, runs=runs, length=length, count=count):
                    return train_runs("addition", length, runs, hidden=hidden, steps=steps, batch=batch, lr=1e-3,
                                      track_every=steps, device=str(device), threads=count, packed=packed, **sizes)
                where = f", {count} thread{'s' if count != 1 else ''}" if count else ""
                records.append(_record(f"packed PLRNN training (K = {K}, M = {hidden}, batch {batch}, T = {length}"
                                       f"{where}) vs alone", f"packed-{K}", device, device_name, max(1, repeats // 2),
                                       (f"{K} run{'s' * (K != 1)} alone, {steps} steps each", lambda train=train: train(False)),
                                       (f"one pack of {K}, {steps} steps", lambda train=train: train(True)),
                                       runs=K, steps=steps, T=length, torch_threads=count))
    return records


def run_benchmarks(device: str = "auto", quick: bool = False, *, cli: bool = True, threads: int | None = None) -> list[dict]:
    """Every benchmark in one run on one device ('auto', 'cpu' or 'cuda'); quick uses tiny sizes.

    Returns the records (see the module docstring). On a GPU the first record holds the device's
    measured peaks ('device peaks'); the training step is stated as fractions of them. cli=False
    leaves out the command-line timings; threads sets torch's CPU threads for the run (and back).
    """
    from .device import resolve_device

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(resolve_device(device), quick, cli)
    finally:
        torch.set_num_threads(previous)


def _run(torch_device: torch.device, quick: bool, cli: bool) -> list[dict]:
    from .io import device_name as describe

    name = describe(torch_device)
    repeats = 1 if quick else 5
    pick = 1 if quick else 0
    records, peaks = [], None
    if torch_device.type == "cuda":
        peaks = device_peaks(torch_device, repeats=repeats)
        records.append({"name": "device peaks", "baseline": None, "fast": None, "baseline_s": None, "fast_s": None,
                        "ratio": None, "device": name, **peaks})
    records += bench_ntk(torch_device, name, repeats, **SIZES["ntk"][pick])
    records += bench_step(torch_device, name, repeats, **SIZES["step"][pick], peaks=peaks)
    records += bench_ensemble(torch_device, name, repeats, **SIZES["ensemble"][pick])
    records += bench_eigen(torch_device, name, repeats, **SIZES["eigen"][pick])
    records += bench_plrnn(torch_device, name, repeats, **SIZES["plrnn"][pick])
    records += bench_packed(torch_device, name, repeats, **SIZES["packed"][pick])
    if cli:
        records += bench_cli(name, repeats=1 if quick else 5)
    return records


def _seconds(value) -> str:
    if value is None:
        return ""
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _bytes(value) -> str:
    return "" if value is None else f"{value / 2 ** 20:.0f} MiB" if value >= 2 ** 20 else f"{value / 2 ** 10:.0f} KiB"


def bench_table(records: list[dict], command: str = "rnnmemory bench --out DIR --device auto") -> str:
    """The README's table: one row per record, with the device, the date and the command above it."""
    first = records[0] if records else {}
    when = datetime.date.today().isoformat()
    load = next((r["load_average"] for r in records if r.get("load_average") is not None), None)
    lines = [f"Measured with `{command}` on {first.get('device', '?')}, {when}, torch {torch.__version__}"
             + (f", load average {load:.1f} at the start" if load is not None else "") + ".", "",
             "| benchmark | baseline | fast | baseline time | fast time | ratio | goal | peak memory (baseline → fast) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        if r.get("ratio") is None:
            peaks = f"matmul {r['matmul_flop_per_s'] / 1e12:.1f} Tflop/s, copy {r['copy_bytes_per_s'] / 1e9:.0f} GB/s"
            lines.append(f"| {r['name']} | | | | | | | {peaks} |")
            continue
        if "goal_s" in r:
            goal = f"< {r['goal_s']:g} s {'✓' if r['passed'] else '✗'}"
        else:
            goal = "" if r.get("goal") is None else f"≥ {r['goal']:g}× {'✓' if r['passed'] else '✗'}"
        memory = ""
        if "peak_memory_fast_bytes" in r:
            memory = f"{_bytes(r['peak_memory_baseline_bytes'])} → {_bytes(r['peak_memory_fast_bytes'])}"
        lines.append(f"| {r['name']} | {r['baseline']} | {r.get('fast', '')} | {_seconds(r['baseline_s'])} | "
                     f"{_seconds(r['fast_s'])} | {r['ratio']:.1f}× | {goal} | {memory} |")
    gpu = [r for r in records if "fast_fraction_of_matmul_peak" in r]
    for r in gpu:
        lines.append("")
        lines.append(f"Training step: {r['fast_flop_per_s'] / 1e9:.1f} Gflop/s achieved, "
                     f"{100 * r['fast_fraction_of_matmul_peak']:.1f}% of the measured matmul peak; "
                     f"{r['fast_bytes_per_s'] / 1e9:.0f} GB/s, {100 * r['fast_fraction_of_copy_peak']:.0f}% of the copy peak.")
    return "\n".join(lines) + "\n"


def write_bench(records: list[dict], out_dir: str | Path) -> str:
    """Write `out_dir/bench.json` (the list of records) atomically; return the markdown table."""
    from .io import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "bench.json", json.dumps(records, indent=2) + "\n")
    return bench_table(records)


def bench_command(out: str | Path, device: str = "auto", *, quick: bool = False, force: bool = False) -> str:
    """`rnnmemory bench`: every benchmark on one device into OUT/bench.json and OUT/environment.json;
    returns the table. Refuses an output path that is a file, or an existing bench.json without force."""
    from .device import resolve_device
    from .errors import NumericsError
    from .io import environment, to_json, write_atomic

    torch_device = resolve_device(device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NumericsError(f"output path {out} is a file, not a directory")
    if (out / "bench.json").exists() and not force:
        raise NumericsError(f"{out} already holds bench.json; pass --force to overwrite it")
    table = write_bench(run_benchmarks(device, quick=quick), out)
    write_atomic(out / "environment.json", to_json(environment(torch_device)))
    return table
