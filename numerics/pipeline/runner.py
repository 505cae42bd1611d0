"""Sweeps on Dask: the missing cells of a sweep, computed in-process or on a cluster, stored as they land.

A sweep is a list of cells (see `cells.py`). `run_cells` loads the ones already on disk, splits the
missing ones into chunks that share a group (so a batched compute sees cells of one shape) and
computes the chunks:

- jobs == 1, no scheduler: serially in this process. Dask is not imported on this path (the GPU
  machine has no Dask).
- jobs > 1: on an embedded `distributed.LocalCluster` of `jobs` worker processes with one thread
  (and one torch thread) each, closed when the sweep ends, fails or is interrupted. A sweep with
  a single chunk to compute stays in-process.
- scheduler="tcp://host:port": on a separately started Dask cluster.

Each chunk is one Dask task. Results come back to this process, which writes each cell atomically
as its chunk completes, so only this process touches the cache and an interruption loses no
finished chunk. A worker that dies mid-task (killed, out of memory) loses nothing either: the
scheduler reruns its task elsewhere (up to `distributed.scheduler.allowed-failures` times), and a
cell's numbers depend only on its inputs, so the sweep ends as an uninterrupted one would. A task
that raises cancels the rest and its exception is re-raised here; cells stored before stay.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from typing import Callable, Iterable

from ..errors import NumericsError
from .cells import CellCache, cell_key

# compute(cells, device, context) -> one JSON-able result per cell, in order. Worker processes unpickle
# it, so it must be a module-level function or a partial of one (`Registry.compute`).
Compute = Callable[[list, str, object], list]

WORKER_TIMEOUT = 60.0  # seconds a sweep waits for the first worker of an existing Dask cluster
_ENVIRONMENTS: dict[str, dict] = {}  # per worker process: git and versions are asked once


def _environment(device: str, cached: bool = False) -> dict:
    """Where cells run: versions, device, git commit of this process (so of the worker on a cluster)."""
    if cached and device in _ENVIRONMENTS:
        return _ENVIRONMENTS[device]
    from ..device import resolve_device
    from ..io import environment as describe

    _ENVIRONMENTS[device] = describe(resolve_device(device))
    return _ENVIRONMENTS[device]


def _chunks(cells: list, group: Callable[[dict], object], size: int | Callable[[dict], int]) -> list[list]:
    """Cells of one group in as few chunks of at most `size` (a number, or cell → number) as hold them,
    of nearly equal sizes (6 cells at most 4 a chunk: 3 and 3, not 4 and 2, so workers finish together),
    in first-seen order."""
    groups: dict = {}
    for cell in cells:
        groups.setdefault(group(cell), []).append(cell)
    chunks = []
    for members in groups.values():
        most = max(1, size(members[0]) if callable(size) else size)
        count = -(-len(members) // most)
        bounds = [round(k * len(members) / count) for k in range(count + 1)]
        chunks += [members[a:b] for a, b in zip(bounds, bounds[1:])]
    return chunks


def _timed(compute: Compute, chunk: list, device: str, context) -> tuple[list, float]:
    start = time.perf_counter()
    results = compute(chunk, device, context)
    if len(results) != len(chunk):
        raise NumericsError(f"the computation of {chunk[0]['kind']} cells returned {len(results)} results for "
                            f"{len(chunk)} cells")
    return results, time.perf_counter() - start


def _timed_chunk(compute: Compute, chunk: list, device: str, context) -> tuple[list, float, dict]:
    """One Dask task: a chunk's results, its seconds and the worker's environment."""
    import torch

    torch.set_num_threads(1)  # one thread per worker process: the processes share the cores
    return (*_timed(compute, chunk, device, context), _environment(device, cached=True))


def run_cells(cells: Iterable[dict], compute: Compute, cache: CellCache, *, device: str = "cpu", jobs: int = 1,
              scheduler: str | None = None, group: Callable[[dict], object] | None = None,
              group_size: int | Callable[[dict], int] = 8,
              progress: Callable[[int], None] | None = None, connect_timeout: str = "10s",
              worker_timeout: float = WORKER_TIMEOUT, context=None) -> list[dict]:
    """The stored records of `cells` (in order), computing only the missing ones.

    Missing cells are split into chunks of at most `group_size` cells sharing `group(cell)` (by
    default their kind); every chunk's cells are written to disk as soon as the chunk returns.
    jobs > 1 runs the chunks on that many local worker processes; `scheduler` (an address such as
    tcp://127.0.0.1:8786) runs them on that Dask cluster instead. progress(k) is called after
    every k finished cells, cached ones first. `context` (`experiment.Context`: checkpoint folder,
    progress on stderr) goes to every compute call, never into a cell's key.
    """
    cells = list(cells)
    unique = {cell_key(c): c for c in cells}
    records = {key: record for key, cell in unique.items() if (record := cache.load(cell)) is not None}
    missing = [cell for key, cell in unique.items() if key not in records]
    if progress and records:
        progress(len(records))

    def finish(chunk: list, outputs: list, seconds: float, env: dict) -> None:
        for cell, result in zip(chunk, outputs):
            cache.store(cell, result, env, seconds / len(chunk))
            # Read back: fresh cells then look exactly like cached ones (NaN as null), and a bad write shows now.
            record = cache.load(cell)
            if record is None:
                raise NumericsError(f"cell {cache.path(cell)} did not read back after writing it")
            records[cell_key(cell)] = record
        if progress:
            progress(len(chunk))

    if missing:
        chunks = _chunks(missing, group or (lambda c: c["kind"]), group_size)
        if scheduler is None and (jobs <= 1 or len(chunks) == 1):
            env = _environment(device)
            for chunk in chunks:
                finish(chunk, *_timed(compute, chunk, device, context), env)
        else:
            _run_on_dask(chunks, compute, device, jobs, scheduler, connect_timeout, worker_timeout, finish, context)
    return [records[cell_key(c)] for c in cells]


def _run_on_dask(chunks, compute, device, jobs, scheduler, connect_timeout, worker_timeout, finish, context) -> None:
    import logging

    import dask
    import distributed
    from distributed.utils import silence_logging_cmgr

    with contextlib.ExitStack() as stack:
        stack.enter_context(silence_logging_cmgr(logging.ERROR))  # this process's client, scheduler, nannies
        if scheduler is not None:
            try:
                client = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
            except Exception as error:  # refused, timed out, a bad address, or something else listening there
                raise NumericsError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
            stack.callback(_quietly, client.close)
            try:  # a scheduler without workers would hold the tasks forever
                client.wait_for_workers(1, timeout=worker_timeout)
            except (TimeoutError, distributed.TimeoutError):
                raise NumericsError(f"the Dask scheduler at {scheduler} has no workers (waited {worker_timeout:g} s); "
                                    f"start some with: dask worker {scheduler}") from None
        else:
            # Dask's workers get MALLOC_TRIM_THRESHOLD_=65536 by default, which makes glibc return
            # memory so eagerly that the training loop's many small tensors run ~40% slower
            # (measured: 16 width-128 runs, 1.30 s in a worker against 0.95 s in-process, 1.03 s
            # without it). Keep the thread limits, drop that.
            environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
            environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ": environ}))
            # Quiet workers too (a killed one logs warnings; a failing task's error is re-raised here, in
            # one line) and no dashboard: a sweep prints only its progress.
            cluster = distributed.LocalCluster(n_workers=min(jobs, len(chunks)), threads_per_worker=1,
                                               processes=True, dashboard_address=None, silence_logs=logging.CRITICAL)
            stack.callback(_quietly, cluster.close)
            client = distributed.Client(cluster, set_as_default=False)
            stack.callback(_quietly, client.close)  # runs before cluster.close: callbacks unwind last-in first-out
        run = uuid.uuid4().hex[:12]  # keys unique on a shared scheduler, readable in its dashboard
        futures = {client.submit(_timed_chunk, compute, chunk, device, context, pure=False,
                                 key=f"rnnmemory-cells-{run}-{i}"): chunk for i, chunk in enumerate(chunks)}
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                finish(futures[future], *future.result())  # the task's own exception is re-raised here
        except BaseException:
            client.cancel(list(futures))  # an error or Ctrl-C: stop the rest; stored cells stay
            raise


def _quietly(close: Callable[[], object]) -> None:
    """Close a client or cluster without letting a slow shutdown replace the error that ended the sweep."""
    try:
        close()
    except Exception:
        pass
