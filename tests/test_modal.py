"""The eigen view's derived quantities against numpy's eigendecomposition and random networks."""
import numpy as np
import pytest
import sympy as sp

from derivations import modal
from derivations.spec import Spec


def _value(expr, **values):
    return complex(expr.subs({getattr(modal, name): v for name, v in values.items()}).evalf())


def test_gain_phase_and_half_life_of_a_mode():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 6)) * 0.3
    lam, P = np.linalg.eig(W)
    for steps in (1, 3, 7):
        modal_power = np.linalg.inv(P) @ np.linalg.matrix_power(W, steps) @ P  # diag(λ^k)
        for i, l in enumerate(lam):
            r, t = abs(l), np.angle(l)
            expected = _value(modal.gain(), r=r, k=steps) * np.exp(1j * _value(modal.phase(), k=steps, theta=t).real)
            assert modal_power[i, i] == pytest.approx(expected, abs=1e-10)
    r = 0.9
    k_half = _value(modal.half_life(), r=r).real
    assert r ** k_half == pytest.approx(0.5)


def test_transient_bound_holds_and_is_reached_only_when_normal():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((8, 8))
    W = A @ np.diag(rng.uniform(0.2, 0.9, 8)) @ np.linalg.inv(A)  # non-normal, real spectrum
    lam, P = np.linalg.eig(W)
    kappa, rho = np.linalg.cond(P), max(abs(lam))
    for steps in range(12):
        norm = np.linalg.norm(np.linalg.matrix_power(W, steps), 2)
        assert norm <= _value(modal.transient_bound(), kappa=kappa, rho=rho, k=steps).real * (1 + 1e-9)


@pytest.mark.parametrize("init,normal", [("gaussian", False), ("spectral", True)])
def test_memory_function_is_the_energy_an_input_keeps(init, normal):
    """n_x E‖W^k F‖²/(n σ_F²) with W from the family, against the derived m′(k, k); the circular-law
    normal matrix keeps σ^{2k}/(k + 1), the Gaussian σ^{2k}: non-normality is memory."""
    n, sigma, rng = 600, 0.9, np.random.default_rng(2)
    if normal:
        half = n // 2
        radius = sigma * np.sqrt(rng.random(half))
        angle = rng.uniform(-np.pi, np.pi, half)
        B = np.zeros((n, n))
        i = 2 * np.arange(half)
        B[i, i] = B[i + 1, i + 1] = radius * np.cos(angle)
        B[i, i + 1], B[i + 1, i] = -radius * np.sin(angle), radius * np.sin(angle)
        Q, R = np.linalg.qr(rng.standard_normal((n, n)))
        W = (Q * np.sign(np.diag(R))) @ B @ (Q * np.sign(np.diag(R))).T
    else:
        W = rng.standard_normal((n, n)) * sigma / np.sqrt(n)
    f = sp.lambdify(modal.k, modal.memory_function(Spec(init=init)).subs(sp.Symbol("sigma_W", positive=True), sigma))
    F = rng.standard_normal((n, 64))  # σ_F = 1, n_x = 1 per column
    state = F.copy()
    for steps in range(8):
        measured = np.mean(np.sum(state ** 2, axis=0)) / n
        # E over F: 64 columns of n entries leave ~1/√(64 n) relative noise; the trace itself
        # fluctuates ~ k/n for the Gaussian, and for the normal matrix by the sampling of its n/2
        # moduli: relative sd of the mean of r^{2k} (r² ~ σ² U) is √((k+1)²/(2k+1) − 1)/√(n/2)
        moduli = np.sqrt((steps + 1) ** 2 / (2 * steps + 1) - 1) / np.sqrt(n / 2) if normal else 0.0
        tolerance = 5 / np.sqrt(64 * n) + 3 * (steps + 1) / n + 4 * moduli
        assert measured == pytest.approx(float(f(steps)), rel=tolerance)
        state = W @ state


@pytest.mark.parametrize("name", ["tanh", "relu"])
def test_activation_never_adds_gain(name):
    assert modal.activation_slope_sup(name) == 1
    rng = np.random.default_rng(3)
    W = rng.standard_normal((20, 20)) * 1.3 / np.sqrt(20)
    phi_prime = {"tanh": lambda x: 1 - np.tanh(x) ** 2, "relu": lambda x: (x > 0).astype(float)}[name]
    h, J = rng.standard_normal(20), np.eye(20)
    bound = sp.lambdify((modal.k, modal.norm_w), modal.activation_gain_bound(name))
    for steps in range(1, 15):
        pre = W @ h + rng.standard_normal(20)
        J = np.diag(phi_prime(pre)) @ W @ J
        h = np.tanh(pre) if name == "tanh" else np.maximum(pre, 0)
        assert np.linalg.norm(J, 2) <= bound(steps, np.linalg.norm(W, 2)) * (1 + 1e-12)
