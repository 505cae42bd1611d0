"""The moment rules of derivations.moments against random matrices drawn by an independent sampler.

For each family, m(a, b) = τ(W^a (W^b)ᵀ) and m′(a, b) = τ((W^a)ᵀ W^b), τ = (1/n) tr, are measured on
matrices drawn here with plain numpy (nothing from numerics/, no derivations.moments numbers) and
compared with the symbolic rule evaluated at numeric a, b, σ_W (and p). Note that m and m′ are both
the normalized Frobenius inner product (1/n)⟨W^a, W^b⟩_F, so they agree for every matrix; both are
measured literally anyway.

Tolerances come from the fluctuation scale of each construction (see `trace_tol` and the per-family
comments); `test_*_power` show that a wrong rule falls far outside them.
"""
import numpy as np
import pytest
import sympy as sp

from derivations import moments as rules
from derivations.symbols import sigma

SIGMA = 0.9  # σ_W ≠ 1 so that a wrong power of σ_W shows
PAIRS = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (1, 0), (0, 1), (2, 0), (2, 1), (1, 2), (3, 1), (1, 3),
         (3, 0), (4, 2), (4, 1)]
KMAX = 4


# ---- an independent sampler ----

def haar_orthogonal(n, rng):
    """Haar orthogonal: QR of a Gaussian matrix with the signs of R's diagonal moved into Q."""
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def sample(family, n, rng, **kw):
    s = SIGMA
    if family == "gaussian":
        return s * rng.standard_normal((n, n)) / np.sqrt(n)
    if family == "orthogonal":
        return s * haar_orthogonal(n, rng)
    if family == "identity":
        return s * np.eye(n)
    if family == "nprnn":
        A = rng.standard_normal((n, n))
        S = np.eye(n) + A.T @ A / n
        lam = np.linalg.eigvalsh(S)[-1]
        return s * S / lam, lam
    if family == "spectral":
        half = n // 2
        u = rng.random(half)
        r = {"disk": s * np.sqrt(u), "ring": s * np.ones(half), "uniform": s * u}[kw["modulus"]]
        theta = (2 * rng.random(half) - 1) * kw["phase"] * np.pi
        B = np.zeros((n, n))
        i = 2 * np.arange(half)
        B[i, i] = B[i + 1, i + 1] = r * np.cos(theta)
        B[i, i + 1], B[i + 1, i] = -r * np.sin(theta), r * np.sin(theta)
        Q = haar_orthogonal(n, rng)
        return Q @ B @ Q.T, (r, theta)
    if family == "attractor":
        k = round(kw["p"] * n)
        W = np.zeros((n, n))
        W[np.arange(k), np.arange(k)] = 1.0
        W[k:, k:] = s * rng.standard_normal((n - k, n - k)) / np.sqrt(n - k)
        return W
    raise ValueError(family)


def measured(W):
    """m[a, b] = τ(W^a (W^b)ᵀ) and mt[a, b] = τ((W^a)ᵀ W^b) for a, b ≤ KMAX. Both traces are
    Σ_ik (W^a)_ik (W^b)_ik, computed so (O(n²) per pair); `test_trace_identity` checks that against
    the literal matrix products."""
    n = W.shape[0]
    P = [np.eye(n)]
    for _ in range(KMAX):
        P.append(P[-1] @ W)
    m = np.array([[np.sum(P[a] * P[b]) / n for b in range(KMAX + 1)] for a in range(KMAX + 1)])
    mt = np.array([[np.sum(P[a] * P[b]) / n for b in range(KMAX + 1)] for a in range(KMAX + 1)])
    return m, mt


def test_trace_identity():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 40)) / np.sqrt(40) + np.diag(np.ones(39), 1)  # non-normal
    m, mt = measured(W)
    P = [np.linalg.matrix_power(W, k) for k in range(KMAX + 1)]
    for a, b in PAIRS:
        assert np.isclose(m[a, b], np.trace(P[a] @ P[b].T) / 40, rtol=1e-10)
        assert np.isclose(mt[a, b], np.trace(P[a].T @ P[b]) / 40, rtol=1e-10)


def rule_value(expr, p_value=None):
    values = {sigma["W"]: sp.nsimplify(SIGMA)}
    if p_value is not None:
        values[rules.p] = sp.nsimplify(p_value)
    return float(sp.sympify(expr).subs(values).doit())


def table(rule, **kw):
    return {(a, b): rule_value(rule(sp.Integer(a), sp.Integer(b)), kw.get("p")) for a, b in PAIRS}


def trace_tol(a, b, n):
    """Normalized traces of products of a Gaussian (or Haar) matrix: a single draw's standard
    deviation is O(1/n) (second-order freeness); measured over 40 draws at n = 400 (σ = 0.9) it is at
    most ≈ (a+b)σ^{a+b}/n (e.g. 8.1σ⁸/n for τ(W⁴W⁴ᵀ)), and the mean's bias is O(1/n) too
    (E τ(W²) = σ²/n for the Gaussian, E τ(O²) = 1/n for Haar O). Allow four standard deviations
    plus 2/n."""
    return (4 * (a + b) * SIGMA ** (a + b) + 2) / n


def check(m, mt, expected, tol):
    bad = []
    for (a, b), value in expected.items():
        t = tol(a, b)
        for name, got in (("m", m[a, b]), ("m'", mt[a, b])):
            if not abs(got - value) <= t:
                bad.append(f"{name}({a},{b}) = {got:.5f}, rule {value:.5f}, tol {t:.2g}")
    assert not bad, "; ".join(bad)


def averaged(family, n, draws, seed, **kw):
    rng = np.random.default_rng(seed)
    tables = [measured(sample(family, n, rng, **kw)) for _ in range(draws)]
    return np.mean([t[0] for t in tables], axis=0), np.mean([t[1] for t in tables], axis=0)


# ---- one test per rule ----

def test_gaussian():
    n = 600
    m, mt = averaged("gaussian", n, 2, 1)
    check(m, mt, table(rules.gaussian_moments), lambda a, b: trace_tol(a, b, n))


def test_orthogonal():
    # τ(O^a O^aᵀ) = 1 exactly; off the diagonal τ(O^{a−b}) has sd ≈ 1–2/n and mean 1/n for even a − b.
    n = 600
    m, mt = averaged("orthogonal", n, 2, 2)
    check(m, mt, table(rules.orthogonal_moments), lambda a, b: trace_tol(a, b, n))
    assert np.allclose(np.diag(m), SIGMA ** (2 * np.arange(KMAX + 1)), rtol=1e-10)


def test_identity():
    # exact at every width
    m, mt = measured(sample("identity", 50, None))
    check(m, mt, table(rules.identity_moments), lambda a, b: 1e-12)


def test_nprnn():
    """τ(W^k) = σ^k τ(S^k)/λ_max^k, S = I + AᵀA/n. τ((S/5)^k) is a Wishart trace: over 60 draws at n = 400
    its relative sd was ≤ 2k/n and its relative bias ≤ k/n (k = a + b ≤ 8). λ_max → 5 only at the
    Tracy–Widom rate: λ_max(AᵀA/n) ≈ 4 + 2^{4/3} n^{−2/3} TW₁ (TW₁: mean −1.21, sd 1.27), so a draw's moment of
    order k is off by the factor (5/λ_max)^k, several per cent at n = 600 and k = 8. So: (i) each draw's
    λ_max lies in the Tracy–Widom window; (ii) the family's matrices meet the rule within that factor at
    the drawn λ_max plus the trace tolerance; (iii) the same S normalized by the limit 5 meets the rule at
    the trace tolerance alone (this resolves a rule off by ~1% per power)."""
    n, draws = 600, 3
    rng = np.random.default_rng(3)
    expected = table(rules.nprnn_moments)
    rel = lambda a, b, d: abs(expected[a, b]) * (8 * (a + b) / np.sqrt(d) + (a + b)) / n + 1e-12
    limit = []
    for _ in range(draws):
        W, lam = sample("nprnn", n, rng)
        assert abs(lam - (5 - 2 ** (4 / 3) * n ** (-2 / 3) * 1.21)) <= 6 * 1.27 * 2 ** (4 / 3) * n ** (-2 / 3), lam
        m, mt = measured(W)
        check(m, mt, expected, lambda a, b: abs(expected[a, b]) * abs((5 / lam) ** (a + b) - 1) + rel(a, b, 1))
        limit.append(measured(W * lam / 5))
    m5, mt5 = np.mean([x[0] for x in limit], axis=0), np.mean([x[1] for x in limit], axis=0)
    check(m5, mt5, expected, lambda a, b: rel(a, b, draws))


SPECTRAL = [("disk", 1.0), ("ring", 0.5), ("uniform", 0.0), ("disk", 0.25), ("ring", 1.0)]


def spectral_draws(n, draws, seed, modulus, phase):
    """Averaged (m, m′) of `draws` spectral matrices, and the tolerance: τ(W^a W^bᵀ) is the mean over the
    n/2 blocks of r^{a+b} cos((a−b)θ) (Q drops out of the trace), an average of iid terms, so unbiased
    with standard error sd/√(n/2 · draws); sd is that of the drawn terms. Allow five standard errors."""
    rng = np.random.default_rng(seed)
    ms, mts, terms = [], [], {ab: [] for ab in PAIRS}
    for _ in range(draws):
        W, (r, theta) = sample("spectral", n, rng, modulus=modulus, phase=phase)
        m, mt = measured(W)
        ms.append(m), mts.append(mt)
        for a, b in PAIRS:
            terms[a, b].append(r ** (a + b) * np.cos((a - b) * theta))
    se = {ab: np.std(np.concatenate(v), ddof=1) / np.sqrt(n / 2 * draws) for ab, v in terms.items()}
    return np.mean(ms, axis=0), np.mean(mts, axis=0), lambda a, b: 5 * se[a, b] + 1e-12


@pytest.mark.parametrize("modulus, phase", SPECTRAL, ids=[f"{m}-{p}" for m, p in SPECTRAL])
def test_spectral(modulus, phase):
    m, mt, tol = spectral_draws(800, 2, 40 + SPECTRAL.index((modulus, phase)), modulus, phase)
    check(m, mt, table(lambda x, y: rules.spectral_moments(x, y, modulus, str(phase))), tol)


@pytest.mark.parametrize("p_value", [0.3, 0.5])
def test_attractor(p_value):
    # round(p n) = p n exactly here; the Gaussian block of size (1−p)n contributes (1−p)·(its τ), whose
    # fluctuations are O(1/((1−p)n)), so O(1/n) overall: the Gaussian tolerance.
    n = 600
    m, mt = averaged("attractor", n, 2, 5, p=p_value)
    check(m, mt, table(rules.attractor_moments, p=p_value), lambda a, b: trace_tol(a, b, n))


# ---- the tolerances have power: a wrong rule fails them ----

def _misses(m, expected, tol):
    return [(a, b) for (a, b), v in expected.items() if abs(m[a, b] - v) > tol(a, b)]


def test_circular_law_normal_matrix_power():
    """The normal matrix with the circular law (spectral disk, phase 1) has m(a, a) = σ^{2a}/(a+1); the
    Gaussian rule σ^{2a} — the same eigenvalues, but a non-normal matrix — must be rejected, and so must
    the uniform-modulus rule σ^{2a}/(2a+1) (a different radial law)."""
    m, mt, tol = spectral_draws(800, 2, 6, "disk", 1.0)
    right = table(lambda x, y: rules.spectral_moments(x, y, "disk", "1"))
    assert not _misses(m, right, tol)
    diagonal = {(1, 1), (2, 2), (3, 3), (4, 4)}
    assert diagonal <= set(_misses(m, table(rules.gaussian_moments), tol))
    assert diagonal <= set(_misses(m, table(lambda x, y: rules.spectral_moments(x, y, "uniform", "1")), tol))


def test_ginibre_power():
    """And the converse: a Gaussian (Ginibre) matrix fails the circular-law normal rule
    (τ(WWᵀ) = σ², not σ²/2) while passing its own."""
    n = 600
    m, mt = averaged("gaussian", n, 2, 7)
    tol = lambda a, b: trace_tol(a, b, n)
    assert not _misses(m, table(rules.gaussian_moments), tol)
    assert {(1, 1), (2, 2), (3, 3), (4, 4)} <= set(_misses(m, table(lambda x, y: rules.spectral_moments(x, y, "disk", "1")), tol))


def test_nprnn_normalization_power():
    """nprnn's rule with λ_max → 4 instead of 5 (forgetting the identity's shift) is rejected."""
    n = 600
    W, lam = sample("nprnn", n, np.random.default_rng(8))
    m, _ = measured(W)
    right = table(rules.nprnn_moments)
    tol = lambda a, b: abs(right[a, b]) * (abs((5 / lam) ** (a + b) - 1) + 9 * (a + b) / n) + 1e-12
    wrong = {k: v * (5 / 4) ** (k[0] + k[1]) for k, v in right.items()}
    assert not _misses(m, right, tol)
    assert len(_misses(m, wrong, tol)) >= len(PAIRS) - 1  # all but τ(I) = 1
