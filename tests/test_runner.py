"""Sweeps on Dask: a local cluster, a killed worker, a separately started scheduler, an unreachable
one, a failing task, and a serial path that never imports Dask."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sweep_compute

from numerics.errors import NumericsError
from numerics.pipeline.cells import CellCache, cell_key
from numerics.pipeline.runner import run_cells

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def results(records):
    return [r["result"] for r in records]


def reference(tmp_path, n, size=5):
    """What an uninterrupted serial run gives (the sleep is an input, not part of the numbers)."""
    return results(run_cells(sweep_compute.cells(n, size), sweep_compute.compute, CellCache(tmp_path / "serial")))


def worker_processes():
    """This process's LocalCluster workers: children started by multiprocessing's spawn."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def assert_cluster_gone():
    deadline = time.monotonic() + 10
    while worker_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker_processes() == []


@pytest.mark.slow
def test_local_cluster_gives_the_serial_records(tmp_path):
    cells = sweep_compute.cells(6, size=6)
    done = []
    parallel = run_cells(cells, sweep_compute.compute, CellCache(tmp_path / "parallel"), jobs=2, group_size=2,
                         progress=done.append)
    assert done == [2, 2, 2]
    assert [r["inputs"] for r in parallel] == cells
    assert results(parallel) == reference(tmp_path, 6, size=6)  # small eigenproblems: bit for bit
    assert "1 threads" in parallel[0]["environment"]["device_name"]  # the worker's environment
    assert_cluster_gone()


def read_log(path):
    """[(event, pid, seed, time)] from the SWEEP_TEST_LOG lines written so far."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[0], int(parts[1]), int(parts[2]), float(parts[3])))
    return rows


@pytest.mark.slow
def test_a_worker_killed_mid_task_loses_nothing(tmp_path, monkeypatch):
    """SIGKILL a worker process in the middle of a cell: Dask reruns its task on a live worker."""
    log = tmp_path / "log"
    monkeypatch.setenv("SWEEP_TEST_LOG", str(log))  # the workers, started inside run_cells, inherit it
    cells = sweep_compute.cells(8, sleep=0.8)
    killed = []

    def kill_a_busy_worker(k):
        if killed:
            return
        # The first chunk is stored. Wait for a cell that a worker started less than 0.4 s ago and
        # has not finished (so 0.4 s of its sleep remain), and kill that worker.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = {p.pid for p in worker_processes()}
            rows = read_log(log)
            ended = {(pid, seed) for event, pid, seed, _ in rows if event == "end"}
            busy = [(pid, seed) for event, pid, seed, t in rows
                    if event == "start" and (pid, seed) not in ended and time.time() - t < 0.4 and pid in workers]
            if busy:
                pid, seed = busy[0]
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, seed))
                return
            time.sleep(0.02)
        raise AssertionError(f"no worker was busy with a fresh cell: {rows}")

    records = run_cells(cells, sweep_compute.compute, CellCache(tmp_path / "killed"), jobs=2, group_size=1,
                        progress=kill_a_busy_worker)
    assert killed, "no worker was killed"
    pid, seed = killed[0]
    rows = read_log(log)
    assert ("end", pid, seed) not in [r[:3] for r in rows]  # the kill did interrupt that cell...
    assert [r[0] for r in rows if r[2] == seed and r[1] != pid] == ["start", "end"]  # ...rerun elsewhere
    assert [r["inputs"] for r in records] == cells
    assert results(records) == reference(tmp_path, 8)  # bit for bit an uninterrupted run
    cache = CellCache(tmp_path / "killed")
    assert all(cache.load(c) == r for c, r in zip(cells, records))
    assert sorted(p.name for p in (tmp_path / "killed" / "cells").iterdir()) == sorted(
        f"{cell_key(c)}.json" for c in cells)  # no temporary or corrupt files
    assert_cluster_gone()


@pytest.mark.slow
def test_a_failing_task_stops_the_sweep_and_keeps_finished_cells(tmp_path):
    cells = sweep_compute.cells(3) + [{"kind": "test", "seed": 3, "size": 5, "sleep": 0.5, "fail": True}]
    cache = CellCache(tmp_path)
    with pytest.raises(ValueError, match="cell 3 fails on purpose"):  # the task's own exception
        run_cells(cells, sweep_compute.compute, cache, jobs=2, group_size=1)
    assert all(cache.load(c) is not None for c in cells[:3])  # they finished before the failure
    assert cache.load(cells[3]) is None
    assert_cluster_gone()


@pytest.mark.slow
def test_ctrl_c_closes_the_cluster_and_keeps_finished_cells(tmp_path):
    cells = sweep_compute.cells(6, sleep=0.3)
    cache = CellCache(tmp_path)

    def interrupt(k):
        raise KeyboardInterrupt  # Ctrl-C right after the first chunk was stored

    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, sweep_compute.compute, cache, jobs=2, group_size=2, progress=interrupt)
    assert_cluster_gone()
    stored = [c["seed"] for c in cells if cache.load(c) is not None]
    assert len(stored) == 2

    seen = []

    def counting(chunk, device, context=None):
        seen.extend(c["seed"] for c in chunk)
        return sweep_compute.compute(chunk, device)

    resumed = run_cells(cells, counting, cache)
    assert sorted(seen + stored) == list(range(6))
    assert results(resumed) == reference(tmp_path, 6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_separately_started_scheduler(tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    started = []
    try:
        for argv in (["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                     ["distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard"]):
            started.append(subprocess.Popen([sys.executable, "-m", *argv], cwd=tmp_path, env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True))  # its own group: we end it all below
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)  # fail here rather than hang in run_cells
        cells = sweep_compute.cells(4)
        done = []
        records = run_cells(cells, sweep_compute.compute, CellCache(tmp_path / "remote"), scheduler=address,
                            group_size=2, progress=done.append)
        assert done == [2, 2]
        assert results(records) == reference(tmp_path, 4)
    finally:
        for process in started:
            with_group(process, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with_group(process, signal.SIGKILL)
                process.wait(timeout=5)


def with_group(process, sig):
    try:
        os.killpg(process.pid, sig)  # the process group we started, nanny and worker included
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_a_scheduler_without_workers_is_one_line(tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=False):
            pass  # the scheduler is up
        start = time.monotonic()
        with pytest.raises(NumericsError, match=f"the Dask scheduler at {address} has no workers") as raised:
            run_cells(sweep_compute.cells(2), sweep_compute.compute, CellCache(tmp_path), scheduler=address,
                      worker_timeout=2)
        assert time.monotonic() - start < 30 and "\n" not in str(raised.value)
        assert not (tmp_path / "cells").exists()
    finally:
        with_group(scheduler, signal.SIGKILL)
        scheduler.wait(timeout=10)


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(NumericsError, match=f"cannot reach the Dask scheduler at {address}") as raised:
        run_cells(sweep_compute.cells(2), sweep_compute.compute, CellCache(tmp_path), scheduler=address,
                  connect_timeout="2s")
    assert time.monotonic() - start < 15
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "cells").exists()


def test_the_serial_path_does_not_import_dask(tmp_path):
    script = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import sweep_compute
from numerics.pipeline.cells import CellCache
from numerics.pipeline.runner import run_cells
records = run_cells(sweep_compute.cells(3), sweep_compute.compute, CellCache({str(tmp_path)!r}), group_size=1)
# jobs > 1 with a single chunk also stays in-process
run_cells(sweep_compute.cells(5), sweep_compute.compute, CellCache({str(tmp_path)!r}), jobs=4, group_size=8)
assert len(records) == 3
print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
