"""Small statistics every check shares: mean ± standard error, log–log slopes, the best point of a curve,
and rank tests for "one model's seeds lie below another's"."""
from __future__ import annotations

import math

import numpy as np

# A quantity that concentrates like n^{-1/2}: its log–log slope against width within SLOPE_TOLERANCE of −1/2.
SLOPE = -0.5
SLOPE_TOLERANCE = 0.15


def ok(result: dict) -> bool:
    """A run that finished (a diverged run's cell records where it stopped instead)."""
    return result.get("status") != "diverged"


LEVEL = 0.05  # a comparison over seeds is called shown when its (corrected) one-sided p-value is below this


def p_lower(a, b) -> float:
    """One-sided Mann–Whitney p-value that the values `a` lie below the values `b` (scipy's; exact for
    small samples without ties). A missing value (None: a seed whose run escaped or diverged) ranks
    worst, above every number, so a failed seed counts against its model, never for it."""
    from scipy.stats import mannwhitneyu  # lazily: the figures that compare seeds need scipy anyway

    def ranked(values):
        return [math.inf if v is None or not np.isfinite(v) else float(v) for v in values]
    return float(mannwhitneyu(ranked(a), ranked(b), alternative="less").pvalue)


def smallest_p(a: int, b: int) -> float:
    """The smallest one-sided Mann–Whitney p-value `a` against `b` seeds can give (every value of one
    below every value of the other): 1 / C(a + b, a). At or above LEVEL the test cannot show anything."""
    return 1 / math.comb(a + b, a)


def holm(pvalues: dict) -> dict:
    """Holm's step-down adjustment of a family of p-values {name: p} (the family-wise error kept at the
    level however many are compared): the k-th smallest times (m − k + 1), made monotone, capped at 1."""
    adjusted, running = {}, 0.0
    pvalues = {name: p if math.isfinite(p) else 1.0 for name, p in pvalues.items()}  # an undefined test shows nothing
    for k, (name, p) in enumerate(sorted(pvalues.items(), key=lambda item: item[1])):
        running = max(running, min(1.0, (len(pvalues) - k) * p))
        adjusted[name] = running
    return adjusted


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the finite values (NaN where there are none, or one)."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if values.size == 0:
        return math.nan, math.nan
    se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else math.nan
    return float(values.mean()), float(se)


def loglog_slope(xs, ys) -> float | None:
    """Least-squares slope of log(y) against log(x), over the positive finite y (None below two)."""
    xs, ys = np.asarray(xs, float), np.asarray([np.nan if y is None else y for y in ys], float)
    keep = np.isfinite(ys) & (ys > 0)
    if keep.sum() < 2:
        return None
    return float(np.polyfit(np.log(xs[keep]), np.log(ys[keep]), 1)[0])


def near_minus_half(slope) -> bool:
    return slope is not None and np.isfinite(slope) and abs(slope - SLOPE) <= SLOPE_TOLERANCE


def first_best(xs, ys) -> float:
    """The x of the smallest finite y (the first, on ties)."""
    ys = np.asarray([np.nan if y is None else y for y in ys], float)
    return float(np.asarray(xs)[np.nanargmin(ys)]) if np.any(np.isfinite(ys)) else math.nan
