"""A cheap, deterministic compute for sweep tests, importable by Dask worker processes.

A cell {"kind": "test", "seed": s, "size": k, "sleep": t} sleeps t seconds (so a worker can be
killed in the middle of it), then returns the sorted eigenvalues of a seeded random symmetric
k x k float64 matrix; a cell with "fail": true raises ValueError instead. With SWEEP_TEST_LOG set,
each cell appends "start|end <pid> <seed> <time>" lines to that file, so a test can see which
worker process is busy with which cell.
"""
import os
import time

import torch


def cells(n: int, size: int = 5, sleep: float = 0.0) -> list[dict]:
    return [{"kind": "test", "seed": seed, "size": size, "sleep": sleep} for seed in range(n)]


def _log(event: str, cell: dict) -> None:
    path = os.environ.get("SWEEP_TEST_LOG")
    if path:
        with open(path, "a") as fh:  # one short line per write: appends do not interleave
            fh.write(f"{event} {os.getpid()} {cell['seed']} {time.time():.6f}\n")


def eigenvalues(cell: dict) -> list[float]:
    generator = torch.Generator().manual_seed(cell["seed"])
    a = torch.randn(cell["size"], cell["size"], generator=generator, dtype=torch.float64)
    return torch.linalg.eigvalsh(a + a.T).tolist()  # eigvalsh sorts ascending


def compute(cells: list[dict], device: str, context=None) -> list[list[float]]:
    out = []
    for cell in cells:
        _log("start", cell)
        time.sleep(cell.get("sleep", 0.0))
        if cell.get("fail"):
            raise ValueError(f"cell {cell['seed']} fails on purpose")
        out.append(eigenvalues(cell))
        _log("end", cell)
    return out
