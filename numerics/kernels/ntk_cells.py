"""The kernel at initialization, measured: random networks' tangent Grams against the derived α_j.

One cell (kind 'ntk') is one random network: its empirical lag weights α̂_j (the diagonal of the
tangent Gram of its Markov parameters) and its largest relative cross-lag entry. `summarize_ntk`
turns the cells of a sweep over width and σ_W into ratios α̂_j/α_j, the rms error per width, its
log–log slope against width (the kernel concentrates like n^{-1/2}) and a verdict. `check ntk`
and figures F1 and F2 read the same cells.

Off the Gaussian family the derived kernel has cross-lag terms (`derivations.lag_kernel`), so a
cell also keeps the network's whole lag Gram Θ̂_jk and `summarize_lag_kernel` compares every
entry with `kernel_matrix`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from derivations.spec import DEFAULT_SIGMAS, Spec

from ..device import resolve_device, resolve_dtype
from ..errors import NumericsError
from ..models.linear import LinearRNN
from ..stats import SLOPE, SLOPE_TOLERANCE, loglog_slope
from .empirical import gram_diagonal, largest_cross_term, structured_tangent_gram
from .theory import theory_lag_weights

# Verdict tolerances: at the largest width every lag within 3 standard errors of 1 and within 5%;
# the error-against-width slope within SLOPE_TOLERANCE of −1/2.
RATIO_STANDARD_ERRORS = 3.0
RATIO_RELATIVE = 0.05
CELL_VERSION = 1  # part of the cell's key: bump it when the cell's meaning changes, to recompute


def ntk_cell(spec: Spec, width: int, sigma_w: float, lags: int, replicate: int, *, sigmas: dict = DEFAULT_SIGMAS,
             seed: int = 0, dtype: str = "float64") -> dict:
    """The inputs of one random network's tangent Gram (sigmas: σ_F, σ_C, σ_D)."""
    return {"kind": "ntk", "version": CELL_VERSION, "spec": spec.to_dict(), "width": width, "sigma_w": sigma_w,
            "sigmas": dict(sigmas), "lags": lags, "seed": seed, "replicate": replicate, "dtype": dtype}


def ntk_model_seed(seed: int, width: int, sigma_w: float, replicate: int) -> int:
    """The network seed of one replicate: distinct and reproducible per (width, σ_W, replicate)."""
    return int(np.random.SeedSequence([seed, width, int(round(sigma_w * 1e6)), replicate]).generate_state(1)[0])


def ntk_replicate(spec: Spec, width: int, sigmas: dict, lags: int, model_seed: int, *, device="cpu",
                  dtype="float64") -> dict:
    """One random network's cell result: its lag weights α̂_j (j < lags) and largest relative cross
    term, and for a non-Gaussian family the whole lag Gram Θ̂_jk (its theory is not diagonal)."""
    model = LinearRNN(spec, width, sigmas=sigmas, dtype=resolve_dtype(dtype), device=resolve_device(device),
                      seed=model_seed)
    gram = structured_tangent_gram(model, lags)
    result = {"alpha": gram_diagonal(gram).cpu().double().numpy().tolist(), "largest_cross_term": largest_cross_term(gram)}
    if spec.family != "gaussian":  # the Gaussian's cells stay as they were (F1, F2 read them)
        result["gram"] = gram.reshape(lags, lags).cpu().double().numpy().tolist()
    return result


def compute_ntk(cells: list, device: str, context=None) -> list:
    """Cells of kind 'ntk': α̂_j and the largest cross term of each network (and Θ̂_jk off the Gaussian)."""
    return [ntk_replicate(Spec.from_dict(c["spec"]), c["width"], {"W": c["sigma_w"], **c["sigmas"]}, c["lags"],
                          ntk_model_seed(c["seed"], c["width"], c["sigma_w"], c["replicate"]),
                          device=device, dtype=c["dtype"]) for c in cells]


def summarize_cells(cells: list, results: list) -> dict:
    """`summarize_ntk` (Gaussian) or `summarize_lag_kernel` (other families) of computed 'ntk'
    cells of one spec and one σ_F, σ_C, σ_D."""
    spec = Spec.from_dict(cells[0]["spec"])
    if spec.family != "gaussian":
        grams = {}
        for cell, result in zip(cells, results):
            grams.setdefault((cell["width"], cell["sigma_w"]), []).append(np.array(result["gram"]))
        return summarize_lag_kernel(spec, grams, cells[0]["sigmas"])
    estimates, cross = {}, {}
    for cell, result in zip(cells, results):
        estimates.setdefault((cell["width"], cell["sigma_w"]), []).append(np.array(result["alpha"]))
        cross.setdefault((cell["width"], cell["sigma_w"]), []).append(result["largest_cross_term"])
    return summarize_ntk(spec, estimates, cross, cells[0]["sigmas"])


def summarize_ntk(spec: Spec, estimates: dict, cross: dict, other_sigmas: dict) -> dict:
    # Lags with α_j = 0 give NaN ratios and σ ≫ 1 overflows: both are reported as n/a, not warned about.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summarize(spec, estimates, cross, other_sigmas)


def _summarize(spec: Spec, estimates: dict, cross: dict, other_sigmas: dict) -> dict:
    """Rows, errors, slopes and verdict from per-replicate estimates.

    estimates[(width, σ_W)]: one α̂ array (lags,) per replicate; cross[(width, σ_W)]: their largest
    relative cross terms; other_sigmas: σ_F, σ_C, σ_D.
    """
    widths = sorted({w for w, _ in estimates})
    sigma_ws = sorted({sw for _, sw in estimates})
    seeds = min(len(v) for v in estimates.values())
    rows, errors, mean_cross = [], {}, {}
    for width in widths:
        for sw in sigma_ws:
            found = np.array(estimates[(width, sw)])
            lags = found.shape[1]
            theory = theory_lag_weights(spec, lags, {"W": sw, **other_sigmas})
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(theory > 0, found / theory, np.nan)
            errors[(width, sw)] = float(np.sqrt(np.nanmean((ratios - 1) ** 2)))
            mean_cross[(width, sw)] = float(np.mean(cross[(width, sw)]))
            for j in range(lags):
                rows.append({
                    "width": width, "sigma_w": sw, "lag": j, "alpha_theory": float(theory[j]),
                    "alpha_mean": float(found[:, j].mean()), "alpha_std": float(found[:, j].std(ddof=1)),
                    "ratio_mean": float(np.mean(ratios[:, j])), "ratio_std": float(np.std(ratios[:, j], ddof=1)),
                })
    slopes = {str(sw): loglog_slope(widths, [errors[(w, sw)] for w in widths]) for sw in sigma_ws}
    cross_slopes = {str(sw): loglog_slope(widths, [mean_cross[(w, sw)] for w in widths]) for sw in sigma_ws}
    return {
        "rows": rows,
        "error": [{"width": w, "sigma_w": sw, "rms_relative_error": errors[(w, sw)],
                   "largest_cross_term": mean_cross[(w, sw)]} for w in widths for sw in sigma_ws],
        "slopes": slopes,
        "cross_term_slopes": cross_slopes,
        "verdict": ntk_verdict(rows, slopes, max(widths), seeds),
    }


def ntk_verdict(rows: list[dict], slopes: dict, width: int, seeds: int) -> dict:
    """Pass/fail against the stated tolerances, with the worst case of each claim."""
    top = [r for r in rows if r["width"] == width and np.isfinite(r["ratio_mean"])]
    if not top:
        raise NumericsError("every derived α_j is 0 at these σ's (σ_F = σ_C = σ_D = 0?): there is no kernel to compare")
    deviations = [abs(r["ratio_mean"] - 1) for r in top]
    standard_errors = [abs(r["ratio_mean"] - 1) / (r["ratio_std"] / np.sqrt(seeds)) if r["ratio_std"] > 0 else 0.0
                       for r in top]
    finite_slopes = [s for s in slopes.values() if s is not None]
    claims = {
        "ratio_within_5_percent": {"worst": max(deviations), "tolerance": RATIO_RELATIVE,
                                   "passed": max(deviations) <= RATIO_RELATIVE},
        "ratio_within_3_standard_errors": {"worst": max(standard_errors), "tolerance": RATIO_STANDARD_ERRORS,
                                           "passed": max(standard_errors) <= RATIO_STANDARD_ERRORS},
    }
    if finite_slopes:
        worst = max(finite_slopes, key=lambda s: abs(s - SLOPE))
        claims["error_slope_near_minus_half"] = {"worst": worst, "tolerance": SLOPE_TOLERANCE,
                                                 "passed": abs(worst - SLOPE) <= SLOPE_TOLERANCE}
    return {"width": width, "claims": claims, "passed": all(c["passed"] for c in claims.values())}


def summarize_lag_kernel(spec: Spec, grams: dict, other_sigmas: dict) -> dict:
    """Entries, errors, slopes and verdict of the full lag Gram against `kernel_matrix`.

    grams[(width, σ_W)]: one Θ̂ (lags, lags) per replicate. Each entry j ≤ k (the Gram is symmetric)
    is compared as (Θ̂_jk − Θ_jk)/√(Θ_jj Θ_kk), relative to the diagonal because an off-diagonal
    Θ_jk may be 0; entries whose scale is 0 carry no kernel and are left out. error(n, σ_W) is
    the rms of that over entries and seeds; like every entry it concentrates like n^{-1/2}.
    """
    # SymPy: imported here, in the main process, never in a cell's worker
    from derivations.lag_kernel import kernel_matrix

    widths = sorted({w for w, _ in grams})
    sigma_ws = sorted({sw for _, sw in grams})
    entries, errors = [], {}
    for sw in sigma_ws:
        lags = len(grams[(widths[0], sw)][0])
        theory = kernel_matrix(spec, lags, {"W": sw, **other_sigmas})["kernel"]
        diagonal = np.clip(np.diagonal(theory), 0, None)
        scale = np.sqrt(np.outer(diagonal, diagonal))
        upper = np.triu(np.ones((lags, lags), bool)) & (scale > 0)
        for width in widths:
            found = np.array(grams[(width, sw)])
            relative = (found - theory)[:, upper] / scale[upper]
            errors[(width, sw)] = float(np.sqrt(np.mean(relative ** 2)))
            mean, se = found.mean(0), found.std(0, ddof=1) / np.sqrt(found.shape[0])
            for j, k in zip(*np.nonzero(upper)):
                entries.append({
                    "width": width, "sigma_w": sw, "lag": int(j), "other_lag": int(k),
                    "theta_theory": float(theory[j, k]), "theta_mean": float(mean[j, k]),
                    "theta_standard_error": float(se[j, k]),
                    "relative_error": float((mean[j, k] - theory[j, k]) / scale[j, k]),
                })
    if not entries:
        raise NumericsError("every derived Θ_jj is 0 at these σ's (σ_F = σ_C = σ_D = 0?): there is no kernel to compare")
    slopes = {str(sw): loglog_slope(widths, [errors[(w, sw)] for w in widths]) for sw in sigma_ws}
    return {
        "init": spec.init,
        "entries": entries,
        "error": [{"width": w, "sigma_w": sw, "rms_relative_error": errors[(w, sw)]} for w in widths for sw in sigma_ws],
        "slopes": slopes,
        "verdict": lag_kernel_verdict(entries, slopes, max(widths)),
    }


def lag_kernel_verdict(entries: list[dict], slopes: dict, width: int) -> dict:
    """At the largest width every entry within 3 standard errors of theory or within 5% of
    √(Θ_jj Θ_kk) (worst: the largest share of its tolerance, the smaller of the two, any entry
    uses; 1 passes), and the error's slope against width near −1/2."""
    top = [e for e in entries if e["width"] == width]

    def share(e):  # an entry passes if within 3 standard errors or within 5%: the smaller share of the two
        gap = abs(e["theta_mean"] - e["theta_theory"])
        z = gap / e["theta_standard_error"] if e["theta_standard_error"] > 0 else (math.inf if gap > 0 else 0.0)
        return min(z / RATIO_STANDARD_ERRORS, abs(e["relative_error"]) / RATIO_RELATIVE)

    worst = max(top, key=share)
    claims = {"entries_within_3_standard_errors_or_5_percent": {
        "worst": share(worst), "tolerance": 1.0, "passed": share(worst) <= 1.0,
        "entry": [worst["sigma_w"], worst["lag"], worst["other_lag"]],
        "worst_relative_error": max(abs(e["relative_error"]) for e in top)}}
    finite_slopes = [s for s in slopes.values() if s is not None]
    if finite_slopes:
        worst_slope = max(finite_slopes, key=lambda s: abs(s - SLOPE))
        claims["error_slope_near_minus_half"] = {"worst": worst_slope, "tolerance": SLOPE_TOLERANCE,
                                                 "passed": abs(worst_slope - SLOPE) <= SLOPE_TOLERANCE}
    return {"width": width, "claims": claims, "passed": all(c["passed"] for c in claims.values())}
