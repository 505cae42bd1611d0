"""F8: the lag kernel Θ_jk at initialization for each initializer family of W, theory against
finite-width tangent Grams.

All families are drawn at one σ_W (the radius of W's eigenvalue law, or the identity's gain), so
they differ only in how W's eigenvalues sit and in its non-normality. The theory is
`theory_lag_kernel` (for non-Gaussian families `derivations.lag_kernel.kernel_matrix`, SymPy, so it
runs in `analyze`, in the main process); a cell (kind 'lag-gram') holds the lag × lag tangent
Grams of `seeds` random networks of one family and width. Θ̂ is compared with Θ entrywise, relative
to √(Θ_jj Θ_kk) (`kernels.ntk_cells.summarize_lag_kernel` uses the same measure); each entry
concentrates like n^{-1/2}.
"""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from derivations.spec import DEFAULT_SIGMAS, Spec

from ... import style
from ...device import resolve_device, resolve_dtype
from ...kernels.empirical import structured_tangent_gram
from ...kernels.theory import theory_lag_kernel
from ...models.linear import LinearRNN
from ...pipeline.experiment import Claim, Experiment, Kind, Lookup, fmt
from ...stats import SLOPE_TOLERANCE, loglog_slope, near_minus_half
from .common import sigmas

CELL_VERSION = 1
STANDARD_ERRORS = 3.0  # the seed mean Θ̄ within this many standard errors of Θ (rms over entries)
RANK_TOLERANCE = 1e-10  # singular values below this fraction of the largest count as zero
HEATMAPS = ("identity", "nprnn", "attractor")  # families whose Θ is drawn as a map
LABELS = {"gaussian": "Gaussian", "orthogonal": "orthogonal", "identity": "identity (IRNN)", "nprnn": "np-RNN",
          "spectral": "normal (circular law)", "attractor": "attractor"}


@dataclasses.dataclass(frozen=True)
class Config:
    inits: tuple = ("gaussian", "orthogonal", "identity", "nprnn", "spectral:modulus=disk", "attractor:p=0.25")
    sigma_w: float = 0.9
    widths: tuple = (256, 512, 1024)
    lags: int = 24
    seeds: int = 16
    gap_lag: int = 10  # the lag at which the Gaussian and the normal matrix are compared
    dtype: str = "float64"
    seed: int = 0


SCALES = {"quick": Config(),
          "full": Config(widths=(512, 1024, 2048, 4096), lags=32, seeds=32),
          "tiny": Config(widths=(16, 32), lags=4, seeds=3, gap_lag=3)}


def family(init: str) -> str:
    return init.partition(":")[0]


def label(init: str) -> str:
    name = family(init)
    params = Spec(init=init).init_params
    return LABELS[name] + (f" $p={float(params['p']):g}$" if name == "attractor" else "")


def find(inits, name: str) -> str | None:
    """The first init of a family among inits (None if absent)."""
    return next((i for i in inits if family(i) == name), None)


# ------------------------------------------------------------------------------------------ cells

def cell(c: Config, init: str, width: int) -> dict:
    """The lag Grams of c.seeds random networks of one family and width."""
    return {"kind": "lag-gram", "version": CELL_VERSION, "spec": Spec(init=init).to_dict(), "width": width,
            "sigma_w": c.sigma_w, "sigmas": dict(DEFAULT_SIGMAS), "lags": c.lags, "seeds": c.seeds, "seed": c.seed,
            "dtype": c.dtype}


def cells(c: Config) -> list:
    return [cell(c, init, w) for init in c.inits for w in c.widths]


def network_seed(c: dict, replicate: int) -> int:
    """Distinct, reproducible per (seed, width, σ_W, family, replicate)."""
    init = Spec.from_dict(c["spec"]).init
    words = [c["seed"], c["width"], int(round(c["sigma_w"] * 1e6)), zlib.crc32(init.encode()), replicate]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def compute_lag_grams(cells: list, device: str, context=None) -> list:
    """Cells of kind 'lag-gram': per network, Θ̂_jk = the tangent Gram of L_j and L_k (n_x = n_y = 1)."""
    out = []
    for c in cells:
        spec, lags = Spec.from_dict(c["spec"]), c["lags"]
        grams = []
        for r in range(c["seeds"]):
            model = LinearRNN(spec, c["width"], sigmas={"W": c["sigma_w"], **c["sigmas"]}, dtype=resolve_dtype(c["dtype"]),
                              device=resolve_device(device), seed=network_seed(c, r))
            grams.append(structured_tangent_gram(model, lags).reshape(lags, lags).cpu().double().numpy().tolist())
        out.append({"grams": grams})
    return out


# ------------------------------------------------------------------------------------------ numbers

@dataclasses.dataclass
class LagKernels:
    sigma_w: float
    widths: list
    lags: int
    seeds: int
    inits: list
    theory: dict  # init → Θ (lags × lags)
    measured: dict  # init → seed mean Θ̄ at the largest width
    alpha: dict  # init → width → {"mean", "sd"} of α̂_j over seeds
    error: dict  # init → per width, rms over networks of the per-network entry error
    error_in_standard_errors: dict  # init → rms entry error of Θ̄ at the largest width / (its noise level)
    slopes: dict  # init → log–log slope of error against width
    pooled_slope: float | None
    last_lag_bias: dict  # init → per width, mean α̂_j/α_j − 1 at the last lag (± its standard error)
    mean_lag: dict  # init → Σ j α_j / Σ α_j (theory, lags < lags)
    gap: dict  # Gaussian against the circular-law normal matrix
    identity: dict  # singular values and ranks of the identity's Θ
    attractor: dict  # p, the smallest α_j over the second half of the lags, the Gaussian's last α_j
    spread: dict  # orthogonal against Gaussian: seed-to-seed sd of α̂_j/α_j per width
    same_limit: float | None  # ‖Θ_orthogonal − Θ_gaussian‖ / ‖Θ_gaussian‖


def _entry_errors(grams: np.ndarray, theory: np.ndarray) -> np.ndarray:
    """(Θ̂ − Θ)/√(Θ_jj Θ_kk) over the entries j ≤ k with a nonzero scale, one row per network."""
    diagonal = np.clip(np.diagonal(theory), 0, None)
    scale = np.sqrt(np.outer(diagonal, diagonal))
    upper = np.triu(np.ones(theory.shape, bool)) & (scale > 0)
    return (grams - theory)[:, upper] / scale[upper]


def _bootstrap_log_ratio(a: np.ndarray, b: np.ndarray, draws: int = 400) -> float:
    """Standard error of log(spread(a)/spread(b)) by resampling the networks (rows) of each."""
    rng = np.random.default_rng(0)
    spread = lambda x: np.sqrt(np.mean(np.var(x, axis=0, ddof=1)))
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample of few networks may repeat one
        logs = np.array([np.log(spread(a[rng.integers(0, len(a), len(a))]) / spread(b[rng.integers(0, len(b), len(b))]))
                         for _ in range(draws)])
    return float(np.std(logs[np.isfinite(logs)]))


def analyze(c: Config, lookup: Lookup) -> LagKernels:
    top = max(c.widths)
    lags = np.arange(c.lags)
    theory, measured, alpha, error, in_se, slopes, mean_lag, ratios, bias = {}, {}, {}, {}, {}, {}, {}, {}, {}
    for init in c.inits:
        K = theory_lag_kernel(Spec(init=init), c.lags, sigmas(c.sigma_w))
        theory[init] = K.tolist()
        a = np.diagonal(K)
        mean_lag[init] = float(np.sum(lags * a) / np.sum(a))
        alpha[init], error[init], bias[init] = {}, [], []
        for w in c.widths:
            grams = np.array(lookup(cell(c, init, w))["grams"])
            alpha[init][str(w)] = {"mean": np.diagonal(grams, axis1=1, axis2=2).mean(0).tolist(),
                                   "sd": np.diagonal(grams, axis1=1, axis2=2).std(0, ddof=1).tolist()}
            per_network = _entry_errors(grams, K)
            error[init].append(float(np.sqrt(np.mean(per_network ** 2))))
            ratios[(init, w)] = np.diagonal(grams, axis1=1, axis2=2) / a
            last = ratios[(init, w)][:, -1]
            bias[init].append([float(last.mean() - 1), float(last.std(ddof=1) / np.sqrt(len(last)))])
            if w == top:
                measured[init] = grams.mean(0).tolist()
                of_mean = float(np.sqrt(np.mean(_entry_errors(grams.mean(0)[None], K) ** 2)))
                in_se[init] = of_mean / (error[init][-1] / np.sqrt(len(grams)))
        slopes[init] = loglog_slope(c.widths, error[init])
    pooled = np.exp(np.mean([np.log(error[i]) for i in c.inits], axis=0))
    return LagKernels(c.sigma_w, list(c.widths), c.lags, c.seeds, list(c.inits), theory, measured, alpha, error,
                      in_se, slopes, loglog_slope(c.widths, pooled), bias, mean_lag, _gap(c, theory, ratios),
                      _identity(c, theory), _attractor(c, theory), _spread(c, ratios), _same_limit(c, theory))


def _gap(c: Config, theory: dict, ratios: dict) -> dict:
    gauss, normal = find(c.inits, "gaussian"), find(c.inits, "spectral")
    if gauss is None or normal is None:
        return {}
    j, top = c.gap_lag, max(c.widths)
    ratio = theory[gauss][j][j] / theory[normal][j][j]
    # measured α̂_j (as ratio to theory per network): mean and standard error, then the ratio by the delta method
    g, m = ratios[(gauss, top)][:, j], ratios[(normal, top)][:, j]
    measured = ratio * g.mean() / m.mean()
    relative_se = np.sqrt((g.std(ddof=1) / g.mean()) ** 2 / len(g) + (m.std(ddof=1) / m.mean()) ** 2 / len(m))
    return {"lag": j, "gaussian": theory[gauss][j][j], "normal": theory[normal][j][j], "ratio_theory": float(ratio),
            "ratio_measured": float(measured), "ratio_measured_se": float(measured * relative_se), "width": top}


def _identity(c: Config, theory: dict) -> dict:
    init = find(c.inits, "identity")
    if init is None:
        return {}
    K = np.array(theory[init])
    full = np.linalg.svd(K, compute_uv=False)
    beyond = np.linalg.svd(K[1:, 1:], compute_uv=False)
    rank = lambda s: int(np.sum(s > RANK_TOLERANCE * s[0]))
    return {"singular_values": (full[:5] / full[0]).tolist(), "rank": rank(full),
            "rank_beyond_lag_0": rank(beyond), "next_beyond_lag_0": float(beyond[2] / beyond[0]) if len(beyond) > 2 else 0.0}


def _attractor(c: Config, theory: dict) -> dict:
    init, gauss = find(c.inits, "attractor"), find(c.inits, "gaussian")
    if init is None or gauss is None:
        return {}
    half = c.lags // 2
    return {"p": float(Spec(init=init).init_params["p"]), "from_lag": half,
            "floor": float(np.min(np.diagonal(theory[init])[half:])),
            "gaussian_last": float(np.diagonal(theory[gauss])[-1]),
            "gaussian_peak": float(np.max(np.diagonal(theory[gauss])))}


def _spread(c: Config, ratios: dict) -> dict:
    """Seed-to-seed sd of α̂_j/α_j, root mean square over lags, for the orthogonal and the Gaussian W."""
    gauss, orth = find(c.inits, "gaussian"), find(c.inits, "orthogonal")
    if gauss is None or orth is None:
        return {}
    out = {"gaussian": [], "orthogonal": [], "ratio": [], "log_ratio_se": []}
    for w in c.widths:
        g, o = ratios[(gauss, w)], ratios[(orth, w)]
        for name, x in (("gaussian", g), ("orthogonal", o)):
            out[name].append(float(np.sqrt(np.mean(np.var(x, axis=0, ddof=1)))))
        out["ratio"].append(out["orthogonal"][-1] / out["gaussian"][-1])
        out["log_ratio_se"].append(_bootstrap_log_ratio(o, g))
    return out


def _same_limit(c: Config, theory: dict) -> float | None:
    gauss, orth = find(c.inits, "gaussian"), find(c.inits, "orthogonal")
    if gauss is None or orth is None:
        return None
    G = np.array(theory[gauss])
    return float(np.linalg.norm(np.array(theory[orth]) - G) / np.linalg.norm(G))


# ------------------------------------------------------------------------------------------ claims

def claims(c: Config, n: LagKernels) -> list:
    worst = max(n.error_in_standard_errors, key=lambda i: n.error_in_standard_errors[i])
    top = max(n.widths)
    out = [
        Claim("family_kernels_match_theory", f"at n = {top}, every family's seed mean Θ̄_jk (over {n.seeds} networks) "
              "is within 3 standard errors of the derived Θ_jk: rms over entries of (Θ̄ − Θ)/√(Θ_jj Θ_kk), in units "
              f"of the networks' rms error/√seeds (worst: {label(worst)})", n.error_in_standard_errors[worst],
              f"≤ {STANDARD_ERRORS:g}", n.error_in_standard_errors[worst] <= STANDARD_ERRORS,
              "F8/result.json: numbers.error_in_standard_errors"),
        Claim("family_kernel_error_slope", "the rms entry error of a network's Θ̂ falls like n^{-1/2}: log–log "
              "slope of the geometric mean over families", n.pooled_slope, f"−0.5 ± {SLOPE_TOLERANCE:g}",
              near_minus_half(n.pooled_slope), "F8/result.json: numbers.pooled_slope"),
    ]
    if n.identity:
        i = n.identity
        out.append(Claim("identity_kernel_rank", "W = σ_W I: Θ_jk = (2 + jk) σ_W^{j+k} + δ_j0 δ_k0 has rank 2 on the "
                         "lags j, k ≥ 1 (spanned by σ_W^j and j σ_W^j) and 3 with the feed-through's lag 0: numerical "
                         "ranks [all lags, lags ≥ 1]", [i["rank"], i["rank_beyond_lag_0"]],
                         f"[3, 2] (singular values < {RANK_TOLERANCE:g} × the largest count as 0)",
                         i["rank"] == 3 and i["rank_beyond_lag_0"] == 2, "F8/result.json: numbers.identity"))
    if n.attractor:
        a = n.attractor
        out.append(Claim("attractor_keeps_long_lags", f"the attractor family's α_j stays above p = {a['p']:g} for "
                         f"every lag j ≥ {a['from_lag']} while the Gaussian's decays below it by lag {n.lags - 1}: "
                         "[smallest attractor α_j there, Gaussian α_last]", [a["floor"], a["gaussian_last"]],
                         "attractor ≥ p > Gaussian", a["floor"] >= a["p"] > a["gaussian_last"],
                         "F8/result.json: numbers.attractor"))
    if n.gap:
        g = n.gap
        off = abs(g["ratio_measured"] - g["ratio_theory"]) / g["ratio_measured_se"]
        out.append(Claim("gaussian_outremembers_normal", f"same eigenvalue law (circular, radius {n.sigma_w:g}), "
                         f"different memory: α_{g['lag']} of Gaussian W over that of the normal matrix, "
                         f"[theory, measured at n = {g['width']}]", [g["ratio_theory"], g["ratio_measured"]],
                         "theory > 1; measured within 3 SE of theory",
                         g["ratio_theory"] > 1 and off <= STANDARD_ERRORS, "F8/result.json: numbers.gap"))
    if n.spread:
        s = n.spread
        out += [
            Claim("orthogonal_same_limit", "orthogonal and Gaussian W have the same lag kernel at infinite width: "
                  "‖Θ_orth − Θ_Gauss‖/‖Θ_Gauss‖", n.same_limit, "≤ 1e-10", n.same_limit <= 1e-10,
                  "F8/result.json: numbers.same_limit"),
            Claim("orthogonal_fluctuates_less", "at finite width the orthogonal W's α̂_j scatter less from network "
                  "to network than the Gaussian's: sd of α̂_j/α_j (rms over lags), orthogonal/Gaussian per width "
                  f"n = {', '.join(map(str, n.widths))}", s["ratio"],
                  "< 1 at every width, by ≥ 2 bootstrap SE of the log ratio",
                  all(np.log(r) <= -2 * se for r, se in zip(s["ratio"], s["log_ratio_se"])),
                  "F8/result.json: numbers.spread"),
        ]
    return out


# ------------------------------------------------------------------------------------------ figure

def plot(c: Config, n: LagKernels):
    fig, axes = style.mosaic([["a", "a", "e"], ["b", "c", "d"]], [2.9, 2.5])
    lags = np.arange(n.lags)
    top, low = str(max(n.widths)), str(min(n.widths))
    ax = axes["a"]
    for k, init in enumerate(n.inits):
        color, marker = style.PALETTE[k], style.MARKERS[k]
        ax.plot(lags, np.diagonal(np.array(n.theory[init])), color=color, lw=1.2)
        for width, filled in ((top, True), (low, False)):
            mean = np.array(n.alpha[init][width]["mean"])
            shown = mean > 0  # a log axis: a narrow network's estimate of a tiny α_j can fall below 0
            ax.plot(lags[shown] + (0.15 if filled else -0.15), mean[shown], marker, color=color, ls="",
                    ms=3.0 if filled else 2.6, mfc=color if filled else "white", mew=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("lag $j$")
    ax.set_ylabel(r"lag weight $\alpha_j=\Theta_{jj}$")
    handles = [Line2D([], [], color=style.PALETTE[k], marker=style.MARKERS[k], ms=3.5, label=label(init))
               for k, init in enumerate(n.inits)]
    handles += [Line2D([], [], color="0.3", lw=1.2, label="theory"),
                Line2D([], [], ls="", marker="o", color="0.3", label=rf"$\hat\alpha_j$, $n={top}$"),
                Line2D([], [], ls="", marker="o", color="0.3", mfc="white", label=rf"$\hat\alpha_j$, $n={low}$")]
    ax.legend(handles=handles, ncols=3, loc="lower left", fontsize=6.5)
    ax.set_title(rf"$\sigma_W={n.sigma_w:g}$, mean of {n.seeds} networks", loc="right")
    style.panel_label(ax, "a")

    ax = axes["e"]
    for k, init in enumerate(n.inits):
        ax.plot(n.widths, n.error[init], style.MARKERS[k] + "-", color=style.PALETTE[k], lw=0.9, ms=3.2)
    pooled = np.exp(np.mean([np.log(n.error[i]) for i in n.inits], axis=0))
    ax.plot(n.widths, pooled, "k-", lw=1.8, label="geometric mean" + ("" if n.pooled_slope is None else
                                                                       f" (slope {n.pooled_slope:.2f})".replace("-", "−")))
    style.width_guide(ax, n.widths, n.widths[0], pooled[0])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(n.widths, [str(w) for w in n.widths])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("width $n$")
    ax.set_ylabel(r"rms of $(\hat\Theta_{jk}-\Theta_{jk})/\sqrt{\Theta_{jj}\Theta_{kk}}$")
    ax.legend(loc="upper right")
    style.panel_label(ax, "e")

    shown = [i for name in HEATMAPS for i in n.inits if family(i) == name]
    image = None
    for letter, init in zip("bcd", shown):
        ax = axes[letter]
        theory, found = np.array(n.theory[init]), np.array(n.measured[init])
        d = np.sqrt(np.clip(np.diagonal(theory), 1e-300, None))
        scale = np.outer(d, d)
        # upper triangle (and diagonal): theory; lower triangle: the networks' mean at the largest width
        shown_map = np.where(np.triu(np.ones_like(theory, bool)), theory, found) / scale
        image = ax.imshow(shown_map, cmap=style.SEQUENTIAL, vmin=0, vmax=1, origin="upper", interpolation="nearest")
        ax.plot([-0.5, n.lags - 0.5], [-0.5, n.lags - 0.5], color="w", lw=0.6)
        ax.set_xlabel("lag $k$")
        ax.set_ylabel("lag $j$")
        ax.grid(False)
        ax.set_title(label(init), loc="right")
        ax.text(0.96, 0.9, "theory", transform=ax.transAxes, ha="right", va="top", color="w", fontsize=6.5)
        ax.text(0.04, 0.06, rf"measured, $n={top}$", transform=ax.transAxes, ha="left", color="w", fontsize=6.5)
        style.panel_label(ax, letter)
    if image is not None:
        fig.colorbar(image, ax=[axes[x] for x in "bcd"][:len(shown)], shrink=0.9,
                     label=r"$\Theta_{jk}/\sqrt{\Theta_{jj}\Theta_{kk}}$")
    return fig


def describe(n: LagKernels) -> str:
    top, low = max(n.widths), min(n.widths)
    text = (f"All families at σ_W = {n.sigma_w:g} (the radius of W's eigenvalue law; the identity's gain). "
            f"(a) Lines: the derived lag weights α_j = Θ_jj; markers: the diagonal of the tangent Gram of random "
            f"networks, mean of {n.seeds}, at n = {top} (filled) and n = {low} (hollow). (b–d) The lag kernel "
            "normalized, Θ_jk/√(Θ_jj Θ_kk): derived above the diagonal, measured (mean at n = "
            f"{top}) below it. (e) The rms entry error of one network's Θ̂ against width; slopes "
            + ", ".join(f"{LABELS[family(i)]} {fmt(s, 2)}" for i, s in n.slopes.items())
            + f" (geometric mean {fmt(n.pooled_slope, 2)}; theory −1/2). Mean lag Σ j α_j / Σ α_j over lags "
            f"0–{n.lags - 1}: " + ", ".join(f"{LABELS[family(i)]} {v:.2f}" for i, v in n.mean_lag.items()) + ".")
    worst = max(n.inits, key=lambda i: abs(n.last_lag_bias[i][-1][0]))
    text += (f" The largest bias at the last lag is {LABELS[family(worst)]}'s: mean α̂_j/α_j − 1 at j = {n.lags - 1} is "
             + ", ".join(f"{b:+.2f} ± {se:.2f} at n = {w}" for (b, se), w in zip(n.last_lag_bias[worst], n.widths))
             + " (± SE)" + (", plausibly because its W is divided by its sampled largest eigenvalue and α_j weighs "
                            "the top of the spectrum like λ^{2j}, so the edge's finite-n shift grows with the lag" if family(worst) == "nprnn" else "") + ".")
    if n.gap:
        g = n.gap
        gauss, normal = find(n.inits, "gaussian"), find(n.inits, "spectral")
        text += (f" The Gaussian W and the normal matrix with its circular eigenvalue law have the same eigenvalues "
                 f"in the limit, but the Gaussian's non-normality keeps the past: at lag {g['lag']} its α_j is "
                 f"{g['ratio_theory']:.1f}× the normal matrix's ({g['gaussian']:.3g} against {g['normal']:.3g}; "
                 f"measured at n = {g['width']}: {g['ratio_measured']:.1f} ± {g['ratio_measured_se']:.1f}), and its "
                 f"mean lag is {n.mean_lag[gauss]:.2f} against {n.mean_lag[normal]:.2f}. The normal matrix's Θ is "
                 "diagonal, like the Gaussian's.")
    if n.identity:
        i = n.identity
        text += (f" For W = σ_W I, Θ_jk = (2 + jk) σ_W^{{j+k}} + δ_j0 δ_k0 (σ_F = σ_C = σ_D = 1): rank 2 on lags ≥ 1, "
                 f"3 with lag 0 (singular values relative to the largest: {fmt(i['singular_values'], 2)}); "
                 "gradient descent can move the response only within that span.")
    if n.attractor:
        a = n.attractor
        text += (f" With a fraction p = {a['p']:g} of line-attractor units α_j never decays: its smallest value "
                 f"from lag {a['from_lag']} on is {a['floor']:.3g}, while the Gaussian's falls from "
                 f"{a['gaussian_peak']:.3g} at its peak to {a['gaussian_last']:.3g} at lag {n.lags - 1}.")
    if n.spread:
        s = n.spread
        text += (f" Orthogonal and Gaussian W share the limit (relative difference {fmt(n.same_limit, 2)}), but not "
                 "the finite-width scatter: the network-to-network sd of α̂_j/α_j (rms over lags) is "
                 + ", ".join(f"{o:.3f} against {g:.3f} at n = {w}" for o, g, w in zip(s["orthogonal"], s["gaussian"], n.widths))
                 + f" (orthogonal/Gaussian {fmt(s['ratio'], 2)}).")
    return text


KINDS = {"lag-gram": Kind(compute_lag_grams)}
F8 = Experiment("F8", "Lag kernels of initializer families", "linear", SCALES, LagKernels, cells, analyze, claims,
                plot, describe, kinds=KINDS)
