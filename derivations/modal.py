"""Modal memory of h_t = W h_{t−1} + U x_t with W = P Λ P⁻¹ (the eigen view of paper 2).

In modal coordinates z = P⁻¹ h every mode evolves alone, z_{t,i} = λ_i z_{t−1,i} + (P⁻¹ U x_t)_i, so
an input k steps back reaches mode λ = r e^{iθ} multiplied by λ^k: gain r^k, phase kθ. Each
quantity below is derived from that power, not typed in; `memory_function` is the lag kernel
issue's moment table on its diagonal (the same code), so the eigen view and the lag kernels agree.
"""
from __future__ import annotations

import sympy as sp

from . import moments as rules
from .spec import Spec
from .symbols import sigma

k = sp.Symbol("k", integer=True, nonnegative=True)  # steps back
r = sp.Symbol("r", positive=True)  # modulus of the eigenvalue
theta = sp.Symbol("theta", real=True)  # its angle
kappa = sp.Symbol("kappa", positive=True)  # condition number of P
rho = sp.Symbol("rho", positive=True)  # spectral radius


def mode_response() -> sp.Expr:
    """λ^k for λ = r e^{iθ}: what an input k steps back becomes in its mode."""
    return (r * sp.exp(sp.I * theta)) ** k


def gain() -> sp.Expr:
    """|λ^k| = r^k."""
    return sp.simplify(sp.Abs(sp.expand_power_base(mode_response(), force=True)))


def phase() -> sp.Expr:
    """arg λ^k = kθ (mod 2π)."""
    return sp.expand_log(sp.log(sp.expand_power_base(mode_response(), force=True) / gain()), force=True) / sp.I


def half_life() -> sp.Expr:
    """The k at which the gain r^k has halved: ln 2 / (−ln r), for 0 < r < 1."""
    (solution,) = sp.solve(sp.Eq(gain(), sp.Rational(1, 2)), k)
    return sp.simplify(solution)


def transient_bound() -> sp.Expr:
    """‖W^k‖ = ‖P Λ^k P⁻¹‖ ≤ ‖P‖ ‖Λ^k‖ ‖P⁻¹‖ = κ(P) ρ^k (submultiplicativity; ‖Λ^k‖ = ρ^k for a
    diagonal Λ). Non-normal W (κ > 1) can grow before it decays; a normal W has κ = 1."""
    return kappa * rho ** k


def memory_function(spec: Spec) -> sp.Expr:
    """n_x E‖W^k F‖² / (n σ_F²) → τ((W^k)ᵀ W^k) = m′(k, k): the energy an input k steps back
    keeps in the state, for the spec's initializer family (F Gaussian, independent of W)."""
    return sp.simplify(rules.moments(spec, k, k)[1].doit())


def memory_half_life(spec: Spec, sigma_w: float, horizon: int = 10_000) -> int | None:
    """First k at which the memory function has fallen to half its value at k = 0 (None within horizon)."""
    f = sp.lambdify(k, memory_function(spec).subs({sigma["W"]: sigma_w, **rules.family_values(spec)}))
    start = float(f(0))
    for step in range(1, horizon):
        if float(f(step)) <= start / 2:
            return step
    return None


a = sp.Symbol("a", real=True)  # a unit's pre-activation
norm_w = sp.Symbol("s", positive=True)  # ‖W‖₂, the largest singular value
ACTIVATIONS = {"tanh": sp.tanh(a), "relu": sp.Max(a, 0), "identity": a}


def activation_slope_sup(name: str) -> sp.Expr:
    """sup_a φ′(a): the most a step's diag(φ′(a_t)) can pass on (tanh: 1, at a = 0; ReLU: 1 for a > 0)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (choose {', '.join(ACTIVATIONS)})")
    slope = sp.diff(ACTIVATIONS[name], a).rewrite(sp.Piecewise)
    pieces = [e for e, _ in slope.args] if isinstance(slope, sp.Piecewise) else [slope]  # sup over every piece
    return sp.Max(*[sp.maximum(e, a) if e.has(a) else e for e in pieces])


def activation_gain_bound(name: str) -> sp.Expr:
    """‖∂h_t/∂h_{t−k}‖ = ‖Π_s diag(φ′(a_s)) W‖ ≤ (sup φ′)^k ‖W‖₂^k: the activation never adds gain
    (sup φ′ = 1 for tanh and ReLU), it only removes it where units saturate (tanh) or are off (ReLU).
    The modal gains r^k of W are not a bound here: diag(φ′) changes the eigenbasis every step."""
    return (activation_slope_sup(name) * norm_w) ** k
