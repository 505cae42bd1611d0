"""F7: where the kernel regime holds. The deviation of the trained RNN from the scaled convolution
over width n and sequence length T; inside T ≤ √n it should behave like c·T/√n."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.patches import Patch

from ... import style
from ...pipeline.experiment import Claim, Experiment, Lookup, fmt
from ...stats import SLOPE, SLOPE_TOLERANCE, loglog_slope, ok
from .common import TRAIN, training_cell

# c = DEVIATION_SPREAD × the mean of deviation·√n/T at the narrowest width: a run's deviation·√n
# fluctuates up to about twice its mean over seeds (measured for tests/test_training.py: 0.50 / 0.25).
DEVIATION_SPREAD = 2.0


@dataclasses.dataclass(frozen=True)
class Config:
    teacher: str = "decay:0.9"
    sigma_w: float = 1.0
    widths: tuple = (64, 128, 256, 512, 1024)
    lengths: tuple = (4, 8, 16, 32, 64)
    seeds: int = 2
    steps: int = 50
    dtype: str = "float64"


SCALES = {"quick": Config(),
          "full": Config(widths=(64, 128, 256, 512, 1024, 2048, 4096), lengths=(4, 8, 16, 32, 64, 128), seeds=4),
          "tiny": Config(widths=(16, 32), lengths=(4, 8), steps=5)}


def cell(c: Config, width: int, length: int, seed: int) -> dict:
    # max(2, T/2) samples keeps every fit underdetermined
    return training_cell(teacher=c.teacher, width=width, sigma_w=c.sigma_w, length=length,
                         samples=max(2, length // 2), steps=c.steps, center=True, seed=seed, dtype=c.dtype)


def cells(c: Config) -> list:
    return [cell(c, w, t, s) for t in c.lengths for w in c.widths for s in range(c.seeds)]


@dataclasses.dataclass
class Regime:
    setting: str
    widths: list
    lengths: list
    mean_deviation: list  # [length][width], mean over the seeds that did not diverge
    diverged: list  # [length][width]: some seed diverged
    slope_in_width_by_length: dict
    c_from_narrowest_width: float
    pooled_slope_inside: float
    largest_deviation_sqrt_n_over_T_tested: dict
    deviation_sqrt_n_over_T_inside: list
    outside_broken: list
    diverged_inside: int


def analyze(c: Config, lookup: Lookup) -> Regime:
    widths, lengths = list(c.widths), list(c.lengths)
    grid = np.full((len(lengths), len(widths)), np.nan)
    diverged = np.zeros_like(grid, dtype=bool)
    for i, t in enumerate(lengths):
        for k, w in enumerate(widths):
            runs = [lookup(cell(c, w, t, s)) for s in range(c.seeds)]
            finite = [r["final"]["deviation"] for r in runs if ok(r) and r["final"]["deviation"] is not None]
            diverged[i, k] = len(finite) < len(runs)
            grid[i, k] = np.mean(finite) if finite else np.nan
    # Inside the regime the deviation should be c·T/√n. c is read off the narrowest width and must
    # then bound every wider network; a deviation that fell slower than n^{-1/2} would exceed it at large n.
    inside = [(t, w, grid[i, k]) for i, t in enumerate(lengths) for k, w in enumerate(widths)
              if t <= math.sqrt(w) and np.isfinite(grid[i, k]) and grid[i, k] > 0]
    scaled = [(t, w, d * math.sqrt(w) / t) for t, w, d in inside]
    calibration = [x for x in scaled if x[1] == widths[0]]
    tested = [x for x in scaled if x[1] > widths[0]]
    c_value = DEVIATION_SPREAD * float(np.mean([x[2] for x in calibration])) if calibration else math.nan
    worst = max(tested, key=lambda x: x[2]) if tested else (None, None, math.nan)
    slope = (float(np.polyfit(np.log([w for _, w, _ in inside]), np.log([d / t for t, _, d in inside]), 1)[0])
             if len({w for _, w, _ in inside}) > 1 else math.nan)
    outside = [{"length": t, "width": w} for i, t in enumerate(lengths) for k, w in enumerate(widths)
               if t > math.sqrt(w) and (diverged[i, k] or not np.isfinite(grid[i, k]) or grid[i, k] > 0.5)]
    setting = (f"teacher {c.teacher}, σ_W = {c.sigma_w:g}, max(2, T/2) samples, {c.steps} gd steps at the kernel's "
               f"step, centered, {c.seeds} seeds")
    return Regime(setting, widths, lengths, grid.tolist(), diverged.tolist(),
                  {str(t): loglog_slope(widths, grid[i]) for i, t in enumerate(lengths)}, c_value, slope,
                  {"length": worst[0], "width": worst[1], "value": worst[2]},
                  [{"length": t, "width": w, "value": v} for t, w, v in scaled], outside,
                  int(sum(diverged[i, k] for i, t in enumerate(lengths) for k, w in enumerate(widths)
                          if t <= math.sqrt(w))))


def claims(c: Config, n: Regime) -> list:
    worst, c_value = n.largest_deviation_sqrt_n_over_T_tested, n.c_from_narrowest_width
    slope = n.pooled_slope_inside
    return [
        Claim("deviation_scales_as_T_over_sqrt_n", f"inside the kernel regime (T ≤ √n) the deviation is at most "
              f"c·T/√n, with c = {fmt(c_value)} = {DEVIATION_SPREAD:g} × the mean of deviation·√n/T at the "
              f"narrowest width (n = {n.widths[0]}): largest deviation·√n/T at the wider widths", worst["value"],
              f"≤ c = {fmt(c_value)}", worst["width"] is not None and worst["value"] <= c_value,
              "F7/result.json: numbers.deviation_sqrt_n_over_T_inside"),
        Claim("deviation_slope_in_width", "inside the kernel regime, log(deviation/T) falls with log n at slope "
              "−1/2 (least squares over all cells with T ≤ √n)", slope, "−0.5 ± 0.15",
              slope is not None and np.isfinite(slope) and abs(slope - SLOPE) <= SLOPE_TOLERANCE,
              "F7/result.json: numbers.pooled_slope_inside"),
        Claim("no_divergence_inside_kernel_regime", "no run with T ≤ √n diverged at the kernel's step",
              n.diverged_inside, "0 runs", n.diverged_inside == 0, "F7/result.json: numbers.diverged"),
    ]


def _edges(v):
    mid = (v[1:] + v[:-1]) / 2 if len(v) > 1 else np.array([])
    return np.concatenate([[v[0] - (mid[0] - v[0] if len(mid) else 0.5)], mid,
                           [v[-1] + (v[-1] - mid[-1] if len(mid) else 0.5)]])


def plot(c: Config, n: Regime):
    grid = np.array([[np.nan if v is None else v for v in row] for row in n.mean_deviation], dtype=float)
    diverged = np.array(n.diverged, dtype=bool)
    fig, axes = style.figure(ncols=1, height=2.9)
    ax = axes[0][0]
    xs, ys = np.log2(n.widths), np.log2(n.lengths)
    positive = grid[np.isfinite(grid) & (grid > 0)]
    norm = LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 10)) if positive.size else None
    mesh = ax.pcolormesh(_edges(xs), _edges(ys), np.ma.masked_invalid(np.where(grid > 0, grid, np.nan)),
                         cmap=style.SEQUENTIAL, norm=norm, shading="flat")
    ax.set_facecolor("0.92")  # diverged cells show the background
    for i in range(len(n.lengths)):
        for k in range(len(n.widths)):
            value = grid[i, k]
            text = "div." if not np.isfinite(value) else f"{value:.2g}" + ("*" if diverged[i, k] else "")
            dark = norm is not None and np.isfinite(value) and value > 0 and norm(value) < 0.55
            ax.text(xs[k], ys[i], text, ha="center", va="center", fontsize=6, color="white" if dark else "black")
    line = np.linspace(_edges(xs)[0], _edges(xs)[-1], 50)
    ax.plot(line, line / 2, color=style.PALETTE[1], lw=1.8, label=r"$T=\sqrt{n}$")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, borderaxespad=0.2,
              handles=[ax.lines[-1], Patch(facecolor="0.92", edgecolor="0.6", label="diverged (div.)")])
    ax.set_xlim(_edges(xs)[0], _edges(xs)[-1])
    ax.set_ylim(_edges(ys)[0], _edges(ys)[-1])
    ax.set_xticks(xs, [str(w) for w in n.widths])
    ax.set_yticks(ys, [str(t) for t in n.lengths])
    ax.grid(False)
    ax.set_xlabel("width $n$")
    ax.set_ylabel("sequence length $T$")
    fig.colorbar(mesh, ax=ax, label=r"deviation $\|L_{\mathrm{RNN}}-L_{\mathrm{conv}}\|\,/\,\|L_{\mathrm{conv}}-L(0)\|$")
    return fig


def describe(n: Regime) -> str:
    m = n.largest_deviation_sqrt_n_over_T_tested
    slopes = ", ".join(f"T = {t}: {fmt(s)}" for t, s in n.slope_in_width_by_length.items())
    broken = ", ".join(f"(n = {b['width']}, T = {b['length']})" for b in n.outside_broken) or "none"
    return (f"Setting: {n.setting}. Colour and numbers: mean over seeds of the final relative deviation "
            "‖L_RNN − L_conv‖/‖L_conv − L(0)‖ of the trained RNN from the scaled convolution; 'div.' marks cells "
            "where every run diverged at the kernel's step, '*' cells where some did (the mean is over the rest). "
            "Below the line T = √n the kernel picture is expected to hold. There the deviation behaves like "
            f"c·T/√n: c = {fmt(n.c_from_narrowest_width)} (twice the mean of deviation·√n/T at the narrowest "
            f"width), and at wider widths deviation·√n/T reaches at most {fmt(m['value'])} (T = {m['length']}, "
            f"n = {m['width']}); a least-squares fit of log(deviation/T) against log n gives slope "
            f"{fmt(n.pooled_slope_inside)}. Slope in n at each fixed T: {slopes}. Above the line, runs that "
            f"diverged or deviate by more than 0.5: {broken}.")


F7 = Experiment("F7", "Where the kernel regime holds", "linear", SCALES, Regime, cells, analyze, claims, plot, describe,
                kinds={"train": TRAIN})
