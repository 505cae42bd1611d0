"""F4 and F5: bias and variance on white-noise teachers of short to long memory.

F5 plots the test error against σ_W: theory (the exact infinite-width expectation of kernel
gradient descent over the random initial function, on the same training sets as the networks)
and trained RNNs, centered and uncentered. F4 shows the learned impulse responses of some of
F5's runs against the teacher. The theory is a cell too (kind 'bv-theory', one curve per teacher
and centering), so a figure is redrawn without recomputing it.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from matplotlib.lines import Line2D

from derivations.spec import DEFAULT_SIGMAS, Spec

from ... import style
from ...data.problem import WhiteNoise
from ...data.teachers import parse_teacher
from ...kernels.theory import expected_curves, propagator, theory_initial_variance, theory_lag_weights, theory_step
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt
from ...stats import first_best, mean_se, ok
from .common import CELL_VERSION, SPEC, TRAIN, sigma_grid, teacher_label, teacher_norm, training_cell

THEORY_RECONSTRUCTION = 1e-6  # the expectation's centered runs against compare_training's closed form
TEST_SAMPLES = 500


@dataclasses.dataclass(frozen=True)
class Config:
    teachers: tuple = ("decay:0.5", "decay:0.8", "decay:0.95", "delay:8")
    width: int = 128
    sigma_ws: tuple = (0.3, 0.5, 0.7, 0.85, 1.0)
    seeds: int = 3
    steps: int = 100
    samples: int = 16
    length: int = 32
    theory_points: int = 25  # σ_W grid of the theory curves
    dtype: str = "float64"


SCALES = {"quick": Config(),
          "full": Config(width=1024, sigma_ws=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0), seeds=8,
                         steps=400, theory_points=41),
          "tiny": Config(teachers=("decay:0.5", "decay:0.8", "decay:0.95", "delay:3"), width=16,
                         sigma_ws=(0.3, 0.7, 1.0), seeds=2, steps=5, samples=4, length=8, theory_points=5)}


def cell(c: Config, teacher: str, sigma_w: float, center: bool, seed: int) -> dict:
    return training_cell(teacher=teacher, width=c.width, sigma_w=sigma_w, length=c.length, samples=c.samples,
                         steps=c.steps, center=center, seed=seed, dtype=c.dtype)


def theory_cell(c: Config, teacher: str, center: bool) -> dict:
    """The infinite-width expected test error at every σ_W of the fine grid and of the sweep."""
    grid = sorted(set(sigma_grid(c.sigma_ws, c.theory_points)) | {float(s) for s in c.sigma_ws})
    return {"kind": "bv-theory", "version": CELL_VERSION, "spec": SPEC.to_dict(), "sigmas": dict(DEFAULT_SIGMAS),
            "teacher": teacher, "center": center, "sigma_ws": grid, "length": c.length, "samples": c.samples,
            "test_samples": TEST_SAMPLES, "steps": c.steps, "seeds": c.seeds, "dtype": c.dtype}


def cells_f5(c: Config) -> list:
    return ([cell(c, t, sw, center, s) for t in c.teachers for center in (True, False) for sw in c.sigma_ws
             for s in range(c.seeds)] + [theory_cell(c, t, center) for t in c.teachers for center in (True, False)])


def compute_theory(cells: list, device: str, context=None) -> list:
    """Cells of kind 'bv-theory': E‖L(t) − L*‖² at the last step per σ_W and data seed. The inputs,
    the step and the propagator A_t do not depend on the teacher, so one serves every teacher."""
    shared, out = {}, []
    for c in cells:
        spec, values = Spec.from_dict(c["spec"]), []
        for sw in c["sigma_ws"]:
            per_seed = []
            for seed in range(c["seeds"]):
                problem = WhiteNoise(c["teacher"], c["samples"], c["length"], "seq2one",
                                     c["test_samples"]).problem(seed, c["dtype"], device)
                key = (sw, seed, c["length"], c["samples"], c["steps"], c["dtype"], c["spec"]["param"])
                if key not in shared:
                    s = {"W": sw, **c["sigmas"]}
                    alpha = theory_lag_weights(spec, c["length"], s)
                    lr = theory_step(problem.X, torch.as_tensor(alpha))
                    shared[key] = (alpha, theory_initial_variance(spec, c["length"], s), lr,
                                   propagator(problem.X, torch.as_tensor(alpha), lr, c["steps"])[-1:])
                alpha, variance, lr, A = shared[key]
                curves = expected_curves(problem, alpha, variance, lr, c["steps"], c["center"], final_only=True, A=A)
                per_seed.append(float(curves["test_error"][-1]))
            values.append(per_seed)
        out.append({"sigma_ws": c["sigma_ws"], "per_seed": values, "mean": [float(np.mean(v)) for v in values]})
    return out


# ------------------------------------------------------------------------------------------ F5

@dataclasses.dataclass
class BiasVariance:
    setting: str
    width: int
    teachers: list
    curves: dict  # 'centered' | 'uncentered' → teacher → RNN points, theory points and curve, best σ_W
    theory_reconstruction: float
    decays: list
    best_theory_by_memory: list
    best_rnn_by_memory: list
    best_uncentered_centered: dict  # teacher → [best σ_W uncentered, centered] (theory)


def analyze_f5(c: Config, lookup: Lookup) -> BiasVariance:
    curves, best, reconstruction = {}, {}, []
    for center in (True, False):
        label = "centered" if center else "uncentered"
        for teacher in c.teachers:
            norm = teacher_norm(teacher, c.length)
            theory = lookup(theory_cell(c, teacher, center))
            at = {sw: (m, per_seed) for sw, m, per_seed in zip(theory["sigma_ws"], theory["mean"], theory["per_seed"])}
            fine = sigma_grid(c.sigma_ws, c.theory_points)
            curve = [at[sw][0] / norm for sw in fine]
            rnn, rnn_se, points, closed = [], [], [], []
            for sw in c.sigma_ws:
                runs = [lookup(cell(c, teacher, sw, center, s)) for s in range(c.seeds)]
                m, se = mean_se([r["final"]["test_error_rnn"] / norm for r in runs if ok(r)])
                rnn.append(m)
                rnn_se.append(se)
                points.append(at[float(sw)][0] / norm)
                closed.append(mean_se([r["final"]["test_error_closed_form"] / norm for r in runs if ok(r)])[0])
                if center:  # the centered expectation is the closed form itself, run for run
                    reconstruction += [abs(v / r["final"]["test_error_closed_form"] - 1)
                                       for r, v in zip(runs, at[float(sw)][1]) if ok(r)]
            best[(teacher, center)] = {"theory": first_best(fine, curve), "rnn": first_best(c.sigma_ws, rnn)}
            curves.setdefault(label, {})[teacher] = {
                "sigma_ws": list(c.sigma_ws), "relative_test_error_rnn": rnn, "rnn_se": rnn_se,
                "relative_test_error_theory": points, "relative_test_error_closed_form_same_init": closed,
                "best_sigma_w_theory": best[(teacher, center)]["theory"],
                "best_sigma_w_rnn_grid": best[(teacher, center)]["rnn"],
                "theory_curve": {"sigma_ws": fine, "relative_test_error": curve}}
    decays = sorted((t for t in c.teachers if t.startswith("decay:")), key=lambda t: float(t.split(":")[1]))
    setting = (f"n = {c.width}, T = {c.length}, {c.samples} samples, {c.steps} gd steps at the kernel's step, "
               f"{c.seeds} seeds")
    return BiasVariance(setting, c.width, list(c.teachers), curves,
                        max(reconstruction) if reconstruction else math.nan, decays,
                        [best[(t, True)]["theory"] for t in decays], [best[(t, True)]["rnn"] for t in decays],
                        {t: [best[(t, False)]["theory"], best[(t, True)]["theory"]] for t in c.teachers})


def claims_f5(c: Config, n: BiasVariance) -> list:
    return [
        Claim("theory_reconstruction", "the expectation's centered test error equals compare_training's closed form, "
              "run for run (same data seeds)", n.theory_reconstruction, f"≤ {THEORY_RECONSTRUCTION:g} relative",
              n.theory_reconstruction <= THEORY_RECONSTRUCTION, "F5/result.json + train cells"),
        Claim("best_sigma_grows_with_memory_theory", "theory (centered): the best σ_W grows with the teacher's memory "
              f"({', '.join(n.decays)})", n.best_theory_by_memory, "strictly increasing",
              all(np.diff(n.best_theory_by_memory) > 0), "F5/result.json: numbers.curves.centered.*.best_sigma_w_theory"),
        Claim("best_sigma_grows_with_memory_rnn", f"trained RNNs at n = {n.width} (centered): the best σ_W on "
              "the grid does not decrease with the teacher's memory", n.best_rnn_by_memory, "non-decreasing",
              all(np.diff(n.best_rnn_by_memory) >= 0), "F5/result.json: numbers.curves.centered.*.best_sigma_w_rnn_grid"),
        Claim("initial_function_lowers_best_sigma", "theory: the variance of the random initial function moves the "
              "best σ_W down (uncentered ≤ centered) for every teacher", n.best_uncentered_centered,
              "uncentered ≤ centered", all(u <= c for u, c in n.best_uncentered_centered.values()),
              "F5/result.json: numbers.curves.*.*.best_sigma_w_theory"),
    ]


def plot_f5(c: Config, n: BiasVariance):
    fig, axes = style.figure(ncols=2, height=2.8)
    for p, label in enumerate(("centered", "uncentered")):
        ax = axes[0][p]
        for k, teacher in enumerate(n.teachers):
            v, color = n.curves[label][teacher], style.PALETTE[k]
            ax.plot(v["theory_curve"]["sigma_ws"], v["theory_curve"]["relative_test_error"], color=color, lw=1.2)
            ax.errorbar(v["sigma_ws"], v["relative_test_error_rnn"], yerr=v["rnn_se"], fmt=style.MARKERS[k],
                        color=color, ms=3.2, lw=0.8, capsize=1.5, mfc="white", mew=0.9)
        ax.set_yscale("log")
        ax.set_xlabel(r"$\sigma_W$")
        ax.set_ylabel(r"test error $\|L-L^*\|^2/\|L^*\|^2$")
        ax.set_title(label + (" (train $f-f_0$)" if p == 0 else r" (random $L(0)$)"), fontsize=8)
        style.panel_label(ax, "ab"[p])
    handles = [Line2D([], [], color=style.PALETTE[k], marker=style.MARKERS[k], mfc="white", ms=3.5,
                      label=teacher_label(t)) for k, t in enumerate(n.teachers)]
    handles += [Line2D([], [], color="0.3", lw=1.2, label=r"theory ($n\to\infty$)"),
                Line2D([], [], color="0.3", ls="", marker="o", mfc="white", label=f"RNN, $n={n.width}$ (±SE)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


def describe_f5(n: BiasVariance) -> str:
    parts, ratios = [], []
    for label in ("centered", "uncentered"):
        best = ", ".join(f"{t}: {fmt(v['best_sigma_w_theory'])} (RNN grid {fmt(v['best_sigma_w_rnn_grid'])})"
                         for t, v in n.curves[label].items())
        parts.append(f"{label}: {best}")
        for t, v in n.curves[label].items():
            ratios += [(r / th, label, t, sw) for sw, r, th in zip(v["sigma_ws"], v["relative_test_error_rnn"],
                                                                   v["relative_test_error_theory"]) if r is not None and th]
    spread = ""
    if ratios:
        lo, hi = min(ratios), max(ratios)
        spread = (f" Across all points the RNN's error ranges from {lo[0]:.2f}× the theory ({lo[1]}, {lo[2]}, σ_W = "
                  f"{lo[3]:g}) to {hi[0]:.2f}× ({hi[1]}, {hi[2]}, σ_W = {hi[3]:g}).")
    return (f"Setting: {n.setting}. Relative test error ‖L − L*‖²/‖L*‖² at the last step. Lines: the exact "
            "infinite-width expectation of kernel gradient descent over the random initial function, averaged "
            "over the same training sets as the networks; markers: trained RNNs, mean ± standard error over seeds. "
            "Small σ_W under-fits long memory (bias); large σ_W adds the variance of the random initial function "
            "in the uncentered runs. Best σ_W (theory, fine grid): " + "; ".join(parts) + "." + spread)


# ------------------------------------------------------------------------------------------ F4

def f4_teachers(c: Config) -> list:
    """A decaying teacher of middle memory and a delay, when the sweep has them."""
    decays = sorted((t for t in c.teachers if t.startswith("decay:")), key=lambda t: float(t.split(":")[1]))
    delays = [t for t in c.teachers if t.startswith("delay:")]
    chosen = ([decays[len(decays) // 2]] if decays else []) + delays[:1]
    return chosen or list(c.teachers[:2])


def f4_sigma_ws(c: Config) -> list:
    grid = list(c.sigma_ws)
    return sorted({grid[0], grid[len(grid) // 2], grid[-1]})


def cells_f4(c: Config) -> list:
    return [cell(c, t, sw, True, 0) for t in f4_teachers(c) for sw in c.sigma_ws]


@dataclasses.dataclass
class Responses:
    setting: str
    width: int
    length: int
    sigma_ws: list
    teachers: dict  # teacher → its impulse response L*_j
    responses: dict  # teacher → σ_W → RNN and closed-form responses and test errors (seed 0, centered)


def analyze_f4(c: Config, lookup: Lookup) -> Responses:
    shown, responses = f4_sigma_ws(c), {}
    for teacher in f4_teachers(c):
        responses[teacher] = {}
        for sw in shown:
            result = lookup(cell(c, teacher, sw, True, 0))
            if ok(result):
                responses[teacher][str(sw)] = {
                    "rnn": result["response"]["rnn"], "closed_form": result["response"]["closed_form"],
                    "test_error_rnn": result["final"]["test_error_rnn"],
                    "test_error_closed_form": result["final"]["test_error_closed_form"]}
    setting = f"centered, n = {c.width}, T = {c.length}, {c.samples} samples, {c.steps} gd steps, seed 0"
    return Responses(setting, c.width, c.length, shown,
                     {t: parse_teacher(t, c.length).tolist() for t in f4_teachers(c)}, responses)


def plot_f4(c: Config, n: Responses):
    fig, axes = style.figure(ncols=len(n.teachers), height=2.6)
    lags = np.arange(n.length)
    for p, (ax, teacher) in enumerate(zip(axes[0], n.teachers)):
        ax.bar(lags, n.teachers[teacher], width=0.8, color="0.85", label=r"teacher $L^*_j$")
        for k, sw in enumerate(n.sigma_ws):
            if str(sw) not in n.responses[teacher]:
                continue
            run, color = n.responses[teacher][str(sw)], style.PALETTE[k]
            ax.plot(lags, run["closed_form"], color=color, lw=1.2)
            ax.plot(lags, run["rnn"], style.MARKERS[k], color=color, ms=2.8, mfc="white", mew=0.8)
        ax.set_xlabel("lag $j$")
        ax.set_ylabel("impulse response $L_j$")
        ax.set_title(f"teacher {teacher_label(teacher)}", fontsize=8)
        style.panel_label(ax, "ab"[p])
    handles = [Line2D([], [], color=style.PALETTE[k], marker=style.MARKERS[k], mfc="white", ms=3,
                      label=rf"$\sigma_W={sw:g}$") for k, sw in enumerate(n.sigma_ws)]
    handles += [Line2D([], [], color="0.3", lw=1.2, label="closed form ($n\\to\\infty$)"),
                Line2D([], [], color="0.3", ls="", marker="o", mfc="white", ms=3, label=f"RNN, $n={n.width}$"),
                Line2D([], [], color="0.85", lw=5, label=r"teacher $L^*_j$")]
    axes[0][-1].legend(handles=handles, loc="upper right")
    return fig


def describe_f4(n: Responses) -> str:
    parts = []
    for teacher, by_sigma in n.responses.items():
        errs = ", ".join(f"σ_W = {s}: RNN {fmt(v['test_error_rnn'])} vs closed form {fmt(v['test_error_closed_form'])}"
                         for s, v in by_sigma.items())
        parts.append(f"{teacher}: {errs}")
    return (f"Setting: {n.setting}. Grey bars: the teacher. Lines: the infinite-width closed form; markers: the "
            "trained RNN. Small σ_W puts the learned response on the first lags, whatever the teacher (short-memory "
            "bias); large σ_W lets it reach the delay. Test error ‖L − L*‖²: " + "; ".join(parts) + ".")


KINDS = {"train": TRAIN, "bv-theory": Kind(compute_theory, lambda cell: ("bv-theory", cell["length"]))}
F4 = Experiment("F4", "Learned impulse responses", "linear", SCALES, Responses, cells_f4, analyze_f4,
                lambda c, n: [], plot_f4, describe_f4, kinds=KINDS)
F5 = Experiment("F5", "Bias–variance: test error against σ_W", "linear", SCALES, BiasVariance, cells_f5, analyze_f5,
                claims_f5, plot_f5, describe_f5, kinds=KINDS)
