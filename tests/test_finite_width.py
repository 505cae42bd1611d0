"""The finite-width ingredients (derivations.finite_width) against their own Monte Carlo.

The sampler here is independent of the package (numpy only, no `numerics` import): it draws C, W,
F at width n in the NTK parameterization, forms the empirical lag Gram from the tangents written
out by hand, and takes one gradient-descent step by hand. Antithetic pairs (C and −C) cancel the
odd orders of the step exactly, so the mean change is measured to a small fraction of itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derivations import finite_width as fw
from derivations import symbols as S
from derivations.kernel import derive
from derivations.spec import DEFAULT, Spec

SIGMA_W, STEP = 0.8, 0.25
RESIDUAL = np.array([0.7, -0.5, 0.4])  # r_l = ∂ℒ/∂L_l, lags 0 … 2
PAIRS = ((1, 1), (2, 2), (0, 2))


def _values(expr: sp.Expr, n=None) -> float:
    subs = {S.sigma["W"]: SIGMA_W, S.sigma["C"]: 1, S.sigma["F"]: 1, S.sigma["D"]: 1, fw.step: STEP,
            **{fw.residual(l): float(r) for l, r in enumerate(RESIDUAL)}}
    if n is not None:
        subs[S.width] = n
    return float(expr.subs(subs))


def _gram(c, W, f, lags):
    n = len(f)
    u, v = [f], [c]
    for _ in range(lags):
        u.append(W @ u[-1])
        v.append(W.T @ v[-1])
    G = np.empty((lags, lags))
    for j in range(lags):
        for k in range(lags):
            w_block = sum((v[m] @ v[m2]) * (u[j - 1 - m] @ u[k - 1 - m2]) for m in range(j) for m2 in range(k))
            G[j, k] = u[j] @ u[k] / n + v[j] @ v[k] + SIGMA_W ** 2 / n * w_block
    return G


def _gd_step(c, W, f):
    n, lags = len(f), len(RESIDUAL)
    u, v = [f], [c]
    for _ in range(lags):
        u.append(W @ u[-1])
        v.append(W.T @ v[-1])
    grad_c = sum(r * u[l] for l, r in enumerate(RESIDUAL))
    grad_f = sum(r * v[l] for l, r in enumerate(RESIDUAL))
    grad_W = sum(r * np.outer(v[m], u[l - 1 - m]) for l, r in enumerate(RESIDUAL) for m in range(l))
    return c - STEP / n * grad_c, W - STEP * SIGMA_W ** 2 / n * grad_W, f - STEP * grad_f


def _draw(rng, n):
    return rng.normal(0, n ** -0.5, n), rng.normal(0, SIGMA_W * n ** -0.5, (n, n)), rng.normal(0, 1, n)


def _first_step_monte_carlo(n: int, samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    changes = []
    for _ in range(samples):
        c, W, f = _draw(rng, n)
        pair = [_gram(*_gd_step(s * c, W, f), 3) - _gram(s * c, W, f, 3) for s in (1, -1)]
        changes.append((pair[0] + pair[1]) / 2)
    changes = np.array(changes)
    return changes.mean(0), changes.std(0, ddof=1) / np.sqrt(samples)


@pytest.fixture(scope="module")
def first_step():
    return {pair: fw.first_step_change(DEFAULT, *pair, lags=len(RESIDUAL)) for pair in PAIRS}


@pytest.fixture(scope="module")
def monte_carlo():
    return {n: _first_step_monte_carlo(n, 4000 if n <= 64 else 400) for n in (16, 32, 64, 128, 256)}


@pytest.mark.parametrize("spec", [DEFAULT, Spec(trained=("W", "C")), Spec(rates=(("W", "3"),), feedthrough=False)])
def test_exact_gram_tends_to_the_derived_lag_weights(spec):
    """The finite-width Gram's n → ∞ limit is α_j of the wide-limit derivation, for the same Spec."""
    alpha = derive(spec).alpha
    for j in range(4):
        wide = fw.inverse_width_terms(fw.gram_mean(spec, j, j), 0)[0]
        assert sp.simplify(wide - alpha.at(sp.Integer(j)).subs(S.input_dim, 1)) == 0


def test_gram_mean_couples_lags_of_equal_parity_at_order_one_over_n():
    wide, first = fw.inverse_width_terms(fw.gram_mean(DEFAULT, 0, 2), 1)
    assert wide == 0 and sp.simplify(first - 2 * S.sigma["C"] ** 2 * S.sigma["F"] ** 2 * S.sigma["W"] ** 2) == 0
    assert fw.gram_mean(DEFAULT, 0, 1) == 0  # odd lag difference: an odd power of W, mean 0 at every width


@pytest.mark.slow
def test_gram_mean_is_exact_at_small_width():
    n, samples = 8, 40000
    rng = np.random.default_rng(1)
    grams = np.array([_gram(*_draw(rng, n), 4) for _ in range(samples)])
    mean, se = grams.mean(0), grams.std(0, ddof=1) / np.sqrt(samples)
    for j, k in ((0, 2), (1, 3), (2, 2), (3, 3)):
        exact = _values(fw.gram_mean(DEFAULT, j, k), n)
        assert abs(mean[j, k] - exact) < 4 * se[j, k], (j, k, mean[j, k], exact, se[j, k])


@pytest.mark.slow
def test_first_step_change_matches_monte_carlo_at_every_width(first_step, monte_carlo):
    """The exact η² term against the measured one-step change (which also holds the η⁴ terms, smaller
    than the sampling error at these sizes)."""
    for n, (mean, se) in monte_carlo.items():
        for pair, expr in first_step.items():
            exact = _values(expr, n)
            assert abs(mean[pair] - exact) < 4 * se[pair] + 0.05 * abs(exact), (n, pair, mean[pair], exact)


@pytest.mark.slow
def test_first_step_change_is_its_one_over_n_term_plus_order_one_over_n_squared(first_step, monte_carlo):
    """n·E[Θ(1) − Θ(0)] → the derived 1/n coefficient, with a residual falling like 1/n (slope −2 for
    the change itself); a coefficient 10 % off is rejected at n = 256 (the power check)."""
    widths = np.array(sorted(monte_carlo))
    for pair, expr in first_step.items():
        coefficient = _values(fw.inverse_width_terms(expr, 1)[1])
        assert coefficient > 0  # the kernel grows along training
        residual = np.array([monte_carlo[n][0][pair] - coefficient / n for n in widths])
        small = widths <= 64  # where the 1/n² term stands above the sampling error
        slope = np.polyfit(np.log(widths[small]), np.log(np.abs(residual[small])), 1)[0]
        assert -2.6 < slope < -1.4, (pair, slope, residual)
        mean, se = monte_carlo[256]
        assert abs(mean[pair] - coefficient / 256) < 4 * se[pair] + 2 * abs(residual[widths == 64][0]) / 16
        assert abs(mean[pair] - 1.1 * coefficient / 256) > 4 * se[pair], (pair, "a wrong coefficient passes")


def test_derive_order_one_prints_and_emit_writes_the_same_terms(tmp_path):
    """`derive --order 1` and `emit --content finite-width` show the exact 1/n terms of `order_one`;
    the emitted numpy function evaluates to the coefficient the Monte Carlo above checks."""
    import importlib.util
    import json

    from click.testing import CliRunner

    from cli import main

    terms = fw.order_one(DEFAULT, 3)
    assert set(terms["static"]) == {(0, 2)} and (2, 2) in terms["first_step"] and (0, 1) in terms["first_step"]
    found = json.loads(CliRunner().invoke(main, ["derive", "--order", "1", "--format", "json"]).output)["order_1"]
    assert found["first_step"]["2,2"] == str(terms["first_step"][(2, 2)])
    result = CliRunner().invoke(main, ["emit", "--content", "finite-width", "--target", "numpy", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location("fw_emitted", tmp_path / "finite_width_numpy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    point = {"eta": 0.3, "r_0": 0.7, "r_1": -0.5, "r_2": 0.4, "sigma_W": 0.8, "sigma_F": 1.0, "sigma_C": 1.0}
    expected = float(terms["first_step"][(2, 2)].subs({sp.Symbol(k) if k[0] == "r" else
                                                       (fw.step if k == "eta" else S.sigma[k[-1]]): v
                                                       for k, v in point.items()}))
    assert module.first_step_2_2(**point) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("args, message", [(["--lags", "0:9"], "1 to 4 lags"), (["--convention", "B"], "convention A"),
                                           (["--symbolic-rates"], "numeric rates")])
def test_derive_order_one_refuses_what_it_does_not_cover(args, message):
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["derive", "--order", "1", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
