"""Properties of a full lag kernel Θ_jk: what it says about the memory gradient descent learns.

Symbolic where the derived form allows it (the rank of a separable kernel: identity's is 2), and
at an evaluation point otherwise (the diagonal's peak and monotone range, mean lag and half-life of
α_j = Θ_jj, the numerical rank and the leading eigenvectors of Θ on lags 0..J−1: the impulse
responses gradient descent learns first, since in the kernel regime the component of the error
along eigenvector v of Θ decays at a rate proportional to its eigenvalue).
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import families
from . import symbols as S
from .lag_kernel import LagKernel, kernel_matrix, other_lag
from .spec import SpecError

# Relative size below which a singular value of Θ counts as zero (float64 rounding of sums of
# products, not a modelling tolerance).
RANK_TOLERANCE = 1e-10
# Mean lag and half-life sum α_j to this relative tail (the series converge geometrically).
TAIL = 1e-12
MAX_SERIES_LAGS = 1000


def separable_rank(lk: LagKernel) -> tuple[int, list[sp.Expr]] | None:
    """The rank of Θ when its general form is Σ c_ab f_a(j) f_b(k) over terms j^a s^j (s = σ_W):
    the rank of the coefficient matrix c, with the basis of impulse responses it spans. None when
    the form has deltas, sums or other lag dependence."""
    expr = sp.expand(lk.general)
    if expr.has(sp.KroneckerDelta, sp.Sum, sp.Piecewise, sp.Min, sp.Max) or lk.first_lag != 0:
        return None
    j, k, s = S.lag, other_lag, S.sigma["W"]
    coeffs = {}
    for term in sp.Add.make_args(expr):
        rest = sp.powsimp(term / s ** (j + k), force=True)
        if not rest.is_polynomial(j, k):
            return None
        for (a, b), c in sp.Poly(rest, j, k).terms():
            coeffs[(a, b)] = coeffs.get((a, b), 0) + c
    degrees = sorted({a for a, _ in coeffs} | {b for _, b in coeffs})
    matrix = sp.Matrix([[coeffs.get((a, b), 0) for b in degrees] for a in degrees])
    rank = matrix.rank()
    return rank, [j ** a * s ** j for a in degrees]


def spectral_radius(spec, sigma_w: float) -> float:
    """The largest |eigenvalue| of W at σ_W in the limit (attractor units have eigenvalue 1)."""
    params = spec.init_params
    if spec.family == "empirical":
        return sigma_w * float(np.max(np.abs(np.linalg.eigvals(families.load_matrix(params["file"])))))
    if spec.family == "spectral" and "file" in params:
        return sigma_w * float(np.max(np.abs(families.load_spectrum(params["file"]))))
    if spec.family == "attractor" and float(params["p"]) > 0:
        return max(1.0, sigma_w)
    return sigma_w


def convergent_series(spec, sigma_w: float, what: str) -> None:
    """Refuse a spectrum file whose moduli reach 1 at σ_W when a property sums over every lag."""
    if spec.family == "spectral" and "file" in spec.init_params:
        radius = spectral_radius(spec, sigma_w)
        if radius >= 1:
            raise SpecError(f"{what} needs every |λ|·σ_W < 1, but the spectrum in {spec.init_params['file']} "
                             f"reaches {radius:.6g} at σ_W = {sigma_w:g}")


def diagonal_profile(alpha: np.ndarray) -> dict:
    """Peak, monotone range and half-life of α_j over the lags given."""
    peak = int(np.argmax(alpha))
    steps = np.diff(alpha)
    decreasing_from = next((j for j in range(len(alpha) - 1) if np.all(steps[j:] < 0)), None)
    below = np.nonzero(alpha[peak:] <= alpha[peak] / 2)[0]
    return {"peak_lag": peak, "decreasing_from_lag": decreasing_from,
            "half_life": int(peak + below[0]) if below.size else None}


def series_numbers(spec, values: dict, lk: LagKernel | None = None) -> dict:
    """Σ α_j and the mean lag Σ j α_j / Σ α_j over every lag, where they converge (σ_W·radius < 1)."""
    sigma_w = values["sigma_W"]
    convergent_series(spec, sigma_w, "the mean lag")
    radius = spectral_radius(spec, sigma_w)
    # α_j ≤ c·j²·radius^{2j}: lags until the tail is below TAIL
    lags = int(max(16, np.log(TAIL) / (2 * np.log(radius)) + 40)) if 0 < radius < 1 else 4
    if radius >= 1 or lags > MAX_SERIES_LAGS:  # diverges, or converges too slowly to sum here
        return {"total_weight": None, "mean_lag": None}
    alpha = np.diag(kernel_matrix(spec, lags, _sigmas(values), lk)["kernel"])
    total = float(alpha.sum())
    return {"total_weight": total, "mean_lag": float((np.arange(lags) * alpha).sum() / total) if total > 0 else None}


def _sigmas(values: dict) -> dict:
    out = {b: values.get(f"sigma_{b}", 0.0) for b in ("W", "F", "C", "D")}
    out.update({k: v for k, v in values.items() if k.startswith("lambda_")})
    return out


def evaluate(lk: LagKernel, values: dict, lags: range, leading: int = 3) -> dict:
    """Θ over the requested lags and its properties at the evaluation point."""
    stop = lags.stop
    found = kernel_matrix(lk.spec, stop, _sigmas(values), lk)
    theta = found["kernel"][lags.start:, lags.start:]
    alpha = np.diag(theta)
    singular = np.linalg.svd(theta, compute_uv=False) if theta.size else np.zeros(0)
    rank = int(np.sum(singular > RANK_TOLERANCE * singular[0])) if singular.size and singular[0] > 0 else 0
    w, v = np.linalg.eigh(theta)
    order = np.argsort(w)[::-1][:leading]
    vectors = v[:, order] * np.sign(v[np.argmax(np.abs(v[:, order]), axis=0), order])  # largest entry positive
    rows = [{"lag": int(j), "alpha": float(a), "nngp": float(c)}
            for j, a, c in zip(lags, alpha, np.diag(found["covariance"])[lags.start:])]
    return {
        "rows": rows,
        "kernel": theta.tolist(),
        "numbers": {**{k: None if v is None else v + lags.start for k, v in diagonal_profile(alpha).items()},
                    **series_numbers(lk.spec, values, lk), "numerical_rank": rank,
                    "spectral_radius": spectral_radius(lk.spec, values["sigma_W"])},
        "eigenvalues": [float(x) for x in w[order]],
        "eigenvectors": vectors.T.tolist(),
    }
