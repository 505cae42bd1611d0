"""The benchmark suite runs end to end at tiny sizes and writes its records; speed is not asserted here."""
import json
import time

import pytest
import torch

from numerics import bench

KEYS = {"name", "baseline_s", "fast_s", "ratio", "device"}


@pytest.fixture(scope="module")
def records():
    return bench.run_benchmarks("cpu", quick=True, cli=False)


def test_quick_run_has_every_benchmark(records):
    names = [r["name"] for r in records]
    assert sum("tangent Gram" in n for n in names) == 2
    assert sum(n.startswith("training step") for n in names) == 1
    assert sum("ensemble" in n for n in names) == len(bench.SIZES["ensemble"][1]["widths"])
    eigen = bench.SIZES["eigen"][1]
    assert sum("eigen bench" in n for n in names) == len(eigen["cells"]) * len(eigen["hiddens"])
    assert sum("PLRNN training step" in n for n in names) == 2 * len(bench.SIZES["plrnn"][1]["lengths"])
    assert sum(n.startswith("reconstruction training step") for n in names) == 2
    packed = bench.SIZES["packed"][1]
    assert sum(n.startswith("packed PLRNN training") for n in names) == (
        len(packed["packs"]) * len(packed["lengths"]) * len(packed["threads"]))
    for r in records:
        assert KEYS <= set(r)
        assert r["baseline_s"] > 0 and r["fast_s"] > 0 and r["ratio"] == pytest.approx(r["baseline_s"] / r["fast_s"])
        assert r["device"].startswith("CPU") and r["memory_method"]
        assert r["peak_memory_baseline_bytes"] >= 0 and r["peak_memory_fast_bytes"] >= 0
    step = next(r for r in records if r["name"].startswith("training step"))
    assert step["fast_flop"] > 0 and step["krylov_block"] >= 1


def test_write_bench(records, tmp_path):
    table = bench.write_bench(records, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "bench.json").read_text()) == json.loads(json.dumps(records))
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(records) + 1  # header and one row per record
    assert "rnnmemory bench --out DIR --device auto" in table and records[0]["device"] in table


def test_cli_records_and_gpu_extras(monkeypatch):
    monkeypatch.setattr(bench, "wall_time", lambda args, repeats: 0.5 if "-m" in args else 0.25)
    cli = bench.bench_cli("CPU (test)", repeats=1)
    assert len(cli) == 4 + len(bench.INIT_FAMILIES) and all(r["passed"] and r["ratio"] == 0.5 for r in cli)
    assert {f"derive --init {f} --eval" for f in bench.INIT_FAMILIES} <= {r["name"] for r in cli}
    peaks = {"name": "device peaks", "ratio": None, "device": "GPU", "matmul_flop_per_s": 5e13, "copy_bytes_per_s": 3e12}
    step = {**cli[0], "name": "training step", "fast_flop_per_s": 1e12, "fast_fraction_of_matmul_peak": 0.02,
            "fast_bytes_per_s": 1e12, "fast_fraction_of_copy_peak": 0.33}
    table = bench.bench_table([peaks, step])
    assert "50.0 Tflop/s" in table and "2.0% of the measured matmul peak" in table


def test_timing_and_memory_helpers():
    assert bench.median_time(lambda: None, torch.device("cpu"), 3) >= 0
    def hold():  # 64 MiB held for 50 ms, freed before the call returns
        big = torch.ones(2 ** 23, dtype=torch.float64)
        time.sleep(0.05)
        return big.sum()

    size, method = bench.peak_memory(hold, torch.device("cpu"))
    assert method and (size >= 2 ** 26 or method == "ru_maxrss delta")
