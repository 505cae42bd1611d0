"""E1: the initializer × cell × task benchmark of the eigen paper (Dou & Principe 2023, arXiv:2307.15679).

Every run is one `numerics.eigen.train.train_classifier` call, a cell of kind 'eigen-train'
(cached, computed on Dask like every other cell); for each task, cell and initializer the figure
shows the final test metric (mean ± sd over seeds), the steps to the task's threshold and the mean
learning curve. The same cells back `rnnmemory eigen bench`.

Initializer names of the benchmark (`INITS`), as the paper names its baselines:
  xavier, kaiming, orthogonal, nprnn   that initializer on every gate block of the cell's weight_hh
                                       (np-RNN with the cell's own nonlinearity: tanh for `rnn`)
  irnn      the IRNN (Le et al. 2015): a *ReLU* vanilla RNN with identity recurrence and zero bias,
            so the cell `rnn` runs as torch's rnn-relu; IRNN is defined for vanilla RNNs only, so it is
            skipped on lstm and gru (listed in the numbers as skipped, never silently dropped)
  eigen     the toolkit's eigen initializer: `spectral` drawn from the committed spectrum file
            `numerics/eigen/default_spectrum.npy` (written by `rnnmemory eigen fit`; the paper's own
            construction could not be read, so this is a reconstruction of its procedure). When that
            file is absent the eigen runs are left out and the numbers say so; the claims about the
            eigen initializer then fail, since nothing was measured. `eigen:FILE` uses another file.
A cell records the spectrum file's SHA-256, so a refitted file makes new cells instead of reusing old ones.

MNIST: the tasks mnist and pmnist (pixel-by-pixel and permuted, `numerics.eigen.train`) read the IDX
files of `Config.data_dir` (`--data-dir` of the command); a cell carries the resolved directory and
`mnist_fingerprint` of its files, so cells of different files never mix, and a run refuses files
that changed since its cells were listed. The full scale adds mnist and pmnist only when the
environment variable RNNMEMORY_MNIST_DIR names such a directory; quick and tiny never read MNIST.

The claims are the paper's, tested as measured: every run finishes; the eigen initializer is not
worse than Xavier (within two pooled seed sd) on every task and cell; and it is the best or tied
with the best there. When the measurement says otherwise the claim fails: that is a result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from ...errors import NumericsError, TrainingDiverged
from ...pipeline import style
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt

CELL_VERSION = 1  # part of every cell's key: bump it when a cell's meaning changes, to recompute
INITS = ("xavier", "kaiming", "orthogonal", "irnn", "nprnn", "eigen")
CELLS = ("rnn", "lstm", "gru")
GATED = ("lstm", "gru")
DEFAULT_SPECTRUM = "numerics/eigen/default_spectrum.npy"  # relative to the repository root
ROOT = Path(__file__).resolve().parents[3]
# one colour per initializer whatever subset a run uses (Okabe–Ito; eigen in black)
COLORS = {"xavier": style.PALETTE[0], "kaiming": style.PALETTE[4], "orthogonal": style.PALETTE[2],
          "irnn": style.PALETTE[3], "nprnn": style.PALETTE[1], "eigen": style.PALETTE[7]}
LINESTYLES = {"rnn": "-", "lstm": "--", "gru": ":"}
MNIST_TASKS = ("mnist", "pmnist")  # = numerics.eigen.train.MNIST_TASKS (not imported: torch loads lazily)
MNIST_ENV = "RNNMEMORY_MNIST_DIR"  # the full scale's MNIST directory, when set
SD_TOLERANCE = 2.0  # eigen ≥ reference − 2 pooled sd over seeds counts as "not worse"


@dataclasses.dataclass(frozen=True)
class Config:
    tasks: tuple = ("tomita:3", "tomita:5", "digits")
    cells: tuple = CELLS
    inits: tuple = ("xavier", "orthogonal", "irnn", "nprnn", "eigen")
    seeds: int = 2
    hidden: int = 32
    steps: tuple = (("digits", 600),)  # (task kind, training steps); other kinds: train.DEFAULTS
    spectrum: str = DEFAULT_SPECTRUM  # the eigen initializer's file (relative to the repository root or absolute)
    data_dir: str | None = None  # the MNIST IDX directory; needed when a task is mnist or pmnist
    train_subset: int | None = None  # MNIST runs train on this many images (seeded by data_seed 0); None: all


def full_config(data_dir: str | None = None) -> Config:
    """The full benchmark: every Tomita grammar and digits, and mnist, pmnist when `data_dir` is given."""
    config = Config(tasks=tuple(f"tomita:{g}" for g in range(1, 8)) + ("digits",), inits=INITS, seeds=5, steps=())
    if not data_dir:
        return config
    return dataclasses.replace(config, tasks=config.tasks + MNIST_TASKS,
                               data_dir=str(Path(data_dir).expanduser().resolve()))


# quick: about 2 minutes on 2 cores with 2 workers (digits first, so its long chunks start first)
SCALES = {"quick": Config(tasks=("digits", "tomita:3", "tomita:5"), steps=(("tomita", 400), ("digits", 300))),
          "full": full_config(os.environ.get(MNIST_ENV)),
          "tiny": Config(tasks=("tomita:3", "digits"), cells=("rnn", "gru"), inits=("xavier", "irnn", "eigen"),
                         seeds=2, hidden=8, steps=(("tomita", 20), ("digits", 10)))}


# ---------------------------------------------------------------- the runs


def spectrum_path(spectrum: str) -> Path:
    path = Path(spectrum)
    return path if path.is_absolute() else ROOT / path


def spectrum_digest(spectrum: str) -> str | None:
    """SHA-256 of the spectrum file, or None when it is absent."""
    path = spectrum_path(spectrum)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def skip_reason(cell: str, init: str, config: Config) -> str | None:
    """Why a (cell, initializer) pair has no runs, or None when it runs."""
    if init == "irnn" and cell in GATED:
        return "IRNN is defined for vanilla (ReLU) RNNs only"
    if init == "eigen" and spectrum_digest(config.spectrum) is None:
        return f"no spectrum file at {config.spectrum} (rnnmemory eigen fit writes one)"
    return None


def _steps(config: Config, task: str) -> int | None:
    return dict(config.steps).get(task.partition(":")[0])


def run_cell(config: Config, task: str, cell: str, init: str, seed: int) -> dict:
    """The cell of one run: what the benchmark calls it (task, cell, init, seed) and what trains (`run`)."""
    run = {"task": task, "cell": cell, "init": init, "seed": seed, "hidden": config.hidden,
           "steps": _steps(config, task)}
    if init == "irnn":
        run.update(cell="rnn-relu", init="identity")
    inputs = {"kind": "eigen-train", "version": CELL_VERSION, "task": task, "cell": cell, "init": init, "seed": seed,
              "run": run}
    if init == "eigen":
        inputs["spectrum"] = {"file": config.spectrum, "sha256": spectrum_digest(config.spectrum)}
    if task in MNIST_TASKS:
        inputs["data"] = mnist_source(config)
        run.update(data_dir=inputs["data"]["data_dir"], train_subset=config.train_subset)
    return inputs


def mnist_source(config: Config) -> dict:
    """{"data_dir", "fingerprint"} of the config's MNIST directory (`train.mnist_fingerprint`)."""
    from ...eigen.train import mnist_fingerprint

    if config.data_dir is None:
        raise NumericsError("the tasks mnist and pmnist need the directory of the MNIST IDX files (--data-dir DIR)")
    return mnist_fingerprint(config.data_dir)


def cells(config: Config) -> list:
    return [run_cell(config, t, c, i, s) for t in config.tasks for c in config.cells for i in config.inits
            if skip_reason(c, i, config) is None for s in range(config.seeds)]


def _train(inputs: dict, device: str) -> dict:
    from ...eigen.train import train_classifier

    run = dict(inputs["run"])
    if "spectrum" in inputs:
        spectrum = inputs["spectrum"]
        if spectrum_digest(spectrum["file"]) != spectrum["sha256"]:
            raise NumericsError(f"the spectrum file {spectrum['file']} changed or vanished since its cells were listed")
        run["init"] = f"eigen:{spectrum_path(spectrum['file'])}"
    if "data" in inputs:
        from ...eigen.train import mnist_fingerprint

        if mnist_fingerprint(inputs["data"]["data_dir"]) != inputs["data"]:
            raise NumericsError(f"the MNIST files in {inputs['data']['data_dir']} changed since their cells were listed")
    try:
        return train_classifier(run.pop("task"), run.pop("cell"), run.pop("init"), run.pop("seed"), device=device,
                                **run)
    except TrainingDiverged as error:  # recorded, not raised: a divergence is a result of the benchmark
        return {"status": "diverged", "diverged": {"step": error.step, "loss": error.loss}, "curve": error.curves}


def compute_runs(chunk: list, device: str) -> list:
    """Cells of kind 'eigen-train', one training run each (one torch thread per run)."""
    return [_train(c, device) for c in chunk]


def run_group(cell: dict) -> tuple:
    """Runs of one task and cell share a chunk (the same data and the same shapes)."""
    return (cell["kind"], cell["task"], cell["cell"])


TRAIN = Kind(compute_runs, run_group)


def check_config(config: Config) -> None:
    """Refuse unknown tasks, cells and initializers, and a malformed spectrum file, before any run."""
    from torch import nn

    from ...eigen.train import load_task
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
        if task not in MNIST_TASKS:
            load_task(task)
    if any(task in MNIST_TASKS for task in config.tasks):
        from ...data.digits import load_mnist

        mnist_source(config)
        train = load_mnist(config.data_dir)["train"][1]  # a malformed file fails here, in one line
        subset = config.train_subset
        if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int)
                                   or not 1 <= subset <= len(train)):
            raise NumericsError(f"train_subset must be an integer from 1 to the {len(train)} MNIST training "
                                f"images, got {subset!r}")
    if "eigen" in config.inits:
        path = spectrum_path(config.spectrum)
        if config.spectrum != DEFAULT_SPECTRUM and not path.is_file():
            raise NumericsError(f"no spectrum file at {config.spectrum}")
        if path.is_file():
            initialize(nn.RNN(1, 4), "spectral", seed=0, file=str(path))  # a malformed file fails here, in one line


# ---------------------------------------------------------------- the numbers


@dataclasses.dataclass
class Bench:
    setting: str
    tasks: list
    cells: list
    inits: list
    seeds: int
    metric: dict  # task → "accuracy" or "r2"
    threshold: dict  # task → the metric's threshold for "steps to threshold"
    rows: dict  # task → cell → init → final mean/sd, steps to threshold, mean curve, diverged seeds
    skipped: list  # {"cell", "init", "why"} pairs with no runs
    diverged: list  # {"task", "cell", "init", "seed", "step", "loss"}
    versus_xavier: dict  # task → cell → init → (mean − xavier mean) / pooled sd (None without xavier)
    eigen: dict  # task → cell → {"minus_xavier_sd", "minus_best_sd", "best"}; {} without eigen runs
    best: dict  # task → cell → the initializer with the highest mean final metric


def _pooled_sd(a: dict, b: dict) -> float:
    return float(np.sqrt((a["final_sd"] ** 2 + b["final_sd"] ** 2) / 2))


def _in_sd(a: dict, b: dict) -> float | None:
    """(mean a − mean b) in pooled seed sd (±inf when the sd is 0 and the means differ, 0 when equal)."""
    if a["final_mean"] is None or b["final_mean"] is None:
        return None
    difference, sd = a["final_mean"] - b["final_mean"], _pooled_sd(a, b)
    if sd > 0:
        return float(difference / sd)
    return 0.0 if abs(difference) < 1e-12 else float(np.copysign(np.inf, difference))


def _row(results: list, seeds: int) -> dict:
    done = [r for r in results if r.get("status") != "diverged"]
    finals = np.array([r["final_metric"] for r in done], dtype=float)
    reached = [r["steps_to_threshold"] for r in done if r["steps_to_threshold"] is not None]
    row = {"runs": len(results), "finished": len(done),
           "final_mean": float(finals.mean()) if len(finals) else None,
           "final_sd": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
           "finals": finals.tolist(), "reached": len(reached),
           "steps_mean": float(np.mean(reached)) if reached else None, "curve_step": [], "curve_mean": [],
           "curve_sd": []}
    if done:
        curves = np.array([r["curve"]["test_metric"] for r in done], dtype=float)
        row.update(curve_step=done[0]["curve"]["step"], curve_mean=curves.mean(0).tolist(),
                   curve_sd=curves.std(0).tolist())
    return row


def analyze(config: Config, lookup: Lookup) -> Bench:
    rows, skipped, diverged, metric, threshold = {}, [], [], {}, {}
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
                if skip_reason(cell, init, config) is not None:
                    continue
                results = [lookup(run_cell(config, task, cell, init, s)) for s in range(config.seeds)]
                for seed, r in enumerate(results):
                    if r.get("status") == "diverged":
                        diverged.append({"task": task, "cell": cell, "init": init, "seed": seed, **r["diverged"]})
                    else:
                        metric[task], threshold[task] = r["metric"], r["threshold"]
                rows[task][cell][init] = _row(results, config.seeds)
    versus, eigen, best = {}, {}, {}
    for task in config.tasks:
        versus[task], best[task] = {}, {}
        for cell in config.cells:
            here = {i: r for i, r in rows[task][cell].items() if r["final_mean"] is not None}
            best[task][cell] = max(here, key=lambda i: here[i]["final_mean"]) if here else None
            versus[task][cell] = {i: _in_sd(r, here["xavier"]) if "xavier" in here else None for i, r in here.items()}
            if "eigen" in here:
                top = here[best[task][cell]]
                eigen.setdefault(task, {})[cell] = {
                    "minus_xavier_sd": versus[task][cell]["eigen"], "minus_best_sd": _in_sd(here["eigen"], top),
                    "best": best[task][cell]}
    setting = (f"hidden {config.hidden}, Adam, {config.seeds} seeds; training steps "
               + ", ".join(f"{k} {v}" for k, v in (config.steps or ())) + (" (others: the task defaults)"
                                                                             if config.steps else "the task defaults"))
    if config.train_subset is not None and any(t in MNIST_TASKS for t in config.tasks):
        setting += f"; MNIST trained on {config.train_subset} of its training images"
    return Bench(setting, list(config.tasks), list(config.cells), list(config.inits), config.seeds, metric, threshold,
                 rows, skipped, diverged, versus, eigen, best)


def _worst(n: Bench, key: str):
    pairs = [(t, c, v[key]) for t, per in n.eigen.items() for c, v in per.items()]
    if not pairs:
        return None
    return min(pairs, key=lambda p: -np.inf if p[2] is None else p[2])


def claims(config: Config, n: Bench) -> list:
    none = "no eigen runs (" + next((s["why"] for s in n.skipped if s["init"] == "eigen"),
                                    "eigen is not among the initializers") + ")"
    out = [Claim("every_run_finished", "every training run finished with a finite loss (diverged runs listed: "
                 "task, cell, initializer, seed, step)", [f"{d['task']}/{d['cell']}/{d['init']}/seed {d['seed']} "
                                                         f"at step {d['step']}" for d in n.diverged] or 0,
                 "0 diverged runs", not n.diverged, "E1/result.json: numbers.diverged")]
    for key, cid, text, against in (
            ("minus_xavier_sd", "eigen_not_worse_than_xavier", ("the eigen initializer's final test metric is not "
             "below Xavier's on any task and cell: (eigen − xavier) in pooled seed sd, worst"), "xavier"),
            ("minus_best_sd", "eigen_best_or_tied", ("the eigen initializer is the best initializer or tied with it "
             "on every task and cell (the paper's claim): (eigen − best) in pooled seed sd, worst"), "the best")):
        worst = _worst(n, key)
        if worst is None:
            out.append(Claim(cid, text, none, f"≥ −{SD_TOLERANCE:g} sd", False, "E1/result.json: numbers.eigen"))
            continue
        task, cell, value = worst
        where = f"{task}, {cell}" + (f", best {n.eigen[task][cell]['best']}" if key == "minus_best_sd" else "")
        out.append(Claim(cid, f"{text} ({where})", value, f"≥ −{SD_TOLERANCE:g} sd of {against}",
                         value is not None and value >= -SD_TOLERANCE, "E1/result.json: numbers.eigen"))
    return out


# ---------------------------------------------------------------- the figure and the words


def label(init: str) -> str:
    return {"xavier": "Xavier", "kaiming": "Kaiming", "orthogonal": "orthogonal", "irnn": "IRNN (ReLU)",
            "nprnn": "np-RNN", "eigen": "eigen"}.get(init, init)


def plot(config: Config, n: Bench):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tasks = n.tasks
    fig, axes = style.figure(ncols=1 + len(n.cells), nrows=len(tasks), height=2.2)
    width = 0.8 / len(n.inits)
    for r, task in enumerate(tasks):
        ax = axes[r, 0]
        lows = []
        for k, init in enumerate(n.inits):
            for x, cell in enumerate(n.cells):
                row = n.rows[task][cell].get(init)
                if row is None or row["final_mean"] is None:
                    continue
                ax.bar(x + (k - (len(n.inits) - 1) / 2) * width, row["final_mean"], width * 0.92,
                       yerr=row["final_sd"], color=COLORS.get(init, "0.5"), ecolor="0.25",
                       error_kw={"lw": 0.8, "capsize": 1.5})
                lows.append(row["final_mean"] - row["final_sd"])
        if task in n.threshold:
            ax.axhline(n.threshold[task], color="0.4", ls="--", lw=0.8)
        floor = 0.5 if n.metric.get(task) == "accuracy" and task.startswith("tomita") else 0.0
        if lows:
            ax.set_ylim(max(0.0, min(floor, min(lows) - 0.05)), 1.0)
        ax.set_xticks(range(len(n.cells)), n.cells)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(f"final test {n.metric.get(task, 'metric')}")
        ax.set_title(task, loc="right")
        style.panel_label(ax, chr(ord("a") + r * (1 + len(n.cells))))
        for c, cell in enumerate(n.cells):
            ax = axes[r, 1 + c]
            for init in n.inits:
                row = n.rows[task][cell].get(init)
                if row is None or not row["curve_step"]:
                    continue
                steps, mean, sd = (np.array(row[k]) for k in ("curve_step", "curve_mean", "curve_sd"))
                ax.plot(steps, mean, color=COLORS.get(init, "0.5"), lw=1.1)
                ax.fill_between(steps, mean - sd, mean + sd, color=COLORS.get(init, "0.5"), alpha=0.12, lw=0)
            if task in n.threshold:
                ax.axhline(n.threshold[task], color="0.4", ls="--", lw=0.8)
            ax.set_xlabel("training step")
            ax.set_ylabel(f"test {n.metric.get(task, 'metric')}")
            ax.set_title(f"{task}, {cell}", loc="right")
            style.panel_label(ax, chr(ord("a") + r * (1 + len(n.cells)) + 1 + c))
    handles = [Patch(color=COLORS.get(i, "0.5"), label=label(i)) for i in n.inits]
    handles.append(Line2D([], [], color="0.4", ls="--", lw=0.8, label="threshold"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
               title=f"mean ± sd over {n.seeds} seeds")
    return fig


def table(n: Bench) -> str:
    """The benchmark as plain text: final metric mean ± sd, steps to threshold and how many seeds reached it."""
    lines = [f"{'task':<10} {'cell':<5} {'init':<11} {'final (mean ± sd)':<19} {'steps to threshold':<22} diverged"]
    for task in n.tasks:
        for cell in n.cells:
            for init, row in n.rows[task][cell].items():
                final = ("n/a" if row["final_mean"] is None
                         else f"{row['final_mean']:.3f} ± {row['final_sd']:.3f}")
                steps = ("never" if row["steps_mean"] is None else f"{row['steps_mean']:.0f}") + \
                    f" ({row['reached']}/{row['runs']} reached)"
                lines.append(f"{task:<10} {cell:<5} {init:<11} {final:<19} {steps:<22} {row['runs'] - row['finished']}")
    for s in n.skipped:
        lines.append(f"skipped: {s['init']} on {s['cell']}: {s['why']}")
    return "\n".join(lines)


def describe(n: Bench) -> str:
    text = (f"Final test metric of each initializer on each task and cell ({n.setting}), mean ± sd over seeds "
            "(bars; dashed: the threshold for 'steps to threshold'), and the mean test-metric curves (± sd shaded). ")
    for task in n.tasks:
        parts = []
        for cell in n.cells:
            here = {i: r for i, r in n.rows[task][cell].items() if r["final_mean"] is not None}
            order = sorted(here, key=lambda i: -here[i]["final_mean"])
            parts.append(f"{cell}: " + " > ".join(f"{label(i)} {fmt(here[i]['final_mean'], 3)}" for i in order))
        text += f"{task}: " + "; ".join(parts) + ". "
    if n.eigen:
        lost = [f"{t}/{c}" for t, per in n.eigen.items() for c, v in per.items()
                if v["minus_xavier_sd"] is not None and v["minus_xavier_sd"] < -SD_TOLERANCE]
        text += ("The eigen initializer is within two seed sd of Xavier or above it everywhere. " if not lost else
                 f"The eigen initializer falls more than two seed sd below Xavier on {', '.join(lost)}. ")
    for s in n.skipped:
        text += f"No {label(s['init'])} runs on {s['cell']}: {s['why']}. "
    text += (f"{len(n.diverged)} runs diverged." if n.diverged else "Every run finished.")
    return text


E1 = Experiment("E1", "Initializers × cells × tasks: the eigen initializer against its baselines", "eigen", SCALES,
                Bench, cells, analyze, claims, plot, describe, kinds={"eigen-train": TRAIN})
