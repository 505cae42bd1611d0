"""F3: training dynamics. Train and test loss of the RNN at several widths beside the scaled
convolution and the closed form, all from one initial function, and the final test error of each
width against the kernel's prediction."""
from __future__ import annotations

import dataclasses
import math

from ... import style
from ...errors import NumericsError
from ...pipeline.experiment import Claim, Experiment, Lookup, pct
from ...stats import mean_se, ok
from .common import TRAIN, training_cell

# Tolerances: the widest RNN's test error within 5% of the kernel prediction; the trained scaled
# convolution on the closed form's trajectory to rounding (it is the same gradient descent).
RNN_CLOSED_FORM = 0.05
CONVOLUTION_CLOSED_FORM = 1e-6


@dataclasses.dataclass(frozen=True)
class Config:
    teacher: str = "decay:0.9"
    sigma_w: float = 0.5
    widths: tuple = (64, 128, 256, 512, 1024)
    length: int = 40
    samples: int = 20
    steps: int = 150
    seeds: int = 2
    dtype: str = "float64"


SCALES = {"quick": Config(),
          "full": Config(widths=(256, 512, 1024, 2048, 4096), seeds=4),
          "tiny": Config(widths=(16, 32), length=8, samples=4, steps=5)}


def cell(c: Config, width: int, seed: int) -> dict:
    return training_cell(teacher=c.teacher, width=width, sigma_w=c.sigma_w, length=c.length, samples=c.samples,
                         steps=c.steps, center=True, seed=seed, dtype=c.dtype)


def cells(c: Config) -> list:
    return [cell(c, w, s) for w in c.widths for s in range(c.seeds)]


@dataclasses.dataclass
class Curves:
    setting: str
    curves_seed: int
    step: list
    rnn: dict  # width → {train_loss, test_loss} of seed 0
    convolution: dict
    closed_form: dict
    widths: list  # per width: final test errors over seeds and the gap to the closed form
    convolution_gap: float


def analyze(c: Config, lookup: Lookup) -> Curves:
    first, rnn = None, {}
    for w in c.widths:
        result = lookup(cell(c, w, 0))
        if ok(result):
            first = first or result
            rnn[str(w)] = {k: result["rnn"][k] for k in ("train_loss", "test_loss")}
    if first is None:
        raise NumericsError("every F3 run diverged")
    table, gaps = [], []
    for w in c.widths:
        runs = [r for r in (lookup(cell(c, w, s)) for s in range(c.seeds)) if ok(r)]
        error, se = mean_se([r["final"]["test_error_rnn"] for r in runs])
        closed = mean_se([r["final"]["test_error_closed_form"] for r in runs])[0]
        # per seed (each seed has its own problem and closed form), scaled by n: flat where the gap is a 1/n effect
        scaled = mean_se([w * (r["final"]["test_error_rnn"] / r["final"]["test_error_closed_form"] - 1) for r in runs
                          if r["final"]["test_error_closed_form"]])
        table.append({"width": w, "runs": len(runs), "test_error_rnn": error, "test_error_rnn_se": se,
                      "test_error_closed_form": closed, "deviation": mean_se([r["final"]["deviation"] for r in runs])[0],
                      "relative_gap": error / closed - 1 if closed else math.nan,
                      "scaled_gap": scaled[0], "scaled_gap_se": scaled[1]})
        gaps += [abs(r["final"]["test_error_conv"] / r["final"]["test_error_closed_form"] - 1) for r in runs]
    setting = (f"teacher {c.teacher}, σ_W = {c.sigma_w:g}, T = {c.length}, {c.samples} samples, {c.steps} gd steps "
               "at the kernel's step, centered")
    losses = ("train_loss", "test_loss")
    return Curves(setting, 0, first["step"], rnn, {k: first["convolution"][k] for k in losses},
                  {k: first["closed_form"][k] for k in losses}, table, max(gaps) if gaps else math.nan)


def claims(c: Config, n: Curves) -> list:
    widest, narrowest = n.widths[-1], n.widths[0]
    return [
        Claim("rnn_matches_closed_form_at_largest_width", f"at n = {widest['width']} the RNN's final test error "
              f"‖L − L*‖² (mean of {widest['runs']} seeds) is within 5% of the closed-form kernel prediction",
              widest["relative_gap"], "|gap| ≤ 0.05", abs(widest["relative_gap"]) <= RNN_CLOSED_FORM,
              "F3/result.json: numbers.widths"),
        Claim("rnn_gap_shrinks_with_width", f"the RNN's test-error gap to the kernel shrinks from n = "
              f"{narrowest['width']} to n = {widest['width']} (|gap| at the widest over |gap| at the narrowest)",
              abs(widest["relative_gap"]) / abs(narrowest["relative_gap"]), "< 1",
              abs(widest["relative_gap"]) < abs(narrowest["relative_gap"]), "F3/result.json: numbers.widths"),
        Claim("convolution_is_the_closed_form", "the trained scaled convolution ends at the closed form's test error "
              "(every F3 run; it is the same gradient descent)", n.convolution_gap,
              f"≤ {CONVOLUTION_CLOSED_FORM:g} relative", n.convolution_gap <= CONVOLUTION_CLOSED_FORM,
              "F3 cells: final test_error_conv, test_error_closed_form"),
    ]


def plot(c: Config, n: Curves):
    fig, axes = style.figure(ncols=3, height=2.6)
    colors = style.sequential_colors(len(c.widths))
    for i, w in enumerate(c.widths):
        if str(w) in n.rnn:
            for ax, key in zip(axes[0], ("train_loss", "test_loss")):
                ax.semilogy(n.step, n.rnn[str(w)][key], color=colors[i], lw=1.1, label=f"RNN, $n={w}$")
    for ax, key, label in zip(axes[0], ("train_loss", "test_loss"), ("train loss", "test loss")):
        ax.semilogy(n.step, n.convolution[key], color=style.PALETTE[1], ls="--", lw=1.3, label="scaled convolution")
        ax.semilogy(n.step, n.closed_form[key], color="k", ls=":", lw=1.6, label="closed form")
        ax.set_xlabel("gradient-descent step $t$")
        ax.set_ylabel(label + r" ($\frac{1}{2}$MSE)")
    style.plain_log_ticks(axes[0][1])
    axes[0][0].legend(ncols=1)
    ax = axes[0][2]
    rows = [r for r in n.widths if math.isfinite(r["scaled_gap"])]
    ax.errorbar([r["width"] for r in rows], [r["scaled_gap"] for r in rows],
                yerr=[0 if not math.isfinite(r["scaled_gap_se"]) else r["scaled_gap_se"] for r in rows],
                color=style.PALETTE[0], marker="o", ms=4, capsize=2, lw=1.1, label="mean ± se over seeds")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["width"] for r in rows], [str(r["width"]) for r in rows])
    ax.minorticks_off()
    ax.set_xlabel("width $n$")
    ax.set_ylabel(r"$n\,(\mathrm{RNN}/\mathrm{closed\ form} - 1)$, final test")
    ax.legend()
    for k, ax in enumerate(axes[0]):
        style.panel_label(ax, "abc"[k])
    return fig


def describe(n: Curves) -> str:
    gaps = ", ".join(f"n = {r['width']}: {pct(r['relative_gap'])}" for r in n.widths)
    scaled = ", ".join(f"n = {r['width']}: {r['scaled_gap']:.0f}"
                       + (f" ± {r['scaled_gap_se']:.0f}" if math.isfinite(r["scaled_gap_se"]) else "")
                       for r in n.widths if math.isfinite(r["scaled_gap"]))
    return (f"Setting: {n.setting}; curves of seed {n.curves_seed}. The scaled convolution (dashed) and the "
            f"closed form (dotted) coincide; RNNs of growing width approach them. Final test error ‖L − L*‖² of the "
            f"RNN relative to the closed form (mean over seeds): {gaps}. A negative gap means the finite network "
            "generalizes better than the kernel predicts: it learns more of the teacher's long-memory tail. "
            f"Panel (c), the gap times the width (per seed, mean ± se): {scaled}; it is flat where the gap is a "
            "1/n effect, whose coefficient a finite-width theory would have to predict.")


F3 = Experiment("F3", "Training dynamics: RNN, scaled convolution, closed form", "linear", SCALES, Curves, cells,
                analyze, claims, plot, describe, kinds={"train": TRAIN})
