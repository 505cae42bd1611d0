"""What an experiment is: one figure of a paper, as a module the pipeline can run.

An `Experiment` names its cells (pure functions of JSON inputs, cached and computed anywhere, see
`cells` and `runner`), turns their results into a numbers dataclass (`analyze`), states claims
with tolerances about those numbers (`claims`), draws them (`plot`) and says in words what they
show (`describe`). `plot` and `describe` read the numbers only, so a figure is redrawn and a report
rewritten from result.json alone. Sizes live in one frozen config dataclass per scale
(`scales['quick' | 'full' | 'tiny']`).

A cell's `kind` names the function that computes it; the module that owns a kind lists it in
`kinds` ({kind: compute(cells, device) -> results}), and experiments that share cells (F1 and F2,
F4 and F5) simply build the same cell dicts.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable


Lookup = Callable[[dict], dict]  # a cell's inputs → its stored result


@dataclasses.dataclass(frozen=True)
class Claim:
    """A statement about the numbers, what was measured, the tolerance, the verdict, where to look."""

    id: str
    claim: str
    measured: Any
    tolerance: str
    passed: bool
    source: str

    def __post_init__(self):
        object.__setattr__(self, "passed", bool(self.passed))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def by_width(cell: dict) -> tuple:
    return (cell["kind"], cell.get("width"))


@dataclasses.dataclass(frozen=True)
class Kind:
    """How cells of one kind are computed: compute(cells, device) -> one result per cell, for a chunk
    of cells that share group(cell) (a batched compute sees cells of one shape)."""

    compute: Callable[[list, str], list]
    group: Callable[[dict], Any] = by_width


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One figure: its cells, statistics, claims, plot and description (see the module docstring)."""

    name: str
    title: str
    paper: str
    scales: dict
    numbers: type
    cells: Callable[[Any], list]
    analyze: Callable[[Any, Lookup], Any]
    claims: Callable[[Any, Any], list]
    plot: Callable[[Any, Any], Any]
    describe: Callable[[Any], str]
    kinds: dict = dataclasses.field(default_factory=dict)
    sources: Callable[[Any], list] | None = None  # numbers → paragraphs on the data and where it comes from

    def config(self, scale: str):
        if scale not in self.scales:
            raise KeyError(f"{self.name} has no {scale!r} scale")
        return self.scales[scale]


def config_dict(config) -> dict:
    """A config dataclass as JSON (tuples as lists, nested dataclasses as dicts)."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "to_dict"):
            return value.to_dict()
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return plain(config)


def fmt(value, digits: int = 3) -> str:
    """A number as text; lists and dicts element-wise; missing values as 'n/a'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    return str(value)


def pct(value) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "0.0%" if abs(value) < 5e-4 else f"{100 * value:+.1f}%"
