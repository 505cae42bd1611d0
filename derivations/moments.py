"""Moment tables of the initializer families: the infinite-width rules behind the lag kernel.

For W drawn from a family independent of C and F, the lag kernel needs only
    m(a, b) = lim τ(W^a (W^b)ᵀ)   (output side, through C)   and
    m′(a, b) = lim τ((W^a)ᵀ W^b)  (input side, through F),     τ = (1/n) tr.
Each family's rule below is a small function of symbolic (or numeric) a, b with its own test on
random matrices (tests/test_moments.py). W = σ_W·W̃ with W̃ of unit scale (derivations.families),
so every moment carries σ_W^{a+b}. Families whose law has no closed form (a measured matrix or
spectrum) return the undetermined `measured` function, filled by `measured_table`.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import families
from .spec import Spec
from .symbols import sigma

a, b = sp.symbols("a b", integer=True, nonnegative=True)
i = sp.Symbol("i", integer=True, nonnegative=True)
p = sp.Symbol("p", nonnegative=True)  # attractor fraction
# A table measured from a file: τ(M^a (M^b)ᵀ) or τ((M^a)ᵀ M^b) of the unit-scale matrix.
measured = sp.Function("mu")
measured_transposed = sp.Function("muT")
s = sigma["W"]


def gaussian_moments(x, y):
    """τ(W^x (W^y)ᵀ) → δ_xy σ_W^{2x} for iid N(0, σ_W²/n) entries (free circular element); m′ = m.

    Relative fluctuations O(1/n)."""
    return sp.KroneckerDelta(x, y) * s ** (2 * x)


def orthogonal_moments(x, y):
    """τ(W^x (W^y)ᵀ) = σ_W^{x+y} τ(O^{x−y}) → δ_xy σ_W^{2x} for a Haar orthogonal O (a Haar unitary's
    moments τ(O^k) vanish for k ≠ 0); m′ = m. At finite n, τ(O^k) fluctuates by O(1/n), and C, F's
    quadratic forms by O(n^{-1/2}) — but the Gaussian's τ(W^x (W^x)ᵀ) itself fluctuates, O's does not."""
    return sp.KroneckerDelta(x, y) * s ** (x + y)


def identity_moments(x, y):
    """W = g·I (g = σ_W): τ(W^x (W^y)ᵀ) = g^{x+y} exactly, at every width; m′ = m."""
    return s ** (x + y)


def marchenko_pastur_moment(k):
    """E x^k for x ~ Marchenko–Pastur with ratio 1 (the spectrum of AᵀA/n, A n×n standard
    Gaussian): the Catalan number C_k (the number of non-crossing pairings)."""
    return sp.catalan(k)


def nprnn_moments(x, y):
    """W = σ_W (I + AᵀA/n)/λ_max: symmetric, eigenvalues σ_W (1 + x)/5 with x ~ MP(1) on [0, 4],
    since λ_max(I + AᵀA/n) → 5. So m(x, y) = τ(W^{x+y}) = σ_W^{x+y} 5^{−(x+y)} Σ_i C(x+y, i) C_i; m′ = m.
    λ_max fluctuates like n^{−2/3}, so finite widths converge more slowly than the Gaussian's."""
    order = x + y
    return s ** order * sp.Sum(sp.binomial(order, i) * marchenko_pastur_moment(i), (i, 0, order)) / 5 ** order


def modulus_moment(modulus: str, k):
    """E r^k for the eigenvalue modulus r of a `spectral` law of radius σ_W."""
    if modulus == "disk":  # circular law: density 2r/σ² on [0, σ]
        return 2 * s ** k / (k + 2)
    if modulus == "ring":
        return s ** k
    if modulus == "uniform":
        return s ** k / (k + 1)
    raise ValueError(f"unknown modulus {modulus!r}")


def phase_moment(phase, k):
    """E cos(kθ) for θ uniform on (−φ, φ), φ = phase·π: sin(kφ)/(kφ), 1 at k = 0 (phase = 1:
    δ_k0, rotation-invariant; phase = 0: real positive eigenvalues)."""
    phi = sp.nsimplify(phase) * sp.pi
    if phi == 0:
        return sp.Integer(1)
    if phi == sp.pi:
        return sp.KroneckerDelta(k, 0)
    return sp.Piecewise((1, sp.Eq(k, 0)), (sp.sin(k * phi) / (k * phi), True))


def spectral_moments(x, y, modulus: str, phase):
    """A real normal matrix Q B Qᵀ, B of 2×2 blocks r·R(θ): τ(W^x (W^y)ᵀ) = E[r^{x+y} cos((x−y)θ)]
    = Re ∫ λ^x λ̄^y dμ, modulus and phase independent; m′ = m (normal). For the circular law
    (modulus=disk, phase=1) this is δ_xy σ_W^{2x}/(x+1): the Gaussian's eigenvalues, without its
    non-normality, remember less."""
    return modulus_moment(modulus, x + y) * phase_moment(phase, x - y)


def attractor_moments(x, y):
    """A fraction p of units with W_ii = 1 and no recurrent input, the rest an iid Gaussian block of
    radius σ_W: block diagonal, so τ = p·1 + (1 − p)·δ_xy σ_W^{2x}; m′ = m."""
    return p + (1 - p) * sp.KroneckerDelta(x, y) * s ** (2 * x)


def measured_moments(x, y, transposed: bool):
    """W = σ_W M for a given M: σ_W^{x+y} times M's own table (filled by `measured_table`); for a
    network of k copies of M on the block diagonal the normalized traces are exactly M's."""
    return s ** (x + y) * (measured_transposed if transposed else measured)(x, y)


def moments(spec: Spec, x=a, y=b) -> tuple[sp.Expr, sp.Expr]:
    """(m(x, y), m′(x, y)) for the spec's initializer family."""
    family, params = spec.family, spec.init_params
    if family in ("empirical",) or (family == "spectral" and "file" in params):
        return measured_moments(x, y, False), measured_moments(x, y, True)
    rule = {
        "gaussian": gaussian_moments,
        "orthogonal": orthogonal_moments,
        "identity": identity_moments,
        "nprnn": nprnn_moments,
        "attractor": attractor_moments,
        "spectral": lambda x, y: spectral_moments(x, y, params.get("modulus"), params.get("phase")),
    }[family]
    m = rule(x, y)
    return m, m


def family_values(spec: Spec) -> dict[sp.Symbol, sp.Expr]:
    """The family's parameters that stay symbolic in the expressions (the attractor's p), with
    their values as exact numbers."""
    if spec.family == "attractor":
        return {p: sp.nsimplify(spec.init_params["p"])}
    return {}


def measured_table(spec: Spec, size: int) -> tuple[np.ndarray, np.ndarray]:
    """τ(M^x (M^y)ᵀ) and τ((M^x)ᵀ M^y) for x, y < size, of the unit-scale matrix of a file family."""
    params = spec.init_params
    if spec.family == "empirical":
        M = families.load_matrix(params["file"])
        powers = [np.eye(M.shape[0])]
        for _ in range(size - 1):
            powers.append(powers[-1] @ M)
        P = np.stack(powers)
        n = M.shape[0]
        return (np.einsum("xik,yik->xy", P, P) / n, np.einsum("xki,yki->xy", P, P) / n)
    values = families.load_spectrum(params["file"])
    x = np.arange(size)
    powers = values[None, :] ** x[:, None]  # λ^x
    table = np.real(powers @ powers.conj().T) / values.size  # mean of λ^x λ̄^y
    return table, table
