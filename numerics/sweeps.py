"""Sweeps that survive interruption: every cell cached on disk by a hash of its inputs.

A cell is one configuration and one seed, described by a JSON-able dict of inputs that names its
`kind` (what computes it). Its result lives in `<root>/cells/<key>.json`, where the key is the
SHA-256 of the inputs' canonical JSON; the file is written atomically as soon as the cell is done.
So a sweep stopped by a crash or Ctrl-C loses nothing it had finished, and running it again
computes only the cells that are missing. Two sweeps that need the same cell share it.

The device a cell ran on is recorded in its file but is not part of its key: a cell computed on
the CPU is reused on a GPU and vice versa (they agree to rounding).
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import time
from pathlib import Path
from typing import Callable, Iterable

from derivations.emit import write_atomic

from .errors import NumericsError

# compute(cells, device) -> one JSON-able result per cell, in order. It must be a module-level
# function so that worker processes can import it.
Compute = Callable[[list, str], list]


def canonical(inputs: dict) -> str:
    """The one JSON text of a cell's inputs: sorted keys, no spaces, no NaN. Floats print by repr,
    so build grids with round() rather than arithmetic that leaves 0.7000000000000001."""
    if "kind" not in inputs:
        raise NumericsError("a cell's inputs must name its kind")

    def check(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise NumericsError(f"a cell input is not finite: {value}")
        if isinstance(value, dict):
            for v in value.values():
                check(v)
        if isinstance(value, (list, tuple)):
            for v in value:
                check(v)

    check(inputs)
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cell_key(inputs: dict) -> str:
    """SHA-256 (hex) of the canonical inputs: the cell's file name."""
    return hashlib.sha256(canonical(inputs).encode()).hexdigest()


class CellCache:
    """The folder `<root>/cells` of finished cells, one JSON file each: inputs, result, environment."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NumericsError(f"output path {self.root} is a file, not a directory")
        self.folder = self.root / "cells"

    def path(self, inputs: dict) -> Path:
        return self.folder / f"{cell_key(inputs)}.json"

    def load(self, inputs: dict) -> dict | None:
        """The stored record of a cell, or None when it has not been computed."""
        path = self.path(inputs)
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        if canonical(record["inputs"]) != canonical(inputs):  # a hash collision or a hand-edited file
            raise NumericsError(f"{path} holds a different cell; delete it to recompute")
        return record

    def store(self, inputs: dict, result, environment: dict, seconds: float) -> Path:
        from .reporting import to_json

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(inputs)
        write_atomic(path, to_json({"key": cell_key(inputs), "inputs": inputs, "result": result,
                                    "environment": environment, "seconds": seconds}))
        return path


def _chunks(cells: list, group: Callable[[dict], object], size: int) -> list[list]:
    """Cells of one group (same kind and shape) in chunks of at most `size`, in first-seen order."""
    groups: dict = {}
    for cell in cells:
        groups.setdefault(group(cell), []).append(cell)
    return [members[i:i + size] for members in groups.values() for i in range(0, len(members), size)]


def _timed(compute: Compute, cells: list, device: str) -> tuple[list, float]:
    start = time.perf_counter()
    results = compute(cells, device)
    if len(results) != len(cells):
        raise NumericsError(f"{compute.__name__} returned {len(results)} results for {len(cells)} cells")
    return results, time.perf_counter() - start


def _timed_chunk(task: tuple) -> tuple:
    index, compute, chunk, device = task
    return (index, *_timed(compute, chunk, device))


def _worker_init():
    import signal

    import torch

    torch.set_num_threads(1)  # the processes share the cores
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers


def run_cells(cells: Iterable[dict], compute: Compute, cache: CellCache, *, device: str = "cpu", jobs: int = 1,
              group: Callable[[dict], object] | None = None, group_size: int = 8,
              progress: Callable[[int], None] | None = None) -> list[dict]:
    """The stored records of `cells` (in order), computing only the missing ones.

    Missing cells are split into chunks of at most `group_size` cells sharing `group(cell)` (so a
    batched compute sees cells of one shape) and each chunk is written to disk, cell by cell, as
    soon as it returns. jobs > 1 runs chunks in that many worker processes with one torch thread
    each. progress(k) is called after every k finished cells, cached ones first.
    """
    cells = list(cells)
    unique = list({cell_key(c): c for c in cells}.values())
    missing = [c for c in unique if cache.load(c) is None]
    if progress and len(unique) > len(missing):
        progress(len(unique) - len(missing))
    if missing:
        from .device import resolve_device
        from .reporting import environment

        env = environment(resolve_device(device))
        chunks = _chunks(missing, group or (lambda c: c["kind"]), max(1, group_size))

        def finish(chunk, outputs, seconds):
            for cell, result in zip(chunk, outputs):
                cache.store(cell, result, env, seconds / len(chunk))
            if progress:
                progress(len(chunk))

        if jobs <= 1 or len(chunks) == 1:
            for chunk in chunks:
                finish(chunk, *_timed(compute, chunk, device))
        else:
            context = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
            pool = context.Pool(min(jobs, len(chunks)), initializer=_worker_init)
            try:
                tasks = [(i, compute, chunk, device) for i, chunk in enumerate(chunks)]
                for index, outputs, seconds in pool.imap_unordered(_timed_chunk, tasks):
                    finish(chunks[index], outputs, seconds)
                pool.close()
            except BaseException:
                pool.terminate()  # Ctrl-C or an error: stop the workers now; finished cells are on disk
                raise
            finally:
                pool.join()
    return [cache.load(c) for c in cells]


def results(records: list[dict]) -> list:
    """The result part of each record."""
    return [r["result"] for r in records]
