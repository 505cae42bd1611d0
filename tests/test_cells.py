"""The cell cache: pinned keys, checksummed records, corrupt files moved aside and recomputed,
concurrent writers, a full disk, and an interrupted sweep that resumes."""
import errno
import json
import os
import threading

import pytest
import sweep_compute

from numerics.errors import NumericsError
from numerics.pipeline.cells import CellCache, canonical, cell_key, checksum, results
from numerics.pipeline.runner import run_cells


class Counting:
    """sweep_compute.compute, recording the seeds it was asked for (jobs = 1 runs in-process)."""

    def __init__(self):
        self.seen = []

    def __call__(self, cells, device, context=None):
        self.seen += [c["seed"] for c in cells]
        return sweep_compute.compute(cells, device)


def files(folder):
    """Every entry of a folder, hidden ones (temporary files) included."""
    return sorted(p.name for p in folder.iterdir())


def test_keys_are_pinned():
    a = {"kind": "ntk", "width": 16, "sigma_w": 0.5, "nested": {"b": 1, "a": [1, 2]}}
    b = {"nested": {"a": [1, 2], "b": 1}, "sigma_w": 0.5, "width": 16, "kind": "ntk"}
    # Changing the canonical form would orphan every cached cell, so it must be deliberate.
    assert canonical(a) == canonical(b) == '{"kind":"ntk","nested":{"a":[1,2],"b":1},"sigma_w":0.5,"width":16}'
    assert cell_key(a) == cell_key(b) == "754a6c0b2baf578b64807efb6ec97709fed8ca4604df7f294e66bb2f28197186"
    assert CellCache("out").path(a).name == f"{cell_key(a)}.json"
    with pytest.raises(NumericsError):
        cell_key({"width": 16})  # no kind
    with pytest.raises(NumericsError):
        cell_key({"kind": "ntk", "sigma_w": float("inf")})


def test_records_carry_a_checksum_of_what_reads_back(tmp_path):
    cache = CellCache(tmp_path)
    cell = {"kind": "test", "seed": 0}
    path = cache.store(cell, {"value": float("nan"), "pair": (1, 2.5)}, {"device": "cpu"}, 0.25)
    assert files(tmp_path / "cells") == [f"{cell_key(cell)}.json"]  # no temporary file left behind
    record = json.loads(path.read_text())
    assert set(record) == {"key", "inputs", "result", "environment", "seconds", "checksum"}
    assert record["result"] == {"value": None, "pair": [1, 2.5]}  # NaN is written as null
    assert record["checksum"] == checksum({k: v for k, v in record.items() if k != "checksum"})
    assert cache.load(cell) == record
    assert cache.load({"kind": "test", "seed": 1}) is None  # absent
    assert results([record]) == [record["result"]]


def flip_a_digit(text):
    """Change one digit of the first number in the result: still valid JSON, one bit different."""
    start = text.index('"result"')
    i = next(i for i in range(start, len(text)) if text[i] in "123456789")
    return text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1:]


def drop_checksum(text):
    record = json.loads(text)
    del record["checksum"]  # what the previous version wrote
    return json.dumps(record)


CORRUPTIONS = {
    "truncated": (lambda text: text[:len(text) // 2], "not valid JSON"),
    "bit flip": (flip_a_digit, "checksum mismatch"),
    "no checksum": (drop_checksum, "no checksum"),
    "invalid JSON": (lambda text: "{\"key\": oops" + text, "not valid JSON"),
    "empty": (lambda text: "", "empty file"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_cell_is_moved_aside_and_recomputed(tmp_path, corruption):
    damage, problem = CORRUPTIONS[corruption]
    cells = sweep_compute.cells(4)
    warnings = []
    cache = CellCache(tmp_path, warn=warnings.append)
    expected = results(run_cells(cells, sweep_compute.compute, cache, group_size=1))
    target = cache.path(cells[2])
    bad = damage(target.read_text())
    target.write_text(bad)

    counting = Counting()
    again = run_cells(cells, counting, cache, group_size=1)
    assert counting.seen == [2]  # only the damaged cell is recomputed...
    assert results(again) == expected  # ...to the same numbers
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(target) in warnings[0] and problem in warnings[0] and "recomputing" in warnings[0]
    corrupt = tmp_path / "cells" / "corrupt"
    assert files(corrupt) == [f"{target.name}.1"] and (corrupt / f"{target.name}.1").read_text() == bad
    assert cache.load(cells[2]) == again[2] and len(warnings) == 1  # the new file is sound

    target.write_text(bad)  # damaged again: kept beside the first, not over it
    assert cache.load(cells[2]) is None
    assert files(corrupt) == [f"{target.name}.1", f"{target.name}.2"]


def test_a_corrupt_cell_moved_by_a_concurrent_run_is_tolerated(tmp_path, monkeypatch):
    cell = {"kind": "test", "seed": 0}
    warnings = []
    cache = CellCache(tmp_path, warn=warnings.append)
    cache.path(cell).parent.mkdir(parents=True)
    cache.path(cell).write_text("{")

    def replace(src, dst):  # another run moved the file aside between our read and our move
        os.unlink(src)
        raise FileNotFoundError(src)

    monkeypatch.setattr(os, "replace", replace)
    assert cache.load(cell) is None
    assert len(warnings) == 1 and "already moved aside" in warnings[0]
    assert files(tmp_path / "cells" / "corrupt") == []  # the name it had claimed is released


def test_a_file_holding_another_cell_is_not_used(tmp_path, capsys):
    cells = sweep_compute.cells(2)
    cache = CellCache(tmp_path)  # default warn: one line on stderr
    first, second = run_cells(cells, sweep_compute.compute, cache)
    cache.path(cells[1]).write_text(cache.path(cells[0]).read_text())  # valid checksum, wrong cell
    assert cache.load(cells[1]) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a different cell" in err and cell_key(cells[1]) in err
    assert results(run_cells(cells, sweep_compute.compute, cache)) == results([first, second])


def test_concurrent_writers_leave_one_valid_file(tmp_path):
    """Writers storing one cell while readers load it: every load sees a whole, valid record."""
    cell = {"kind": "test", "seed": 7}
    result = sweep_compute.eigenvalues({"seed": 7, "size": 40})
    warnings, seen, errors = [], [], []
    cache = CellCache(tmp_path, warn=warnings.append)
    start = threading.Barrier(6)

    def write():
        start.wait()
        for _ in range(40):
            cache.store(cell, result, {"device": "cpu"}, 0.1)

    def read():
        start.wait()
        for _ in range(200):
            try:
                record = cache.load(cell)
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)
                return
            if record is not None:
                seen.append(record["result"] == result)

    threads = [threading.Thread(target=write) for _ in range(4)] + [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not warnings and all(seen)
    assert files(tmp_path / "cells") == [f"{cell_key(cell)}.json"]  # one file, no temporary files
    assert cache.load(cell)["result"] == result


def test_a_full_disk_raises_and_keeps_earlier_cells(tmp_path, monkeypatch):
    cells = sweep_compute.cells(5)
    cache = CellCache(tmp_path)
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError) as raised:
        run_cells(cells, sweep_compute.compute, cache, group_size=1)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "replace", real_replace)
    # The two cells written before the disk filled are whole; the third left no temporary file.
    assert files(tmp_path / "cells") == sorted(f"{cell_key(c)}.json" for c in cells[:2])
    assert all(cache.load(c) is not None for c in cells[:2])

    counting = Counting()
    resumed = run_cells(cells, counting, cache, group_size=1)
    assert counting.seen == [2, 3, 4]
    assert results(resumed) == results(run_cells(cells, sweep_compute.compute, CellCache(tmp_path / "ref")))


def test_an_interrupted_sweep_resumes_with_identical_numbers(tmp_path):
    cells = sweep_compute.cells(6)
    expected = results(run_cells(cells, sweep_compute.compute, CellCache(tmp_path / "uninterrupted"), group_size=1))
    cache, done = CellCache(tmp_path / "interrupted"), []

    def progress(k):
        done.append(k)
        if sum(done) >= 3:
            raise KeyboardInterrupt  # Ctrl-C right after the third cell was written

    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, sweep_compute.compute, cache, group_size=1, progress=progress)
    assert files(tmp_path / "interrupted" / "cells") == sorted(f"{cell_key(c)}.json" for c in cells[:3])

    counting, done = Counting(), []
    resumed = run_cells(cells + cells[:2], counting, cache, group_size=1, progress=done.append)
    assert counting.seen == [3, 4, 5]  # only the missing cells, each once
    assert done == [3, 1, 1, 1]  # cached cells are reported first
    assert results(resumed) == expected + expected[:2]  # bit for bit what an uninterrupted run gives

    again = Counting()
    run_cells(cells, again, cache)
    assert again.seen == []  # a finished sweep recomputes nothing


def test_fresh_and_cached_records_are_alike(tmp_path):
    """A fresh cell reads back from disk, so NaN is null whether it was just computed or cached."""
    def compute(cells, device, context=None):
        return [[float("nan"), 1.0] for _ in cells]

    cells = sweep_compute.cells(2)
    cache = CellCache(tmp_path)
    fresh = run_cells(cells, compute, cache)
    assert results(fresh) == [[None, 1.0]] * 2
    assert run_cells(cells, compute, cache) == fresh
