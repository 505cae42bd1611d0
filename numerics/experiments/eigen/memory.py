"""E3: the memory curve of each initializer of a torch vanilla RNN, derived and measured.

The memory function of a recurrent matrix W is the energy an input k steps back keeps in the
state, M(k) = E‖W^k F‖² / (n σ_F²) → τ((W^k)ᵀ W^k) for F Gaussian and independent of W (docs/theory.md,
"Eigen view (paper 2)"; the derived M is `derivations.modal.memory_function`, the diagonal of the
lag-kernel moment table m′). A cell (kind 'memory-curve') is one freshly initialized `nn.RNN` of
one initializer, width and seed: its recurrent block W from `numerics.models.initializers`, and
W^k F for a Gaussian F with many columns, k < lags.

Each torch initializer is matched to an initializer family of `derivations.families` and its σ_W
(the table `INITS`; `Init.family` and `sigma_w`):

  orthogonal (gain g)       → orthogonal, σ_W = g                    the same law at every width
  identity (gain g, IRNN)   → identity,   σ_W = g                    exact: W = g·I
  nprnn (gain g)            → nprnn,      σ_W = g                    the same law
  spectral (disk, radius ρ) → spectral:modulus=disk, σ_W = ρ          the same law: a normal matrix
                                                                     with the circular law's eigenvalues
  kaiming (normal, tanh)    → gaussian,   σ_W = gain = 5/3           the same law: N(0, (5/3)²/n) entries
  xavier (uniform, gain g)  → gaussian,   σ_W = g·√(2n/(n + n)) = g  a limit law only: iid uniform
        entries of variance g²/n are not Gaussian, but iid entries of variance σ²/n with any law of
        finite moments have the Gaussian's normalized trace moments τ(W^a (W^b)ᵀ) at infinite width
        (the moment method; the same universality that gives them the circular law), so the Gaussian
        rule is xavier's limit.

At matched spectral radius 0.9 every initializer with a gain is scaled to it (orthogonal, identity,
nprnn, spectral, and xavier with gain 0.9); xavier (gain 1) and kaiming are also shown at their own
scale, σ_W = 1 (critical: M(k) = 1) and 5/3 (M(k) = (25/9)^k, explodes).
"""
from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np
import torch
from matplotlib.lines import Line2D
from torch import nn

from derivations.spec import Spec

from ... import style
from ...models.initializers import initialize, recurrent_blocks
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt

CELL_VERSION = 1
RADIUS = 0.9  # the matched spectral radius
# The measured curve's gain per step, (M̂(k)/M(k))^{1/2k}, must be within TOLERANCE/√n of 1 at the largest width:
# M(k) weighs W's top eigenvalues like r^{2k}, and the spectral edge of a finite matrix moves by O(n^{-1/2})
# (circular law; n^{-2/3} for np-RNN's λ_max), so the error of M(k) itself grows with k but the per-step gain's does not.
TOLERANCE = 1.0


@dataclasses.dataclass(frozen=True)
class Init:
    """A torch initializer of the recurrent block and the family whose moment rule is its theory."""

    key: str  # the name in numbers and figures
    name: str  # `numerics.models.initializers.initialize`'s name
    params: tuple = ()  # its parameters, (key, value) pairs
    nonlinearity: str = "tanh"  # the nn.RNN's (kaiming's gain reads it; the IRNN is ReLU)
    family: str = "gaussian"  # the `Spec.init` of the theory
    matched: bool = True  # scaled to RADIUS (False: shown at its own scale)


INITS = (
    Init("orthogonal", "orthogonal", (("gain", RADIUS),), family="orthogonal"),
    Init("identity", "identity", (("gain", RADIUS),), "relu", family="identity"),
    Init("nprnn", "nprnn", (("gain", RADIUS),), family="nprnn"),
    Init("spectral", "spectral", (("modulus", "disk"), ("radius", RADIUS)), family="spectral:modulus=disk"),
    Init("xavier×0.9", "xavier", (("gain", RADIUS),), family="gaussian"),
    Init("xavier", "xavier", (), family="gaussian", matched=False),
    Init("kaiming", "kaiming", (), family="gaussian", matched=False),
)
LABELS = {"orthogonal": "orthogonal", "identity": "identity (IRNN)", "nprnn": "np-RNN",
          "spectral": "spectral (disk, normal)", "xavier×0.9": r"xavier, gain 0.9", "xavier": "xavier",
          "kaiming": "kaiming (tanh)"}


def sigma_w(init: Init, width: int = 2) -> float:
    """σ_W of the matched family: the gain, radius, or (xavier, kaiming) √n × the entries' standard
    deviation as torch draws them — xavier-uniform U(±g√(6/(n+n))) has variance g²·2/(n+n) = g²/n,
    kaiming-normal (fan_in) N(0, gain²/n) with torch's gain of the nonlinearity."""
    params = dict(init.params)
    if init.name == "xavier":
        return params.get("gain", 1.0) * math.sqrt(2 * width / (width + width))
    if init.name == "kaiming":
        return nn.init.calculate_gain(init.nonlinearity)
    return float(params["radius" if init.name == "spectral" else "gain"])


@dataclasses.dataclass(frozen=True)
class Config:
    inits: tuple = INITS
    widths: tuple = (256, 1024)
    seeds: int = 4
    lags: int = 30
    columns: int = 32  # of F
    headline_lag: int = 10  # where the normal and the xavier matrix are compared
    seed: int = 0


SCALES = {"quick": Config(),
          "full": Config(widths=(256, 1024, 2048), seeds=8, lags=40, columns=64),
          "tiny": Config(widths=(32, 64), seeds=2, lags=8, columns=16, headline_lag=4)}


def find(c, key: str) -> Init | None:
    return next((i for i in c.inits if i.key == key), None)


# ------------------------------------------------------------------------------------------ cells

def cell(c: Config, init: Init, width: int, seed: int) -> dict:
    """One freshly initialized nn.RNN: its memory curve for k < lags."""
    return {"kind": "memory-curve", "version": CELL_VERSION, "init": init.name, "params": [list(p) for p in init.params],
            "nonlinearity": init.nonlinearity, "width": width, "lags": c.lags, "columns": c.columns,
            "seed": int(np.random.SeedSequence([c.seed, width, zlib.crc32(init.key.encode()), seed]).generate_state(1)[0])}


def cells(c: Config) -> list:
    return [cell(c, i, w, s) for i in c.inits for w in c.widths for s in range(c.seeds)]


def compute_memory_curves(cells: list, device: str, context=None) -> list:
    """Cells of kind 'memory-curve': ‖W^k F‖²/(n·columns) for k < lags, F with N(0, 1) entries, in
    float64 on the CPU (the block is drawn there in float64 anyway)."""
    out = []
    for c in cells:
        width = c["width"]
        module = nn.RNN(1, width, nonlinearity=c["nonlinearity"], dtype=torch.float64)
        initialize(module, c["init"], seed=c["seed"], **{k: v for k, v in c["params"]})
        W = recurrent_blocks(module)[(0, "h")].clone()
        generator = torch.Generator().manual_seed(c["seed"] + 1)
        X = torch.randn(width, c["columns"], dtype=torch.float64, generator=generator)
        curve = []
        for _ in range(c["lags"]):
            curve.append(float(X.square().sum()) / (width * c["columns"]))
            X = W @ X
        out.append({"memory": curve})
    return out


# ------------------------------------------------------------------------------------------ numbers

@dataclasses.dataclass
class MemoryCurves:
    radius: float
    widths: list
    seeds: int
    lags: int
    inits: list  # keys, in the config's order
    families: dict  # key → {"family", "sigma_w", "matched", "exact"}
    theory: dict  # key → M(k), k < lags
    measured: dict  # key → width → {"mean", "sd"} over seeds
    error: dict  # key → per width: rms over k of M̄(k)/M(k) − 1 (M̄ the mean over seeds)
    step_error: dict  # key → per width: max over 1 ≤ k < lags of |(M̄(k)/M(k))^{1/2k} − 1|
    tolerance: list  # per width: TOLERANCE/√n
    half_life: dict  # key → {"theory", "measured"} (None: no halving before lags)
    headline: dict  # the normal disk matrix against xavier at the same radius


def theory_curve(init: Init, lags: int) -> list:
    """M(k) = τ((W^k)ᵀ W^k) for k < lags, from `derivations.modal.memory_function` (SymPy; main process)."""
    import sympy as sp

    from derivations import modal
    from derivations.moments import family_values
    from derivations.symbols import sigma

    spec = Spec(init=init.family)
    f = sp.lambdify(modal.k, modal.memory_function(spec).subs({sigma["W"]: sigma_w(init), **family_values(spec)}))
    return [float(f(k)) for k in range(lags)]


def theory_half_life(init: Init, lags: int) -> int | None:
    from derivations.modal import memory_half_life

    return memory_half_life(Spec(init=init.family), sigma_w(init), horizon=lags)


def measured_half_life(curve) -> int | None:
    """First k at which the curve has fallen to half its value at k = 0 (None within the curve)."""
    return next((k for k, v in enumerate(curve) if k > 0 and v <= curve[0] / 2), None)


def analyze(c: Config, lookup: Lookup) -> MemoryCurves:
    top = max(c.widths)
    theory, measured, error, step_error, half, families = {}, {}, {}, {}, {}, {}
    per_network = {}
    for init in c.inits:
        theory[init.key] = theory_curve(init, c.lags)
        families[init.key] = {"family": init.family, "sigma_w": sigma_w(init), "matched": init.matched,
                              "exact": init.name != "xavier"}
        t = np.array(theory[init.key])
        measured[init.key], error[init.key], step_error[init.key] = {}, [], []
        for w in c.widths:
            curves = np.array([lookup(cell(c, init, w, s))["memory"] for s in range(c.seeds)])
            mean = curves.mean(0)
            measured[init.key][str(w)] = {"mean": mean.tolist(), "sd": curves.std(0, ddof=1).tolist()}
            error[init.key].append(float(np.sqrt(np.mean((mean / t - 1) ** 2))))
            steps = np.arange(1, c.lags)
            step_error[init.key].append(float(np.max(np.abs((mean[1:] / t[1:]) ** (1 / (2 * steps)) - 1))))
            per_network[(init.key, w)] = curves / t
        half[init.key] = {"theory": theory_half_life(init, c.lags),
                          "measured": measured_half_life(measured[init.key][str(top)]["mean"])}
    tolerance = [TOLERANCE / math.sqrt(w) for w in c.widths]
    return MemoryCurves(RADIUS, list(c.widths), c.seeds, c.lags, [i.key for i in c.inits], families, theory, measured,
                        error, step_error, tolerance, half, _headline(c, theory, per_network))


def _headline(c: Config, theory: dict, per_network: dict) -> dict:
    """M(k) of xavier at radius 0.9 over that of the normal disk matrix at k = headline_lag."""
    if find(c, "spectral") is None or find(c, "xavier×0.9") is None:
        return {}
    j, top = c.headline_lag, max(c.widths)
    ratio = theory["xavier×0.9"][j] / theory["spectral"][j]
    x, s = per_network[("xavier×0.9", top)][:, j], per_network[("spectral", top)][:, j]
    measured = ratio * x.mean() / s.mean()
    relative_se = np.sqrt((x.std(ddof=1) / x.mean()) ** 2 / len(x) + (s.std(ddof=1) / s.mean()) ** 2 / len(s))
    return {"lag": j, "width": top, "xavier": theory["xavier×0.9"][j], "normal": theory["spectral"][j],
            "ratio_theory": float(ratio), "ratio_measured": float(measured), "ratio_measured_se": float(measured * relative_se)}


# ------------------------------------------------------------------------------------------ claims

def _order(values: dict) -> list:
    """Keys from the longest memory to the shortest (None, no halving within the lags, is longest)."""
    return sorted(values, key=lambda key: (-math.inf if values[key] is None else -values[key], key))


def claims(c: Config, n: MemoryCurves) -> list:
    top = max(n.widths)
    last = {key: n.step_error[key][-1] for key in n.inits}
    worst = max(last, key=last.get)
    tol = n.tolerance[-1]
    theory_hl = {k: v["theory"] for k, v in n.half_life.items()}
    measured_hl = {k: v["measured"] for k, v in n.half_life.items()}
    out = [
        Claim("memory_curves_match_theory", f"at n = {top}, every initializer's measured memory curve M̄(k) (mean of "
              f"{n.seeds} networks) follows the derived M(k) within {TOLERANCE:g}/√n per step: max over 1 ≤ k < {n.lags} "
              f"of |(M̄(k)/M(k))^{{1/2k}} − 1| (worst: {LABELS.get(worst, worst)})", last[worst],
              f"≤ {TOLERANCE:g}/√{top} = {tol:.3f}", last[worst] <= tol, "E3/result.json: numbers.step_error"),
        Claim("half_lives_ranked_as_measured", "the memory half-life of every initializer, first k with M(k) ≤ M(0)/2 "
              f"(`memory_half_life`; none within {n.lags} lags for σ_W ≥ 1), derived against measured at n = {top}: "
              "[derived, measured] per initializer, longest first", [[k, theory_hl[k], measured_hl[k]] for k in _order(theory_hl)],
              "equal for every initializer (so the same ranking)", theory_hl == measured_hl,
              "E3/result.json: numbers.half_life"),
    ]
    if n.headline:
        h = n.headline
        off = abs(h["ratio_measured"] - h["ratio_theory"]) / h["ratio_measured_se"]
        out.append(Claim("normal_forgets_faster_than_xavier", f"at the same spectral radius {n.radius:g}, the normal "
                         "matrix with the circular law's eigenvalues (spectral, disk) forgets faster than xavier "
                         f"(gain 0.9, non-normal): M(k) of xavier over that of the normal matrix at k = {h['lag']}, "
                         f"[derived, measured at n = {h['width']}]", [h["ratio_theory"], h["ratio_measured"]],
                         "derived > 1; measured within 3 SE of derived", h["ratio_theory"] > 1 and off <= 3.0,
                         "E3/result.json: numbers.headline"))
    return out


# ------------------------------------------------------------------------------------------ figure

def _look(n: MemoryCurves, key: str) -> tuple[str, str]:
    """Colour and marker of an initializer (the palette without its yellow, which is hard to see)."""
    colors = [color for color in style.PALETTE if color != "#F0E442"]
    index = n.inits.index(key)
    return colors[index % len(colors)], style.MARKERS[index % len(style.MARKERS)]


def plot(c: Config, n: MemoryCurves):
    fig, axes = style.mosaic([["a", "b"]], [3.1])
    k = np.arange(n.lags)
    top, low = str(max(n.widths)), str(min(n.widths))
    handles = []
    for letter, matched in (("a", True), ("b", False)):
        ax = axes[letter]
        shown = [key for key in n.inits if n.families[key]["matched"] == matched]
        for j, key in enumerate(shown):
            color, marker = _look(n, key)
            ax.plot(k, n.theory[key], color=color, lw=1.1)
            # orthogonal, identity and xavier share M(k) = σ_W^{2k}: each initializer's markers take every
            # third k, staggered, so none hides another's
            stride = min(3, len(shown))
            at = k[j % stride::stride]
            for width, filled in ((top, True), (low, False)):
                mean = np.array(n.measured[key][width]["mean"])
                ax.plot(at, mean[at], marker, color=color, ls="", ms=3.2 if filled else 2.8,
                        mfc=color if filled else "white", mew=0.8)
            handles.append(Line2D([], [], color=color, marker=marker, ms=3.5,
                                  label=LABELS.get(key, key) + rf", $\sigma_W={n.families[key]['sigma_w']:.3g}$"))
        ax.set_yscale("log")
        ax.set_xlabel("steps back $k$")
        ax.set_ylabel(r"memory $M(k)=\mathbb{E}\,\|W^kF\|^2/(n\sigma_F^2)$")
        ax.set_title(rf"matched spectral radius {n.radius:g}" if matched else "xavier and kaiming at their own scale",
                     loc="right")
        style.panel_label(ax, letter)
    handles += [Line2D([], [], color="0.3", lw=1.1, label="derived"),
                Line2D([], [], ls="", marker="o", color="0.3", label=rf"measured, $n={top}$ (mean of {n.seeds})"),
                Line2D([], [], ls="", marker="o", color="0.3", mfc="white", label=rf"measured, $n={low}$")]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=6.5)
    return fig


def describe(n: MemoryCurves) -> str:
    top, low = max(n.widths), min(n.widths)
    text = (f"Memory curves M(k) = E‖W^k F‖²/(n σ_F²) of a torch nn.RNN's recurrent block, freshly initialized. Lines: "
            "the derived τ((W^k)ᵀ W^k) of the matched family (`derivations.modal.memory_function`); markers: the mean "
            f"of {n.seeds} networks at n = {top} (filled) and n = {low} (hollow). (a) Initializers with a gain, scaled to "
            f"spectral radius {n.radius:g}; (b) xavier and kaiming at their own scale. Map: "
            + "; ".join(f"{LABELS.get(key, key)} → {v['family']} at σ_W = {v['sigma_w']:.4g}"
                        + ("" if v["exact"] else " (its limit law: iid entries of variance σ²/n share the Gaussian's "
                                                  "moments at infinite width)") for key, v in n.families.items())
            + ". The rms relative error of the mean curve over k < " + str(n.lags) + ": "
            + ", ".join(f"{LABELS.get(key, key)} {fmt(e, 2)}" for key, e in n.error.items())
            + f" (per width n = {', '.join(map(str, n.widths))}); per step, max over k of |(M̄/M)^{{1/2k}} − 1| at n = "
            f"{top}: " + ", ".join(f"{LABELS.get(key, key)} {e[-1]:.4f}" for key, e in n.step_error.items())
            + f". Half-lives in steps, derived/measured (— : no halving within {n.lags}): "
            + ", ".join(f"{LABELS.get(key, key)} {v['theory'] or '—'}/{v['measured'] or '—'}" for key, v in n.half_life.items())
            + ".")
    worst = max(n.inits, key=lambda key: n.error[key][-1])
    bias = [n.measured[worst][str(w)]["mean"][-1] / n.theory[worst][-1] - 1 for w in n.widths]
    text += (f" The largest finite-width deviation is {LABELS.get(worst, worst)}'s: M̄(k)/M(k) − 1 at k = {n.lags - 1} is "
             + ", ".join(f"{b:+.2f} at n = {w}" for b, w in zip(bias, n.widths))
             + (", because its W is divided by its sampled λ_max, which sits below the limit edge by O(n^{-2/3}), and "
                "M(k) weighs the top of the spectrum like λ^{2k}" if worst == "nprnn" else "") + ".")
    if n.headline:
        h = n.headline
        text += (f" At the same radius the normal matrix with the circular law's eigenvalues forgets faster than "
                 f"xavier's non-normal matrix: at k = {h['lag']}, M = {h['normal']:.3g} against {h['xavier']:.3g}, "
                 f"a ratio of {h['ratio_theory']:.1f} (derived; k + 1) and {h['ratio_measured']:.1f} ± "
                 f"{h['ratio_measured_se']:.1f} measured at n = {h['width']}.")
    return text


KINDS = {"memory-curve": Kind(compute_memory_curves)}
E3 = Experiment("E3", "Memory curves of each initializer", "eigen", SCALES, MemoryCurves, cells, analyze, claims,
                plot, describe, kinds=KINDS)
