"""The cell cache: one checksummed JSON file per finished cell, safe against crashes, races and rot.

A cell is one configuration and one seed, described by a JSON-able dict of inputs that names its
`kind`. Its record lives in `<root>/cells/<key>.json`, where the key is the SHA-256 of the inputs'
canonical JSON. The device a cell ran on is recorded in the file but is not part of the key: a
cell computed on the CPU is reused on a GPU and vice versa (they agree to rounding).

Concurrency: no lock. Every file is written through a temporary file in the same folder and
renamed over the target (atomic on POSIX), and a cell's content is a function of its inputs, so
writes are idempotent: two runs storing the same cell at once leave one complete, valid file. The
worst case is a cell computed twice.

Faults: each record carries the SHA-256 of its own canonical JSON. A file that does not parse, has
no checksum (an older version wrote it), fails its checksum or holds other inputs is never used:
one line on stderr names it, it is moved to `<root>/cells/corrupt/`, and the cell is recomputed.
A full disk or an unwritable folder raises OSError; cells written before it stay.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable

from ..errors import NumericsError
from ..io import to_json, write_atomic

RECORD_FIELDS = ("key", "inputs", "result", "environment", "seconds")


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


def checksum(body: dict) -> str:
    """SHA-256 of a record (without its checksum) as it reads back from disk: canonical JSON."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


class CellCache:
    """The folder `<root>/cells` of finished cells. `warn` receives the one-line corruption notices."""

    def __init__(self, root: str | Path, warn: Callable[[str], None] | None = None):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NumericsError(f"output path {self.root} is a file, not a directory")
        self.folder = self.root / "cells"
        self.warn = warn or _warn

    def path(self, inputs: dict) -> Path:
        return self.folder / f"{cell_key(inputs)}.json"

    def load(self, inputs: dict) -> dict | None:
        """The verified record of a cell, or None when it is absent or was found corrupt (and moved aside)."""
        path = self.path(inputs)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        problem = self._problem(data, inputs)
        if problem is None:
            return json.loads(data)
        moved = self._move_aside(path)
        where = f"moved to {moved}" if moved else "already moved aside by another run"
        self.warn(f"rnnmemory: cell {path} is corrupt ({problem}); {where}, recomputing")
        return None

    def _problem(self, data: bytes, inputs: dict) -> str | None:
        """What is wrong with a cell file's bytes, or None when it is a sound record of `inputs`."""
        try:
            record = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "not valid JSON; truncated?" if data.strip() else "empty file"
        if not isinstance(record, dict) or not set(RECORD_FIELDS) <= set(record):
            return "not a cell record"
        if "checksum" not in record:
            return "no checksum; written by an older version"
        body = {k: v for k, v in record.items() if k != "checksum"}
        try:
            if checksum(body) != record["checksum"]:
                return "checksum mismatch"
        except ValueError:  # NaN or infinity written by hand: to_json never writes them
            return "checksum mismatch"
        try:
            same = canonical(record["inputs"]) == canonical(inputs) and record["key"] == cell_key(inputs)
        except (NumericsError, TypeError, AttributeError):
            same = False
        return None if same else "it holds a different cell"

    def _move_aside(self, path: Path) -> Path | None:
        """Move a bad file into corrupt/ under a fresh name; None when a concurrent run moved it first."""
        corrupt = self.folder / "corrupt"
        corrupt.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:  # claim a fresh name with O_EXCL, so two runs never move onto the same one
            target = corrupt / f"{path.name}.{n}"
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                break
            except FileExistsError:
                n += 1
        try:
            os.replace(path, target)
        except FileNotFoundError:
            target.unlink()
            return None
        return target

    def store(self, inputs: dict, result, environment: dict, seconds: float) -> Path:
        """Write a cell's record atomically (with its checksum) and return its path."""
        # The checksum covers the record as it reads back (NaN -> null, tuples -> lists, numpy -> float).
        body = json.loads(to_json({"key": cell_key(inputs), "inputs": inputs, "result": result,
                                   "environment": environment, "seconds": seconds}))
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(inputs)
        write_atomic(path, to_json({**body, "checksum": checksum(body)}))
        return path


def results(records: list[dict]) -> list:
    """The result part of each record."""
    return [r["result"] for r in records]
