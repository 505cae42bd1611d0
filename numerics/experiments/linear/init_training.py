"""F9: which initializers learn long memory. Linear RNNs whose W is drawn from each initializer
family (F8's, at the same σ_W) are trained by gradient descent on a long-memory teacher, beside the
closed form of kernel gradient descent under that family's lag kernel Θ (`compare_training`, kind
'train'; for non-Gaussian W the full Θ_jk). The runs are centered (every trainer starts from 0),
so the figure isolates the kernel's implicit bias, not the random initial function.

The kernel regime holds while the deviation ‖L_RNN − L_conv‖/‖L_conv − L(0)‖ stays small; F7
measures it as c·T/√n inside T ≤ √n, so the tolerance here is the regime's own edge, T/√n.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy.stats import spearmanr

from derivations.spec import Spec

from ... import style
from ...pipeline.experiment import Claim, Experiment, Lookup, fmt
from ...stats import SLOPE_TOLERANCE, loglog_slope, mean_se, near_minus_half, ok
from .common import TRAIN, teacher_label, teacher_norm, training_cell
from .lag_kernels import LABELS, family, label

DEVIATION_BOUND = 1.0  # deviation · √n / T: the edge of the kernel regime (F7: about 0.3 inside it)
RANK_CORRELATION = 0.8  # Spearman correlation of the families' test errors, RNN against closed form
TIE = 1e-6  # closed forms this close (relative) are one: orthogonal and Gaussian W share Θ


@dataclasses.dataclass(frozen=True)
class Config:
    inits: tuple = ("gaussian", "orthogonal", "identity", "nprnn", "spectral:modulus=disk", "attractor:p=0.25")
    teachers: tuple = ("decay:0.95", "delay:10")
    sigma_w: float = 0.9
    widths: tuple = (256, 1024)
    length: int = 16
    samples: int = 8  # fewer sequences than lags: the fit is underdetermined, the kernel chooses
    steps: int = 100
    seeds: int = 3
    dtype: str = "float64"


SCALES = {"quick": Config(),
          "full": Config(widths=(1024, 4096), seeds=8),
          "tiny": Config(teachers=("decay:0.95", "delay:5"), widths=(16, 32), length=8, samples=4, steps=5, seeds=2)}


def cell(c: Config, teacher: str, init: str, width: int, seed: int) -> dict:
    return training_cell(teacher=teacher, width=width, sigma_w=c.sigma_w, length=c.length, samples=c.samples,
                         steps=c.steps, center=True, seed=seed, dtype=c.dtype, spec=Spec(init=init))


def cells(c: Config) -> list:
    return [cell(c, t, i, w, s) for t in c.teachers for i in c.inits for w in c.widths for s in range(c.seeds)]


@dataclasses.dataclass
class InitTraining:
    setting: str
    sigma_w: float
    widths: list
    length: int
    inits: list
    teachers: list
    runs: dict  # teacher → init → per width: deviation, test errors and long-lag errors (mean, se), diverged
    responses: dict  # teacher → {"teacher": L*, init → {"rnn", "rnn_sd", "closed_form"}} at the largest width
    worst_deviation: dict  # the largest mean deviation·√n/T over teachers, families and widths
    pooled_slope: float | None  # of the deviation against width, geometric mean over teachers and families
    rank_correlation: dict  # teacher → Spearman ρ of test errors, RNN against closed form (largest width)
    long_lag_best: dict  # teacher → {"rnn": family, "closed_form": [families]} with the least long-lag error


def _long_lag_error(response: list, teacher: list) -> float:
    """Σ_{j ≥ T/2} (L_j − L*_j)² / Σ_{j ≥ T/2} L*_j²: how much of the teacher's second half is missed."""
    L, target = np.asarray(response), np.asarray(teacher)
    half = len(target) // 2
    return float(np.sum((L[half:] - target[half:]) ** 2) / np.sum(target[half:] ** 2))


def analyze(c: Config, lookup: Lookup) -> InitTraining:
    top = max(c.widths)
    runs, responses, ratios = {}, {}, []
    for teacher in c.teachers:
        norm = teacher_norm(teacher, c.length)
        runs[teacher], responses[teacher] = {}, {}
        for init in c.inits:
            rows = []
            for w in c.widths:
                results = [lookup(cell(c, teacher, init, w, s)) for s in range(c.seeds)]
                done = [r for r in results if ok(r)]
                row = {"width": w, "diverged": len(results) - len(done)}
                for key, values in (
                        ("deviation", [r["final"]["deviation"] for r in done]),
                        ("test_error_rnn", [r["final"]["test_error_rnn"] / norm for r in done]),
                        ("test_error_closed_form", [r["final"]["test_error_closed_form"] / norm for r in done]),
                        ("long_lag_error_rnn", [_long_lag_error(r["response"]["rnn"], r["response"]["teacher"])
                                                for r in done]),
                        ("long_lag_error_closed_form", [_long_lag_error(r["response"]["closed_form"],
                                                                        r["response"]["teacher"]) for r in done])):
                    row[key], row[key + "_se"] = mean_se(values)
                row["deviation_sqrt_n_over_T"] = row["deviation"] * np.sqrt(w) / c.length
                rows.append(row)
                if w == top and done:
                    rnn = np.array([r["response"]["rnn"] for r in done])
                    responses[teacher]["teacher"] = done[0]["response"]["teacher"]
                    responses[teacher][init] = {
                        "rnn": rnn.mean(0).tolist(), "rnn_sd": rnn.std(0).tolist(),
                        "closed_form": np.mean([r["response"]["closed_form"] for r in done], 0).tolist()}
            runs[teacher][init] = rows
            ratios.append([r["deviation"] for r in rows])
    scaled = [(t, i, r) for t in c.teachers for i in c.inits for r in runs[t][i]]
    t, i, r = max(scaled, key=lambda x: np.nan_to_num(x[2]["deviation_sqrt_n_over_T"], nan=np.inf))
    worst = {"teacher": t, "init": i, "width": r["width"], "value": r["deviation_sqrt_n_over_T"]}
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.exp(np.nanmean(np.log(np.array(ratios, dtype=float)), axis=0))
    rank, best = {}, {}
    for teacher in c.teachers:
        at = {i: runs[teacher][i][-1] for i in c.inits}
        rnn = [at[i]["test_error_rnn"] for i in c.inits]
        closed = [at[i]["test_error_closed_form"] for i in c.inits]
        rank[teacher] = float(spearmanr(rnn, closed).statistic) if np.all(np.isfinite(rnn + closed)) else None
        lowest = min(at[i]["long_lag_error_closed_form"] for i in c.inits)
        best[teacher] = {"rnn": min(c.inits, key=lambda i: at[i]["long_lag_error_rnn"]),
                         "closed_form": [i for i in c.inits if at[i]["long_lag_error_closed_form"] <= lowest * (1 + TIE)]}
    setting = (f"σ_W = {c.sigma_w:g}, T = {c.length} lags, {c.samples} white-noise sequences (one target each), "
               f"{c.steps} gd steps at the kernel's step, centered, {c.seeds} seeds")
    return InitTraining(setting, c.sigma_w, list(c.widths), c.length, list(c.inits), list(c.teachers), runs, responses,
                        worst, loglog_slope(c.widths, pooled), rank, best)


def claims(c: Config, n: InitTraining) -> list:
    w = n.worst_deviation
    ranks = [v for v in n.rank_correlation.values()]
    agree = {t: f"{family(b['rnn'])}/{'='.join(family(i) for i in b['closed_form'])}" for t, b in n.long_lag_best.items()}
    return [
        Claim("closed_form_predicts_every_family", "for every family, teacher and width the trained RNN follows "
              "its kernel's closed form: mean deviation ‖L_RNN − L_conv‖/‖L_conv − L(0)‖ times √n/T (worst: "
              f"{label(w['init'])}, {w['teacher']}, n = {w['width']})", w["value"],
              f"≤ {DEVIATION_BOUND:g} (deviation ≤ T/√n, the kernel regime's edge)",
              w["value"] is not None and w["value"] <= DEVIATION_BOUND, "F9/result.json: numbers.runs"),
        Claim("deviation_falls_with_width", "the deviation falls like n^{-1/2}: log–log slope of its geometric mean "
              "over families and teachers", n.pooled_slope, f"−0.5 ± {SLOPE_TOLERANCE:g}",
              near_minus_half(n.pooled_slope), "F9/result.json: numbers.pooled_slope"),
        Claim("same_ranking_of_families", f"at n = {max(n.widths)} the closed forms rank the families' test errors "
              "as the trained RNNs do: Spearman ρ, worst teacher", min(ranks, key=lambda v: -2 if v is None else v),
              f"≥ {RANK_CORRELATION:g}", all(v is not None and v >= RANK_CORRELATION for v in ranks),
              "F9/result.json: numbers.rank_correlation"),
        Claim("same_best_family_on_long_lags", "the family that misses least of the teacher's second half "
              "(Σ_{j≥T/2}(L_j − L*_j)²/Σ_{j≥T/2} L*_j²) is the same for the RNNs and the closed forms: "
              "RNN/closed form per teacher", agree, "the RNNs' best is among the closed forms' best",
              all(b["rnn"] in b["closed_form"] for b in n.long_lag_best.values()),
              "F9/result.json: numbers.long_lag_best"),
    ]


def plot(c: Config, n: InitTraining):
    fig, axes = style.mosaic([["a", "b"], ["c", "d"]], [2.7, 2.4])
    top = max(n.widths)
    lags = np.arange(n.length)
    for letter, teacher in zip("ab", n.teachers):
        ax = axes[letter]
        data = n.responses.get(teacher, {})
        for k, init in enumerate(n.inits):
            if init not in data:
                continue
            ax.plot(lags, data[init]["closed_form"], color=style.PALETTE[k], lw=1.1)
            ax.plot(lags, data[init]["rnn"], style.MARKERS[k], color=style.PALETTE[k], ms=2.8, ls="")
        if "teacher" in data:
            ax.plot(lags, data["teacher"], "k--", lw=1.1)
        ax.set_xlabel("lag $j$")
        ax.set_ylabel(r"learned impulse response $L_j$")
        ax.set_title(f"teacher {teacher_label(teacher)}, $n={top}$", loc="right")
        style.panel_label(ax, letter)
    handles = [Line2D([], [], color=style.PALETTE[k], marker=style.MARKERS[k], ms=3.2, label=label(i))
               for k, i in enumerate(n.inits)]
    axes["a"].legend(handles=handles, loc="upper right", fontsize=6.5)
    axes["b"].legend(handles=[Line2D([], [], color="0.3", lw=1.1, label="closed form (kernel GD)"),
                              Line2D([], [], color="0.3", marker="o", ls="", ms=3, label="trained RNN (mean)"),
                              Line2D([], [], color="k", ls="--", lw=1.1, label="teacher $L^*$")], loc="upper right")
    x = np.arange(len(n.inits))
    for letter, teacher in zip("cd", n.teachers):
        ax = axes[letter]
        rows = [n.runs[teacher][i][-1] for i in n.inits]
        # no error bars: the seeds' spread is mostly their datasets', which the RNN and its closed form share
        rnn, closed = [r["test_error_rnn"] for r in rows], [r["test_error_closed_form"] for r in rows]
        ax.bar(x - 0.2, rnn, 0.38, color=style.PALETTE[:len(x)])
        ax.bar(x + 0.2, closed, 0.38, color="white", edgecolor=style.PALETTE[:len(x)], hatch="////", lw=0.8)
        ax.set_yscale("log")
        values = [v for v in rnn + closed if v is not None and np.isfinite(v) and v > 0]
        if values:  # room above the bars for the legend
            narrow = max(values) / min(values) < 5  # then a plain-ticked axis of less than a decade
            ax.set_ylim(min(values) / (1.3 if narrow else 1.6), max(values) * (1.8 if narrow else 6))
        style.plain_log_ticks(ax)
        ax.set_xticks(x, [LABELS[family(i)].replace(", ", ",\n").replace(" (", "\n(") for i in n.inits],
                      fontsize=6, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_ylabel(r"test error $\|L-L^*\|^2/\|L^*\|^2$")
        ax.set_title(f"teacher {teacher_label(teacher)}, $n={top}$", loc="right")
        ax.grid(axis="x", visible=False)
        style.panel_label(ax, letter)
    axes["c"].legend(handles=[Patch(color="0.4", label="trained RNN"),
                              Patch(facecolor="white", edgecolor="0.4", hatch="////", label="closed form")],
                     loc="upper left", ncols=2, title=f"mean over {c.seeds} seeds", title_fontsize=6.5)
    return fig


def describe(n: InitTraining) -> str:
    top = max(n.widths)
    text = (f"Networks of width {' and '.join(map(str, n.widths))} with W from each family ({n.setting}). (a, b) The "
            f"learned impulse responses at n = {top}: trained RNNs (markers, mean over seeds) and the closed form "
            "of kernel gradient descent under the family's Θ (lines), with the teacher (dashed). (c, d) Relative "
            "test error ‖L − L*‖²/‖L*‖² of both. ")
    for teacher in n.teachers:
        rows = {i: n.runs[teacher][i][-1] for i in n.inits}
        order = sorted(n.inits, key=lambda i: rows[i]["test_error_closed_form"])
        text += (f"Teacher {teacher}: test error RNN / closed form " + ", ".join(
            f"{LABELS[family(i)]} {fmt(rows[i]['test_error_rnn'], 2)}/{fmt(rows[i]['test_error_closed_form'], 2)}"
            for i in order) + "; error on the second half of the lags " + ", ".join(
            f"{LABELS[family(i)]} {fmt(rows[i]['long_lag_error_rnn'], 2)}/{fmt(rows[i]['long_lag_error_closed_form'], 2)}"
            for i in order) + f" (Spearman ρ of the test errors {fmt(n.rank_correlation[teacher], 2)}). ")
    w = n.worst_deviation
    text += (f"The largest mean deviation·√n/T is {fmt(w['value'], 2)} ({LABELS[family(w['init'])]}, {w['teacher']}, "
             f"n = {w['width']}); the deviation falls with width with slope {fmt(n.pooled_slope, 2)} (theory −1/2). "
             "Orthogonal and Gaussian W share Θ, so their closed forms coincide; their RNNs differ by finite-width "
             "effects only.")
    return text


F9 = Experiment("F9", "Which initializers learn long memory", "linear", SCALES, InitTraining, cells, analyze, claims,
                plot, describe, kinds={"train": TRAIN})
