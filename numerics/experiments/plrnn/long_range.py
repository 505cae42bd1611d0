"""P1: the rPLRNN paper's long-range benchmark (Schmidt et al., ICLR 2021; docs/theory.md, paper 3).

Every run is one `numerics.plrnn.train.train_long_range` call, a cell of kind 'plrnn-train' (cached,
computed on Dask like every other cell). The result of a run is the test fraction correct at the
checkpoint with the best *validation* fraction (model selection on a validation split); the best
test checkpoint — what the public code reported — is kept beside it, so the difference is visible.

P1: fraction correct against the sequence length T for each model, mean ± sd over seeds, with the
    released values (docs/theory.md) as open markers. Claims, at the longest T of the addition problem:
    the rPLRNN solves it (mean ≥ 0.99) where the plain PLRNN and the vanilla ReLU
    RNN fail (mean < 0.5; chance ≈ 0.08).
P2 (regularization.py): the regularization strength τ at a long T, from cells of this kind.

Training (`Training`, shared by P1 and P2 so their common runs are one cell): M = 40 units and
gradient-norm clip 3 as released; Adam's rate annealed by a cosine (`train.SCHEDULES`) from 1e-3
(full) or 2e-3 (quick), and at quick scale batches of 64, 100·T steps and 10 000 training
sequences, where the public code ran Adam at a constant 1e-3 for up to 200 epochs of batches of 500
over 100 000 sequences. These are the toolkit's choices for CPU minutes and are said in the
report: at T = 100 and 10 000 steps a constant 1e-3 left the rPLRNN's test fraction swinging from
checkpoint to checkpoint, a cosine from 1e-3 ended at 0.97 and 1.00 (two seeds), from 2e-3 at
1.00 and 1.00. The quick scale trains the three models the claims are about (the iRNN, which
solves T = 100 at this budget, and the LSTM, which fails it at 0.07 and is the slowest run, are
left to the full scale, which has every model).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ... import style
from ...errors import NumericsError, check_choice
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt
from ...plrnn.names import LENGTHS as IMAGE_LENGTHS  # the image tasks' own T (--T is for the marker tasks)
from ...plrnn.names import MARKER_TASKS, MODELS, TASKS
from ...train.recipe import SCHEDULES

CELL_VERSION = 4  # 2: test loss at every checkpoint, packed PLRNN runs, optional early stopping; 3: subnormals flushed;
#                  4: the ReLU baselines packed
PUBLIC_SEQUENCES = 200 * 100_000  # the public code's budget: up to 200 epochs over 100 000 sequences
STOP_CHECKS = 3  # with Training.stop: that many tracked steps in a row at the criterion end a run
PACK = 4  # runs of one family sharing a recipe train as packs of at most this many (each pack one worker's chunk)
SOLVED, FAILED = 0.99, 0.5  # "solves": mean fraction correct ≥ SOLVED; "fails": < FAILED
CHANCE = {"addition": 0.078, "multiplication": 0.111}  # predicting the mean target (docs/theory.md: ≈ 0.08, 0.11)
# The public code's released mean best fraction correct (docs/theory.md), task → model → {T: value}
RELEASED = {
    "addition": {"rplrnn": {300: 0.999, 400: 0.992, 500: 0.941, 600: 0.28}, "irnn": {200: 0.997, 300: 0.80, 400: 0.43},
                 "lstm": {50: 1.0, 100: 0.85, 200: 0.08}, "plrnn": {40: 0.98, 60: 0.17}, "rnn": {20: 1.0, 40: 0.45},
                 "nprnn": {40: 1.0, 60: 0.54}, "ornn": {50: 1.0, 100: 0.26}},
    "multiplication": {"rplrnn": {400: 0.9998, 600: 0.51}, "irnn": {200: 1.0, 300: 0.41}, "lstm": {100: 1.0, 200: 0.41}},
}
COLORS = {"rplrnn": style.PALETTE[7], "plrnn": style.PALETTE[1], "iplrnn": style.PALETTE[6], "rnn": style.PALETTE[3],
          "irnn": style.PALETTE[0], "nprnn": style.PALETTE[4], "ornn": style.PALETTE[5], "lstm": style.PALETTE[2],
          "gru": style.PALETTE[5]}  # gru: the reconstruction baseline (never beside oRNN)
LABELS = {"rplrnn": "rPLRNN", "plrnn": "PLRNN", "iplrnn": "iPLRNN", "rnn": "RNN (ReLU)", "irnn": "iRNN",
          "nprnn": "np-RNN", "ornn": "oRNN", "lstm": "LSTM", "gru": "GRU"}


@dataclasses.dataclass(frozen=True)
class Training:
    hidden: int = 40
    steps_per_length: int | None = 100  # steps = this · T …
    steps: int | None = None  # … or this many at every T
    batch: int = 64
    lr: float = 2e-3  # Adam's (peak) rate
    schedule: str = "cosine"
    sizes: tuple = (10_000, 1_000, 1_000)  # train, validation, test sequences
    reduction: str = "mean"  # the rplrnn regularizer's: 'mean' (the public code) or 'sum' (the paper's formula)
    stop: float | None = None  # stop a run once its validation fraction reaches this at STOP_CHECKS checks in a row

    def steps_at(self, T: int) -> int:
        return self.steps if self.steps is not None else (self.steps_per_length or 100) * T

    def sequences(self, T: int) -> int:
        """Training sequences a run sees (steps × batch), against the public code's PUBLIC_SEQUENCES."""
        return self.steps_at(T) * self.batch


FULL_TRAINING = Training(steps_per_length=None, steps=40_000, batch=500, lr=1e-3, sizes=(100_000, 10_000, 10_000))
TINY_TRAINING = Training(hidden=6, steps_per_length=None, steps=4, batch=16, sizes=(64, 32, 32))


@dataclasses.dataclass(frozen=True)
class Config:
    tasks: tuple = ("addition",)
    lengths: tuple = (50, 100)
    models: tuple = ("rplrnn", "plrnn", "rnn")  # the claims' models; iRNN, LSTM and the rest: full scale
    seeds: int = 2
    p: float = 0.5
    tau: float = 5.0
    training: Training = Training()
    data_dir: str | None = None  # the MNIST IDX directory, for the task mnist


def lengths_for(c: Config, task: str) -> tuple:
    return c.lengths if task in MARKER_TASKS else (IMAGE_LENGTHS[task],)


SCALES = {"quick": Config(training=Training(stop=SOLVED)),
          "full": Config(tasks=("addition", "multiplication"), lengths=(50, 100, 200, 300, 400, 500), models=MODELS,
                         seeds=5, training=FULL_TRAINING),
          "tiny": Config(lengths=(20,), models=("rplrnn", "plrnn", "rnn"), seeds=1, training=TINY_TRAINING)}
# ---------------------------------------------------------------- the runs


def run_cell(training: Training, task: str, T: int, model: str, seed: int, p: float = 0.5, tau: float = 5.0,
             data_dir: str | None = None) -> dict:
    inputs = {"kind": "plrnn-train", "version": CELL_VERSION, "task": task, "T": T, "model": model, "seed": seed,
              "hidden": training.hidden, "steps": training.steps_at(T), "batch": training.batch, "lr": training.lr,
              "schedule": training.schedule}
    if task in MARKER_TASKS:  # the image tasks have their own splits
        inputs["sizes"] = list(training.sizes)
    if model == "rplrnn":  # the regularizer's settings name the run only where they act
        inputs.update(p=float(p), tau=float(tau), reduction=training.reduction)
    if training.stop is not None:
        inputs["stop"] = {"criterion": float(training.stop), "checks": STOP_CHECKS}
    if task == "mnist":  # the files, fingerprinted: cells of different copies never mix
        from ...data.digits import mnist_fingerprint

        if data_dir is None:
            raise NumericsError("the task mnist needs the directory of the MNIST IDX files (--data-dir DIR)")
        inputs["data"] = mnist_fingerprint(data_dir)
    return inputs


def cell(c: Config, task: str, T: int, model: str, seed: int) -> dict:
    return run_cell(c.training, task, T, model, seed, c.p, c.tau, c.data_dir)


def cells(c: Config) -> list:
    return [cell(c, task, T, model, seed) for task in c.tasks for T in lengths_for(c, task) for model in c.models
            for seed in range(c.seeds)]


def check_config(c: Config) -> None:
    """Refuse an unknown task, model or schedule, p outside [0, 1], a negative τ, T < 20 on the marker
    tasks and a missing MNIST directory, in one line, before any run."""
    from ...data.long_range import MIN_LENGTH

    for name, values, known in (("task", c.tasks, TASKS), ("model", c.models, MODELS)):
        for value in values:
            if value not in known:
                raise NumericsError(f"unknown {name} {value!r} (choose {', '.join(known)})")
    if c.training.schedule not in SCHEDULES:
        raise NumericsError(f"unknown schedule {c.training.schedule!r} (choose {', '.join(SCHEDULES)})")
    if not (c.tasks and c.models and c.lengths):
        raise NumericsError("the benchmark needs at least one task, one model and one length")
    if not 0 <= c.p <= 1:
        raise NumericsError(f"p (the fraction of regularized units) must be in [0, 1], got {c.p:g}")
    if not c.tau >= 0:
        raise NumericsError(f"tau (the regularization strength) must be ≥ 0, got {c.tau:g}")
    if any(t in MARKER_TASKS for t in c.tasks) and min(c.lengths) < MIN_LENGTH:
        raise NumericsError(f"T must be ≥ {MIN_LENGTH} on the addition and multiplication problems (the first "
                            f"marker lies in steps 0–9), got {min(c.lengths)}")
    if "mnist" in c.tasks:
        from ...data.digits import load_mnist

        cell(c, "mnist", IMAGE_LENGTHS["mnist"], c.models[0], 0)  # a missing directory or file: one line
        load_mnist(c.data_dir)  # a malformed file: one line


def command_config(tasks, lengths, models, seeds: int, *, p: float, tau: float, hidden: int, steps: int | None,
                   batch: int, lr: float, schedule: str, sizes, reduction: str = "mean", stop: float | None = None,
                   data_dir=None) -> Config:
    """The checked config of `rnnmemory plrnn long-range` from its options; bad input fails here, in
    one line, before any run or file."""
    sizes = tuple(sizes)
    if len(sizes) != 3 or min(sizes) < 1:
        raise NumericsError(f"--sizes takes three positive counts (training, validation, test), got {list(sizes)}")
    training = Training(hidden=hidden, steps=steps, batch=batch, lr=lr, schedule=schedule, sizes=sizes,
                        reduction=check_choice(reduction, "reduction", ("mean", "sum")), stop=stop)
    config = Config(tasks=tuple(tasks), lengths=tuple(lengths), models=tuple(models), seeds=seeds, p=p, tau=tau,
                    training=training, data_dir=None if data_dir is None else str(Path(data_dir).expanduser().resolve()))
    check_config(config)
    return config


def compute_runs(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'plrnn-train' that share a recipe and a family (`pack_key`): PLRNN runs or ReLU
    baselines train as one pack, oRNN and LSTM alone (`numerics.plrnn.train.train_runs`); one torch
    thread per worker."""
    from ...data.digits import mnist_fingerprint
    from ...errors import TrainingDiverged
    from ...plrnn.train import train_runs
    from ...train.runtime import Stopping, diverged_result

    first = chunk[0]
    if "data" in first and mnist_fingerprint(first["data"]["data_dir"]) != first["data"]:
        raise NumericsError(f"the MNIST files in {first['data']['data_dir']} changed since their cells were listed")
    train, val, test = first.get("sizes", (None, None, None))
    stop = first.get("stop")
    runs = [{"model": c["model"], "seed": c["seed"], "p": c.get("p", 0.5), "tau_a": c.get("tau", 5.0),
             "tau_w": c.get("tau", 5.0)} for c in chunk]
    results = train_runs(first["task"], first["T"], runs, hidden=first["hidden"], steps=first["steps"],
                         batch=first["batch"], lr=first["lr"], schedule=first["schedule"],
                         reduction=first.get("reduction", "mean"), train_size=train, val_size=val, test_size=test,
                         track_every=max(1, first["steps"] // 20), data_dir=first.get("data", {}).get("data_dir"),
                         stopping=Stopping(stop["criterion"], stop["checks"]) if stop else None, device=device)
    # a diverged run is a result of the benchmark, not an error
    return [diverged_result(r) if isinstance(r, TrainingDiverged) else r for r in results]


def pack_key(c: dict) -> tuple:
    """Cells one `compute_runs` call trains together: PLRNN runs with one recipe (any seed, p, τ), ReLU
    baselines with one recipe (rnn, irnn, nprnn; any seed); oRNN and LSTM alone."""
    from ...plrnn.names import PLRNN_MODELS, RELU_MODELS

    recipe = tuple((k, str(v)) for k, v in sorted(c.items()) if k not in ("model", "seed", "p", "tau", "reduction"))
    family = (("plrnn", c.get("reduction", "mean")) if c["model"] in PLRNN_MODELS
              else ("relu",) if c["model"] in RELU_MODELS else (c["model"], c["seed"]))
    return (*recipe, family)


TRAIN = Kind(compute_runs, pack_key, chunk=PACK,
             work=lambda c: c["steps"] * c["T"] * c["batch"] * c["hidden"] ** 2)  # the recurrence's products


# ---------------------------------------------------------------- the numbers


def summary(results: list) -> dict:
    """Mean ± sd over seeds of the selected (validation) and best-test fractions (diverged runs count 0),
    the selected checkpoints' test losses (the MSE on the marker tasks; None for a diverged run), and
    how many runs diverged or stopped early."""
    done = [r for r in results if r.get("status") != "diverged"]
    selected = [r["selected"]["test_metric"] if r in done else 0.0 for r in results]
    best = [r["best_test"]["test_metric"] if r in done else 0.0 for r in results]
    losses = [r["selected"]["test_loss"] if r in done else None for r in results]
    return {"selected_mean": float(np.mean(selected)), "selected_sd": float(np.std(selected, ddof=1)) if len(selected) > 1
            else 0.0, "best_mean": float(np.mean(best)), "values": selected, "best_values": best,
            "test_losses": losses, "diverged": len(results) - len(done),
            "stopped": [r["stopped"]["step"] if r in done and r.get("stopped") else None for r in results]}


@dataclasses.dataclass
class LongRange:
    tasks: list
    lengths: list
    models: list
    seeds: int
    setting: str
    rows: dict  # task → model → str(T) → summary
    diverged: list  # "task/model/T/seed"
    budget: str = ""  # what the training budget could be expected to reach, per T


def _setting(t: Training, seeds: int) -> str:
    steps = f"{t.steps} steps" if t.steps is not None else f"{t.steps_per_length}·T steps"
    stop = (f"; a run stops once its validation fraction is ≥ {t.stop:g} at {STOP_CHECKS} checks in a row"
            if t.stop is not None else "")
    return (f"M = {t.hidden}, Adam {t.lr:g} ({t.schedule}), clip 3, batch {t.batch}, {steps}, "
            f"{t.sizes[0]} training / {t.sizes[1]} validation / {t.sizes[2]} test sequences, the regularizer's "
            f"{t.reduction}s, {seeds} seed{'s' * (seeds != 1)}{stop}")


def budget(t: Training, lengths) -> str:
    """What the training budget could be expected to reach, said per T: the training sequences a run
    sees against the public code's (the released numbers come from its full budget)."""
    parts = [f"T = {T}: {t.sequences(T):.2g} sequences, {t.sequences(T) / PUBLIC_SEQUENCES:.1%} of the public "
             "code's" for T in lengths]
    short = [T for T in lengths if t.sequences(T) < PUBLIC_SEQUENCES / 4]
    verdict = (f"Below a quarter of that budget (T = {', '.join(map(str, short))}) a released value reached only "
               "after long training is not expected; where a model fails here it may still learn with more."
               if short else "The released values are within this budget's reach.")
    return "Budget: " + "; ".join(parts) + f" (up to 200 epochs of 100 000 sequences, {PUBLIC_SEQUENCES:.0e}). {verdict}"


def analyze(c: Config, lookup: Lookup) -> LongRange:
    rows, diverged = {}, []
    for task in c.tasks:
        rows[task] = {}
        for model in c.models:
            rows[task][model] = {}
            for T in lengths_for(c, task):
                results = [lookup(cell(c, task, T, model, s)) for s in range(c.seeds)]
                diverged += [f"{task}/{model}/T={T}/seed {s}" for s, r in enumerate(results) if r.get("status")]
                rows[task][model][str(T)] = summary(results)
    return LongRange(list(c.tasks), list(c.lengths), list(c.models), c.seeds, _setting(c.training, c.seeds), rows,
                     diverged, budget(c.training, sorted({T for task in c.tasks for T in lengths_for(c, task)})))


def claims(c: Config, n: LongRange) -> list:
    out = [Claim("every_run_finished", "every training run finished with a finite loss", n.diverged or 0,
                 "0 diverged runs", not n.diverged, "P1/result.json: numbers.diverged")]
    if "addition" not in n.tasks:
        return out
    task, T = "addition", str(max(n.lengths))
    row = n.rows[task]
    if "rplrnn" in row:
        value = row["rplrnn"][T]["selected_mean"]
        out.append(Claim("rplrnn_solves_long", f"the rPLRNN solves the {task} problem at T = {T}: mean test fraction "
                         "correct at the best validation checkpoint", value, f"≥ {SOLVED:g}", value >= SOLVED,
                         f"P1/result.json: numbers.rows.{task}.rplrnn.{T}"))
    failing = {m: row[m][T]["selected_mean"] for m in ("plrnn", "rnn") if m in row}
    if failing:
        worst = max(failing.values())
        out.append(Claim("plrnn_and_rnn_fail_there", f"the plain PLRNN and the vanilla ReLU RNN fail there (T = {T}): "
                         "their larger mean fraction correct", worst, f"< {FAILED:g}", worst < FAILED,
                         f"P1/result.json: numbers.rows.{task}"))
    return out


def plot(c: Config, n: LongRange):
    from matplotlib.lines import Line2D

    fig, axes = style.figure(ncols=len(n.tasks), height=3.0)
    for k, task in enumerate(n.tasks):
        ax = axes[0, k]
        lengths = [int(T) for T in n.rows[task][n.models[0]]]
        for model in n.models:
            rows = n.rows[task][model]
            means = [rows[str(T)]["selected_mean"] for T in lengths]
            sds = [rows[str(T)]["selected_sd"] for T in lengths]
            ax.errorbar(lengths, means, yerr=sds, color=COLORS[model], marker="o", lw=1.2, capsize=2,
                        label=LABELS[model])
            released = RELEASED.get(task, {}).get(model, {})
            if released:
                ax.plot(list(released), list(released.values()), color=COLORS[model], marker="o", mfc="none", ls=":",
                        lw=0.8)
        ax.axhline(CHANCE.get(task, 0.1), color="0.5", ls="--", lw=0.8)
        if task in MARKER_TASKS:  # the released lengths span 20–600: a log axis keeps the measured ones apart
            ax.set_xscale("log")
            ticks = []
            for T in sorted({*lengths, *(T for m in RELEASED.get(task, {}).values() for T in m)}):
                if T in lengths or not ticks or T >= 1.3 * ticks[-1]:  # labels that do not overlap
                    ticks.append(T)
            ax.set_xticks(ticks, [str(T) for T in ticks], fontsize=7)
            ax.minorticks_off()
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("test fraction correct (|error| < 0.04)" if task in MARKER_TASKS else "test accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task, loc="right")
        style.panel_label(ax, chr(ord("a") + k))
    handles = [Line2D([], [], color=COLORS[m], marker="o", label=LABELS[m]) for m in n.models]
    handles += [Line2D([], [], color="0.3", marker="o", mfc="none", ls=":", label="released (public code, best test)"),
                Line2D([], [], color="0.5", ls="--", label="chance (predict the mean)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, title=f"mean ± sd over {n.seeds} seed{'s' * (n.seeds != 1)}, "
               "selected on validation")
    return fig


def describe(n: LongRange) -> str:
    text = (f"Test fraction correct (|error| < 0.04) at the checkpoint with the best validation fraction, against the "
            f"sequence length T ({n.setting}); open markers: the public code's released values (best test epoch). ")
    for task in n.tasks:
        for T in (int(T) for T in n.rows[task][n.models[0]]):
            order = sorted(n.models, key=lambda m: -n.rows[task][m][str(T)]["selected_mean"])
            text += f"{task}, T = {T}: " + " > ".join(
                f"{LABELS[m]} {fmt(n.rows[task][m][str(T)]['selected_mean'], 3)}" for m in order) + ". "
    gaps = [(task, m, T, row["best_mean"] - row["selected_mean"])
            for task in n.tasks for m in n.models for T, row in n.rows[task][m].items()]
    task, model, T, gap = max(gaps, key=lambda g: g[3])
    text += (f"Picking the best test checkpoint instead, as the public code did, raises a mean by at most {fmt(gap, 2)} "
             f"({LABELS[model]}, {task}, T = {T}). ")
    stopped = sum(s is not None for task in n.tasks for m in n.models for row in n.rows[task][m].values()
                  for s in row.get("stopped", []))
    text += f"{stopped} run{'s' * (stopped != 1)} stopped early, solved. " if stopped else ""
    text += (f"{len(n.diverged)} run{'s' * (len(n.diverged) != 1)} diverged (counted as 0). " if n.diverged
             else "Every run finished. ")
    return text + n.budget


def table(n: LongRange) -> str:
    """The benchmark as plain text: per task, length and model the selected and best-test means."""
    lines = [f"{'task':<15} {'T':>4} {'model':<8} {'selected (mean ± sd)':<22} {'best test':<10} diverged"]
    for task in n.tasks:
        for model in n.models:
            for T, row in n.rows[task][model].items():
                lines.append(f"{task:<15} {T:>4} {model:<8} {row['selected_mean']:.3f} ± {row['selected_sd']:.3f}"
                             f"{'':<8} {row['best_mean']:<10.3f} {row['diverged']}")
    return "\n".join(lines)


P1 = Experiment("P1", "Long-range problems: fraction correct against T per model", "plrnn", SCALES, LongRange, cells,
                analyze, claims, plot, describe, kinds={"plrnn-train": TRAIN}, table=table)
