"""Cached sweeps: stable cell keys, atomic cell files, and interruption that loses nothing."""
import json

import pytest

from numerics import paper
from numerics.errors import NumericsError
from numerics.sweeps import CellCache, canonical, cell_key, run_cells

SCALE = paper.TINY


def small_cells():
    """Six real cells (tangent Grams of width-16 networks): cheap, and their numbers are real."""
    return [paper.kernel_cell(SCALE, 16, sw, r) for sw in (0.5, 0.9) for r in range(3)]


class Counting:
    """`paper.compute_cells`, recording which cells it was asked for (jobs = 1 runs in-process)."""

    def __init__(self):
        self.seen = []

    def __call__(self, cells, device):
        self.seen += [cell_key(c) for c in cells]
        return paper.compute_cells(cells, device)


def stored(cache, cells):
    return [cache.load(c)["result"] for c in cells]


def test_cell_key_is_canonical_and_stable():
    a = {"kind": "ntk", "width": 16, "sigma_w": 0.5, "nested": {"b": 1, "a": [1, 2]}}
    b = {"nested": {"a": [1, 2], "b": 1}, "sigma_w": 0.5, "width": 16, "kind": "ntk"}
    assert cell_key(a) == cell_key(b)
    # Pinned: changing the canonical form would orphan every cached cell, so it must be deliberate.
    assert canonical(a) == '{"kind":"ntk","nested":{"a":[1,2],"b":1},"sigma_w":0.5,"width":16}'
    assert cell_key(a) == "754a6c0b2baf578b64807efb6ec97709fed8ca4604df7f294e66bb2f28197186"
    assert cell_key({**a, "sigma_w": 0.5000001}) != cell_key(a)
    with pytest.raises(NumericsError):
        cell_key({"width": 16})  # no kind
    with pytest.raises(NumericsError):
        cell_key({"kind": "ntk", "sigma_w": float("nan")})


def test_cells_are_written_atomically_with_their_inputs(tmp_path):
    cache = CellCache(tmp_path)
    cells = small_cells()[:2]
    run_cells(cells, paper.compute_cells, cache, group_size=1)
    files = sorted(p.name for p in (tmp_path / "cells").iterdir())
    assert files == sorted(f"{cell_key(c)}.json" for c in cells)  # no temporary files left behind
    record = json.loads((tmp_path / "cells" / files[0]).read_text())
    assert {"key", "inputs", "result", "environment", "seconds"} <= set(record)
    assert record["environment"]["versions"]["torch"] and len(record["result"]["alpha"]) == SCALE.kernel_lags


def test_a_file_holding_another_cell_is_refused(tmp_path):
    cache = CellCache(tmp_path)
    first, second = small_cells()[:2]
    run_cells([first], paper.compute_cells, cache)
    cache.path(second).write_text(cache.path(first).read_text())
    with pytest.raises(NumericsError, match="different cell"):
        cache.load(second)


@pytest.mark.parametrize("where", ["progress", "compute"])
def test_interrupted_sweep_resumes_with_identical_numbers(tmp_path, where):
    cells = small_cells()
    reference = CellCache(tmp_path / "uninterrupted")
    run_cells(cells, paper.compute_cells, reference, group_size=1)
    expected = stored(reference, cells)

    cache, done = CellCache(tmp_path / "interrupted"), []

    def progress(k):
        done.append(k)
        if where == "progress" and sum(done) >= 3:
            raise KeyboardInterrupt  # Ctrl-C right after the third cell was written

    def compute(chunk, device):
        if where == "compute" and len(done) >= 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the fourth cell
        return paper.compute_cells(chunk, device)

    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, compute, cache, group_size=1, progress=progress)
    assert len(list((tmp_path / "interrupted" / "cells").glob("*.json"))) == 3
    assert not list((tmp_path / "interrupted" / "cells").glob(".*"))  # no half-written file

    counting = Counting()
    resumed = run_cells(cells, counting, cache, group_size=1)
    assert sorted(counting.seen) == sorted(cell_key(c) for c in cells[3:])  # only the missing cells
    assert [r["result"] for r in resumed] == expected  # bit for bit what an uninterrupted run gives

    again = Counting()
    run_cells(cells, again, cache)
    assert again.seen == []  # a finished sweep recomputes nothing


def test_chunks_hold_one_group_each(tmp_path):
    cells = small_cells()
    chunks = []

    def compute(chunk, device):
        chunks.append([c["sigma_w"] for c in chunk])
        return paper.compute_cells(chunk, device)

    run_cells(cells, compute, CellCache(tmp_path), group=lambda c: c["sigma_w"], group_size=2)
    assert sorted(chunks) == [[0.5], [0.5, 0.5], [0.9], [0.9, 0.9]]


def test_parallel_jobs_give_the_same_cells(tmp_path):
    cells = small_cells()
    serial = run_cells(cells, paper.compute_cells, CellCache(tmp_path / "serial"), group_size=2)
    parallel = run_cells(cells, paper.compute_cells, CellCache(tmp_path / "parallel"), jobs=2, group_size=2)
    for a, b in zip(serial, parallel):
        assert a["inputs"] == b["inputs"]
        # One torch thread per worker changes the order of floating-point sums: equal to rounding.
        assert a["result"]["alpha"] == pytest.approx(b["result"]["alpha"], rel=1e-12)
