"""Finite-width ingredients of the lag kernel, exact in n for given lags (`wick`).

The wide-limit kernel Θ_jk = diag(α_j) is the n → ∞ limit of the empirical lag Gram
    Θ_jk(θ) = Σ_X λ_X s_X² ⟨∂L_j/∂X, ∂L_k/∂X⟩,   s_X² = σ_X²/fan-in,   L_j = C W^j F (convention A),
and at finite width it differs in two ways, both derived here from the same words:

  mean at initialization   E Θ_jk(0), exactly; its 1/n term is the static shift (it also couples
                           lags j, k of equal parity: τ(W^2) = σ_W²/n is not 0 at finite n);
  motion under training    one gradient-descent step θ → θ − η Λ ∂ℒ/∂θ with the residual r_l =
                           ∂ℒ/∂L_l changes the Gram by E[Θ(1) − Θ(0)] = η² Σ_ll' r_l r_l' K_jk,ll' + O(η⁴).
                           The odd orders vanish exactly: every parameter update carries one entry
                           of C and one of F more than the entry it moves, so an odd number of
                           updates leaves an odd power of C and F, whose mean is 0. K is the second
                           derivative of the Gram along two gradient steps (the ddNTK and the
                           dNTK's square, in the language of the NTK hierarchy); it is O(1/n).

Centered runs (the function at initialization subtracted, F3) start from a deterministic
residual, so these are the expectations that drive the kernel's first step there.
The blocks trained and their rates come from the Spec (a frozen block has no gradient and no
part of the Gram); D, the feed-through, has a constant tangent and neither moves the Gram nor is
moved by it. Convention A, NTK parameterization, Gaussian W, n_x = n_y = 1.
"""
from __future__ import annotations

import itertools

import sympy as sp

from . import symbols as S
from .spec import Spec, SpecError
from .wick import Builder, Net, coefficients_in_inverse_width, expectation

step = sp.Symbol("eta", positive=True)
MAX_LAGS = 4  # exact enumeration: lag 3 with 4 residual lags takes ~15 s, and the cost grows like (2k−1)!!


def residual(l: int) -> sp.Symbol:
    return sp.Symbol(f"r_{l}")


def _rate(spec: Spec, block: str) -> sp.Expr:
    if block not in spec.trained:
        return sp.Integer(0)
    return S.rate[block] if spec.symbolic_rates else sp.Rational(spec.rate(block))


def _scale(block: str) -> sp.Expr:
    return S.sigma[block] ** 2 / (S.width if block in ("C", "W") else 1)


def _check(spec: Spec) -> None:
    if spec.param != "ntk" or spec.convention != "A" or spec.family != "gaussian":
        raise SpecError("the finite-width terms are derived for convention A, the NTK parameterization and "
                        f"Gaussian W (got {spec.param}, convention {spec.convention}, {spec.init})")


def gram_nets(spec: Spec, j: int, k: int, b: Builder) -> list[Net]:
    """Θ_jk(θ) without the feed-through's constant, as networks of entries of C, W and F."""
    nets = []
    weight = {X: _rate(spec, X) * _scale(X) for X in ("C", "F", "W")}
    if weight["C"] != 0:
        i = b.index()
        nets.append(Net(weight["C"], tuple(b.u(j, i) + b.u(k, i))))
    if weight["F"] != 0:
        i = b.index()
        nets.append(Net(weight["F"], tuple(b.v(j, i) + b.v(k, i))))
    if weight["W"] != 0:
        for m, m2 in itertools.product(range(j), range(k)):
            a, c = b.index(), b.index()
            nets.append(Net(weight["W"], tuple(b.v(m, a) + b.v(m2, a) + b.u(j - 1 - m, c) + b.u(k - 1 - m2, c))))
    return nets


def _update(spec: Spec, factor: tuple, lags: int, b: Builder) -> list[tuple]:
    """−η λ_X s_X² Σ_l r_l ∂L_l/∂X at the entry `factor`, as (coefficient, factors) with the entry's indices open."""
    block, idx = factor
    weight = -step * _rate(spec, block) * _scale(block)
    if weight == 0:
        return []
    out = []
    for l in range(lags):
        if block == "C":
            out.append((weight * residual(l), b.u(l, idx[0])))
        elif block == "F":
            out.append((weight * residual(l), b.v(l, idx[0])))
        else:
            out += [(weight * residual(l), b.v(m, idx[0]) + b.u(l - 1 - m, idx[1])) for m in range(l)]
    return out


def second_order_nets(spec: Spec, j: int, k: int, lags: int) -> list[Net]:
    """The η² part of Θ_jk after one step: every unordered pair of entries of the Gram's networks moved
    by the update (Θ is a polynomial in the entries, so this is its second Taylor coefficient)."""
    b = Builder()
    nets = []
    for net in gram_nets(spec, j, k, b):
        factors = list(net.factors)
        for s1, s2 in itertools.combinations(range(len(factors)), 2):
            for (c1, f1), (c2, f2) in itertools.product(_update(spec, factors[s1], lags, b),
                                                        _update(spec, factors[s2], lags, b)):
                rest = [f for i, f in enumerate(factors) if i not in (s1, s2)]
                nets.append(Net(net.coefficient * c1 * c2, tuple(rest + f1 + f2)))
    return nets


def gram_mean(spec: Spec, j: int, k: int) -> sp.Expr:
    """E Θ_jk(0) at width n, exactly (the feed-through's λ_D σ_D² included at j = k = 0)."""
    _check(spec)
    value = expectation(gram_nets(spec, j, k, Builder()))
    if j == k == 0 and spec.feedthrough and "D" in spec.trained:
        value += _rate(spec, "D") * S.sigma["D"] ** 2
    return sp.expand(value)


def first_step_change(spec: Spec, j: int, k: int, lags: int) -> sp.Expr:
    """The η² term of E[Θ_jk(1) − Θ_jk(0)] after one gradient step with residual r_0 … r_{lags−1},
    exactly in n (a polynomial in η, the r_l and 1/n)."""
    _check(spec)
    return expectation(second_order_nets(spec, j, k, lags))


def inverse_width_terms(expr: sp.Expr, order: int = 1) -> list[sp.Expr]:
    """[wide limit, 1/n coefficient, …] of an exact finite-width expectation."""
    return coefficients_in_inverse_width(expr, order)


def order_one(spec: Spec, lags: int = 3) -> dict[str, dict[tuple[int, int], sp.Expr]]:
    """The 1/n coefficients at lags 0 … lags−1 (pairs j ≤ k whose coefficient is not 0):
    'static', of E Θ_jk(0); 'first_step', of the η² term of E[Θ_jk(1) − Θ_jk(0)] after one step with
    residual r_0 … r_{lags−1}. Both exact (the same Wick enumeration as `gram_mean`), so `lags` is
    small: at most MAX_LAGS."""
    _check(spec)
    if spec.symbolic_rates:  # factoring in symbolic λ's can take minutes; the rates are numbers in every use
        raise SpecError("the 1/n terms are printed for numeric rates; drop --symbolic-rates")
    if not 1 <= lags <= MAX_LAGS:
        raise SpecError(f"the 1/n terms are enumerated exactly, at 1 to {MAX_LAGS} lags (the cost grows like "
                        f"(2k−1)!! in the lag); got {lags}")
    out: dict[str, dict] = {"static": {}, "first_step": {}}
    for j, k in itertools.combinations_with_replacement(range(lags), 2):
        for name, exact in (("static", gram_mean(spec, j, k)), ("first_step", first_step_change(spec, j, k, lags))):
            term = inverse_width_terms(exact, 1)[1]  # already factored (`wick.coefficients_in_inverse_width`)
            if term != 0:
                out[name][(j, k)] = term
    return out
