"""Timing and memory measurement for the benchmarks (`numerics.bench`): the median of repeated calls
after a warm-up, synchronized on a GPU; the peak memory of one call above what was in use before
it; a device's measured peaks (a large matrix product and a large copy)."""
from __future__ import annotations

import ctypes
import resource
import statistics
import threading
import time
from typing import Callable

import torch

SAMPLE_S = 5e-4  # sampling period of the CPU peak-memory measurement (seconds)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of fn() over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_in_use() -> Callable[[], int] | None:
    """Bytes the C allocator has handed out and not taken back (glibc's mallinfo2), or None without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd  # heap chunks in use + large blocks mapped on their own

    return in_use


def peak_memory(fn: Callable[[], object], device: torch.device) -> tuple[int, str]:
    """Peak memory of one call of fn above what was in use before it, in bytes, and how it was measured."""
    if device.type == "cuda":
        _synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, "torch.cuda.max_memory_allocated"
    in_use = _malloc_in_use()
    if in_use is None:  # the high-water mark of the process only moves when this call sets a new one
        mark = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        fn()
        return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - mark, 0), "ru_maxrss delta"
    before = in_use()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], in_use())
            time.sleep(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], in_use()) - before, f"C heap in use above start (glibc mallinfo2, sampled every {SAMPLE_S * 1e3:g} ms)"


def device_peaks(device: torch.device, dtype: torch.dtype = torch.float64, repeats: int = 5) -> dict:
    """Measured peaks: a large square matrix product (flop/s) and a large device copy (bytes read + written per s)."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, dtype=dtype, device=device)
    seconds = median_time(lambda: a @ a, device, repeats)
    source = torch.empty(2 ** 28 if device.type == "cuda" else 2 ** 25, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    copy_s = median_time(lambda: target.copy_(source), device, repeats)
    return {"matmul_flop_per_s": 2 * n ** 3 / seconds, "matmul_size": n, "matmul_dtype": str(dtype).split(".")[-1],
            "copy_bytes_per_s": 2 * source.numel() / copy_s, "copy_bytes": source.numel()}
