"""From a spec to the lag weights α_j of the wide-limit neural tangent kernel.

Θ((x,k),(x',k')) = Σ_{j,j'} Σ_X λ_X ⟨∂L_j/∂θ_X, ∂L_j'/∂θ_X⟩ x_{k-j} x'_{k'-j'}: the kernel is
the tangent Gram of the Markov parameters. Each step below is one stage of that computation:
words → tangents (product rule) → inner products → infinite-width rules → sum over positions.
In the limit the Gram is diagonal in the lag, Θ = Σ_j α_j ⟨x_{k-j}, x'_{k'-j}⟩ / n_x.
"""
from __future__ import annotations

import dataclasses
import functools
import operator

import sympy as sp

from . import symbols as S
from .gradients import Tangent, block_tangents
from .limits import side_limit, word_second_moment
from .markov import as_expr, markov_parameter
from .spec import Spec


def tangent_scale(spec: Spec, block: str) -> sp.Expr:
    """Squared chain-rule factor from the trained parameter to the block, times its rate.

    ntk: X = σ_X X̃/√fan-in, so ∂/∂X̃ = (σ_X/√fan-in) ∂/∂X.  standard: raw gradients at the global
    rate η/n, so the kernel carries 1/n.
    """
    lam = S.rate[block] if spec.symbolic_rates else sp.Rational(spec.rate(block))
    if spec.param == "ntk":
        return lam * S.init_variance(block)
    return lam / S.width


def tangent_inner_product(spec: Spec, block: str, a: Tangent, b: Tangent) -> sp.Expr:
    """Wide limit of ⟨∂(L)_ac/∂X, ∂(L')_bd/∂X⟩ = (e_aᵀ left left'ᵀ e_b)(e_cᵀ rightᵀ right' e_d)."""
    output_side = side_limit(a.left, b.left, outer_first=True)
    input_side = side_limit(a.right, b.right, outer_first=False)
    return tangent_scale(spec, block) * output_side * input_side


def sum_over_positions(summand: sp.Expr, a: Tangent, b: Tangent) -> sp.Expr:
    """Σ_m Σ_m' of an inner product, contracting the position delta the output side leaves.

    The caller orders lags so a's range of m lies inside b's: then Σ_m' δ_mm' g(m') = g(m).
    """
    if a.position is None and b.position is None:
        return summand
    (m, count_a), (m2, _) = a.position, b.position
    delta = sp.KroneckerDelta(m, m2)
    contracted = sp.powsimp(sp.expand(summand / delta).subs(m2, m), force=True)
    if contracted.has(m2):
        raise NotImplementedError("position sum without a contracting delta")
    return sp.summation(contracted, (m, 0, count_a - 1))


def block_gram(spec: Spec, block: str, lag_a, lag_b) -> sp.Expr:
    """Wide-limit Gram entry of one block between L_{lag_a} and L_{lag_b} (lag_a ≤ lag_b), before
    the kernel normalization."""
    total = sp.Integer(0)
    for word_a in markov_parameter(spec, lag_a):
        for word_b in markov_parameter(spec, lag_b):
            for ta in block_tangents(word_a, block, S.position):
                for tb in block_tangents(word_b, block, S.position_other):
                    total += sum_over_positions(tangent_inner_product(spec, block, ta, tb), ta, tb)
    return total


def infinite_width(expr: sp.Expr) -> sp.Expr:
    """n → ∞ of a normalized Gram entry; a divergent limit means the scaling is wrong."""
    value = sp.limit(sp.powsimp(sp.expand(expr), force=True), S.width, sp.oo)
    if value.has(sp.oo, -sp.oo, sp.zoo, sp.nan):
        raise ArithmeticError(f"the kernel diverges with width: {expr}")
    return sp.factor(value)


def kernel_normalization(expr: sp.Expr) -> sp.Expr:
    """Θ = Σ_j α_j ⟨x, x'⟩ / n_x: α is n_x times the Gram entry, in the limit."""
    return infinite_width(expr * S.input_dim)


@dataclasses.dataclass
class LagFunction:
    """A function of the lag: `general` for j ≥ first_lag, overridden at the lags in `special`."""

    general: sp.Expr
    first_lag: int
    special: dict[int, sp.Expr]

    def at(self, j: int) -> sp.Expr:
        if j in self.special:
            return self.special[j]
        if j < self.first_lag:
            return sp.Integer(0)
        return self.general.subs(S.lag, j)

    def expr(self) -> sp.Expr:
        """One expression in j: lag deltas where the general form holds at every lag, else a Piecewise."""
        if self.first_lag == 0:
            extra = {j: sp.factor(v - self.general.subs(S.lag, j)) for j, v in self.special.items()}
            return self.general + sum(v * sp.KroneckerDelta(S.lag, j) for j, v in extra.items() if v != 0)
        pieces = [(self.special.get(j, sp.Integer(0)), sp.Eq(S.lag, j)) for j in range(self.first_lag)]
        return sp.Piecewise(*pieces, (self.general, True))

    def scale(self, factor) -> "LagFunction":
        return LagFunction(self.general * factor, self.first_lag, {j: v * factor for j, v in self.special.items()})

    def __add__(self, other: "LagFunction") -> "LagFunction":
        # The sum's general form holds only where both do; below that, every lag is special.
        first = max(self.first_lag, other.first_lag)
        lags = set(self.special) | set(other.special) | set(range(first))
        special = {j: sp.factor(self.at(j) + other.at(j)) for j in sorted(lags)}
        return LagFunction(sp.factor(self.general + other.general), first, special)


@dataclasses.dataclass
class Derivation:
    spec: Spec
    alpha: LagFunction
    blocks: dict[str, LagFunction]
    nngp: LagFunction
    cross_lag: sp.Expr
    steps: list[tuple[str, str]]


def _lag_function(spec: Spec, value_at) -> LagFunction:
    """Evaluate a lag-dependent quantity at symbolic j ≥ 1 and at lag 0.

    The general form holds from lag s (the input lag: 0 for A, 1 for B), where C W^{j-s} F exists.
    """
    general = value_at(S.lag)
    zero = value_at(sp.Integer(0))
    first = spec.input_lag
    special = {0: zero} if first > 0 or sp.expand(general.subs(S.lag, 0) - zero) != 0 else {}
    return LagFunction(general, first, special)


def derive(spec: Spec) -> Derivation:
    """Derive α_j, its per-block parts, the NNGP variance and the cross-lag limit for a spec."""
    steps = [("Markov parameters",
              "; ".join(f"L_{{{lag}}} = " + " + ".join(sp.sstr(as_expr(w)) for w in markov_parameter(spec, lag))
                        for lag in (sp.Integer(0), S.lag) if markov_parameter(spec, lag)))]
    blocks = {}
    for block in spec.trained:
        part = _lag_function(spec, lambda j: kernel_normalization(block_gram(spec, block, j, j)))
        blocks[block] = part
        word = markov_parameter(spec, S.lag)
        tangents = block_tangents(word[0], block, S.position) if word else []
        if tangents:
            steps.append((f"∂L_j/∂{block}", ", ".join(
                f"({sp.sstr(as_expr(t.left))})ᵀ e_a e_cᵀ ({sp.sstr(as_expr(t.right))})ᵀ"
                + (f" summed over m = 0..{t.position[1] - 1}" if t.position else "") for t in tangents)))
        steps.append((f"α_j from {block}", sp.sstr(part.expr())))
    alpha = functools.reduce(operator.add, blocks.values())
    cross = sp.factor(sum(kernel_normalization(block_gram(spec, b, lag_a, lag_a + S.gap))
                            for b in spec.trained for lag_a in (sp.Integer(0), S.lag)))
    steps.append(("cross-lag terms (lag j vs j + d, d ≥ 1)", sp.sstr(cross)))
    nngp = _lag_function(spec, lambda j: infinite_width(
        sum((word_second_moment(w) for w in markov_parameter(spec, j)), sp.Integer(0)) * S.input_dim))
    steps.append(("Var L_j(0) · n_x", sp.sstr(nngp.expr())))
    return Derivation(spec, alpha, blocks, nngp, cross, steps)
