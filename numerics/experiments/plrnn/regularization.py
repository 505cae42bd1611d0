"""P2: the rPLRNN's regularization strength τ (τ_A = τ_W = τ) where the problem is long enough for it
to matter (Schmidt et al., ICLR 2021: without the penalty the rPLRNN fails at long T, with it it learns).

At T = 50 every τ, 0 included, solves the addition problem (the attractor start does the work), so
the effect is looked for at T = 200 (quick) and T = 400 (full), with τ = 0 (the attractor start,
no penalty), 1 and 5 (released) at the released p = ½, and at full scale the fraction p at τ = 5.
Runs are P1's cells ('plrnn-train', packed per recipe): the test fraction correct and the test MSE
(the measure of the released supplementary sweep) at the best validation checkpoint, and the
validation fraction along training.

Claims, honest in both directions:
  - without the penalty the rPLRNN fails: at τ = 0 the mean test fraction correct is below 0.5 (chance
    ≈ 0.08) and its test MSE stays near the chance MSE 1/6 (predicting the mean of the sum);
  - with the penalty it learns: for the best τ > 0 the median test MSE over seeds is at most half the
    τ = 0 median. The fraction correct (|error| < 0.04) is the stricter measure and is reported beside it.
At the quick budget (6000 steps of batch 64, 4% of the public code's) learning starts late in the
cosine schedule and is not finished, so the fractions stay far below the released 0.999 at T = 300;
the report says so (`budget`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ... import style
from ...pipeline.experiment import Claim, Experiment, Lookup, fmt
from .long_range import FAILED, TRAIN, Training, budget, run_cell, summary

CHANCE_MSE = 1 / 6  # Var(u₁ + u₂) for two U[0, 1) values: the MSE of predicting the mean
HELPS = 0.5  # the best penalized median test MSE at most this fraction of the unpenalized one


@dataclasses.dataclass(frozen=True)
class Config:
    task: str = "addition"
    T: int = 200
    taus: tuple = (0.0, 1.0, 5.0)  # at p
    ps: tuple = ()  # at the released τ (full scale)
    p: float = 0.5
    tau: float = 5.0
    seeds: int = 3  # the claim reads a median: 2 seeds made it hang on one run
    training: Training = Training(steps_per_length=None, steps=6000, stop=0.99)


FULL = Training(steps_per_length=None, steps=40_000, batch=500, lr=1e-3, sizes=(100_000, 10_000, 10_000), stop=0.99)
SCALES = {"quick": Config(),
          "full": Config(T=400, taus=(0.0, 0.5, 1.0, 5.0, 10.0, 50.0), ps=(0.1, 0.25, 0.75, 1.0), seeds=5, training=FULL),
          "tiny": Config(T=20, taus=(0.0, 5.0), seeds=2, training=Training(hidden=6, steps_per_length=None, steps=4,
                                                                         batch=16, sizes=(64, 32, 32)))}


def settings(c: Config) -> list[tuple[str, float, float]]:
    """(which sweep, p, τ) of every setting: τ at the released p, then p at the released τ."""
    return [("tau", c.p, tau) for tau in c.taus] + [("p", p, c.tau) for p in c.ps]


def cells(c: Config) -> list:
    unique = dict.fromkeys((p, tau) for _, p, tau in settings(c))
    return [run_cell(c.training, c.task, c.T, "rplrnn", seed, p, tau) for p, tau in unique for seed in range(c.seeds)]


@dataclasses.dataclass
class Regularization:
    task: str
    T: int
    seeds: int
    setting: str
    budget: str
    p: float
    tau: float
    tau_rows: dict  # str(τ) → summary (at p)
    p_rows: dict  # str(p) → summary (at τ)
    curves: dict  # str(τ) → {"step": [...], "val_metric": [[per seed]]} at p


def analyze(c: Config, lookup: Lookup) -> Regularization:
    from .long_range import _setting

    rows, curves = {"tau": {}, "p": {}}, {}
    for which, p, tau in settings(c):
        results = [lookup(run_cell(c.training, c.task, c.T, "rplrnn", s, p, tau)) for s in range(c.seeds)]
        rows[which][str(tau if which == "tau" else p)] = summary(results)
        if which == "tau":
            done = [r for r in results if r.get("status") != "diverged"]
            curves[str(tau)] = {"step": done[0]["curve"]["step"] if done else [],
                                "val_metric": [r["curve"]["val_metric"] for r in done]}
    return Regularization(c.task, c.T, c.seeds, _setting(c.training, c.seeds), budget(c.training, [c.T]), c.p, c.tau,
                          rows["tau"], rows["p"], curves)


def _median_loss(row: dict) -> float | None:
    losses = [v for v in row["test_losses"] if v is not None]
    return float(np.median(losses)) if losses and len(losses) == len(row["test_losses"]) else None


def claims(c: Config, n: Regularization) -> list:
    out = []
    plain = n.tau_rows.get("0.0")
    if plain is None:
        return out
    plain_mse = _median_loss(plain)
    out.append(Claim("no_penalty_fails_at_long_T", f"without the penalty (τ = 0, attractor start) the rPLRNN fails at T = "
                     f"{n.T}: mean test fraction correct; median test MSE {fmt(plain_mse, 3)} (chance MSE "
                     f"{CHANCE_MSE:.3f})", plain["selected_mean"], f"< {FAILED:g}", plain["selected_mean"] < FAILED,
                     "P2/result.json: numbers.tau_rows.0.0"))
    penalized = {tau: _median_loss(row) for tau, row in n.tau_rows.items() if float(tau) > 0}
    penalized = {tau: v for tau, v in penalized.items() if v is not None}
    if penalized and plain_mse:
        tau, best = min(penalized.items(), key=lambda item: item[1])
        ratio = best / plain_mse
        out.append(Claim("penalty_learns_at_long_T", f"with the penalty it learns at T = {n.T}: the best τ > 0 (τ = {tau}) "
                         "median test MSE over the τ = 0 median (its mean fraction correct: "
                         f"{fmt(n.tau_rows[tau]['selected_mean'], 3)})", ratio, f"≤ {HELPS:g}", ratio <= HELPS,
                         f"P2/result.json: numbers.tau_rows.{tau}"))
    return out


def plot(c: Config, n: Regularization):
    fig, axes = style.figure(ncols=3, height=2.8)
    taus = [float(t) for t in n.tau_rows]
    xs = np.arange(len(taus))
    colors = style.sequential_colors(len(taus))
    for k, (key, label, log) in enumerate((("values", "test fraction correct", False),
                                          ("test_losses", "test MSE", True))):
        ax = axes[0, k]
        for x, row, color in zip(xs, n.tau_rows.values(), colors):
            values = [v for v in row[key] if v is not None]
            ax.plot([x] * len(values), values, "o", color=color, mfc="none")
            if values:
                ax.plot([x - 0.2, x + 0.2], [np.median(values)] * 2, color=color, lw=2)
        if log:
            ax.set_yscale("log")
            ax.axhline(CHANCE_MSE, color="0.5", ls="--", lw=0.8, label="chance (predict the mean)")
            ax.legend(loc="lower left")
        else:
            ax.set_ylim(-0.02, 1.02)
            ax.axhline(0.078, color="0.5", ls="--", lw=0.8)
        ax.set_xticks(xs, [f"{t:g}" for t in taus])
        ax.set_xlabel(r"regularization strength $\tau$")
        ax.set_ylabel(label)
        style.panel_label(ax, "ab"[k])
    ax = axes[0, 2]
    for (tau, curve), color in zip(n.curves.items(), colors):
        for i, values in enumerate(curve["val_metric"]):
            ax.plot(curve["step"], values, color=color, lw=1, label=rf"$\tau$ = {float(tau):g}" if i == 0 else None)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation fraction correct")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left")
    style.panel_label(ax, "c")
    fig.suptitle(f"rPLRNN, {n.task}, T = {n.T}, p = {n.p:g}: {n.seeds} seeds (dots), medians (bars)", fontsize=8)
    return fig


def describe(n: Regularization) -> str:
    def listing(rows, symbol):
        return "; ".join(f"{symbol} = {x}: fraction {fmt(r['selected_mean'], 3)}, median test MSE "
                         f"{fmt(_median_loss(r), 3)}" for x, r in rows.items())
    text = (f"The rPLRNN on the {n.task} problem at T = {n.T} ({n.setting}), at the best validation checkpoint: "
            f"{listing(n.tau_rows, 'τ')}. ")
    if n.p_rows:
        text += f"The fraction p of regularized units at τ = {n.tau:g}: {listing(n.p_rows, 'p')}. "
    return (text + "τ = 0 keeps the attractor start of the first ⌊Mp⌋ units but not the penalty; panel (c) shows "
            "when each run starts to learn. " + n.budget)


P2 = Experiment("P2", "The regularization strength τ at a long T", "plrnn", SCALES, Regularization, cells, analyze,
                claims, plot, describe, kinds={"plrnn-train": TRAIN})
