"""F1 and F2: the kernel at initialization. F1 plots the lag weights α_j against lag j for several
σ_W, theory and finite-width tangent Grams; F2 the relative error of α̂_j against width n, with the
n^{-1/2} guide, and the cross-lag entries that the theory says vanish. Both read the same cells
(kind 'ntk', one random network each; `kernels.ntk_cells`), as does `rnnmemory check ntk`."""
from __future__ import annotations

import dataclasses

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from ... import style
from ...kernels.ntk_cells import compute_ntk, ntk_cell, summarize_cells
from ...kernels.theory import theory_lag_weights
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt
from ...stats import loglog_slope, near_minus_half
from .common import SPEC, sigmas


@dataclasses.dataclass(frozen=True)
class Config:
    widths: tuple = (128, 256, 512, 1024)
    sigma_ws: tuple = (0.5, 0.8, 0.95, 1.0)
    lags: int = 16
    seeds: int = 16
    dtype: str = "float64"
    seed: int = 0


SCALES = {"quick": Config(),
          "full": Config(widths=(256, 512, 1024, 2048, 4096, 8192), lags=32, seeds=32),
          "tiny": Config(widths=(16, 32), lags=4, seeds=3)}


def cells(c: Config) -> list:
    return [ntk_cell(SPEC, w, sw, c.lags, r, seed=c.seed, dtype=c.dtype) for w in c.widths for sw in c.sigma_ws
            for r in range(c.seeds)]


def summary(c: Config, lookup: Lookup) -> dict:
    """`check ntk`'s rows, errors, slopes and verdict, from the cells."""
    todo = cells(c)
    return summarize_cells(todo, [lookup(cell) for cell in todo])


# ------------------------------------------------------------------------------------------ F1

@dataclasses.dataclass
class LagWeights:
    largest_width: int
    smallest_width: int
    seeds: int
    sigma_ws: list
    theory: dict  # σ_W → α_j, j < lags
    rows: list  # per (width, σ_W, lag) at the smallest and largest width
    worst_ratio: dict
    verdict: dict


def analyze_f1(c: Config, lookup: Lookup) -> LagWeights:
    s = summary(c, lookup)
    top, low = max(c.widths), min(c.widths)
    at_top = [r for r in s["rows"] if r["width"] == top]
    worst = max(at_top, key=lambda r: abs(r["ratio_mean"] - 1))
    return LagWeights(top, low, c.seeds, list(c.sigma_ws),
                      {str(sw): theory_lag_weights(SPEC, c.lags, sigmas(sw)).tolist() for sw in c.sigma_ws},
                      [r for r in s["rows"] if r["width"] in (top, low)],
                      {k: worst[k] for k in ("sigma_w", "lag", "ratio_mean", "ratio_std")}, s["verdict"])


def claims_f1(c: Config, n: LagWeights) -> list:
    v = n.verdict["claims"]
    return [
        Claim("kernel_ratio_within_5_percent", f"at n = {n.largest_width}, every lag's mean α̂_j/α_j is within 5% "
              f"of 1 (all σ_W, lags 0–{c.lags - 1}, {c.seeds} seeds)", v["ratio_within_5_percent"]["worst"], "≤ 0.05",
              v["ratio_within_5_percent"]["passed"], "F1/result.json: numbers.rows"),
        Claim("kernel_ratio_within_3_standard_errors", f"at n = {n.largest_width}, every lag's mean α̂_j/α_j is "
              "within 3 standard errors (sd/√seeds) of 1", v["ratio_within_3_standard_errors"]["worst"], "≤ 3",
              v["ratio_within_3_standard_errors"]["passed"], "F1/result.json: numbers.rows"),
    ]


def plot_f1(c: Config, n: LagWeights):
    fig, axes = style.figure(ncols=1, height=2.9)
    ax = axes[0][0]
    lags = np.arange(c.lags)
    for k, sw in enumerate(n.sigma_ws):
        color = style.PALETTE[k]
        ax.plot(lags, n.theory[str(sw)], color=color, lw=1.2)
        for width, filled in ((n.largest_width, True), (n.smallest_width, False)):
            sel = [r for r in n.rows if r["width"] == width and r["sigma_w"] == sw]
            ax.errorbar(lags + (0.15 if filled else -0.15), [r["alpha_mean"] for r in sel],
                        yerr=[r["alpha_std"] for r in sel], fmt=style.MARKERS[k], color=color,
                        ms=3.2 if filled else 2.8, lw=0.7, capsize=0, mfc=color if filled else "white")
    ax.set_yscale("log")
    ax.set_xlabel("lag $j$")
    ax.set_ylabel(r"lag weight $\alpha_j$")
    handles = [Line2D([], [], color=style.PALETTE[k], marker=style.MARKERS[k], ms=3.5, label=rf"$\sigma_W={sw:g}$")
               for k, sw in enumerate(n.sigma_ws)]
    handles += [Line2D([], [], color="0.3", lw=1.2, label="theory"),
                Line2D([], [], ls="", marker="o", color="0.3", label=rf"$\hat\alpha_j$, $n={n.largest_width}$"),
                Line2D([], [], ls="", marker="o", color="0.3", mfc="white",
                       label=rf"$\hat\alpha_j$, $n={n.smallest_width}$")]
    ax.legend(handles=handles, ncols=2, loc="lower left")
    return fig


def describe_f1(n: LagWeights) -> str:
    w = n.worst_ratio
    return (f"Lines: the derived α_j = (j+2) σ_W^{{2j}} + δ_j0 (at σ_F = σ_C = σ_D = 1), from the generated "
            f"code. Filled markers: the diagonal of the empirical tangent Gram of random networks at n = "
            f"{n.largest_width} (mean ± sd over {n.seeds} networks); hollow markers: n = {n.smallest_width}. "
            f"The lag weights fall geometrically for σ_W < 1 (gradient descent is biased towards short memory) and "
            f"grow linearly at σ_W = 1. Largest disagreement at n = {n.largest_width}: σ_W = {w['sigma_w']:g}, "
            f"lag {w['lag']}, mean α̂_j/α_j = {w['ratio_mean']:.3f} ± {w['ratio_std']:.3f} (sd).")


# ------------------------------------------------------------------------------------------ F2

@dataclasses.dataclass
class Convergence:
    widths: list
    sigma_ws: list
    error: list  # per (width, σ_W): rms relative error and mean largest cross term
    pooled_rms_relative_error: list
    pooled_cross_term: list
    pooled_slope: float | None
    cross_term_slope: float | None
    slopes_by_sigma_w: dict
    cross_term_slopes_by_sigma_w: dict


def analyze_f2(c: Config, lookup: Lookup) -> Convergence:
    s = summary(c, lookup)
    widths = list(c.widths)
    error, cross = [], []
    for w in widths:
        at = [e for e in s["error"] if e["width"] == w]
        error.append(float(np.sqrt(np.mean([e["rms_relative_error"] ** 2 for e in at]))))
        cross.append(float(np.mean([e["largest_cross_term"] for e in at])))
    return Convergence(widths, list(c.sigma_ws), s["error"], error, cross, loglog_slope(widths, error),
                       loglog_slope(widths, cross), s["slopes"], s["cross_term_slopes"])


def claims_f2(c: Config, n: Convergence) -> list:
    return [
        Claim("kernel_error_slope", "the rms relative error of α̂_j (pooled over σ_W) falls like n^{-1/2}: "
              "log–log slope", n.pooled_slope, "−0.5 ± 0.15", near_minus_half(n.pooled_slope),
              "F2/result.json: numbers.pooled_slope"),
        Claim("cross_lag_terms_vanish", "the largest relative cross-lag entry of the tangent Gram falls like "
              "n^{-1/2}: log–log slope", n.cross_term_slope, "−0.5 ± 0.15", near_minus_half(n.cross_term_slope),
              "F2/result.json: numbers.cross_term_slope"),
    ]


def plot_f2(c: Config, n: Convergence):
    fig, axes = style.figure(ncols=2, height=2.6)
    left, right = axes[0]
    for ax, key, values, slope in ((left, "rms_relative_error", n.pooled_rms_relative_error, n.pooled_slope),
                                   (right, "largest_cross_term", n.pooled_cross_term, n.cross_term_slope)):
        for k, sw in enumerate(n.sigma_ws):
            ys = [e[key] for e in n.error if e["sigma_w"] == sw]
            ax.plot(n.widths, ys, style.MARKERS[k] + "-", color=style.PALETTE[k], lw=0.9, ms=3.2,
                    label=rf"$\sigma_W={sw:g}$")
        label = "pooled" if slope is None else f"pooled (slope {slope:.2f})".replace("-", "−")
        ax.plot(n.widths, values, "k-", lw=1.8, label=label)
        ax.set_yscale("log")
        style.width_guide(ax, n.widths, n.widths[0], values[0])
        ax.set_xscale("log")
        ax.set_xticks(n.widths, [str(w) for w in n.widths])
        ax.xaxis.set_minor_formatter(NullFormatter())
        style.plain_log_ticks(ax)
        ax.set_xlabel("width $n$")
    left.set_ylabel(r"rms of $\hat\alpha_j/\alpha_j - 1$")
    right.set_ylabel(r"largest relative cross-lag entry")
    left.legend()
    handles, labels = right.get_legend_handles_labels()
    right.legend([h for h, l in zip(handles, labels) if "sigma" not in l], [l for l in labels if "sigma" not in l])
    style.panel_label(left, "a")
    style.panel_label(right, "b")
    return fig


def describe_f2(n: Convergence) -> str:
    by = ", ".join(f"σ_W = {k}: {fmt(v)}" for k, v in n.slopes_by_sigma_w.items())
    return (f"(a) Root mean square of α̂_j/α_j − 1 over lags and networks; (b) the largest relative off-diagonal "
            f"(cross-lag) entry of the tangent Gram, which the theory says vanishes. Pooled over σ_W the error "
            f"falls from {fmt(n.pooled_rms_relative_error[0])} at n = {n.widths[0]} to "
            f"{fmt(n.pooled_rms_relative_error[-1])} at n = {n.widths[-1]}, log–log slope "
            f"{fmt(n.pooled_slope)} (theory −1/2); the cross-lag entry falls with slope "
            f"{fmt(n.cross_term_slope)}. Per σ_W the slopes scatter ({by}): within one network the errors of all "
            "lags move together, so each width contributes few independent samples.")


KINDS = {"ntk": Kind(compute_ntk)}
F1 = Experiment("F1", "Lag weights α_j against lag j", "linear", SCALES, LagWeights, cells, analyze_f1, claims_f1,
                plot_f1, describe_f1, kinds=KINDS)
F2 = Experiment("F2", "Kernel convergence with width", "linear", SCALES, Convergence, cells, analyze_f2, claims_f2,
                plot_f2, describe_f2, kinds=KINDS)
