"""P3 and P4: the dynamics of the trained PLRNNs of P1 (their cells; nothing is trained again).

P3, line attractors: for each trained PLRNN model (rPLRNN, PLRNN, iPLRNN among P1's models) at the
longest T of the addition problem, the linear regions its states visit on test sequences
(`numerics.plrnn.regions.visited_regions`), each region's Jacobian A + W D and its eigenvalues, and the
fixed points z* = (I − A − W D)⁻¹ h of those regions that lie in their own region
(`numerics.plrnn.regions.fixed_points`). The statistic min over a Jacobian's eigenvalues of ||λ| − 1|
(`min_unit_circle_distance`) is the public code's (≈ 0.001 for rPLRNN against 0.13 for PLRNN at its
fixed points, docs/theory.md). A trained rPLRNN's regularized units make I − A − W D nearly singular
(a line attractor has no isolated fixed point), so its fixed points are rarely consistent; the
claim therefore reads the statistic over the visited regions' Jacobians (the median per run, the
mean over seeds), and the fixed points are counted beside it.

R3, the reconstruction models (R1's PLRNN cells): the same statistics for PLRNNs trained to
reconstruct a dynamical system, from the states their free runs visit.

P4, Jacobian products: ‖J_{T−1} ⋯ J_t‖₂ along the first test sequence's trajectory against the
distance T − t (`jacobian_products`), with the derived bounds (`product_bounds`): the stepwise
bound ∏‖J_s‖₂ (always valid), and for the rPLRNN the lower bound 1 and the block bound, whose
hypotheses (A_ii = 1, W rows 0 on the regularized units) a trained model meets only to within its
`regularization_violation`, reported with it.
"""
from __future__ import annotations

import collections
import dataclasses
import math

import numpy as np

from ... import style
from ...pipeline.experiment import Claim, Experiment, Lookup, fmt
from . import reconstruction
from .long_range import COLORS, LABELS, SCALES, TRAIN, Config, cell

PLRNN_MODELS = ("rplrnn", "plrnn", "iplrnn")
TASK = "addition"
FACTOR = 0.1  # claim: rPLRNN's distance to the unit circle is below FACTOR × PLRNN's (released: 0.001 vs 0.13)


def _models(c: Config) -> list:
    return [m for m in PLRNN_MODELS if m in c.models]


def cells(c: Config) -> list:
    T = max(c.lengths)
    return [cell(c, TASK, T, m, s) for m in _models(c) for s in range(c.seeds)]


def _results(c: Config, lookup: Lookup) -> dict:
    T = max(c.lengths)
    return {m: [lookup(cell(c, TASK, T, m, s)) for s in range(c.seeds)] for m in _models(c)}


def _regularized(c: Config, model: str, hidden: int) -> int:
    return math.floor(round(hidden * c.p, 9)) if model == "rplrnn" else 0


# ---------------------------------------------------------------- P3


@dataclasses.dataclass
class Attractors:
    T: int
    models: list
    runs: dict  # model → [{"regions", "region_distance", "fixed_points", "fixed_point_distance", "eigenvalues"}]
    distance: dict  # model → mean over runs of the median region distance


def line_attractors(result: dict) -> dict:
    """The P3 statistics of one trained PLRNN (module docstring)."""
    from ...plrnn import regions as plrnn

    par = result["parameters"]
    A, W, h = (np.asarray(par[k]) for k in ("A", "W", "h"))
    regions = plrnn.visited_regions(np.asarray(result["states"]))
    spectra = [np.linalg.eigvals(plrnn.region_jacobian(A, W, d)) for d in regions]
    distances = [plrnn.min_unit_circle_distance(e) for e in spectra]
    points = plrnn.fixed_points(A, W, h, regions)
    counts = collections.Counter(plrnn.region_of(z) for z in np.asarray(result["states"]))
    common = regions.index(counts.most_common(1)[0][0])
    shown = points[0].eigenvalues if points else spectra[common]
    return {"regions": len(regions), "region_distance": float(np.median(distances)), "fixed_points": len(points),
            "fixed_point_distance": (float(np.mean([plrnn.min_unit_circle_distance(p.eigenvalues) for p in points]))
                                     if points else None),
            "eigenvalues": [[float(v.real), float(v.imag)] for v in np.asarray(shown)],
            "shown": "fixed point" if points else "most common region"}


def analyze_attractors(c: Config, lookup: Lookup) -> Attractors:
    runs = {m: [dict(line_attractors(r), seed=s) for s, r in enumerate(results) if r.get("status") != "diverged"]
            for m, results in _results(c, lookup).items()}
    distance = {m: float(np.mean([r["region_distance"] for r in rs])) if rs else None for m, rs in runs.items()}
    return Attractors(max(c.lengths), list(runs), runs, distance)


def attractor_claims(c: Config, n: Attractors) -> list:
    r, p = n.distance.get("rplrnn"), n.distance.get("plrnn")
    if r is None or p is None:
        return []
    return [Claim("rplrnn_line_attractors", f"the trained rPLRNN's Jacobians have an eigenvalue on the unit circle "
                  f"(line attractors), the PLRNN's do not: median min ||λ| − 1| over visited regions, rPLRNN vs PLRNN "
                  f"(addition, T = {n.T}; released at fixed points: 0.001 vs 0.13)", [r, p], f"rPLRNN < {FACTOR:g} × PLRNN",
                  r < FACTOR * p, "P3/result.json: numbers.distance")]


def eigenvalue_panel(ax, runs: list, model: str, title: str, letter: str) -> None:
    """The eigenvalues `line_attractors` shows for each run (one marker per seed) on the unit circle."""
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
    ax.plot(circle.real, circle.imag, color="0.6", lw=0.8)
    for run in runs:
        values = np.array(run["eigenvalues"]).reshape(-1, 2)
        ax.scatter(values[:, 0], values[:, 1], s=9, color=COLORS[model], alpha=0.7, marker="os^v"[run["seed"] % 4],
                   label=f"seed {run['seed']} ({run['shown']}; {run['fixed_points']} fixed "
                         f"point{'' if run['fixed_points'] == 1 else 's'})")
    ax.set_aspect("equal")
    ax.set_xlabel(r"Re $\lambda$")
    ax.set_ylabel(r"Im $\lambda$")
    ax.set_title(title, loc="right", fontsize=8)
    ax.legend(loc="lower left", fontsize=6)
    style.panel_label(ax, letter)


def plot_attractors(c: Config, n: Attractors):
    fig, axes = style.figure(ncols=len(n.models), height=2.8)
    for k, model in enumerate(n.models):
        eigenvalue_panel(axes[0, k], n.runs[model], model, LABELS[model], chr(ord("a") + k))
        axes[0, k].text(0.5, 0.8, f"median min$||\\lambda|-1|$\n= {fmt(n.distance[model], 2)}",
                        transform=axes[0, k].transAxes, ha="center", fontsize=8)
    return fig


def describe_attractors(n: Attractors) -> str:
    text = (f"Eigenvalues of A + W D of the trained PLRNN models (addition, T = {n.T}) at a consistent fixed point where "
            "one exists among the regions the test states visit, else in the most visited region; unit circle grey. ")
    for m in n.models:
        runs = n.runs[m]
        text += (f"{LABELS[m]}: median min ||λ| − 1| over visited regions {fmt(n.distance[m], 3)} (mean over "
                 f"{len(runs)} runs), {sum(r['regions'] for r in runs)} regions visited, "
                 f"{sum(r['fixed_points'] for r in runs)} consistent fixed points. ")
    return text


P3 = Experiment("P3", "Line attractors: eigenvalues of the trained PLRNNs", "plrnn", SCALES, Attractors, cells,
                analyze_attractors, attractor_claims, plot_attractors, describe_attractors, kinds={"plrnn-train": TRAIN})


# ---------------------------------------------------------------- P4


@dataclasses.dataclass
class Products:
    T: int
    models: list
    distance: list  # T − t, 1 … T
    norms: dict  # model → [per run: ‖J_{T−1}⋯J_t‖₂ by distance]
    stepwise: dict  # model → [per run: ∏‖J_s‖₂ by distance]
    block: dict  # rplrnn → [per run: the block bound by distance]
    violation: dict  # model → [per run: regularization_violation of its regularized units]


def analyze_products(c: Config, lookup: Lookup) -> Products:
    from ...plrnn import regions as plrnn

    norms, stepwise, block, violation = {}, {}, {}, {}
    for model, results in _results(c, lookup).items():
        for r in results:
            if r.get("status") == "diverged":
                continue
            A, W = (np.asarray(r["parameters"][k]) for k in ("A", "W"))
            states = np.asarray(r["trajectory"])[:-1]  # z_0 … z_{T−1}: the states the map acts on
            n_reg = _regularized(c, model, A.size)
            off = plrnn.regularization_violation(A, W, n_reg)
            bounds = plrnn.product_bounds(A, W, states, n_reg, atol=off)
            norms.setdefault(model, []).append(plrnn.jacobian_products(A, W, states)[::-1].tolist())
            stepwise.setdefault(model, []).append(bounds.stepwise[::-1].tolist())
            violation.setdefault(model, []).append(off)
            if bounds.block is not None:
                block.setdefault(model, []).append(bounds.block[::-1].tolist())
    T = max(c.lengths)
    return Products(T, list(norms), list(range(1, T + 1)), norms, stepwise, block, violation)


def product_claims(c: Config, n: Products) -> list:
    out = []
    # (bound − norm) / max(1, bound) per entry: rounding allows −1e-9, nothing more
    above = [(b - v) / max(1.0, b) for m in n.models for run_n, run_b in zip(n.norms[m], n.stepwise[m])
             for v, b in zip(run_n, run_b)]
    if above:
        out.append(Claim("products_below_stepwise_bound", "every measured Jacobian-product norm is at most its derived "
                         "stepwise bound ∏‖J_s‖₂: smallest (bound − norm) / max(1, bound)", min(above), "≥ −1e-9",
                         min(above) >= -1e-9, "P4/result.json: numbers"))
    if "rplrnn" in n.norms and "plrnn" in n.norms:
        r = float(np.exp(np.mean([np.log(run[-1]) for run in n.norms["rplrnn"]])))
        p = float(np.exp(np.mean([np.log(max(run[-1], 1e-300)) for run in n.norms["plrnn"]])))
        out.append(Claim("rplrnn_gradients_do_not_vanish", f"over the whole sequence (T − t = {n.T}) the rPLRNN's "
                         "Jacobian product keeps norm ≥ 1/2 (derived lower bound 1 under exact regularization) while "
                         "the PLRNN's is smaller: geometric means over seeds, rPLRNN vs PLRNN", [r, p],
                         "rPLRNN ≥ 0.5, PLRNN below it", r >= 0.5 and p < r, "P4/result.json: numbers.norms"))
    return out


def plot_products(c: Config, n: Products):
    fig, axes = style.figure(ncols=1, height=3.0)
    ax = axes[0, 0]
    for model in n.models:
        for s, run in enumerate(n.norms[model]):
            ax.semilogy(n.distance, np.maximum(run, 1e-300), color=COLORS[model], lw=1.2,
                        label=LABELS[model] if s == 0 else None)
            ax.semilogy(n.distance, n.stepwise[model][s], color=COLORS[model], lw=0.8, ls=":",
                        label=r"$\prod_s\|J_s\|_2$ bound" if s == 0 and model == n.models[0] else None)
        for s, run in enumerate(n.block.get(model, [])):
            ax.semilogy(n.distance, run, color=COLORS[model], lw=0.8, ls="--",
                        label="block bound (rPLRNN)" if s == 0 else None)
    ax.axhline(1.0, color="0.5", lw=0.8, ls="-.", label="lower bound 1 (exact regularization)")
    ax.set_xlabel("distance T − t (steps)")
    ax.set_ylabel(r"$\|J_{T-1}\cdots J_t\|_2$")
    ax.set_title(f"addition, T = {n.T}, first test sequence", loc="right")
    ax.legend(loc="lower left", fontsize=7)
    return fig


def describe_products(n: Products) -> str:
    text = (f"Norm of the Jacobian product ∂z_T/∂z_t along the first test sequence of the addition problem (T = {n.T}) "
            "against the distance T − t, one line per seed; dotted: the stepwise bound ∏‖J_s‖₂; dashed: the derived "
            "block bound of the regularized model; dash-dotted: its lower bound 1. ")
    for m in n.models:
        text += f"{LABELS[m]}: at distance {n.T}, " + ", ".join(fmt(run[-1], 3) for run in n.norms[m]) + ". "
    if "rplrnn" in n.violation:
        text += ("The trained rPLRNN meets the bounds' hypotheses (A_ii = 1, W rows 0) to within "
                 + ", ".join(fmt(v, 2) for v in n.violation["rplrnn"]) + " (per seed), so its bounds hold to that accuracy.")
    return text


P4 = Experiment("P4", "Jacobian products over T against the derived bounds", "plrnn", SCALES, Products, cells,
                analyze_products, product_claims, plot_products, describe_products, kinds={"plrnn-train": TRAIN})


# ---------------------------------------------------------------- R3


@dataclasses.dataclass
class TrainedDynamics:
    systems: list
    models: list
    runs: dict  # system → model → [`analysis.line_attractors` of each seed]


def _plrnn_models(c: reconstruction.Config) -> list:
    return [m for m in c.models if m in ("rplrnn", "plrnn")]


def dynamics_cells(c: reconstruction.Config) -> list:
    return [reconstruction.cell(c, s, m, seed) for s in c.systems for m in _plrnn_models(c) for seed in range(c.seeds)]


def analyze_dynamics(c: reconstruction.Config, lookup: Lookup) -> TrainedDynamics:
    runs = {}
    for s in c.systems:
        runs[s] = {}
        for m in _plrnn_models(c):
            results = [lookup(reconstruction.cell(c, s, m, seed)) for seed in range(c.seeds)]
            runs[s][m] = [dict(line_attractors(r), seed=seed) for seed, r in enumerate(results) if r.get("states")]
    return TrainedDynamics(list(c.systems), _plrnn_models(c), runs)


def plot_dynamics(c: reconstruction.Config, n: TrainedDynamics):
    fig, axes = style.figure(ncols=len(n.models), nrows=len(n.systems), height=2.6)
    for r, system in enumerate(n.systems):
        for k, model in enumerate(n.models):
            eigenvalue_panel(axes[r, k], n.runs[system][model], model, f"{system}: {LABELS[model]}",
                             chr(ord("a") + r * len(n.models) + k))
    return fig


def describe_dynamics(n: TrainedDynamics) -> str:
    text = ("Eigenvalues of A + W D of the PLRNNs trained in R1, at a consistent fixed point among the linear regions "
            "their free runs visit, else in the most visited region; unit circle grey. ")
    for s in n.systems:
        for m in n.models:
            runs = n.runs[s][m]
            text += (f"{s}, {LABELS[m]}: median min ||λ| − 1| over visited regions "
                     + ", ".join(fmt(r["region_distance"], 3) for r in runs) + f" (per seed), "
                     f"{sum(r['regions'] for r in runs)} regions, {sum(r['fixed_points'] for r in runs)} fixed points. ")
    return text


def dynamics_claims(c: reconstruction.Config, n: TrainedDynamics) -> list:
    out = []
    for s in n.systems:
        runs = n.runs[s]
        if runs.get("rplrnn") and runs.get("plrnn"):
            r, p = (float(np.mean([x["region_distance"] for x in runs[m]])) for m in ("rplrnn", "plrnn"))
            out.append(Claim(f"rplrnn_line_attractors_{s}", f"the rPLRNN trained on {s} keeps eigenvalues on the unit "
                             "circle (line attractors), the PLRNN does not: median min ||λ| − 1| over visited regions, "
                             "rPLRNN vs PLRNN", [r, p], f"rPLRNN < {FACTOR:g} × PLRNN", r < FACTOR * p,
                             "R3/result.json: numbers.runs"))
    return out


R3 = Experiment("R3", "Fixed points and line attractors of the reconstruction models", "plrnn", reconstruction.SCALES,
                TrainedDynamics, dynamics_cells, analyze_dynamics, dynamics_claims, plot_dynamics, describe_dynamics,
                kinds={"plrnn-reconstruct": reconstruction.RECONSTRUCT})
