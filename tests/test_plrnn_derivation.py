"""PLRNN derivation: region maps, fixed points, cycles, the regularized block structure and its bounds."""
import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sympy as sp
from generated_code import module as generated
from plrnn_models import random_model

from derivations import emit as E
from derivations import plrnn as P

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


def test_emitted_numpy_matches_the_derivation():
    (name, text), = E.render("plrnn", "numpy").items()
    assert name == "plrnn_numpy.py" and "Do not edit" in text.splitlines()[0]
    mod = generated(content="plrnn")
    rng = np.random.default_rng(7)
    A, W, h = random_model(rng, 4)
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
    (text,) = E.render("plrnn", "latex").values()
    assert r"J_D &= " in text and r"\operatorname{diag}(A)" in text and r"\sigma_{\max}" in text
    with pytest.raises(ValueError, match="plrnn is emitted for latex, numpy, not c"):
        E.render("plrnn", "c")


def test_plrnn_derivation_does_not_import_torch_or_matplotlib():
    code = ("import sys\nfrom derivations import plrnn\nfrom numerics.plrnn import regions\n"
            "plrnn.regularized_product_bound(); regions.all_fixed_points([0.5, 0.5], [[0, 0], [0, 0]], [1, 1])\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
