"""The full lag kernel Θ_jk for any initializer family of W, derived with the moments left open.

Θ((x,k),(x',k')) = Σ_{j,j'} Θ_jj' x_{k−j} x'_{k'−j'} / n_x (scalar input and output): the tangent
Gram of the Markov parameters L_j and L_k, with no assumption that it is diagonal. The steps are
those of `kernel.derive` (words → tangents → inner products → infinite-width rules), except that
the normalized traces of W-powers stay undetermined functions, m(p, r) = τ(W^p (W^r)ᵀ) on the
output side (through C) and m′(p, r) = τ((W^p)ᵀ W^r) on the input side (through F), and the
positions of dW in the two tangents are summed independently (no delta to contract). (For every
matrix the two tables coincide, tr(AᵀB) = tr(ABᵀ) = ⟨A, B⟩_F; they are kept apart because each
comes from its own side of the tangent, and every rule returns the pair.) Then each
family's limit rule (`moments`) is substituted and SymPy evaluates the sums where it can.

Every block's contribution is a `Term`: a derived coefficient times a moment on each side, summed
over positions. The same terms give the SymPy expression and the numeric matrix over lags
(`kernel_matrix`), so the printed formula and the numbers cannot disagree.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import mpmath
import numpy as np
import sympy as sp

from . import moments as rules
from . import symbols as S
from .gradients import Tangent, block_tangents
from .kernel import infinite_width, tangent_scale
from .limits import _outer_and_power, gaussian_bilinear_second_moment
from .markov import markov_parameter
from .spec import Spec
from .symbols import init_variance

other_lag = sp.Symbol("k", integer=True, nonnegative=True)
# Up to this many lags the position sum is a direct convolution, beyond it an FFT.
DIRECT_CONVOLUTION_LAGS = 64
m_out = sp.Function("m")  # τ(W^p (W^r)ᵀ)
m_in = sp.Function("mT")  # τ((W^p)ᵀ W^r)


@dataclasses.dataclass(frozen=True)
class Term:
    """coefficient · Σ_positions m(output powers) · m′(input powers), for one block and one pair of
    tangents; a side without W powers (a bare C or F, or no block at all) contributes τ(I) = 1."""

    block: str
    coefficient: sp.Expr
    output: tuple | None  # (p, r) or None
    input: tuple | None
    positions: tuple  # ((symbol, count), ...) summed from 0 to count − 1

    def expr(self, m=m_out, mt=m_in) -> sp.Expr:
        body = self.coefficient * (m(*self.output) if self.output else 1) * (mt(*self.input) if self.input else 1)
        return sp.Sum(body, *[(sym, 0, count - 1) for sym, count in self.positions]) if self.positions else body


def _side(word_a, word_b, outer_first: bool):
    """Variance of the Gaussian end block and the W powers of one side (None: e_aᵀ e_b = 1)."""
    block_a, power_a = _outer_and_power(word_a, outer_first)
    block_b, power_b = _outer_and_power(word_b, outer_first)
    if block_a != block_b:
        raise NotImplementedError(f"sides {word_a} and {word_b} end in different blocks")
    if block_a is None:
        return sp.Integer(1), None
    # u_aᵀ M u_b → v tr(M) = v n τ(M) (`limits.gaussian_quadratic_form`); τ(I) = 1 needs no table.
    powers = None if power_a == 0 and power_b == 0 else (power_a, power_b)
    return init_variance(block_a) * S.width, powers


def _pair_term(spec: Spec, block: str, ta: Tangent, tb: Tangent) -> Term:
    out_scale, out_powers = _side(ta.left, tb.left, outer_first=True)
    in_scale, in_powers = _side(ta.right, tb.right, outer_first=False)
    coefficient = infinite_width(tangent_scale(spec, block) * out_scale * in_scale * S.input_dim)
    positions = tuple(t.position for t in (ta, tb) if t.position is not None)
    return Term(block, coefficient, out_powers, in_powers, positions)


def terms(spec: Spec, j=S.lag, k=other_lag) -> list[Term]:
    """The kernel's terms between L_j and L_k, every trained block, every pair of tangents."""
    out = []
    for block in spec.trained:
        for word_a in markov_parameter(spec, j):
            for word_b in markov_parameter(spec, k):
                for ta in block_tangents(word_a, block, S.position):
                    for tb in block_tangents(word_b, block, S.position_other):
                        term = _pair_term(spec, block, ta, tb)
                        if term.coefficient != 0:
                            out.append(term)
    return out


def initial_covariance(spec: Spec, j, k) -> sp.Expr:
    """n_x E[L_j(0) L_k(0)] in the limit, moments undetermined: for words C W^p F and C W^r F,
    E over F then C gives v_C v_F tr(W^p (W^r)ᵀ) (`limits.gaussian_bilinear_second_moment`, its
    mixed form); D pairs only with itself."""
    total = sp.Integer(0)
    for word_a in markov_parameter(spec, j):
        for word_b in markov_parameter(spec, k):
            blocks_a, blocks_b = [f.block for f in word_a], [f.block for f in word_b]
            if blocks_a == blocks_b == ["D"]:
                total += init_variance("D")
            elif blocks_a == blocks_b == ["C", "W", "F"]:
                trace = S.width * m_out(word_a[1].power, word_b[1].power)
                total += gaussian_bilinear_second_moment(init_variance("C"), init_variance("F"), trace)
    return infinite_width(total * S.input_dim) if total != 0 else total


@dataclasses.dataclass
class LagKernel:
    """Θ_jk of one spec: the general form for j, k ≥ first_lag and the corner Θ_00 where it differs."""

    spec: Spec
    generic: sp.Expr  # moments undetermined
    general: sp.Expr  # the family's rule substituted, sums evaluated where SymPy can
    blocks: dict[str, sp.Expr]
    corner: sp.Expr | None  # Θ_00 when it is not the general form at j = k = 0 (D's term)
    first_lag: int
    diagonal: sp.Expr  # α_j = Θ_jj from the general form
    nngp: sp.Expr  # n_x Cov(L_j(0), L_k(0)) = σ_C² σ_F² m(j − s, k − s) for j, k ≥ s
    nngp_corner: sp.Expr | None  # its value at j = k = 0 (with σ_D² from the feed-through)
    moments: tuple[sp.Expr, sp.Expr]


def _same_lag(expr: sp.Expr) -> sp.Expr:
    """Write every delta as δ(x − y, 0) and, in a product with δ(j − k, 0), set k = j elsewhere."""
    expr = sp.expand(expr.replace(sp.KroneckerDelta, lambda x, y: sp.KroneckerDelta(sp.expand(x - y), 0)))
    out = sp.Integer(0)
    for term in sp.Add.make_args(expr):
        deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.KroneckerDelta)
                  and sp.expand((f.args[0] - f.args[1]) ** 2 - (S.lag - other_lag) ** 2) == 0]
        if deltas:
            term = (term / deltas[0]).subs(other_lag, S.lag) * sp.KroneckerDelta(S.lag, other_lag)
        out += term
    return out


def _contract(summand: sp.Expr, limits: list) -> sp.Expr:
    """Σ over the positions of one product of moments: a delta that fixes a position removes its
    sum (the other position's range shrinks to where the delta can fire); what is left is summed by SymPy."""
    # δ(x, y) as δ(x − y, 0): δ(j − 1 − m, k − 1 − m) is δ(j − k, 0), free of the position
    summand = summand.replace(sp.KroneckerDelta, lambda x, y: sp.KroneckerDelta(sp.expand(x - y), 0))
    for delta in (f for f in sp.Mul.make_args(summand) if isinstance(f, sp.KroneckerDelta)):
        for index, (var, low, high) in enumerate(limits):
            difference = sp.expand(delta.args[0] - delta.args[1])
            slope = difference.coeff(var)
            if slope not in (1, -1):
                continue
            solution = sp.expand(var - difference / slope)  # var = solution makes the delta fire
            rest = [lim for i, lim in enumerate(limits) if i != index]
            body = (summand / delta).subs(var, solution)
            if rest and solution.has(rest[0][0]):  # the bounds of var become bounds of the other position
                (u, u_low, u_high), c = rest[0], solution.coeff(rest[0][0])
                shift = sp.expand(solution - c * u)
                bounds = (low - shift, high - shift) if c == 1 else (shift - high, shift - low)
                return _contract(body, [(u, sp.Max(u_low, bounds[0]), sp.Min(u_high, bounds[1]))])
            inside = sp.And(solution >= low, solution <= high)
            return sp.Piecewise((_contract(body, rest), inside), (0, True))
    if not limits:
        return summand
    summand = sp.powsimp(summand, force=True)  # σ^{2a} σ^{2(j−1−a)} → σ^{2j−2}: free of the position
    positions = [lim[0] for lim in limits]
    free, dependent = summand.as_independent(*positions, as_Add=False)
    # SymPy sums polynomial × geometric terms quickly; anything else (the spectral laws' 1/(a+b+2),
    # their phases' sines) stays a finite sum.
    geometric = all(dependent.is_polynomial(v) or sp.powsimp(dependent, force=True).is_polynomial(v) or
                    all(isinstance(f, sp.Pow) and not f.base.has(*positions) for f in sp.Mul.make_args(dependent)
                        if f.has(v)) for v in positions)
    if not geometric:  # SymPy's hypergeometric summation takes seconds here and finds no closed form
        return free * sp.Sum(dependent, *limits)
    try:
        return _generic_sigma(sp.Sum(summand, *limits).doit())
    except (ValueError, NotImplementedError, TypeError):  # SymPy's hypergeometric summation gave up:
        return sp.Sum(summand, *limits)  # a finite sum, evaluated at numeric lags


def _generic_sigma(expr: sp.Expr) -> sp.Expr:
    """Keep the branch of a geometric sum for σ_W ≠ 1: the printed and emitted closed forms hold
    for σ_W ≠ 1, σ_W = 1 being their limit; the numbers (`kernel_matrix`, derive --eval, every
    check) never divide by 1 − σ_W² and are exact there."""
    def prune(*pieces):
        kept = [(e, c) for e, c in pieces if not (isinstance(c, sp.Eq) and c.has(S.sigma["W"]))]
        return sp.Piecewise(*kept) if kept and kept[-1][1] != sp.true or len(kept) > 1 else kept[0][0]
    return expr.replace(sp.Piecewise, prune)


def specialize(expr: sp.Expr, spec: Spec) -> sp.Expr:
    """Substitute the family's moment rule into an expression in m, m′ and evaluate the sums."""
    m, mt = rules.moments(spec, rules.a, rules.b)
    table = {m_out: sp.Lambda((rules.a, rules.b), m), m_in: sp.Lambda((rules.a, rules.b), mt)}
    value = expr.replace(m_out, table[m_out]).replace(m_in, table[m_in])
    if value.has(rules.measured, rules.measured_transposed) or m.has(sp.Sum):
        return value  # a measured table, or a moment that is itself a sum: finite sums, evaluated at numbers
    total = sp.Integer(0)
    for part in sp.Add.make_args(sp.expand(value)):
        if isinstance(part, sp.Sum) or any(isinstance(f, sp.Sum) for f in sp.Mul.make_args(part)):
            (summed,) = [f for f in sp.Mul.make_args(part) if isinstance(f, sp.Sum)]
            coefficient = part / summed
            for term in sp.Add.make_args(sp.expand(summed.function)):
                total += coefficient * _contract(term, list(summed.limits))
        else:
            total += part
    return _tidy(_same_lag(_tidy(total)))


def _tidy(expr: sp.Expr) -> sp.Expr:
    """A cheap simplification (sp.simplify takes seconds on the attractor's sums)."""
    return sp.factor_terms(sp.powsimp(sp.expand(expr), force=True))


def derive_lag_kernel(spec: Spec) -> LagKernel:
    s = spec.input_lag
    general_terms = terms(spec)
    blocks = {}
    for term in general_terms:
        blocks[term.block] = blocks.get(term.block, 0) + term.expr()
    generic = sum(blocks.values(), sp.Integer(0))
    special = {b: specialize(e, spec) for b, e in blocks.items()}
    general = sum(special.values(), sp.Integer(0))
    corner_terms = terms(spec, sp.Integer(0), sp.Integer(0))
    corner = sum((t.expr() for t in corner_terms), sp.Integer(0))
    corner = specialize(corner, spec)
    if s == 0 and sp.simplify((corner - general.subs({S.lag: 0, other_lag: 0})).doit()) == 0:
        corner = None
    m, mt = rules.moments(spec, rules.a, rules.b)
    nngp = specialize(initial_covariance(spec, S.lag, other_lag), spec)
    nngp_corner = specialize(initial_covariance(spec, sp.Integer(0), sp.Integer(0)), spec) if spec.feedthrough else None
    diagonal = _tidy(_same_lag(general.subs(other_lag, S.lag)).subs(sp.KroneckerDelta(S.lag, S.lag), 1))
    return LagKernel(spec, generic, general, special, corner, s, diagonal, nngp, nngp_corner, (m, mt))


# ---- numbers: the same terms, evaluated over a grid of lags ----

def _numeric(expr: sp.Expr, symbols: tuple, values: tuple, grid: tuple[np.ndarray, ...]) -> np.ndarray:
    """expr at integer grids (deltas as Piecewise). A moment that is a finite sum (nprnn's) depends
    on a + b only: it is evaluated once per a + b, in mpmath (its terms overflow float64)."""
    expr = expr.replace(sp.KroneckerDelta, lambda x, y: sp.Piecewise((1, sp.Eq(x, y)), (0, True)))
    shape = np.broadcast(*grid).shape
    if not expr.has(sp.Sum):
        f = sp.lambdify(symbols, expr, modules="numpy")
        with np.errstate(all="ignore"):  # numpy.select evaluates the branch that is not taken
            return np.broadcast_to(np.asarray(f(*grid, *values), dtype=float), shape).copy()
    x, y = symbols[:2]
    order = sp.Dummy("order", integer=True, nonnegative=True)
    along = expr.subs(y, order - x)
    if along.has(x):
        raise NotImplementedError(f"a summed moment that is not a function of a + b: {expr}")
    # exact integers for the combinatorial factors, mpmath for the powers (σ_W/5)^c: no overflow
    exact = {"binomial": math.comb, "catalan": functools.lru_cache(None)(lambda k: math.comb(2 * k, k) // (k + 1))}
    f = sp.lambdify((order,) + tuple(symbols[2:]), sp.powsimp(along, force=True), modules=[exact, "mpmath"])
    a, b = np.broadcast_arrays(*grid)
    orders = np.arange(int((a + b).max()) + 1)
    line = np.array([float(f(int(c), *(mpmath.mpf(v) for v in values))) for c in orders])
    return line[a + b]


def moment_tables(spec: Spec, size: int, sigma_w: float) -> tuple[np.ndarray, np.ndarray]:
    """m(x, y) and m′(x, y) for x, y < size at σ_W, from the family's rule (measured for file families)."""
    m, mt = rules.moments(spec)
    x, y = np.arange(size)[:, None], np.arange(size)[None, :]
    extra = rules.family_values(spec)
    symbols = (rules.a, rules.b, S.sigma["W"]) + tuple(extra)
    values = (float(sigma_w),) + tuple(float(v) for v in extra.values())
    if m.has(rules.measured):
        table, table_t = rules.measured_table(spec, size)
        scale = float(sigma_w) ** (x + y)
        return scale * table, scale * table_t
    return _numeric(m, symbols, values, (x, y)), _numeric(mt, symbols, values, (x, y))


def _shifted(table: np.ndarray, powers, lags: int, s: int) -> np.ndarray:
    """A lag × lag matrix whose (j, k) entry is table[p(j), r(k)] for powers linear in the lag."""
    out = np.zeros((lags, lags))
    j, k = np.meshgrid(np.arange(s, lags), np.arange(s, lags), indexing="ij")
    p, r = (np.broadcast_to(sp.lambdify((S.lag, other_lag), e, "numpy")(j, k), j.shape).astype(int) for e in powers)
    out[s:, s:] = table[p, r]
    return out


def _position_sum(m: np.ndarray, mt: np.ndarray, lags: int, s: int) -> np.ndarray:
    """Σ_{a<P} Σ_{b<R} m(a, b) m′(P−1−a, R−1−b) at P = j − s, R = k − s: the first quadrant of the
    2-D full convolution of the two tables, shifted by one (d(W^P) = Σ W^a dW W^{P−1−a})."""
    size = max(lags - s - 1, 0)
    out = np.zeros((lags, lags))
    if size == 0:
        return out
    m, mt = m[:size, :size], mt[:size, :size]
    if size <= DIRECT_CONVOLUTION_LAGS:  # exact sums of products
        conv = np.zeros((size, size))
        for x in range(size):
            for y in range(size):
                conv[x:, y:] += m[x, y] * mt[: size - x, : size - y]
    else:  # by FFT: absolute error ~ 1e-16 of the largest entry, far below the n^{-1/2} of any check
        shape = (2 * size, 2 * size)
        conv = np.fft.irfft2(np.fft.rfft2(m, shape) * np.fft.rfft2(mt, shape), shape)[:size, :size]
    out[s + 1:, s + 1:] = conv
    return out


def kernel_matrix(spec: Spec, lags: int, sigmas: dict, lag_kernel: LagKernel | None = None) -> dict:
    """Θ_jk for j, k < lags (n_x = n_y = 1) at the given σ_W, σ_F, σ_C, σ_D (and rates λ_X when
    symbolic), its per-block parts and the initial covariance n_x Cov(L_j(0), L_k(0)).

    Built from the derived `terms` with numeric moment tables, so one code path serves every family,
    closed form or not; tests hold it to the closed forms and to random networks.
    """
    s = spec.input_lag
    m, mt = moment_tables(spec, max(lags, 1), sigmas["W"])
    subs = {S.sigma[b]: float(sigmas.get(b, 0.0)) for b in ("W", "F", "C", "D")}
    subs.update({S.rate[b]: float(sigmas.get(f"lambda_{b}", 1.0)) for b in ("W", "F", "C", "D")})
    subs.update({S.input_dim: 1})
    blocks = {}
    for block in spec.trained:
        total = np.zeros((lags, lags))
        for corner in (False, True):
            found = terms(spec, sp.Integer(0), sp.Integer(0)) if corner else terms(spec)
            for term in found:
                if term.block != block:
                    continue
                c = float(term.coefficient.subs(subs))
                if corner:  # terms present only at j = k = 0 (the feed-through D)
                    if term.output is None and term.input is None and not term.positions and block == "D":
                        total[0, 0] += c
                    continue
                if term.positions:
                    total += c * _position_sum(m, mt, lags, s)
                elif term.output is not None:
                    total += c * _shifted(m, term.output, lags, s)
                elif term.input is not None:
                    total += c * _shifted(mt, term.input, lags, s)
                else:
                    raise NotImplementedError(f"a {block} term with no moment on either side")
        blocks[block] = total
    # n_x Cov(L_j(0), L_k(0)) = c · m(j − s, k − s) for j, k ≥ s, and its own value at (0, 0)
    general = initial_covariance(spec, S.lag, other_lag)
    covariance = np.zeros((lags, lags))
    covariance[s:, s:] = float(general.replace(m_out, lambda *_: 1).subs(subs)) * m[: lags - s, : lags - s]
    covariance[0, 0] = float(initial_covariance(spec, sp.Integer(0), sp.Integer(0)).replace(m_out, lambda *_: 1).subs(subs))
    return {"kernel": sum(blocks.values(), np.zeros((lags, lags))), "blocks": blocks, "covariance": covariance}
