"""A trained PLRNN's dynamics (`numerics.plrnn.regions`): regions, fixed points, cycles, Jacobian
products and their derived bounds, evaluated through the committed emitted code, against direct
numpy computations on random models."""

import numpy as np
import pytest
import sympy as sp
from plrnn_models import random_model, regularized, step

from derivations import plrnn as P
from numerics.plrnn import regions as R

# --- symbolic -----------------------------------------------------------------------------------


def test_two_cycle_set_by_hand():
    # p = (1, −1) → q = (−1, 1) → p: 0.5·1 + h0 = −1, −0.5 + 3·1 + h1 = 1, and the same with roles swapped
    A, W, h = np.array([0.5, 0.5]), np.array([[0.0, 3.0], [3.0, 0.0]]), np.array([-1.5, -1.5])
    p, q = np.array([1.0, -1.0]), np.array([-1.0, 1.0])
    np.testing.assert_array_equal(step(A, W, h, p), q)
    (cycle,) = R.cycles(A, W, h, 2)
    assert {tuple(z) for z in cycle.points} == {tuple(p), tuple(q)}
    assert set(cycle.regions) == {(1, 0), (0, 1)}
    points, conditions = P.cycle_symbolic(2, [(1, 0), (0, 1)])
    m = P.model(2)
    values = {m.a[0]: sp.Rational(1, 2), m.a[1]: sp.Rational(1, 2), m.W[0, 1]: 3, m.W[1, 0]: 3,
              m.h[0]: sp.Rational(-3, 2), m.h[1]: sp.Rational(-3, 2)}
    assert [list(z.subs(values)) for z in points] == [[1, -1], [-1, 1]]
    assert all(c.subs(values) == sp.true for c in conditions)
    # k = 1 are the fixed points, found the same way as by all_fixed_points
    assert sorted(tuple(c.points[0]) for c in R.cycles(A, W, h, 1)) == sorted(tuple(f.z) for f in R.all_fixed_points(A, W, h))


# --- numeric ------------------------------------------------------------------------------------


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    M = 6
    A, W, h = random_model(rng, M)
    W[np.diag_indices(M)] = 5.0  # ignored, as the model masks it
    z = rng.choice([-1, 1], M) * rng.uniform(0.5, 2.0, M)  # away from the region's walls
    eps = 1e-6
    numeric = np.column_stack([(step(A, W, h, z + eps * e) - step(A, W, h, z - eps * e)) / (2 * eps) for e in np.eye(M)])
    np.testing.assert_allclose(R.region_jacobian(A, W, z > 0), numeric, atol=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_contracting_plrnn_converges_to_its_fixed_point(seed):
    rng = np.random.default_rng(seed)
    M = 5
    A, W, h = random_model(rng, M, a=(-0.4, 0.4))
    W -= np.diag(np.diag(W))
    W *= 0.5 / np.linalg.norm(W, 2)  # max|A| + ‖W‖ ≤ 0.9: a contraction, so exactly one fixed point
    z = rng.normal(size=M)
    for _ in range(400):
        z = step(A, W, h, z)
    (fp,) = R.all_fixed_points(A, W, h)
    np.testing.assert_allclose(fp.z, z, rtol=1e-10, atol=1e-12)
    assert fp.region == R.region_of(z) and np.abs(fp.eigenvalues).max() < 1


def test_converged_states_of_a_multistable_plrnn_are_fixed_points():
    rng = np.random.default_rng(3)
    M = 4
    A, W, h = random_model(rng, M, a=(0.2, 0.9), w=1.5)
    found = R.all_fixed_points(A, W, h)
    starts = rng.normal(0, 3, (60, M))
    ends = []
    for z in starts:
        for _ in range(3000):
            z = step(A, W, h, z)
        if np.abs(step(A, W, h, z) - z).max() < 1e-12:
            ends.append(z)
    assert ends
    for z in ends:
        assert any(np.allclose(z, f.z, rtol=1e-9, atol=1e-10) for f in found)
    from_visits = R.fixed_points(A, W, h, R.visited_regions(np.array(ends)))
    assert {f.region for f in from_visits} <= {f.region for f in found}


def test_inconsistent_and_singular_regions_are_rejected():
    one = {"A": [0.5], "W": [[0.0]], "h": [1.0]}
    np.testing.assert_allclose(R.fixed_point(d=(1,), **one), [2.0])
    assert R.fixed_point(d=(0,), **one) is None  # z* = 2 > 0 cannot be in the inactive region
    assert R.fixed_point([1.0], [[0.0]], [0.0], (1,)) is None  # a line of fixed points: I − J singular
    # two units: region (1, 1) solves to a point with a negative entry
    A, W, h = np.array([0.5, 0.5]), np.array([[0.0, -2.0], [0.0, 0.0]]), np.array([1.0, 1.0])
    assert R.fixed_point(A, W, h, (1, 1)) is None
    np.testing.assert_allclose(R.fixed_point(A, W, h, (0, 1)), [-6.0, 2.0])  # z1 = 2, z0 = (1 − 2·2)/0.5
    with pytest.raises(ValueError):
        R.fixed_point(A, W, h, (1, 2))


def test_regularized_products_keep_identity_block_and_respect_bounds():
    rng = np.random.default_rng(4)
    M, n_reg, T = 7, 3, 40
    A, W, _ = regularized(rng, M, n_reg)
    states = rng.normal(0, 1, (T, M))
    norms = R.jacobian_products(A, W, states)
    Pm = np.eye(M)
    for t in range(T - 1, -1, -1):
        Pm = Pm @ R.region_jacobian(A, W, states[t] > 0)
        assert np.array_equal(Pm[:n_reg, :n_reg], np.eye(n_reg)) and not Pm[:n_reg, n_reg:].any()
        assert norms[t] == pytest.approx(np.linalg.norm(Pm, 2), rel=1e-12)
    b = R.product_bounds(A, W, states, n_reg=n_reg)
    slack = 1 + 1e-12
    assert np.all(b.lower <= norms * slack) and np.all(b.lower == 1)
    for upper in (b.block, b.stepwise, b.model, b.uniform):
        assert np.all(norms <= upper * slack)
    assert np.all(b.block <= b.uniform * slack)
    with pytest.raises(ValueError, match="not regularized"):
        R.product_bounds(A, W, states, n_reg=n_reg + 1)


def test_gradient_lower_bounds_on_random_products():
    rng = np.random.default_rng(5)
    M, n_reg = 6, 2
    for _ in range(20):
        A, W, _ = regularized(rng, M, n_reg)
        states = rng.normal(0, 1, (int(rng.integers(1, 30)), M))
        Pm = np.linalg.multi_dot([np.eye(M)] + [R.region_jacobian(A, W, z > 0) for z in states[::-1]])
        g = rng.normal(size=M)
        reg_only = np.concatenate([g[:n_reg], np.zeros(M - n_reg)])
        np.testing.assert_array_equal(Pm.T @ reg_only, reg_only)  # carried by the regularized units: unchanged
        ell = np.linalg.norm(Pm[n_reg:, :n_reg], 2)
        assert np.linalg.norm(Pm.T @ g) >= np.linalg.norm(g[:n_reg]) - ell * np.linalg.norm(g[n_reg:]) - 1e-12
        assert np.linalg.norm(Pm, 2) >= 1 - 1e-12


def test_unregularized_bounds_hold():
    rng = np.random.default_rng(6)
    A, W, _ = random_model(rng, 5, a=(-1.0, 1.0), w=2.0)
    states = rng.normal(0, 1, (25, 5))
    norms = R.jacobian_products(A, W, states)
    b = R.product_bounds(A, W, states)
    assert b.block is None and np.all(b.lower == 0)
    assert np.all(norms <= b.stepwise * (1 + 1e-12)) and np.all(b.stepwise <= b.model * (1 + 1e-12))


def test_min_unit_circle_distance():
    eigs = np.array([0.5, 1.2, -0.999, 0.3 + 0.95j])
    assert R.min_unit_circle_distance(eigs) == pytest.approx(0.001)
    assert R.min_unit_circle_distance([[2.0], [0.0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        R.min_unit_circle_distance([])


def test_cycle_search_refuses_too_many_sequences():
    with pytest.raises(ValueError, match="max_sequences"):
        R.cycles(np.zeros(6), np.zeros((6, 6)), np.zeros(6), 3)


# --- emitted code -------------------------------------------------------------------------------


