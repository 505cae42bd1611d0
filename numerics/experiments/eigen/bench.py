"""E1: the initializer × cell × task benchmark of the eigen paper (Dou & Principe 2023, arXiv:2307.15679).

Every run is one cell: a classifier of kind 'eigen-train' (trained in packs, below; alone it is
`numerics.eigen.train.train_classifier`'s run up to rounding), or on the task multi30k one
`numerics.eigen.translate.train_translation` call, a cell of kind 'eigen-translate'
(`translation.py`); both are cached and computed on Dask like every other cell. For
each task, cell and initializer the figure shows the final test metric (mean ± sd over seeds), the
steps to the task's threshold and the mean learning curve. The same cells back `rnnmemory eigen initializers`.

Initializer names of the benchmark (`INITS`), as the paper names its baselines:
  xavier, kaiming, orthogonal, nprnn   that initializer on every gate block of the cell's weight_hh
                                       (np-RNN is a ReLU network: on `rnn` it runs as torch's rnn-relu)
  irnn      the IRNN (Le et al. 2015): a *ReLU* vanilla RNN with identity recurrence and zero bias,
            so the cell `rnn` runs as torch's rnn-relu; IRNN is defined for vanilla RNNs only, so it is
            skipped on lstm and gru (listed in the numbers as skipped, never silently dropped). Its
            input weights are xavier like every other initializer's, not Le et al.'s N(0, 0.001²):
            under Adam those tiny inputs let the bias updates (summed over every step by the identity)
            switch all ReLUs off within a few steps, and the network stayed at chance on digits and
            tomita:3 at every rate tried (3e-3 to 1e-4); with xavier inputs it learns.
  eigen     the toolkit's eigen initializer: `spectral` drawn from the cell's committed law,
            `numerics/eigen/spectra/{rnn,lstm,gru}.npy`, each fitted on that cell trained on tasks and
            a data seed the benchmark never uses (`numerics.eigen.fit_initializer.DEFAULT_ARGS`; the
            paper's own construction could not be read, so this is a reconstruction of its
            procedure). When a file is absent the eigen runs are left out and the numbers say so; the
            claims about the eigen initializer then fail, since nothing was measured. Config.spectrum
            (`--spectrum FILE`) puts one file on every cell.
  eigen-moduli, eigen-phases   the ablation: the law's moduli with a Xavier block's phases, or its
            phases with a Xavier block's moduli (`spectral_law.ablated_law`; full scale).
A cell records the spectrum file's SHA-256, so a refitted file makes new cells instead of reusing old ones.

MNIST: the tasks mnist and pmnist (pixel-by-pixel and permuted, `numerics.eigen.train`) read the IDX
files of `Config.data_dir` (`--data-dir` of the command); a cell carries the resolved directory and
`mnist_fingerprint` of its files, so cells of different files never mix, and a run refuses files
that changed since its cells were listed. The full scale adds mnist and pmnist only when the
environment variable RNNMEMORY_MNIST_DIR names such a directory; quick and tiny never read MNIST.

Packed: the runs of one task, trained cell and setting (every initializer and seed) train in packs
of up to `bench_runs.PACK` through `numerics.eigen.packed.train_packed` (a run axis on every
parameter; torch's gate equations; each run scored in its own nn module). A run's numbers do not
depend on which runs share its pack, and equal `train_classifier`'s alone up to rounding. LSTM runs
train alone (`bench_runs.PACKED_CELLS` says why); a cell records its trainer.

Multi30k (`translation.py`: `Config.multi30k_dir`, fingerprinted like MNIST; the full scale adds it when
RNNMEMORY_MULTI30K_DIR is set): no vanilla `rnn` runs (skipped with that reason); the metric is test
BLEU (0–100), the curves are the training loss and the steps to threshold are n/a.

The claims are the paper's, tested as measured, seed by seed: every initializer's run of seed s uses
the same data, data order and draw stream, so eigen − other is a paired difference per seed; the
table gives its 95% Student-t interval over the seeds, and the claims its paired t-test, Holm-
corrected over the comparisons a claim ranges over (against Xavier: the nine task × cell pairs at
the quick scale, which uncorrected would flag some pair by chance alone in about one run of five
even if eigen were Xavier; against the others: every other initializer on every pair, not the best
by its mean, since picking the best first biases the test). Every run finishes; the eigen
initializer is not shown worse than Xavier, nor than any other initializer (so it is the best or
tied, as the paper says), on any task and cell; and — a different, stronger claim — it is shown
better than Xavier on most of them. When the measurement says otherwise the claim fails: that is a result.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ...eigen.names import MNIST_TASKS
from ...errors import NumericsError
from ...pipeline.experiment import Claim, Experiment, Lookup, fmt
from ...stats import holm
from . import translation
from .bench_report import describe, plot, table
from .bench_runs import EIGEN, PACKED_CELLS, TRAIN, TRANSLATE, default_spectrum, spectrum_digest, spectrum_path  # noqa: F401

CELL_VERSION = 2  # part of every cell's key: bump it when a cell's meaning changes, to recompute
INITS = ("xavier", "kaiming", "orthogonal", "irnn", "nprnn", "eigen", "eigen-moduli", "eigen-phases")
CELLS = ("rnn", "lstm", "gru")
GATED = ("lstm", "gru")
MNIST_ENV = "RNNMEMORY_MNIST_DIR"  # the full scale's MNIST directory, when set


@dataclasses.dataclass(frozen=True)
class Config:
    tasks: tuple = ("tomita:3", "tomita:5", "digits")
    cells: tuple = CELLS
    inits: tuple = ("xavier", "orthogonal", "irnn", "nprnn", "eigen")  # full: every one, the ablation too
    seeds: int = 2
    hidden: int = 32
    steps: tuple = (("digits", 600),)  # (task kind, training steps); others: train.DEFAULTS, translate.DEFAULTS
    spectrum: str | None = None  # eigen's file for every cell (None: each cell's committed law, `default_spectrum`)
    data_dir: str | None = None  # the MNIST IDX directory; needed when a task is mnist or pmnist
    train_subset: int | None = None  # MNIST runs train on this many images (seeded by data_seed 0); None: all
    multi30k_dir: str | None = None  # the Multi30k text files; needed when a task is multi30k
    translation_hidden: int = 256  # multi30k's encoder–decoder (`hidden` is the classifiers')
    translation_embed: int = 128
    translation_subset: int | None = None  # multi30k trains on this many pairs (seeded by data seed 0); None: all


def full_config(data_dir: str | None = None, multi30k_dir: str | None = None) -> Config:
    """The full benchmark: every Tomita grammar and digits, mnist and pmnist when `data_dir` is given,
    multi30k when `multi30k_dir` is."""
    config = Config(tasks=tuple(f"tomita:{g}" for g in range(1, 8)) + ("digits",), inits=INITS, seeds=5, steps=())
    if data_dir:
        config = dataclasses.replace(config, tasks=config.tasks + MNIST_TASKS,
                                     data_dir=str(Path(data_dir).expanduser().resolve()))
    if multi30k_dir:
        config = dataclasses.replace(config, tasks=config.tasks + (translation.TASK,),
                                     multi30k_dir=str(Path(multi30k_dir).expanduser().resolve()))
    return config


# quick: 312 runs, about 4 minutes of compute (2 on 2 workers; digits first, so its long chunks start first)
SCALES = {"quick": Config(tasks=("digits", "tomita:3", "tomita:5"), seeds=8, steps=(("tomita", 400), ("digits", 300))),
          "full": full_config(os.environ.get(MNIST_ENV), os.environ.get(translation.ENV)),
          "tiny": Config(tasks=("tomita:3", "digits"), cells=("rnn", "gru"), inits=("xavier", "irnn", "eigen"),
                         seeds=2, hidden=8, steps=(("tomita", 20), ("digits", 10)))}


# ---------------------------------------------------------------- the runs


def skip_reason(cell: str, init: str, config: Config, task: str | None = None) -> str | None:
    """Why a (cell, initializer) pair has no runs (on `task`; None: on any task), or None when it runs."""
    if init == "irnn" and cell in GATED:
        return "IRNN is defined for vanilla (ReLU) RNNs only"
    if init in EIGEN and spectrum_digest(spectrum_for(config, cell, init)) is None:
        return f"no spectrum file at {spectrum_for(config, cell, init)} (rnnmemory eigen fit writes one)"
    return translation.skip_reason(cell) if task == translation.TASK else None


def spectrum_for(config: Config, cell: str, init: str) -> str:
    """The spectrum file of an eigen initializer (eigen, eigen-moduli, eigen-phases) on `cell`: the
    config's file for eigen when it names one, else the cell's committed law."""
    return config.spectrum if init == "eigen" and config.spectrum is not None else default_spectrum(cell, init)


def _steps(config: Config, task: str) -> int | None:
    return dict(config.steps).get(task.partition(":")[0])


def run_cell(config: Config, task: str, cell: str, init: str, seed: int) -> dict:
    """The cell of one run: what the benchmark calls it (task, cell, init, seed) and what trains (`run`)."""
    if task == translation.TASK:
        inputs = translation.run_cell(config, cell, init, seed, _steps(config, task))
    else:
        run = {"task": task, "cell": cell, "init": init, "seed": seed, "hidden": config.hidden,
               "steps": _steps(config, task)}
        if init == "irnn":
            run.update(cell="rnn-relu", init="identity:input_init=xavier")
        if init == "nprnn" and cell == "rnn":  # np-RNN is a ReLU network (Talathi & Vartak 2016)
            run.update(cell="rnn-relu")
        inputs = {"kind": "eigen-train", "task": task, "cell": cell, "init": init, "seed": seed, "run": run}
        run["trainer"] = "packed" if run["cell"] in PACKED_CELLS else "alone"  # bench_runs.PACKED_CELLS
        if task in MNIST_TASKS:
            inputs["data"] = mnist_source(config)
            run.update(data_dir=inputs["data"]["data_dir"], train_subset=config.train_subset)
    inputs["version"] = CELL_VERSION
    if init in EIGEN:
        file = spectrum_for(config, cell, init)
        inputs["spectrum"] = {"file": file, "sha256": spectrum_digest(file)}
    return inputs


def mnist_source(config: Config) -> dict:
    """{"data_dir", "fingerprint"} of the config's MNIST directory (`mnist_fingerprint`)."""
    from ...data.digits import mnist_fingerprint

    if config.data_dir is None:
        raise NumericsError("the tasks mnist and pmnist need the directory of the MNIST IDX files (--data-dir DIR)")
    return mnist_fingerprint(config.data_dir)


def cells(config: Config) -> list:
    runs = [run_cell(config, t, c, i, s) for t in config.tasks for c in config.cells for i in config.inits
            if skip_reason(c, i, config, t) is None for s in range(config.seeds)]
    return runs


def check_config(config: Config) -> None:
    """Refuse unknown tasks, cells and initializers, a malformed spectrum file and missing or malformed
    MNIST or Multi30k files, before any run."""
    from torch import nn

    from ...eigen.tasks import load_task
    from ...models.initializers import initialize

    for name, values, known in (("cell", config.cells, CELLS), ("initializer", config.inits, INITS)):
        for value in values:
            if value not in known:
                raise NumericsError(f"unknown {name} {value!r} (choose {', '.join(known)})")
    if not (config.tasks and config.cells and config.inits):
        raise NumericsError("the benchmark needs at least one task, one cell and one initializer")
    if isinstance(config.seeds, bool) or not isinstance(config.seeds, int) or config.seeds < 1:
        raise NumericsError(f"seeds must be an integer ≥ 1, got {config.seeds!r}")
    for task in config.tasks:
        if task not in MNIST_TASKS and task != translation.TASK:
            load_task(task)
    if translation.TASK in config.tasks:
        translation.check(config)
    if any(task in MNIST_TASKS for task in config.tasks):
        from ...data.digits import load_mnist

        mnist_source(config)
        train = load_mnist(config.data_dir)["train"][1]  # a malformed file fails here, in one line
        subset = config.train_subset
        if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int)
                                   or not 1 <= subset <= len(train)):
            raise NumericsError(f"train_subset must be an integer from 1 to the {len(train)} MNIST training "
                                f"images, got {subset!r}")
    if "eigen" in config.inits and config.spectrum is not None:
        path = spectrum_path(config.spectrum)
        if not path.is_file():
            raise NumericsError(f"no spectrum file at {config.spectrum}")
        initialize(nn.RNN(1, 4), "spectral", seed=0, file=str(path))  # a malformed file fails here, in one line


def command_config(tasks, cells, inits, seeds: int, *, steps=None, hidden=None, embed=None, spectrum=None,
                   data_dir=None, multi30k_dir=None, train_subset=None) -> Config:
    """The checked config of `rnnmemory eigen initializers` from its options (None: the defaults),
    paths resolved; bad input fails here, in one line, before any run or file."""
    from ...eigen.names import DEFAULTS

    sizes = {} if hidden is None else {"hidden": hidden, "translation_hidden": hidden}
    sizes.update({} if embed is None else {"translation_embed": embed})
    sizes.update({} if train_subset is None else {"train_subset": train_subset, "translation_subset": train_subset})
    config = Config(tasks=tuple(tasks), cells=tuple(cells), inits=tuple(inits), seeds=seeds,
                    steps=() if steps is None else tuple((kind, steps) for kind in (*DEFAULTS, translation.TASK)),
                    spectrum=None if spectrum is None else str(Path(spectrum).expanduser().resolve()),
                    data_dir=None if data_dir is None else str(Path(data_dir).expanduser().resolve()),
                    multi30k_dir=None if multi30k_dir is None else str(Path(multi30k_dir).expanduser().resolve()),
                    **sizes)
    check_config(config)
    missing = sorted({spectrum_for(config, c, i) for c in config.cells for i in config.inits
                      if i in EIGEN and spectrum_digest(spectrum_for(config, c, i)) is None})
    if missing:
        raise NumericsError(f"--init eigen needs a spectrum file; none at {missing[0]} (write one with "
                            "rnnmemory eigen fit, or pass --spectrum FILE)")
    return config


# ---------------------------------------------------------------- the numbers


@dataclasses.dataclass
class Bench:
    setting: str
    tasks: list
    cells: list
    inits: list
    seeds: int
    metric: dict  # task → "accuracy", "r2" or "bleu" (multi30k, 0–100)
    threshold: dict  # task → the metric's threshold for "steps to threshold" (None: n/a, multi30k)
    rows: dict  # task → cell → init → final mean/sd, steps to threshold, mean curve, diverged seeds
    skipped: list  # {"cell", "init", "why"} pairs with no runs; with "task" when on that task only
    diverged: list  # {"task", "cell", "init", "seed", "step", "loss"}
    paired: dict  # task → cell → init → `paired` comparison of eigen against it (seed by seed); {} without eigen
    best: dict  # task → cell → the initializer other than eigen with the highest mean final metric
    curve: dict = dataclasses.field(default_factory=dict)  # task → what its curves show: "test …" or "train loss"


CONFIDENCE = 0.95  # of the paired interval of eigen − other


def paired(eigen: list, other: list) -> dict | None:
    """eigen − other over the seeds both finished (the same seed: the same data order and draw stream),
    with its two-sided CONFIDENCE interval from Student's t and the paired t-test's p-value; verdict
    'better' or 'worse' when the interval excludes 0, else 'not distinguishable'. None with < 2 pairs."""
    from scipy import stats

    pairs = [(a, b) for a, b in zip(eigen, other) if a is not None and b is not None]
    if len(pairs) < 2:
        return None
    d = np.array([a - b for a, b in pairs])
    mean, sem = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(d) - 1) * sem)
    p = float(stats.ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).pvalue) if sem > 0 else (
        1.0 if mean == 0 else 0.0)
    low, high = mean - half, mean + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "not distinguishable"
    return {"pairs": len(d), "mean": mean, "low": low, "high": high, "p": p, "verdict": verdict,
            "differences": d.tolist()}


def _row(results: list, seeds: int) -> dict:
    done = [r for r in results if r.get("status") != "diverged"]
    finals = np.array([r["final_metric"] for r in done], dtype=float)
    by_seed = [None if r.get("status") == "diverged" else float(r["final_metric"]) for r in results]
    reached = [r["steps_to_threshold"] for r in done if r["steps_to_threshold"] is not None]
    row = {"runs": len(results), "finished": len(done),
           "final_mean": float(finals.mean()) if len(finals) else None,
           "final_sd": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
           "finals": finals.tolist(), "by_seed": by_seed, "reached": len(reached),
           "steps_mean": float(np.mean(reached)) if reached else None, "curve_step": [], "curve_mean": [],
           "curve_sd": []}
    if done:
        key = "test_metric" if "test_metric" in done[0]["curve"] else "train_loss"  # translation: no test curve
        curves = np.array([r["curve"][key] for r in done], dtype=float)
        row.update(curve_step=done[0]["curve"]["step"], curve_mean=curves.mean(0).tolist(),
                   curve_sd=curves.std(0).tolist())
    return row


def analyze(config: Config, lookup: Lookup) -> Bench:
    rows, skipped, diverged, metric, threshold, curve = {}, [], [], {}, {}, {}
    for cell in config.cells:
        for init in config.inits:
            why = skip_reason(cell, init, config)
            if why is not None:
                skipped.append({"cell": cell, "init": init, "why": why})
    for task in config.tasks:
        rows[task] = {}
        for cell in config.cells:
            rows[task][cell] = {}
            for init in config.inits:
                why = skip_reason(cell, init, config, task)
                if why is not None:
                    if skip_reason(cell, init, config) is None:  # skipped on this task only
                        skipped.append({"task": task, "cell": cell, "init": init, "why": why})
                    continue
                results = [lookup(run_cell(config, task, cell, init, s)) for s in range(config.seeds)]
                for seed, r in enumerate(results):
                    if r.get("status") == "diverged":
                        diverged.append({"task": task, "cell": cell, "init": init, "seed": seed, **r["diverged"]})
                    else:
                        metric[task], threshold[task] = r["metric"], r["threshold"]
                        curve[task] = f"test {r['metric']}" if "test_metric" in r["curve"] else "train loss"
                rows[task][cell][init] = _row(results, config.seeds)
    compared, best = {}, {}
    for task in config.tasks:
        best[task] = {}
        for cell in config.cells:
            here = {i: r for i, r in rows[task][cell].items() if r["final_mean"] is not None}
            others = {i: r for i, r in here.items() if i != "eigen"}
            best[task][cell] = max(others, key=lambda i: others[i]["final_mean"]) if others else None
            if "eigen" in here:
                compared.setdefault(task, {})[cell] = {
                    i: paired(here["eigen"]["by_seed"], r["by_seed"]) for i, r in others.items()}
    setting = (f"hidden {config.hidden}, Adam, {config.seeds} seeds; training steps "
               + ", ".join(f"{k} {v}" for k, v in (config.steps or ())) + (" (others: the task defaults)"
                                                                             if config.steps else "the task defaults"))
    if config.train_subset is not None and any(t in MNIST_TASKS for t in config.tasks):
        setting += f"; MNIST trained on {config.train_subset} of its training images"
    if translation.TASK in config.tasks:
        own = translation.setting(config, _steps(config, translation.TASK))
        setting = f"{own}, Adam, {config.seeds} seeds" if set(config.tasks) == {translation.TASK} else f"{setting}; {own}"
    return Bench(setting, list(config.tasks), list(config.cells), list(config.inits), config.seeds, metric, threshold,
                 rows, skipped, diverged, compared, best, curve)


def _verdicts(n: Bench, against) -> list[tuple[str, str, str, dict | None]]:
    """(task, cell, the initializer compared, its paired comparison) for every task and cell with eigen
    runs; against(task, cell) names the initializer."""
    return [(t, c, against(t, c), per.get(against(t, c))) for t, cells in n.paired.items() for c, per in cells.items()
            if against(t, c) is not None]


def claims(config: Config, n: Bench) -> list:
    none = "no eigen runs (" + next((s["why"] for s in n.skipped if s["init"] == "eigen"),
                                    "eigen is not among the initializers") + ")"
    out = [Claim("every_run_finished", "every training run finished with a finite loss (diverged runs listed: "
                 "task, cell, initializer, seed, step)", [f"{d['task']}/{d['cell']}/{d['init']}/seed {d['seed']} "
                                                         f"at step {d['step']}" for d in n.diverged] or 0,
                 "0 diverged runs", not n.diverged, "E1/result.json: numbers.diverged")]
    test = (f"paired t-test of eigen − other over {n.seeds} seeds, Holm-corrected over the comparisons the claim "
            f"ranges over (a family of several at {1 - CONFIDENCE:g} each would flag some by chance alone)")
    if not n.paired:
        for cid in ("eigen_not_worse_than_xavier", "eigen_not_worse_than_best", "eigen_better_than_xavier"):
            out.append(Claim(cid, "the eigen initializer against its baselines", none, "eigen runs", False,
                             "E1/result.json: numbers.paired"))
        return out
    everyone = [(t, c, i, v) for t, cells in n.paired.items() for c, per in cells.items() for i, v in per.items()]
    for cid, found, text in (
            ("eigen_not_worse_than_xavier", _verdicts(n, lambda t, c: "xavier"), "Xavier on any task and cell"),
            # every other initializer, not the best by its mean: picking the best first would bias the test
            ("eigen_not_worse_than_best", everyone, "any other initializer on any task and cell (so: the best or "
             "tied with it, as the paper says)")):
        adjusted = _holm(found)
        worse = [f"{t}/{c} vs {i}: {fmt(v['mean'], 3)} [{fmt(v['low'], 3)}, {fmt(v['high'], 3)}], corrected p "
                 f"{fmt(adjusted[t, c, i], 2)}" for t, c, i, v in found if _shown(v, adjusted.get((t, c, i)), -1)]
        missing = [f"{t}/{c} vs {i}" for t, c, i, v in found if v is None]
        out.append(Claim(cid, f"the eigen initializer is not shown worse than {text}: the {test}, {len(adjusted)} "
                         f"comparisons (cases where it is, with the uncorrected 95% interval, and comparisons without "
                         f"two pairs: {len(missing)}) — 'not shown worse' is not 'as good'", worse or 0, "0 cases",
                         not worse and not missing, "E1/result.json: numbers.paired"))
    found = _verdicts(n, lambda t, c: "xavier")
    adjusted = _holm(found)
    better = sum(_shown(v, adjusted.get((t, c, i)), +1) for t, c, i, v in found)
    out.append(Claim("eigen_better_than_xavier", f"the eigen initializer is shown better than Xavier (the {test}) on "
                     f"most task and cell pairs: pairs where it is, of {len(found)}", better,
                     f"> {len(found) / 2:g}", better > len(found) / 2, "E1/result.json: numbers.paired"))
    return out


def _holm(found: list) -> dict:
    """(task, cell, other) → the paired t-test's p-value, Holm-adjusted over the comparisons that have one."""
    return holm({(t, c, i): v["p"] for t, c, i, v in found if v is not None})


def _shown(v: dict | None, adjusted: float | None, sign: int) -> bool:
    """eigen − other shown below 0 (sign −1) or above (+1) at the family's level."""
    return v is not None and adjusted is not None and adjusted < 1 - CONFIDENCE and sign * v["mean"] > 0


E1 = Experiment("E1", "Initializers × cells × tasks: the eigen initializer against its baselines", "eigen", SCALES,
                Bench, cells, analyze, claims, plot, describe, kinds={"eigen-train": TRAIN, translation.KIND: TRANSLATE},
                table=table)
