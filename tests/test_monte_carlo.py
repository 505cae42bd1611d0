"""Independent Monte Carlo check of the derived lag weights α_j on actual random linear RNNs.

Nothing here uses the project's numerics (or torch) or the derivation's formulas: the networks
are drawn with numpy, the tangent Gram of their Markov parameters is computed in closed matrix
form below, and only the final α_j from the emitted numpy code's `lag_weights` is
compared with it.

Setting: n_x = n_y = 1, width n. Markov parameters
  convention A: L_j = C W^j F (+ D at j = 0);
  convention B: L_0 = D (0 without feed-through), L_j = C W^{j-1} F for j ≥ 1.
So L_j = C W^p F with power p = j - input_lag (present only when p ≥ 0), plus D at j = 0.

Gradients of C W^p F, with Krylov vectors u_a = W^a F and v_a = (Wᵀ)^a Cᵀ = (C W^a)ᵀ:
  ∂/∂C = u_pᵀ,   ∂/∂F = v_p,   ∂/∂W = Σ_{m=0}^{p-1} v_m u_{p-1-m}ᵀ   (d(W^p) = Σ_m W^m dW W^{p-1-m}),
  ∂/∂D = 1.
With U[a,b] = u_a·u_b and V[a,b] = v_a·v_b, the Frobenius inner products of two such gradients
(powers p, q) are
  C: U[p,q],   F: V[p,q],   W: Σ_{m<p, m'<q} V[m,m'] U[p-1-m, q-1-m'],   D: 1,
so the whole computation needs 2·5 matrix-vector products per network.
ntk: gradients w.r.t. the tilde entries pick up the chain-rule factor s_X (X = s_X X̃ with
  s_W = σ_W/√n, s_F = σ_F, s_C = σ_C/√n, s_D = σ_D), so G[j,j'] = Σ_X λ_X s_X² ⟨∂L_j/∂X, ∂L_j'/∂X⟩.
standard: raw gradients, global rate η/n, kernel divided by n: G[j,j'] = (1/n) Σ_X λ_X ⟨·,·⟩.
The claim under test: G[j,j'] → δ_{jj'} α_j / n_x (n_x = 1), cross-lag terms O(n^{-1/2}).

Statistics and tolerances (constants measured in scratch runs over all 72 specs below, with the
same σ values; the relative error r_j = G_jj/α_j - 1 of one network):
  * spread: std(r_j)·√n ≤ K·√(j+1) with K = 1.6. Measured envelope max_spec std(r_j)·√n / √(j+1):
    1.54 at n = 1000 (300 networks), 1.59 at n = 3000 (300 networks). Lag 0 of a C-only-like
    term is ‖F̃‖²/n, whose exact relative spread is √2 ≈ 1.41, consistent with this.
  * bias: |E r_j|·n ≤ 3.0 (n = 200, 20000 networks, all specs); the largest part is the exact
    O(1/n) F and D pieces of the standard parameterization, e.g. (λ_F σ_C² + λ_D)/(λ_C σ_F²) = 3.0
    for W=3, C=0.5. We allow B/n with B = 5.
  * The test statistic is the mean of r_j over S networks; it must satisfy
    |mean r_j| ≤ Z·K·√(j+1)/√(n·S) + B/n with Z = 4 (a 4-sigma band on a fixed-seed draw).
  * cross-lag: per-pair std of G_jk/√(G_jj G_kk) times √n ≤ 2.38 (n = 3000, 300 networks, all
    specs and pairs); we require the maximum over networks and pairs ≤ c/√n with c = 5 × 2.4 = 12
    (measured maximum over 300 networks × all pairs × all specs: 7.8/√n).
  * lags with α_j = 0 must have G_jj = O(1/n): exactly 0 in ntk; in standard only the O(1/n)
    pieces λ_F‖C W^p‖² /n ≈ λ_F σ_C² σ_W^{2p}/n and λ_D/n can remain, so we require
    n·G_jj ≤ 2·Σ_X λ_X·max(1, σ_C²).
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from derivations.spec import BLOCKS, Spec

pytestmark = pytest.mark.slow  # random networks of width 4000 for every spec

from generated_code import module as numpy_module  # noqa: E402

N = 4000                 # width
SEEDS = tuple(range(12))  # S networks per spec (the same draws are reused for every spec)
LAGS = 6                 # lags 0..5
SIGMA = {"W": 0.8, "F": 1.1, "C": 0.9, "D": 0.7}
SIGMA_ARGS = (SIGMA["W"], SIGMA["F"], SIGMA["C"], SIGMA["D"])  # lag_weights(j, σ_W, σ_F, σ_C, σ_D)

K_SPREAD = 1.6   # std(r_j)·√n ≤ K·√(j+1), measured envelope 1.59
Z = 4.0          # band width in standard errors
B_BIAS = 5.0     # relative bias allowance B/n, measured max 3.0
C_OFFDIAG = 12.0  # max normalized cross-lag term ≤ c/√n, 5 × measured per-pair spread 2.4

SUBSETS = (BLOCKS, ("W",), ("C", "F"), ("F", "C", "D"), ("W", "C"))
RATES = ((), (("W", "3"), ("C", "0.5")))


def _specs():
    out = []
    for param, conv, ft, trained, rates in itertools.product(
            ("ntk", "standard"), ("A", "B"), (True, False), SUBSETS, RATES):
        if not ft and "D" in trained and set(trained) != set(BLOCKS):
            continue  # D named explicitly without a feed-through is not a network
        out.append(Spec(param=param, convention=conv, feedthrough=ft, trained=trained,
                        rates=tuple((b, r) for b, r in rates if b in trained)))  # a frozen block has no rate
    return out


SPECS = _specs()


def _id(spec: Spec) -> str:
    rates = "-".join(f"{b}{r}" for b, r in spec.rates) or "unit"
    return f"{spec.param}-{spec.convention}-ft{int(spec.feedthrough)}-{''.join(spec.trained)}-{rates}"


# --------------------------------------------------------------------------- Monte Carlo side

@functools.lru_cache(maxsize=None)
def _block_grams(seed: int, n: int = N, max_power: int = LAGS - 1):
    """Raw-gradient inner products of C W^p F for one random network, indexed by powers (p, q)."""
    rng = np.random.default_rng(seed)
    W = SIGMA["W"] * rng.standard_normal((n, n)) / np.sqrt(n)
    F = SIGMA["F"] * rng.standard_normal(n)            # / √n_x, n_x = 1
    C = SIGMA["C"] * rng.standard_normal(n) / np.sqrt(n)
    P = max_power + 1
    u = np.empty((P, n))
    v = np.empty((P, n))
    u[0], v[0] = F, C
    for a in range(1, P):
        u[a] = W @ u[a - 1]        # W^a F
        v[a] = W.T @ v[a - 1]      # (C W^a)ᵀ
    U = u @ u.T
    V = v @ v.T
    GW = np.zeros((P, P))
    for p in range(P):
        for q in range(P):
            GW[p, q] = sum(V[m, mm] * U[p - 1 - m, q - 1 - mm] for m in range(p) for mm in range(q))
    return {"C": U, "F": V, "W": GW}


def _scale(spec: Spec, n: int) -> dict:
    """Per-block factor multiplying the raw Frobenius inner product (before λ_X)."""
    if spec.param == "ntk":  # chain rule for X = s_X X̃
        return {"W": SIGMA["W"] ** 2 / n, "F": SIGMA["F"] ** 2, "C": SIGMA["C"] ** 2 / n, "D": SIGMA["D"] ** 2}
    return {X: 1.0 / n for X in BLOCKS}  # standard: raw gradients, global rate η/n, kernel / n


def mc_gram(spec: Spec, seed: int, n: int = N, lags: int = LAGS) -> np.ndarray:
    """Tangent Gram G[j, j'] of the Markov parameters L_0..L_{lags-1} of one random network."""
    blocks = _block_grams(seed, n)
    scale = _scale(spec, n)
    lam = {X: float(spec.rate(X)) for X in BLOCKS}
    G = np.zeros((lags, lags))
    powers = np.arange(lags) - spec.input_lag
    for j, k in itertools.product(range(lags), repeat=2):
        p, q = powers[j], powers[k]
        if p >= 0 and q >= 0:
            G[j, k] += sum(lam[X] * scale[X] * blocks[X][p, q] for X in ("W", "F", "C"))
    if spec.feedthrough:  # D appears only in L_0, with ∂L_0/∂D = 1
        G[0, 0] += lam["D"] * scale["D"]
    return G


@functools.lru_cache(maxsize=None)
def mc_grams(spec: Spec) -> np.ndarray:
    return np.stack([mc_gram(spec, s) for s in SEEDS])


# ------------------------------------------------------------------------------ theory side

@functools.lru_cache(maxsize=None)
def theory_alpha(spec: Spec) -> np.ndarray:
    j = np.arange(LAGS)
    alpha = np.asarray(numpy_module(spec).lag_weights(j, *SIGMA_ARGS), dtype=float)
    return np.broadcast_to(alpha, j.shape).copy()  # a constant expression may come back as a scalar


# ------------------------------------------------------------------------------- statistics

def zero_bound(spec: Spec) -> float:
    """Bound on n·G_jj for a lag with α_j = 0 (see the module docstring)."""
    return 2.0 * sum(float(spec.rate(X)) for X in BLOCKS) * max(1.0, SIGMA["C"] ** 2)


def diagonal_check(grams: np.ndarray, alpha: np.ndarray, zero_tol: float, n: int = N):
    """Compare diag(G) over S networks with α.

    Returns (statistic, tolerance) per lag: for α_j > 0 the statistic is |mean_s G_jj/α_j - 1|
    with tolerance Z·K·√(j+1)/√(n·S) + B/n; for α_j = 0 it is max_s n·|G_jj| with tolerance
    zero_tol. The check passes when statistic ≤ tolerance at every lag.
    """
    diag = np.einsum("sjj->sj", grams)
    S = grams.shape[0]
    lag = np.arange(alpha.size)
    nz = alpha > 0
    stat = np.empty(alpha.size)
    tol = np.empty(alpha.size)
    stat[nz] = np.abs(np.mean(diag[:, nz] / alpha[nz], axis=0) - 1.0)
    tol[nz] = Z * K_SPREAD * np.sqrt(lag[nz] + 1) / np.sqrt(n * S) + B_BIAS / n
    stat[~nz] = n * np.max(np.abs(diag[:, ~nz]), axis=0)
    tol[~nz] = zero_tol
    return stat, tol


def offdiagonal_stat(grams: np.ndarray, active: np.ndarray, n: int = N) -> float:
    """√n · max over networks and pairs of distinct active lags of |G_jk|/√(G_jj G_kk)."""
    idx = np.flatnonzero(active)
    if idx.size < 2:
        return 0.0
    sub = grams[:, idx][:, :, idx]
    d = np.sqrt(np.einsum("sjj->sj", sub))
    norm = np.abs(sub) / (d[:, :, None] * d[:, None, :])
    norm[:, np.arange(idx.size), np.arange(idx.size)] = 0.0
    return float(norm.max() * np.sqrt(n))


def _report(spec, alpha, grams, stat, tol):
    diag = np.einsum("sjj->sj", grams).mean(axis=0)
    return (f"{spec.describe()}\n  alpha (derived) = {np.array2string(alpha, precision=5)}"
            f"\n  mean G_jj (MC)  = {np.array2string(diag, precision=5)}"
            f"\n  statistic       = {np.array2string(stat, precision=4)}"
            f"\n  tolerance       = {np.array2string(tol, precision=4)}")


# ----------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_diagonal_matches_lag_weights(spec):
    alpha = theory_alpha(spec)
    assert np.all(np.isfinite(alpha)) and np.all(alpha >= 0), alpha
    assert np.any(alpha > 0), "every lag weight is zero although a block is trained"
    grams = mc_grams(spec)
    stat, tol = diagonal_check(grams, alpha, zero_bound(spec))
    assert np.all(stat <= tol), _report(spec, alpha, grams, stat, tol)


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_cross_lag_terms_vanish(spec):
    grams = mc_grams(spec)
    active = theory_alpha(spec) > 0
    stat = offdiagonal_stat(grams, active)
    assert stat <= C_OFFDIAG, f"{spec.describe()}: √n·max|G_jk|/√(G_jj G_kk) = {stat:.2f} > {C_OFFDIAG}"


# ------------------------------------------------------------------------ negative controls

def test_negative_control_wrong_prefactor_is_rejected():
    """Had the derivation said (j+1) instead of (j+2), the Monte Carlo check must fail, at every lag."""
    spec = Spec()
    j = np.arange(LAGS)
    sW, sF, sC, sD = SIGMA_ARGS
    right = (j + 2) * sC**2 * sF**2 * sW**(2 * j) + sD**2 * (j == 0)
    wrong = (j + 1) * sC**2 * sF**2 * sW**(2 * j) + sD**2 * (j == 0)
    grams = mc_grams(spec)
    stat, tol = diagonal_check(grams, right, zero_bound(spec))
    assert np.all(stat <= tol), "the reference formula itself must pass"
    stat, tol = diagonal_check(grams, wrong, zero_bound(spec))
    assert np.all(stat > tol), f"wrong prefactor not rejected at every lag: stat={stat}, tol={tol}"


@pytest.mark.parametrize("truth, claimed", [
    (Spec(convention="B"), Spec(convention="A")),
    (Spec(param="standard"), Spec(param="ntk")),
    (Spec(rates=(("W", "3"), ("C", "0.5"))), Spec()),
    (Spec(trained=("W", "C")), Spec(trained=("W", "F", "C"), feedthrough=False)),
], ids=["B-vs-A", "standard-vs-ntk", "rates-vs-unit", "WC-vs-WFC"])
def test_negative_control_other_spec_is_rejected(truth, claimed):
    """Networks of one spec must not pass the check against the lag weights derived for another."""
    grams = mc_grams(truth)
    stat, tol = diagonal_check(grams, theory_alpha(claimed), zero_bound(truth))
    assert np.any(stat > tol), _report(truth, theory_alpha(claimed), grams, stat, tol)
