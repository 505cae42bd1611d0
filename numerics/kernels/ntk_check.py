"""The kernel at initialization, measured: random networks' tangent Grams against the derived α_j.

One cell (kind 'ntk') is one random network: its empirical lag weights α̂_j (the diagonal of the
tangent Gram of its Markov parameters) and its largest relative cross-lag entry. `summarize_ntk`
turns the cells of a sweep over width and σ_W into ratios α̂_j/α_j, the rms error per width, its
log–log slope against width (the kernel concentrates like n^{-1/2}) and a verdict. `check ntk`
and figures F1 and F2 read the same cells.
"""
from __future__ import annotations

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
                  dtype="float64") -> tuple[np.ndarray, float]:
    """One random network's lag weights α̂_j (j < lags) and its largest relative cross term."""
    model = LinearRNN(spec, width, sigmas=sigmas, dtype=resolve_dtype(dtype), device=resolve_device(device),
                      seed=model_seed)
    gram = structured_tangent_gram(model, lags)
    return gram_diagonal(gram).cpu().double().numpy(), largest_cross_term(gram)


def compute_ntk(cells: list, device: str) -> list:
    """Cells of kind 'ntk': α̂_j and the largest cross term of each network."""
    out = []
    for c in cells:
        sigmas = {"W": c["sigma_w"], **c["sigmas"]}
        alpha, cross = ntk_replicate(Spec.from_dict(c["spec"]), c["width"], sigmas, c["lags"],
                                     ntk_model_seed(c["seed"], c["width"], c["sigma_w"], c["replicate"]),
                                     device=device, dtype=c["dtype"])
        out.append({"alpha": alpha.tolist(), "largest_cross_term": cross})
    return out


def summarize_cells(cells: list, results: list) -> dict:
    """`summarize_ntk` of computed 'ntk' cells of one spec and one σ_F, σ_C, σ_D."""
    estimates, cross = {}, {}
    for cell, result in zip(cells, results):
        estimates.setdefault((cell["width"], cell["sigma_w"]), []).append(np.array(result["alpha"]))
        cross.setdefault((cell["width"], cell["sigma_w"]), []).append(result["largest_cross_term"])
    return summarize_ntk(Spec.from_dict(cells[0]["spec"]), estimates, cross, cells[0]["sigmas"])


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
