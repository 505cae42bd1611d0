"""PLRNN derivation: region maps, fixed points, cycles, the regularized block structure and its bounds."""
import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sympy as sp

from derivations import emit as E
from derivations import plrnn as P


def _step(A, W, h, z):
    """The PLRNN map written directly (diagonal of W masked), independent of the derivation."""
    W = W - np.diag(np.diag(W))
    return A * z + W @ np.maximum(z, 0) + h


def _random_model(rng, M, a=(0.0, 0.9), w=1.0):
    return rng.uniform(*a, M), rng.normal(0, w / np.sqrt(M), (M, M)), rng.normal(0, 1, M)


def _regularized(rng, M, n_reg):
    A, W, h = _random_model(rng, M, a=(-0.9, 0.9), w=1.5)
    A[:n_reg], W[:n_reg], h[:n_reg] = 1.0, 0.0, 0.0
    return A, W, h


# --- symbolic -----------------------------------------------------------------------------------


@pytest.mark.parametrize("d", list(itertools.product((0, 1), repeat=3)))
def test_region_jacobian_is_a_plus_wd_in_every_region(d):
    J = P.region_jacobian_symbolic(3, d)
    assert J == P.written_out(P.jacobian_formula(), 3, d)
    m = P.model(3)
    assert not J.free_symbols & (set(m.z) | set(m.u))  # affine in the region; the input drops out


def test_symbolic_region_is_the_blend_of_both_sides():
    assert P.region_jacobian_symbolic(3) == P.written_out(P.jacobian_formula(), 3)


@pytest.mark.parametrize("d", list(itertools.product((0, 1), repeat=2)))
def test_fixed_point_formula_solves_the_region_map(d):
    z_star, conditions = P.fixed_point_symbolic(2, d)
    assert (z_star - P.written_out(P.fixed_point_formula(), 2, d)).applyfunc(sp.simplify) == sp.zeros(2, 1)
    assert len(conditions) == 2 and [type(c) for c in conditions] == [sp.StrictGreaterThan if di else sp.LessThan for di in d]


def test_affine_composition_step():
    K, c = P.affine_composition_step()
    J, Pm = sp.MatrixSymbol("J", P.M_sym, P.M_sym), sp.MatrixSymbol("P", P.M_sym, P.M_sym)
    assert K == J * Pm and c == J * sp.MatrixSymbol("c", P.M_sym, 1) + P.h_vec


def test_regularized_jacobian_has_identity_block():
    blocks = P.jacobian_blocks(2, 2)
    m, d = P.model(4), P.region_symbols(4)
    assert blocks["reg,reg"] == sp.eye(2) and blocks["reg,rest"] == sp.zeros(2, 2)
    assert blocks["rest,reg"] == m.W[2:, :2] * sp.diag(*d[:2])
    assert blocks["rest,rest"] == sp.diag(*m.a[2:]) + m.W[2:, 2:] * sp.diag(*d[2:])


@pytest.mark.parametrize("n", [2, 3])
def test_products_keep_identity_block(n):
    blocks = P.jacobian_product_blocks(n)
    X, Y = zip(*(P.step_blocks(s) for s in range(1, n + 1)))
    assert blocks[0, 0] == sp.Identity(P.n_reg) and blocks[0, 1] == sp.ZeroMatrix(P.n_reg, P.n_rest)
    expected = sum((sp.MatMul(*Y[s + 1:][::-1], X[s]) if s < n - 1 else X[s] for s in range(n)), sp.ZeroMatrix(P.n_rest, P.n_reg))
    assert sp.expand(blocks[1, 0] - expected) == sp.ZeroMatrix(P.n_rest, P.n_reg)
    assert blocks[1, 1] == sp.MatMul(*Y[::-1])
    rec = P.product_recursion()
    assert rec["left"][0, 0] == rec["right"][0, 0] == sp.Identity(P.n_reg)
    assert P.lower_bound() == 1


def test_norm_recursion_and_bounds():
    ell_n, rho_n = P.norm_recursion()
    n, x, y = P.steps, P.x, P.y
    general = ell_n.args[-1][0]
    assert sp.simplify(general.subs(n, n + 1) - (x + y * general)) == 0 and general.subs(n, 0) == 0
    assert ell_n.subs(y, 1) == n * x and rho_n.subs(n, 0) == 1
    gap = sp.Symbol("w", positive=True)  # y = 1 − w < 1
    assert sp.simplify((P.uniform_limit() - sp.sqrt(1 + x ** 2 / (1 - y) ** 2)).subs(y, 1 - gap)) == 0
    rng = np.random.default_rng(1)
    bound = sp.lambdify((P.ell, P.rho), P.block_norm_bound())
    for ell, rho in rng.uniform(0, 3, (20, 2)):
        assert bound(ell, rho) == pytest.approx(np.linalg.norm([[1, 0], [ell, rho]], 2), rel=1e-12)
        assert bound(ell, 0.0) == pytest.approx(np.hypot(1, ell), rel=1e-12)
    B = P.regularized_product_bound().doit()
    assert float(B.subs({x: 0.3, y: 0.6, n: 10_000})) == pytest.approx(float(P.uniform_limit().subs({x: 0.3, y: 0.6})))


def test_unconditional_gradient_lower_bound_fails():
    ce = P.gradient_counterexample()
    assert ce["J"] == sp.Matrix([[1, 0], [1, 0]]) and ce["g"][0] == 1 and ce["gradient"] == sp.zeros(2, 1)
    assert P.gradient_blocks()[1, 0] == sp.MatrixSymbol("R", P.n_rest, P.n_rest).T * sp.MatrixSymbol("g_rest", P.n_rest, 1)


def test_two_cycle_set_by_hand():
    # p = (1, −1) → q = (−1, 1) → p: 0.5·1 + h0 = −1, −0.5 + 3·1 + h1 = 1, and the same with roles swapped
    A, W, h = np.array([0.5, 0.5]), np.array([[0.0, 3.0], [3.0, 0.0]]), np.array([-1.5, -1.5])
    p, q = np.array([1.0, -1.0]), np.array([-1.0, 1.0])
    np.testing.assert_array_equal(_step(A, W, h, p), q)
    (cycle,) = P.cycles(A, W, h, 2)
    assert {tuple(z) for z in cycle.points} == {tuple(p), tuple(q)}
    assert set(cycle.regions) == {(1, 0), (0, 1)}
    points, conditions = P.cycle_symbolic(2, [(1, 0), (0, 1)])
    m = P.model(2)
    values = {m.a[0]: sp.Rational(1, 2), m.a[1]: sp.Rational(1, 2), m.W[0, 1]: 3, m.W[1, 0]: 3,
              m.h[0]: sp.Rational(-3, 2), m.h[1]: sp.Rational(-3, 2)}
    assert [list(z.subs(values)) for z in points] == [[1, -1], [-1, 1]]
    assert all(c.subs(values) == sp.true for c in conditions)
    # k = 1 are the fixed points, found the same way as by all_fixed_points
    assert sorted(tuple(c.points[0]) for c in P.cycles(A, W, h, 1)) == sorted(tuple(f.z) for f in P.all_fixed_points(A, W, h))


# --- numeric ------------------------------------------------------------------------------------


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    M = 6
    A, W, h = _random_model(rng, M)
    W[np.diag_indices(M)] = 5.0  # ignored, as the model masks it
    z = rng.choice([-1, 1], M) * rng.uniform(0.5, 2.0, M)  # away from the region's walls
    eps = 1e-6
    numeric = np.column_stack([(_step(A, W, h, z + eps * e) - _step(A, W, h, z - eps * e)) / (2 * eps) for e in np.eye(M)])
    np.testing.assert_allclose(P.region_jacobian(A, W, z > 0), numeric, atol=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_contracting_plrnn_converges_to_its_fixed_point(seed):
    rng = np.random.default_rng(seed)
    M = 5
    A, W, h = _random_model(rng, M, a=(-0.4, 0.4))
    W -= np.diag(np.diag(W))
    W *= 0.5 / np.linalg.norm(W, 2)  # max|A| + ‖W‖ ≤ 0.9: a contraction, so exactly one fixed point
    z = rng.normal(size=M)
    for _ in range(400):
        z = _step(A, W, h, z)
    (fp,) = P.all_fixed_points(A, W, h)
    np.testing.assert_allclose(fp.z, z, rtol=1e-10, atol=1e-12)
    assert fp.region == P.region_of(z) and np.abs(fp.eigenvalues).max() < 1


def test_converged_states_of_a_multistable_plrnn_are_fixed_points():
    rng = np.random.default_rng(3)
    M = 4
    A, W, h = _random_model(rng, M, a=(0.2, 0.9), w=1.5)
    found = P.all_fixed_points(A, W, h)
    starts = rng.normal(0, 3, (60, M))
    ends = []
    for z in starts:
        for _ in range(3000):
            z = _step(A, W, h, z)
        if np.abs(_step(A, W, h, z) - z).max() < 1e-12:
            ends.append(z)
    assert ends
    for z in ends:
        assert any(np.allclose(z, f.z, rtol=1e-9, atol=1e-10) for f in found)
    from_visits = P.fixed_points(A, W, h, P.visited_regions(np.array(ends)))
    assert {f.region for f in from_visits} <= {f.region for f in found}


def test_inconsistent_and_singular_regions_are_rejected():
    one = {"A": [0.5], "W": [[0.0]], "h": [1.0]}
    np.testing.assert_allclose(P.fixed_point(d=(1,), **one), [2.0])
    assert P.fixed_point(d=(0,), **one) is None  # z* = 2 > 0 cannot be in the inactive region
    assert P.fixed_point([1.0], [[0.0]], [0.0], (1,)) is None  # a line of fixed points: I − J singular
    # two units: region (1, 1) solves to a point with a negative entry
    A, W, h = np.array([0.5, 0.5]), np.array([[0.0, -2.0], [0.0, 0.0]]), np.array([1.0, 1.0])
    assert P.fixed_point(A, W, h, (1, 1)) is None
    np.testing.assert_allclose(P.fixed_point(A, W, h, (0, 1)), [-6.0, 2.0])  # z1 = 2, z0 = (1 − 2·2)/0.5
    with pytest.raises(ValueError):
        P.fixed_point(A, W, h, (1, 2))


def test_regularized_products_keep_identity_block_and_respect_bounds():
    rng = np.random.default_rng(4)
    M, n_reg, T = 7, 3, 40
    A, W, _ = _regularized(rng, M, n_reg)
    states = rng.normal(0, 1, (T, M))
    norms = P.jacobian_products(A, W, states)
    Pm = np.eye(M)
    for t in range(T - 1, -1, -1):
        Pm = Pm @ P.region_jacobian(A, W, states[t] > 0)
        assert np.array_equal(Pm[:n_reg, :n_reg], np.eye(n_reg)) and not Pm[:n_reg, n_reg:].any()
        assert norms[t] == pytest.approx(np.linalg.norm(Pm, 2), rel=1e-12)
    b = P.product_bounds(A, W, states, n_reg=n_reg)
    slack = 1 + 1e-12
    assert np.all(b.lower <= norms * slack) and np.all(b.lower == 1)
    for upper in (b.block, b.stepwise, b.model, b.uniform):
        assert np.all(norms <= upper * slack)
    assert np.all(b.block <= b.uniform * slack)
    with pytest.raises(ValueError, match="not regularized"):
        P.product_bounds(A, W, states, n_reg=n_reg + 1)


def test_gradient_lower_bounds_on_random_products():
    rng = np.random.default_rng(5)
    M, n_reg = 6, 2
    for _ in range(20):
        A, W, _ = _regularized(rng, M, n_reg)
        states = rng.normal(0, 1, (int(rng.integers(1, 30)), M))
        Pm = np.linalg.multi_dot([np.eye(M)] + [P.region_jacobian(A, W, z > 0) for z in states[::-1]])
        g = rng.normal(size=M)
        reg_only = np.concatenate([g[:n_reg], np.zeros(M - n_reg)])
        np.testing.assert_array_equal(Pm.T @ reg_only, reg_only)  # carried by the regularized units: unchanged
        ell = np.linalg.norm(Pm[n_reg:, :n_reg], 2)
        assert np.linalg.norm(Pm.T @ g) >= np.linalg.norm(g[:n_reg]) - ell * np.linalg.norm(g[n_reg:]) - 1e-12
        assert np.linalg.norm(Pm, 2) >= 1 - 1e-12


def test_unregularized_bounds_hold():
    rng = np.random.default_rng(6)
    A, W, _ = _random_model(rng, 5, a=(-1.0, 1.0), w=2.0)
    states = rng.normal(0, 1, (25, 5))
    norms = P.jacobian_products(A, W, states)
    b = P.product_bounds(A, W, states)
    assert b.block is None and np.all(b.lower == 0)
    assert np.all(norms <= b.stepwise * (1 + 1e-12)) and np.all(b.stepwise <= b.model * (1 + 1e-12))


def test_min_unit_circle_distance():
    eigs = np.array([0.5, 1.2, -0.999, 0.3 + 0.95j])
    assert P.min_unit_circle_distance(eigs) == pytest.approx(0.001)
    assert P.min_unit_circle_distance([[2.0], [0.0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        P.min_unit_circle_distance([])


def test_cycle_search_refuses_too_many_sequences():
    with pytest.raises(ValueError, match="max_sequences"):
        P.cycles(np.zeros(6), np.zeros((6, 6)), np.zeros(6), 3)


# --- emitted code -------------------------------------------------------------------------------


def test_emitted_numpy_matches_the_derivation():
    (name, text), = E.render_plrnn("numpy").items()
    assert name == "plrnn_numpy.py" and "Do not edit" in text.splitlines()[0]
    mod = E.plrnn_module()
    rng = np.random.default_rng(7)
    A, W, h = _random_model(rng, 4)
    W -= np.diag(np.diag(W))
    d = np.array([1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(mod.region_jacobian(A, W, d), np.diag(A) + W @ np.diag(d))
    np.testing.assert_allclose(mod.fixed_point(A, W, h, d), np.linalg.solve(np.eye(4) - np.diag(A) - W @ np.diag(d), h))
    B = P.regularized_product_bound().doit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # y = 1 must not evaluate 0/0 in the dead branch
        for xv, yv, nv in [(0.3, 0.6, 7), (0.3, 1.0, 7), (1.2, 1.4, 3), (0.5, 0.0, 0)]:
            assert mod.regularized_product_bound(xv, yv, nv) == pytest.approx(
                float(B.subs({P.x: xv, P.y: yv, P.steps: nv})), rel=1e-12)
        np.testing.assert_allclose(mod.regularized_product_bound(0.3, 1.0, np.arange(4)),
                                   [mod.block_norm_bound(0.3 * k, 1.0) for k in range(4)])


def test_emitted_latex_and_unknown_target():
    (text,) = E.render_plrnn("latex").values()
    assert r"J_D &= " in text and r"\operatorname{diag}(A)" in text and r"\sigma_{\max}" in text
    with pytest.raises(ValueError, match="unknown PLRNN target"):
        E.render_plrnn("c")


def test_plrnn_derivation_does_not_import_torch_or_matplotlib():
    code = ("import sys, numpy as np\nfrom derivations import plrnn\n"
            "plrnn.all_fixed_points(np.full(2, 0.5), np.zeros((2, 2)), np.ones(2))\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
