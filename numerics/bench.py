"""Benchmarks: each fast path against a plain baseline, in one run, on one named device.

Records are {name, baseline_s, fast_s, ratio = baseline_s / fast_s, device, ...}. The command
line timings run `rnnmemory` in fresh interpreters, imports included, as a user would.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

# Goals stated in the issues, for the report (seconds on a 2-core CPU).
CLI_GOAL_S = 2.0


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
                           ("emit --target c (convention B)", ["emit", "--target", "c", "--convention", "B", "--out", out])):
            seconds = wall_time([python, "-m", "cli", *args], repeats)
            records.append({"name": name, "baseline": "python -c 'import sympy, numpy, click'",
                            "baseline_s": imports, "fast_s": seconds, "ratio": imports / seconds,
                            "goal_s": CLI_GOAL_S, "passed": seconds < CLI_GOAL_S, "device": device_name})
    return records
