"""E2: how training moves the recurrent spectrum, regression against classification (the eigen
paper's observation that trained networks' eigenvalues behave differently on the two kinds of task;
docs/theory.md, paper 2).

One network (same cell, initializer and width) per task and seed is trained by `train_classifier`
(cells of kind 'eigen-spectra', one run each; the result is train.py's, eigenvalues of every
recurrent block at every tracked step). A seed's recurrent weights are the same on tasks with the
same number of input channels (recall:D and digits have one, tomita:N two: `initialize` draws the
input blocks first from the seed's generator), so the initial spectra of the two families are
draws from one law, not always one matrix; each task's panel shows its own initial spectrum, and
the statistics' change is taken run by run.

Statistics of a spectrum (of the candidate block, `numerics.eigen.fit_initializer.CANDIDATE`: W itself for
a vanilla RNN): the fraction of eigenvalues with |λ| > 0.9 (modes whose input survives ~7 steps at
half strength or more), the mean modulus, the fraction that are complex (members of conjugate
pairs: rotating modes), the spread (sd of the modulus) and the spectral radius. Per task: mean ± sd
over seeds, at initialization, after training, and the change. Per family (regression: recall:D;
classification: tomita:N, digits): per seed the mean over the family's tasks, then mean ± sd over
seeds; and the per-seed difference regression − classification. Every finished run counts (how
many reached the task's threshold is reported beside it); a diverged run is left out and counted.

Caveat, measured not controlled: the tasks differ in more than their loss. Each trains for its
kind's default steps (digits 1500, the others 600) and recall:D is solved within ~50 steps, after
which its weights barely move; so a difference is between networks as these tasks leave them, not
regression against classification with everything else equal.

Claims: for each statistic, the trained spectra differ between the families when the mean per-seed
difference exceeds twice its sd over seeds (DIFFERENCE_SDS). The paper gives no number to compare
with, so these are measured statements; one that fails says that at this scale the two kinds of task
leave that statistic alike.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ... import style
from ...eigen.fit_initializer import CANDIDATE
from ...eigen.train import train_classifier
from ...errors import TrainingDiverged
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt
from ...stats import ok

CELL_VERSION = 1
NEAR_UNIT = 0.9  # |λ| above this counts as a long-memory mode
DIFFERENCE_SDS = 2.0  # a difference holds when |mean| > this many sd of the per-seed difference
REAL_TOL = 1e-9  # |Im λ| ≤ REAL_TOL·max|λ|: real (as numerics.eigen.spectral_law)
STATISTICS = {"near_unit": rf"fraction $|\lambda|>{NEAR_UNIT:g}$", "mean_modulus": r"mean $|\lambda|$",
              "complex": "fraction complex", "modulus_sd": r"sd of $|\lambda|$", "radius": r"spectral radius"}
COMPARED = ("near_unit", "mean_modulus", "complex", "modulus_sd")  # the claims' statistics
FAMILIES = ("regression", "classification")


@dataclasses.dataclass(frozen=True)
class Config:
    regression: tuple = ("recall:10", "recall:40")
    classification: tuple = ("tomita:3", "tomita:4", "digits")
    cell: str = "rnn"
    init: str = "xavier"
    hidden: int = 64
    seeds: int = 3
    steps: int | None = None  # None: each task kind's default (numerics.eigen.names.DEFAULTS)
    track_every: int | None = None


SCALES = {"quick": Config(),
          "full": Config(regression=("recall:10", "recall:40", "recall:80"),
                         classification=("tomita:3", "tomita:4", "tomita:7", "digits"), seeds=8),
          "tiny": Config(regression=("recall:5",), classification=("tomita:4",), hidden=8, seeds=2, steps=20,
                         track_every=10)}


def cell(c: Config, task: str, seed: int) -> dict:
    config = {"task": task, "cell": c.cell, "init": c.init, "seed": seed, "hidden": c.hidden, "steps": c.steps,
              "track_every": c.track_every, "data_seed": 0}
    return {"kind": "eigen-spectra", "version": CELL_VERSION, "config": config}


def cells(c: Config) -> list:
    return [cell(c, t, s) for t in (*c.regression, *c.classification) for s in range(c.seeds)]


def compute_spectra(cells: list, device: str, context=None) -> list:
    """One `train_classifier` run per cell; a diverged run is recorded, not raised."""
    results = []
    for item in cells:
        config = dict(item["config"])
        try:
            results.append(train_classifier(config.pop("task"), config.pop("cell"), config.pop("init"),
                                            config.pop("seed"), device=device, **config))
        except TrainingDiverged as error:
            results.append({"status": "diverged", "diverged": {"trainer": error.trainer, "step": error.step,
                                                               "loss": error.loss}})
    return results


SPECTRA = Kind(compute_spectra, lambda c: (c["kind"], c["config"]["task"], c["config"]["seed"]))  # one run a chunk


def spectrum_statistics(values: np.ndarray) -> dict:
    """The statistics of one spectrum (module docstring)."""
    modulus = np.abs(values)
    complex_ = np.abs(values.imag) > REAL_TOL * max(float(modulus.max()), 1e-300)
    return {"near_unit": float(np.mean(modulus > NEAR_UNIT)), "mean_modulus": float(modulus.mean()),
            "complex": float(np.mean(complex_)), "modulus_sd": float(modulus.std()), "radius": float(modulus.max())}


def _spectrum(result: dict, cell_name: str, index: int) -> np.ndarray:
    keys = [k for k in result["eigenvalues"] if k.rpartition("/")[2] == CANDIDATE[cell_name]]
    arrays = [np.asarray(result["eigenvalues"][k][index], dtype=float) for k in sorted(keys)]
    values = np.concatenate(arrays)
    return values[:, 0] + 1j * values[:, 1]


def _mean_sd(values) -> list:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if values.size == 0:
        return [math.nan, math.nan]
    return [float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan]


@dataclasses.dataclass
class EigenSpectra:
    setting: str
    families: dict  # family → its tasks
    tasks: dict  # task → {family, metric, final_metric [m, sd], reached, runs, diverged, initial/final/change: {stat: [m, sd]}}
    family_stats: dict  # family → {"initial" | "final" | "change": {stat: [m, sd] over seeds}}
    differences: dict  # stat → {"mean", "sd", "seeds"}: regression − classification, final spectra, per seed
    clouds: dict  # task → {"initial" | "final": eigenvalues of all its seeds' runs, [[re, im]]}


def analyze(c: Config, lookup: Lookup) -> EigenSpectra:
    families = {"regression": list(c.regression), "classification": list(c.classification)}
    tasks, clouds, per_seed = {}, {}, {f: {} for f in FAMILIES}  # per_seed[f][seed][stage] → [stats]
    for family, names in families.items():
        for task in names:
            rows = {"initial": [], "final": [], "change": []}
            metrics, reached, diverged, finals, initials, metric = [], 0, 0, [], [], None
            for seed in range(c.seeds):
                result = lookup(cell(c, task, seed))
                if not ok(result):
                    diverged += 1
                    continue
                initial = spectrum_statistics(_spectrum(result, c.cell, 0))
                final_values = _spectrum(result, c.cell, -1)
                final = spectrum_statistics(final_values)
                change = {k: final[k] - initial[k] for k in final}
                for stage, stats_ in (("initial", initial), ("final", final), ("change", change)):
                    rows[stage].append(stats_)
                    per_seed[family].setdefault(seed, {}).setdefault(stage, []).append(stats_)
                metrics.append(result["final_metric"])
                reached += result["final_metric"] >= result["threshold"]
                finals.append(final_values)
                initials.append(_spectrum(result, c.cell, 0))
                metric = result["metric"]
            tasks[task] = {"family": family, "metric": metric,
                           "final_metric": _mean_sd(metrics), "reached": int(reached), "runs": len(metrics),
                           "diverged": diverged,
                           **{stage: {k: _mean_sd([r[k] for r in rows[stage]]) for k in STATISTICS} for stage in rows}}
            clouds[task] = {"initial": _points(initials), "final": _points(finals)}
    family_stats, seed_means = {}, {}
    for family in FAMILIES:
        seed_means[family] = {seed: {stage: {k: float(np.mean([s[k] for s in lists])) for k in STATISTICS}
                                     for stage, lists in stages.items()} for seed, stages in per_seed[family].items()}
        family_stats[family] = {stage: {k: _mean_sd([m[stage][k] for m in seed_means[family].values()])
                                        for k in STATISTICS} for stage in ("initial", "final", "change")}
    common = sorted(set(seed_means["regression"]) & set(seed_means["classification"]))
    differences = {}
    for k in STATISTICS:
        d = [seed_means["regression"][s]["final"][k] - seed_means["classification"][s]["final"][k] for s in common]
        mean, sd = _mean_sd(d)
        differences[k] = {"mean": mean, "sd": sd, "seeds": len(d)}
    steps = "each task's default steps" if c.steps is None else f"{c.steps} steps"
    setting = (f"{c.cell} cells, hidden {c.hidden}, {c.init} initialization, Adam, {steps}, {c.seeds} seeds")
    return EigenSpectra(setting, families, tasks, family_stats, differences, clouds)


def _points(arrays: list) -> list:
    if not arrays:
        return []
    values = np.concatenate(arrays)
    return np.round(np.stack([values.real, values.imag], 1), 6).tolist()


def _holds(d: dict) -> bool:
    return bool(np.isfinite(d["mean"]) and np.isfinite(d["sd"]) and abs(d["mean"]) > DIFFERENCE_SDS * d["sd"])


def claims(c: Config, n: EigenSpectra) -> list:
    out = []
    for k in COMPARED:
        d = n.differences[k]
        reg, cls = (n.family_stats[f]["final"][k] for f in FAMILIES)
        out.append(Claim(
            f"{k}_differs", f"after training, the {STATISTICS[k].replace('$', '')} of the recurrent spectrum differs "
            f"between regression ({', '.join(n.families['regression'])}) and classification "
            f"({', '.join(n.families['classification'])}): per-seed difference regression − classification",
            {"difference": d["mean"], "sd": d["sd"], "seeds": d["seeds"], "regression": reg, "classification": cls},
            f"|mean| > {DIFFERENCE_SDS:g} sd of the difference over seeds", _holds(d),
            "E2/result.json: numbers.differences, numbers.family_stats"))
    return out


COLORS = {"regression": style.PALETTE[1], "classification": style.PALETTE[0]}


def _disk(ax, title: str, limit: float):
    t = np.linspace(0, 2 * np.pi, 256)
    ax.plot(np.cos(t), np.sin(t), color="0.3", lw=0.8)
    ax.plot(NEAR_UNIT * np.cos(t), NEAR_UNIT * np.sin(t), color="0.6", lw=0.6, ls=":")
    ax.set_aspect("equal")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_xlabel(r"Re $\lambda$")
    ax.set_ylabel(r"Im $\lambda$")
    ax.set_title(title, loc="right")


def plot(c: Config, n: EigenSpectra):
    names = list(n.tasks)
    ncols = 3
    rows = math.ceil(len(names) / ncols)
    letters = "abcdefghijklmnop"
    grid = [[letters[r * ncols + i] if r * ncols + i < len(names) else "." for i in range(ncols)] for r in range(rows)]
    bars = letters[len(names)]
    fig, axes = style.mosaic(grid + [[bars] * ncols], [2.3] * rows + [2.3])
    clouds = [np.asarray(n.clouds[t][k]).reshape(-1, 2) for t in names for k in ("initial", "final")]
    limit = max([1.2] + [1.08 * float(np.hypot(*p.T).max()) for p in clouds if p.size])  # every point shows
    for letter, name in zip(letters, names):
        ax, row = axes[letter], n.tasks[name]
        initial, final = (np.asarray(n.clouds[name][k]).reshape(-1, 2) for k in ("initial", "final"))
        _disk(ax, f"{name} ({row['family']})", limit)
        ax.scatter(initial[:, 0], initial[:, 1], s=3, color="0.75", lw=0)
        ax.scatter(final[:, 0], final[:, 1], s=3, color=COLORS[row["family"]], lw=0)
        metric = "$R^2$" if row["metric"] == "r2" else "accuracy"
        ax.text(0.03, 0.03, f"{metric} {fmt(row['final_metric'][0], 3)}\n{row['reached']}/{row['runs']} at threshold",
                transform=ax.transAxes, fontsize=6, va="bottom",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        style.panel_label(ax, letter)
    ax = axes[bars]
    x = np.arange(len(STATISTICS))
    series = [(f, stage) for f in FAMILIES for stage in ("initial", "final")]
    for k, (family, stage) in enumerate(series):
        values = n.family_stats[family][stage]
        means = [values[s][0] for s in STATISTICS]
        sds = [values[s][1] if np.isfinite(values[s][1]) else 0 for s in STATISTICS]
        solid = stage == "final"
        ax.bar(x + (k - 1.5) * 0.2, means, 0.19, yerr=sds, color=COLORS[family] if solid else "white",
               edgecolor=COLORS[family], hatch=None if solid else "////", lw=0.8, capsize=1.5, error_kw={"lw": 0.7})
    ax.set_xticks(x, [STATISTICS[s] for s in STATISTICS])
    ax.set_ylabel("mean ± sd over seeds")
    top = max(v[0] + (v[1] if np.isfinite(v[1]) else 0) for f in FAMILIES for st in ("initial", "final")
              for v in n.family_stats[f][st].values() if np.isfinite(v[0]))
    ax.set_ylim(0, top * 1.3)
    ax.grid(axis="x", visible=False)
    ax.legend(handles=[Patch(facecolor="white", edgecolor=COLORS[f], hatch="////", label=f"{f}, initial")
                       for f in FAMILIES] + [Patch(color=COLORS[f], label=f"{f}, trained") for f in FAMILIES],
              loc="upper left", ncols=2, fontsize=6.5)
    ax.set_title(n.setting, loc="right", fontsize=6.5)
    style.panel_label(ax, bars)
    fig.legend(handles=[Line2D([], [], ls="", marker="o", ms=3, color="0.75", label="initial"),
                        Line2D([], [], ls="", marker="o", ms=3, color=COLORS["regression"], label="trained, regression"),
                        Line2D([], [], ls="", marker="o", ms=3, color=COLORS["classification"],
                               label="trained, classification")],
               loc="outside upper center", ncols=3)
    return fig


def describe(n: EigenSpectra) -> str:
    text = (f"Eigenvalues of the recurrent matrix before (grey) and after training ({n.setting}); "
            "the solid circle is |λ| = 1, the dotted one |λ| = 0.9. ")
    for task, row in n.tasks.items():
        f = row["final"]
        diverged = f", {row['diverged']} diverged" if row["diverged"] else ""
        text += (f"{task}: {row['metric']} {fmt(row['final_metric'][0], 3)}, {row['reached']} of {row['runs']} runs at "
                 f"threshold{diverged}; fraction |λ|>0.9 "
                 f"{fmt(f['near_unit'][0], 2)}, mean |λ| {fmt(f['mean_modulus'][0], 3)}, complex "
                 f"{fmt(f['complex'][0], 2)}, spectral radius {fmt(f['radius'][0], 3)}. ")
    for k in COMPARED:
        d = n.differences[k]
        reg, cls = (n.family_stats[fam]["final"][k] for fam in FAMILIES)
        verdict = "differs" if _holds(d) else "does not differ beyond the seed spread"
        text += (f"{STATISTICS[k].replace('$', '')}: regression {fmt(reg[0], 3)} ± {fmt(reg[1], 2)}, classification "
                 f"{fmt(cls[0], 3)} ± {fmt(cls[1], 2)}; difference {fmt(d['mean'], 3)} ± {fmt(d['sd'], 2)} (sd over "
                 f"{d['seeds']} seeds) — {verdict}. ")
    for fam in FAMILIES:
        init = n.family_stats[fam]["initial"]
        text += (f"At initialization ({fam}): fraction |λ|>0.9 {fmt(init['near_unit'][0], 2)}, mean |λ| "
                 f"{fmt(init['mean_modulus'][0], 3)}, complex {fmt(init['complex'][0], 2)}, spectral radius "
                 f"{fmt(init['radius'][0], 3)}. ")
    return text.rstrip()


E2 = Experiment("E2", "Spectra before and after training: regression vs classification", "eigen", SCALES, EigenSpectra,
                cells, analyze, claims, plot, describe, kinds={"eigen-spectra": SPECTRA})
