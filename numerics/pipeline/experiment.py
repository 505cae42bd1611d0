"""What an experiment is: one figure of a paper, as a module the pipeline can run; and the registry
that lists them, which the pipeline is handed (it never imports the experiments).

An `Experiment` names its cells (pure functions of JSON inputs, cached and computed anywhere, see
`cells` and `runner`), turns their results into a numbers dataclass (`analyze`), states claims
with tolerances about those numbers (`claims`), draws them (`plot`) and says in words what they
show (`describe`). `plot` and `describe` read the numbers only, so a figure is redrawn and a report
rewritten from result.json alone. Sizes live in one frozen config dataclass per scale
(`scales['quick' | 'full' | 'tiny']`).

A cell's `kind` names the function that computes it; the module that owns a kind lists it in
`kinds` ({kind: Kind(compute(cells, device, context) -> results)}), and experiments that share
cells (F1 and F2, F4 and F5) simply build the same cell dicts.
"""
from __future__ import annotations

import dataclasses
import functools
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
class Context:
    """What a cell's computation may use beyond its inputs, never part of its key: a folder where its
    training run keeps a checkpoint file (None: none; on a cluster it must be reachable from the
    workers, else they run without one) and whether it reports its steps on stderr."""

    checkpoints: str | None = None
    progress: bool = False


@dataclasses.dataclass(frozen=True)
class Kind:
    """How cells of one kind are computed: compute(cells, device, context) -> one result per cell, for
    a chunk of cells that share group(cell) (a batched compute sees cells of one shape), at most
    `chunk` cells a call (None: the runner's default). work(cell): the cell's size in the kind's own
    units, to which its seconds are taken as proportional when a run is planned (`plan`; None: every
    cell of the kind costs the same)."""

    compute: Callable[[list, str, Context | None], list]
    group: Callable[[dict], Any] = by_width
    chunk: int | None = None
    work: Callable[[dict], float] | None = None


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One figure of a paper. The contract the pipeline relies on (tests/test_experiment_contract.py):

    - `scales` holds a frozen config dataclass for each of 'quick', 'full' and 'tiny';
    - `cells(config)` lists JSON-able dicts whose 'kind' is in some experiment's `kinds`. It may be
      empty: a figure drawn from theory alone computes in `analyze`, which must then be quick
      (it runs whenever the figure is drawn, and its result is not cached);
    - `analyze(config, lookup)` returns an instance of the dataclass `numbers`, whose fields are
      JSON-able: result.json stores them and `plot` and `describe` read them back from there;
    - `claims(config, numbers)` returns `Claim`s (possibly none), each with its tolerance and source;
    - `plot(config, numbers)` returns a matplotlib figure in `numerics.style`;
    - `describe(numbers)` returns the report's paragraph: what the reader should see, in numbers
      (a paragraph of more than 100 characters, not a label).
    Optional: `kinds` (cell kinds this module computes), `sources` (paragraphs on the data used),
    `table` (numbers → the text a command prints and writes to table.txt) and `files` ((config,
    lookup) → {file name: bytes} written beside the figure by a command, e.g. trajectories).
    """

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
    table: Callable[[Any], str] | None = None
    files: Callable[[Any, Lookup], dict] | None = None

    def config(self, scale: str):
        if scale not in self.scales:
            raise KeyError(f"{self.name} has no {scale!r} scale")
        return self.scales[scale]


@dataclasses.dataclass(frozen=True)
class Paper:
    """A paper of the report: its title, and the spec and σ's of its theory, recorded in each of its
    figures' result.json (None for papers without a linear-RNN spec); `model`, the equations its
    section opens with, as (sentence, LaTeX) pairs; `chosen`, what the toolkit chose or reconstructed
    where the paper is silent, one sentence each, so the report never presents a choice as the paper's."""

    title: str
    spec: Any = None
    sigmas: dict | None = None
    model: tuple = ()
    chosen: tuple = ()


class Registry:
    """Every experiment in report order, the papers they belong to and the cell kinds they compute.
    It is assembled where the paper packages are known (`numerics.experiments.registry`) and handed
    to the pipeline, which never imports the experiments. `source` ("module:name", where it is
    assembled) lets a fresh process find the same registry (its experiments hold lambdas, which do not
    pickle); None: it is drawn in this process only."""

    def __init__(self, experiments: list[Experiment], papers: dict[str, Paper], source: str | None = None):
        self.source = source
        self.experiments = {e.name: e for e in experiments}
        self.papers = dict(papers)
        self.kinds: dict[str, Kind] = {}
        for experiment in experiments:
            if experiment.paper not in self.papers:
                raise ValueError(f"{experiment.name} names an unknown paper {experiment.paper!r}")
            for name, kind in experiment.kinds.items():
                if self.kinds.setdefault(name, kind) != kind:
                    raise ValueError(f"cell kind {name!r} is defined twice")

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            from ..errors import NumericsError

            raise NumericsError(f"unknown figure {name!r} (choose {', '.join(self.experiments)})")
        return self.experiments[name]

    def compute(self) -> Callable[[list, str, Context | None], list]:
        """The function the runner hands its workers: a chunk of cells of one kind → their results
        (it carries the kinds alone, not the experiments)."""
        return functools.partial(compute_cells, dict(self.kinds))

    def group(self, cell: dict):
        """Cells that one compute call may take together (a batched ensemble takes cells of one shape)."""
        return self.kinds[cell["kind"]].group(cell)

    def chunk_size(self, default: int) -> Callable[[dict], int]:
        """cell → how many cells of its group one compute call takes (its kind's `chunk`, else `default`)."""
        return lambda cell: self.kinds[cell["kind"]].chunk or default


def compute_cells(kinds: dict, cells: list, device: str, context: Context | None = None) -> list:
    return kinds[cells[0]["kind"]].compute(cells, device, context)


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
