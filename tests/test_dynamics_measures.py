"""Measures of a reconstruction (`numerics.dynamics.measures`), each against a case with a known answer."""
import numpy as np
import pytest

from numerics.dynamics.measures import (
    amplitude_spectrum,
    hellinger_spectrum,
    lyapunov_from_jacobians,
    lyapunov_from_ode,
    lyapunov_spectrum_from_jacobians,
    prediction_horizon,
    spectrum_mse,
    state_space_kl_binned,
    state_space_kl_gmm,
)
from numerics.dynamics.systems import hindmarsh_rose, lorenz63
from numerics.errors import NumericsError


def gaussian_kl(m0, S0, m1, S1):
    """KL(N(m0, S0) ‖ N(m1, S1)) in closed form."""
    S1_inv, d = np.linalg.inv(S1), len(m0)
    dm = np.asarray(m1) - m0
    return 0.5 * (np.trace(S1_inv @ S0) + dm @ S1_inv @ dm - d + np.log(np.linalg.det(S1) / np.linalg.det(S0)))


M0, S0 = np.zeros(2), np.array([[1.0, 0.3], [0.3, 0.5]])
M1, S1 = np.array([0.5, -0.3]), np.array([[1.5, 0.0], [0.0, 0.8]])


@pytest.fixture(scope="module")
def two_gaussians():
    rng = np.random.default_rng(0)
    n = 200_000
    return rng.multivariate_normal(M0, S0, n), rng.multivariate_normal(M1, S1, n), gaussian_kl(M0, S0, M1, S1)


def test_binned_kl_of_two_gaussians(two_gaussians):
    true, gen, exact = two_gaussians  # exact ≈ 0.40
    # errors: binning (width h ≈ 0.25) lowers KL by O(h²) ≈ 0.01; the plug-in estimate's bias is
    # ≈ (occupied cells)/(2n) ≈ 0.003 and its sd √(Var[log p/q]/n) ≈ 0.002
    assert state_space_kl_binned(true, gen, bins=40) == pytest.approx(exact, abs=0.03)
    assert state_space_kl_binned(true, true, bins=40) == 0.0
    # two samples of one law: only the plug-in bias remains
    assert 0 <= state_space_kl_binned(true[:100_000], true[100_000:], bins=40) < 0.01


def test_binned_kl_in_one_dimension_and_limits():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(100_000), 1 + rng.standard_normal(100_000)
    assert state_space_kl_binned(a, b, bins=60) == pytest.approx(0.5, abs=0.02)
    far = np.concatenate([b, [1e6]])  # one runaway point coarsens the joint grid, not a fixed one
    assert state_space_kl_binned(a, far, bins=60) < 0.1 < state_space_kl_binned(a, far, bins=60, limits=(-5, 6))
    with pytest.raises(NumericsError, match="too many for binning"):
        state_space_kl_binned(np.zeros((10, 8)), np.zeros((10, 8)), bins=30)


def test_gmm_kl_of_two_gaussians(two_gaussians):
    true, gen, exact = two_gaussians
    # one component each is the Gaussian MLE; Monte Carlo sd ≈ sd[log p/q]/√n_samples ≈ 0.003,
    # fitted means and covariances from 2·10⁵ points move KL by < 0.005
    assert state_space_kl_gmm(true, gen, n_components=1, n_samples=100_000) == pytest.approx(exact, abs=0.02)
    # several components fitted to Gaussian data still describe it
    assert state_space_kl_gmm(true[:20_000], gen[:20_000], n_components=5) == pytest.approx(exact, abs=0.05)
    assert state_space_kl_gmm(true[:5000], true[:5000], n_components=3) == 0.0
    with pytest.raises(NumericsError, match="components need"):
        state_space_kl_gmm(true[:3], gen[:3], n_components=5)


def sine(frequency, T=1000, dt=0.01, phase=0.0):
    return np.sin(2 * np.pi * frequency * dt * np.arange(T) + phase)


def test_amplitude_spectrum_of_a_sine():
    frequencies, amplitude = amplitude_spectrum(sine(5.0), dt=0.01)  # bins 0.1 Hz apart up to 50 Hz
    assert frequencies[1] == pytest.approx(0.1) and frequencies[-1] == pytest.approx(50)
    peak = np.argmax(amplitude)
    assert frequencies[peak] == pytest.approx(5.0) and amplitude[peak] == pytest.approx(np.sqrt(2))
    assert np.delete(amplitude, peak).max() < 1e-10
    _, two = amplitude_spectrum(np.stack([sine(5.0), 3 + 7 * sine(5.0)], 1), dt=0.01)
    np.testing.assert_allclose(two[:, 0], two[:, 1], atol=1e-12)  # z-scored: scale and offset drop out


def test_spectrum_mse_known_values():
    a, b = sine(5.0), sine(20.0)
    bands = {"all": None, "low": (0, 10), "high": (10, 50.01)}
    assert spectrum_mse(a, a, 0.01, bands) == {"all": 0.0, "low": 0.0, "high": 0.0}
    assert spectrum_mse(a, sine(5.0, phase=1.0), 0.01)["all"] < 1e-20  # amplitudes ignore phase
    # each spectrum has one bin of amplitude √2: two bins differ by 2 in square; the zero-frequency bin,
    # 0 after z-scoring, is left out (500 bins in all, 99 below 10 Hz)
    mse = spectrum_mse(a, b, 0.01, bands)
    assert mse["all"] == pytest.approx(4 / 500) and mse["low"] == pytest.approx(2 / 99)
    assert mse["high"] == pytest.approx(2 / 401)
    with pytest.raises(NumericsError, match="holds no frequency bin"):
        spectrum_mse(a, b, 0.01, {"none": (60, 70)})
    with pytest.raises(NumericsError, match="holds no frequency bin"):  # the zero-frequency bin alone
        spectrum_mse(a, b, 0.01, {"dc": (0, 0.05)})
    with pytest.raises(NumericsError, match="equal lengths"):
        spectrum_mse(a, a[:500], 0.01)


def test_hellinger_known_values():
    a, b = sine(5.0), sine(6.0)  # bins 50 and 60
    assert hellinger_spectrum(a, a) < 1e-7  # √(rounding of 1 − Σ) ≈ √ε
    assert hellinger_spectrum(a, sine(5.0, phase=2.0)) < 1e-6
    assert hellinger_spectrum(a, b, smoothing_sigma=0) == pytest.approx(1.0)
    # two Gaussians of sd σ bins, Δ bins apart: Bhattacharyya coefficient exp(−Δ²/8σ²)
    assert hellinger_spectrum(a, b, smoothing_sigma=4) == pytest.approx(np.sqrt(1 - np.exp(-100 / 128)), abs=1e-3)
    both = hellinger_spectrum(np.stack([a, a], 1), np.stack([a, b], 1), smoothing_sigma=0)
    assert both == pytest.approx(0.5)  # averaged over variables


def test_lyapunov_of_linear_maps_is_exact():
    J = np.array([[2.0, 1.0], [0.0, 0.5]])  # eigenvalues 2 and 1/2, not normal
    jacobians = [J] * 200
    assert lyapunov_from_jacobians(jacobians, discard=50) == pytest.approx(np.log(2), abs=1e-12)
    np.testing.assert_allclose(lyapunov_spectrum_from_jacobians(jacobians, discard=50), np.log([2, 0.5]), atol=1e-12)
    assert lyapunov_from_jacobians(jacobians, dt=0.1, discard=50) == pytest.approx(10 * np.log(2), abs=1e-10)
    rotation = 0.9 * np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]])  # |λ| = 0.9 twice
    np.testing.assert_allclose(lyapunov_spectrum_from_jacobians(np.stack([rotation] * 30)), np.log(0.9), atol=1e-12)
    with pytest.raises(NumericsError, match="no Jacobians left"):
        lyapunov_from_jacobians([J] * 3, discard=3)


def test_lyapunov_of_a_stable_fixed_point():
    # Lorenz at ρ = 0.5: the origin is stable; λ_max is J(0)'s top eigenvalue (−(σ+1) + √((σ−1)² + 4σρ))/2
    system = lorenz63(rho=0.5)
    exact = (-11 + np.sqrt(81 + 20)) / 2
    assert lyapunov_from_ode(system.rhs, [1.0, 1.0, 1.0], jacobian=system.jacobian, time=50, transient=20) \
        == pytest.approx(exact, abs=1e-6)
    # without a Jacobian: central differences of f along v
    assert lyapunov_from_ode(system.rhs, [1.0, 1.0, 1.0], time=50, transient=20) == pytest.approx(exact, abs=1e-5)


def test_lorenz_maximal_exponent():
    # six independent runs of 150 time units; the finite-time exponent's sd (≈ 0.2/√150 ≈ 0.016)
    # is estimated from them, and the mean must lie within 4 standard errors of 0.9056
    system = lorenz63()
    runs = [lyapunov_from_ode(system.rhs, system.initial + seed, jacobian=system.jacobian, time=150, seed=seed)
            for seed in range(6)]
    mean, sd = np.mean(runs), np.std(runs, ddof=1)
    assert 0.003 < sd < 0.05
    assert abs(mean - 0.9056) < 4 * sd / np.sqrt(len(runs))


def test_regular_bursting_has_zero_maximal_exponent():
    # a stable limit cycle: λ_max = 0 (the flow direction), approached as O(1/time)
    system = hindmarsh_rose()
    assert abs(lyapunov_from_ode(system.rhs, system.initial, jacobian=system.jacobian, time=3000, transient=1000)) < 0.005


def test_prediction_horizon_by_hand():
    t = np.arange(200)
    true = np.stack([np.sin(0.1 * t), 5 * np.cos(0.1 * t)], 1)
    sd = true.std(0)
    ramp = 0.01 * t[:, None] * sd  # normalized error 0.01·t in both variables
    assert prediction_horizon(true, true + ramp, threshold=0.505) == 51  # steps 0…50 are within
    assert prediction_horizon(true, true, threshold=0.1) == 200
    assert prediction_horizon(true, true + 10 * sd, threshold=1.0) == 0
    assert prediction_horizon(true, true[:120], threshold=0.1) == 120
    assert prediction_horizon(true, true + 0.3, threshold=0.5, scale=1.0) == 200
    assert prediction_horizon(true, true + 0.6, threshold=0.5, scale=1.0) == 0


def test_measures_reject_bad_input():
    with pytest.raises(NumericsError, match="non-finite"):
        state_space_kl_binned(np.zeros((10, 2)), np.full((10, 2), np.nan))
    with pytest.raises(NumericsError, match="2 and 3 variables"):
        prediction_horizon(np.zeros((10, 2)), np.zeros((10, 3)), 0.1)
