"""Each infinite-width rule against random matrices, with tolerances from its fluctuation scale."""
import numpy as np
import pytest
import sympy as sp

from derivations import limits
from derivations import symbols as S


def _value(expr, n, **sigmas):
    subs = {S.width: n, S.input_dim: 1}
    subs.update({S.sigma[k]: v for k, v in sigmas.items()})
    return float(expr.subs(subs))


def _gaussian(rng, n, sigma):
    return rng.standard_normal((n, n)) * sigma / np.sqrt(n)


@pytest.mark.parametrize("p,r", [(0, 0), (1, 1), (2, 2), (3, 3), (1, 0), (2, 1), (3, 1), (2, 0)])
def test_normalized_trace_of_powers(p, r):
    n, sigma, seeds = 800, 0.9, 4
    rng = np.random.default_rng(p * 10 + r)
    traces = []
    for _ in range(seeds):
        W = _gaussian(rng, n, sigma)
        Wp, Wr = np.linalg.matrix_power(W, p), np.linalg.matrix_power(W, r)
        traces.append(np.trace(Wp @ Wr.T) / n)
    theory = _value(limits.normalized_trace_of_powers(p, r), n, W=sigma) / n
    # (1/n) tr of a product of p + r Gaussian factors fluctuates by O(σ^{p+r} / n).
    tolerance = 5 * (p + r + 1) * sigma ** (p + r) / n
    assert abs(np.mean(traces) - theory) < tolerance


def test_normalized_trace_rule_rejects_wrong_power():
    """The check above has power: a rule with σ^{2p+2} on the diagonal would fail it."""
    n, sigma = 800, 0.9
    W = _gaussian(np.random.default_rng(0), n, sigma)
    measured = np.trace(W @ W @ (W @ W).T) / n
    assert abs(measured - sigma ** 6) > 5 * 5 * sigma**4 / n


@pytest.mark.parametrize("same", [True, False])
def test_gaussian_quadratic_form(same):
    n, variance = 2000, 0.7
    rng = np.random.default_rng(1)
    W = _gaussian(rng, n, 0.8)
    M = W @ W @ W.T  # built from W only, independent of the vectors
    u = rng.standard_normal(n) * np.sqrt(variance)
    v = u if same else rng.standard_normal(n) * np.sqrt(variance)
    trace = np.trace(M) if same else 0.0
    theory = float(limits.gaussian_quadratic_form(variance, trace))
    # Fluctuation of uᵀMv around its mean: v ‖M‖_F (√2 for u = v).
    scale = variance * np.linalg.norm(M) * np.sqrt(2)
    assert abs(u @ M @ v - theory) < 5 * scale


def test_gaussian_bilinear_second_moment():
    n, draws, vu, vv = 60, 20000, 0.5, 2.0
    rng = np.random.default_rng(2)
    M = rng.standard_normal((n, n)) / np.sqrt(n)
    u = rng.standard_normal((draws, n)) * np.sqrt(vu)
    v = rng.standard_normal((draws, n)) * np.sqrt(vv)
    samples = np.einsum("di,ij,dj->d", u, M, v) ** 2
    theory = float(limits.gaussian_bilinear_second_moment(vu, vv, np.trace(M @ M.T)))
    assert abs(samples.mean() - theory) < 5 * samples.std() / np.sqrt(draws)


def test_side_limit_refuses_unknown_shapes():
    from derivations.markov import Factor

    with pytest.raises(NotImplementedError):
        limits.side_limit((Factor("W"), Factor("C")), (Factor("W"), Factor("C")), outer_first=True)
    with pytest.raises(NotImplementedError):
        limits.word_second_moment((Factor("C"), Factor("F")))
    assert limits.side_limit((), (), outer_first=True) == sp.Integer(1)
