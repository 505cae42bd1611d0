"""Properties that follow from α_j, derived symbolically in q = σ_W².

For every spec the general lag weight has the form α_j = P(j) q^j with P a polynomial in j
(the number of places dW can land grows linearly with the lag), which is what the series
identities below use.
"""
from __future__ import annotations

import sympy as sp

from . import symbols as S
from .kernel import Derivation, LagFunction

j, q = S.lag, S.q

# Φ(x, 1, p/q) is written with logarithms (one per q-th root of unity) only for small q: a rate
# such as λ_W = 12.345 gives q in the thousands, which SymPy would take minutes to expand.
MAX_EXPANDED_DENOMINATOR = 12


def in_q(expr: sp.Expr) -> sp.Expr:
    """Rewrite powers of σ_W as powers of q = σ_W²."""
    return sp.powsimp(sp.expand_power_exp(sp.powdenest(expr.subs(S.sigma["W"], sp.sqrt(q)), force=True)), force=True)


def geometric_split(expr: sp.Expr) -> sp.Poly:
    """P with expr = P(j) q^j; fails loudly if the lag weight is not of that form."""
    poly = sp.simplify(in_q(expr) / q**j)
    if poly.has(q**j) or not poly.is_polynomial(j):
        raise ValueError(f"lag weight is not polynomial × geometric: {expr}")
    return sp.Poly(sp.expand(poly), j)


def polynomial_geometric_series(poly: sp.Poly, start: int) -> sp.Expr:
    """Σ_{j≥start} P(j) q^j for |q| < 1, by Σ j^k q^j = (q d/dq)^k Σ q^j and Σ_{j≥s} q^j = q^s/(1-q)."""
    total = sp.Integer(0)
    for (k,), c in poly.terms():
        term = q**start / (1 - q)
        for _ in range(k):
            term = q * sp.diff(term, q)
        total += c * term
    return sp.cancel(total)


def weighted_total(f: LagFunction, power: int = 0) -> sp.Expr:
    """Σ_j j^power f_j over all lags (q < 1): the series of the general form plus the special lags."""
    poly = geometric_split(f.general) * sp.Poly(j**power, j)
    total = polynomial_geometric_series(poly, f.first_lag)
    for lag, value in f.special.items():
        general = f.general.subs(j, lag) if lag >= f.first_lag else 0
        total += lag**power * in_q(value - general)
    return sp.cancel(total)


def first_weighted_lag(f: LagFunction) -> int:
    """First lag of the general form with α_j ≠ 0 (with only W trained under convention B, α_1 = 0)."""
    return f.first_lag + (sp.simplify(f.general.subs(j, f.first_lag)) == 0)


def ratio_start(f: LagFunction) -> int:
    """First lag j at which α_j ≠ 0 and α_j, α_{j+1} both follow the general form."""
    return max([first_weighted_lag(f)] + [lag + 1 for lag in f.special])


def ratio(f: LagFunction) -> sp.Expr:
    """α_{j+1}/α_j for lags where the general form holds on both sides."""
    return sp.factor(sp.powsimp(in_q(f.general.subs(j, j + 1)) / in_q(f.general), force=True))


def monotone_threshold(f: LagFunction, r: sp.Expr) -> tuple[sp.Expr | None, str]:
    """The largest σ_W below which α_j strictly decreases at every lag ≥ first_lag.

    P is linear or constant with nonnegative coefficients, so q P(j+1)/P(j) is nonincreasing in
    j: the sup of the ratio is its value at the first lag, and α decreases iff that is < 1.
    Special lags (σ_D² at lag 0) only raise α_0 and are left out of the condition.
    """
    poly = geometric_split(f.general)
    start = first_weighted_lag(f)
    slope = poly.all_coeffs()[0] if poly.degree() == 1 else sp.Integer(0)
    # q(1 + b/P(j)) with P(j) = a + b j > 0 on the lags: nonincreasing in j iff b ≥ 0.
    if poly.degree() > 1 or not (slope.is_nonnegative and sp.simplify(poly.as_expr().subs(j, start)).is_positive):
        return None, f"ratio not monotone in j: {r}"
    at_first = r.subs(j, start)
    solutions = [s for s in sp.solve(sp.Eq(at_first, 1), q) if s.is_positive is not False]
    if len(solutions) != 1:
        return None, f"no unique threshold for {at_first} < 1"
    return sp.sqrt(solutions[0]), (f"α_(j+1)/α_j falls with j, so α_j decreases at every lag j ≥ {start} "
                                   f"iff the ratio at j = {start} is below 1")


def peak_crossing(r: sp.Expr) -> sp.Expr | None:
    """The j_c with α_{j+1}/α_j = 1; for σ_W above the threshold and below 1, α peaks at ceil(j_c)."""
    sols = sp.solve(sp.Eq(r, 1), j)
    return sp.simplify(sols[0]) if len(sols) == 1 else None


def kernel_norm_decay(f: LagFunction) -> sp.Expr:
    """‖L*‖²_α = Σ_j (ρ^j)²/α_j over the lags with α_j > 0, for the teacher L*_j = ρ^j (ρ² < σ_W²).

    With α_j = (a + b j) q^j and x = ρ²/q: Σ_{j≥s} x^j/(a + b j) = x^s Φ(x, 1, a/b + s)/b (Lerch
    transcendent, by its definition); constant P gives a geometric series.
    """
    poly = geometric_split(f.general)
    x = S.rho**2 / q
    s = first_weighted_lag(f)  # lags with α_j = 0 cannot be learned and are left out
    coeffs = poly.all_coeffs()
    if len(coeffs) == 1:
        series = x**s / (coeffs[0] * (1 - x))
    elif len(coeffs) == 2:
        b, a = coeffs
        shift = sp.simplify(a / b + s)
        series = x**s * sp.lerchphi(x, 1, shift) / b
        if shift.is_Rational and shift.q > MAX_EXPANDED_DENOMINATOR:
            return series  # Φ(x, 1, p/q) expands into a sum of q logarithms: keep it as Φ
    else:
        series = sp.Sum(x**j / poly.as_expr(), (j, s, sp.oo))
    for lag, value in f.special.items():
        if lag >= s:
            series -= x**lag / poly.as_expr().subs(j, lag)
        if value != 0:
            series += S.rho ** (2 * lag) / in_q(value)
    return sp.expand_func(series)


def at_edge(expr: sp.Expr, order: int) -> sp.Expr:
    """lim_{q→1⁻} (1 - q)^order · expr: the leading behaviour as σ_W → 1.

    The series are rational in q, so cancelling the pole and setting q = 1 is the limit.
    """
    value = sp.cancel(expr * (1 - q) ** order).subs(q, 1)
    if value.has(sp.nan, sp.zoo, sp.oo):
        value = sp.limit(expr * (1 - q) ** order, q, 1, "-")
    return sp.factor(value)


def properties(d: Derivation) -> dict[str, sp.Expr | str]:
    """Every derived property, as SymPy expressions in q = σ_W² (and j, ρ where they appear)."""
    alpha = d.alpha
    r = ratio(alpha)
    total = weighted_total(alpha)
    mean_lag = sp.cancel(weighted_total(alpha, 1) / total)
    threshold, reason = monotone_threshold(alpha, r)
    crossing = peak_crossing(r)
    degree = geometric_split(alpha.general).degree()
    return {
        "ratio": r,
        "ratio_from_lag": ratio_start(alpha),
        "decreasing_below_sigma_W": threshold,
        "decreasing_reason": reason,
        "decreasing_from_lag": first_weighted_lag(alpha),
        "peak_crossing": crossing,
        "total_weight": sp.factor(total),
        "mean_lag": sp.factor(mean_lag),
        "alpha_at_sigma_W_1": sp.simplify(in_q(alpha.general).subs(q, 1)),
        "total_weight_edge": at_edge(total, degree + 1),
        "mean_lag_edge": at_edge(mean_lag, 1),
        "peak_edge": at_edge(crossing, 1) if crossing is not None else None,
        "kernel_norm_decay": kernel_norm_decay(alpha),
    }
