"""How faithful a reconstruction is: measures on a true and a generated trajectory, numpy arrays of
shape (time, variables) ((time,) is read as one variable). Each is a small function, usable on any
two series; none needs torch.

State space (geometry of the attractor), D_stsp = KL(p_true ‖ p_gen):
  state_space_kl_binned   histograms on a common grid (low dimension; Koppe et al. 2019)
  state_space_kl_gmm      Gaussian mixtures fitted to each, Monte Carlo over the true one's
Time (power spectra of z-scored series):
  amplitude_spectrum      single-sided FFT amplitude
  spectrum_mse            the rPLRNN paper's MSE between amplitude spectra, per frequency band
  hellinger_spectrum      Hellinger distance of smoothed, normalized power spectra (Mikhaeil et al. 2022)
Stability and predictability:
  lyapunov_spectrum_from_jacobians, lyapunov_from_jacobians   QR / renormalized tangent vectors
  lyapunov_from_ode       λ_max of an ODE from its variational equation
  prediction_horizon      steps until the normalized error of a free-running prediction exceeds a level
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy.integrate import solve_ivp
from scipy.ndimage import gaussian_filter1d

from ..errors import NumericsError

MAX_CELLS = 10**7


def _as_2d(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] < 2:
        raise NumericsError(f"{name} must have shape (time, variables) with at least 2 steps, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise NumericsError(f"{name} has non-finite values")
    return x


def _pair(true, gen, same_length: bool = False) -> tuple[np.ndarray, np.ndarray]:
    true, gen = _as_2d(true, "true trajectory"), _as_2d(gen, "generated trajectory")
    if true.shape[1] != gen.shape[1]:
        raise NumericsError(f"trajectories have {true.shape[1]} and {gen.shape[1]} variables")
    if same_length and true.shape[0] != gen.shape[0]:
        raise NumericsError(f"spectra need equal lengths, got {true.shape[0]} and {gen.shape[0]} steps")
    return true, gen


# ------------------------------------------------------------------------------------- state space

def state_space_kl_binned(true, gen, bins: int = 30, smoothing: float = 1e-6, limits=None) -> float:
    """KL(p_true ‖ p_gen) = Σ_k p_k log(p_k / q_k) of histograms on one grid: `bins` cells per
    variable over the joint range of both trajectories (or `limits` = (low, high) per variable;
    points outside go to the edge cells). Cell probabilities p_k = (n_k/n + ε) / (1 + Kε) with
    ε = `smoothing`, so a cell the generated trajectory never visits costs log(p_k/ε), not ∞.
    For low dimension only: K = bins^N cells. The joint range widens when a generated trajectory
    runs far off; pass the true data's range as `limits` to keep the grid fixed."""
    true, gen = _pair(true, gen)
    n_vars = true.shape[1]
    if bins < 1 or smoothing <= 0:
        raise NumericsError(f"bins must be ≥ 1 and smoothing > 0, got {bins} and {smoothing}")
    if bins**n_vars > MAX_CELLS:
        raise NumericsError(f"{bins}^{n_vars} cells is too many for binning; use state_space_kl_gmm")
    if limits is None:
        low = np.minimum(true.min(0), gen.min(0))
        high = np.maximum(true.max(0), gen.max(0))
    else:
        low, high = (np.broadcast_to(np.asarray(v, dtype=float), (n_vars,)) for v in limits)
    high = np.where(high > low, high, low + 1.0)  # a constant variable gets one unit-wide range
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in zip(low, high)]

    def probabilities(x):
        counts, _ = np.histogramdd(np.clip(x, low, high), bins=edges)
        return (counts.ravel() / x.shape[0] + smoothing) / (1 + smoothing * counts.size)

    p, q = probabilities(true), probabilities(gen)
    return float(np.sum(p * np.log(p / q)))


def state_space_kl_gmm(true, gen, n_components: int = 10, n_samples: int = 10_000, seed: int = 0,
                       covariance_type: str = "full", reg_covar: float = 1e-3) -> float:
    """KL(p_true ‖ p_gen) between Gaussian mixtures (sklearn's GaussianMixture, `n_components`
    each, EM from a seeded k-means start) fitted to the true and to the generated trajectory:
    the Monte Carlo mean of log p̂_true(x) − log p̂_gen(x) over `n_samples` draws x ~ p̂_true.
    `reg_covar` is added to every covariance's diagonal (squared data units; on z-scored data a
    floor of sd ≈ 0.03): with sklearn's 1e-6 the components on a thin attractor (Lorenz-63 is
    nearly 2-D) flatten, and two runs of one system differ by several nats.
    dysts' `estimate_kl_divergence` (Hess et al. 2023) instead puts one isotropic Gaussian of a
    fixed width on every point; a fitted mixture is smoother and independent of the series' length.
    Its error: the Monte Carlo sd, sd[log p̂/q̂]/√n_samples, plus the mixtures' fitting error."""
    from sklearn.mixture import GaussianMixture

    true, gen = _pair(true, gen)
    if min(true.shape[0], gen.shape[0]) < n_components:
        raise NumericsError(f"{n_components} mixture components need at least as many points")
    fit = [GaussianMixture(n_components, covariance_type=covariance_type, reg_covar=reg_covar, random_state=seed).fit(x)
           for x in (true, gen)]
    samples, _ = fit[0].sample(n_samples)
    return float(np.mean(fit[0].score_samples(samples) - fit[1].score_samples(samples)))


# ------------------------------------------------------------------------------------- spectra

def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)  # a constant variable has a zero spectrum


def amplitude_spectrum(x, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, amplitudes) of each z-scored variable: the single-sided FFT amplitude
    |X_k|·2/T (DC and, for even T, Nyquist |X_k|/T), so a z-scored sine √2 sin(2πft) on a
    frequency bin has amplitude √2 there. Frequencies in cycles per time unit of `dt` (Hz when
    dt is in seconds); shape (T//2 + 1,) and (T//2 + 1, variables), or (T//2 + 1,) for 1-D x."""
    one_d = np.ndim(x) == 1
    x = _as_2d(x, "series")
    T = x.shape[0]
    amplitude = np.abs(np.fft.rfft(_zscore(x), axis=0)) / T
    amplitude[1:(T + 1) // 2] *= 2  # every bin but DC and Nyquist stands for ±f
    frequencies = np.fft.rfftfreq(T, dt)
    return frequencies, amplitude[:, 0] if one_d else amplitude


def spectrum_mse(true, gen, dt: float = 1.0, bands: dict | None = None) -> dict:
    """MSE between the amplitude spectra of z-scored true and generated series (equal lengths),
    averaged over the bins of each band and over variables: {band name: MSE}. `bands` maps a name
    to None (all bins) or (f_low, f_high), f_low ≤ f < f_high, in cycles per time unit of `dt`
    (the paper: 'all', below 50 Hz, 50–600 Hz at dt = 0.5 ms, i.e. bands in Hz with dt in s).
    The zero-frequency bin is left out of every band: after z-scoring it is 0 for any series, so a
    band holding only it would score every model perfectly."""
    true, gen = _pair(true, gen, same_length=True)
    frequencies, a_true = amplitude_spectrum(true, dt)
    _, a_gen = amplitude_spectrum(gen, dt)
    squared = (a_true - a_gen) ** 2
    out = {}
    for name, band in (bands or {"all": None}).items():
        keep = frequencies > 0
        if band is not None:
            keep &= (frequencies >= band[0]) & (frequencies < band[1])
        if not keep.any():
            raise NumericsError(f"band {name!r} {band} holds no frequency bin (bins {frequencies[1]:.3g} apart, "
                                f"up to {frequencies[-1]:.3g})")
        out[name] = float(squared[keep].mean())
    return out


def hellinger_spectrum(true, gen, smoothing_sigma: float = 2.0) -> float:
    """Hellinger distance H = √(1 − Σ_k √(p_k q_k)) between the power spectra |X_k|² of z-scored
    true and generated series (equal lengths), each smoothed by a Gaussian of sd `smoothing_sigma`
    frequency bins (cut at 8 sd) and normalized to sum 1, averaged over variables (as dysts'
    `average_hellinger_distance`, which does not smooth). 0 for equal spectra, 1 for disjoint."""
    true, gen = _pair(true, gen, same_length=True)

    def normalized_power(x):
        power = np.abs(np.fft.rfft(_zscore(x), axis=0)) ** 2
        if smoothing_sigma > 0:
            power = gaussian_filter1d(power, smoothing_sigma, axis=0, truncate=8.0)
        total = power.sum(axis=0)
        return power / np.where(total > 0, total, 1.0)

    overlap = np.sum(np.sqrt(normalized_power(true) * normalized_power(gen)), axis=0)
    return float(np.mean(np.sqrt(np.clip(1.0 - overlap, 0.0, None))))


# ------------------------------------------------------------------------------------- Lyapunov exponents

def lyapunov_spectrum_from_jacobians(jacobians: Iterable, dt: float = 1.0, k: int | None = None, discard: int = 0,
                                     seed: int = 0) -> np.ndarray:
    """The k largest Lyapunov exponents of the products J_T ⋯ J_1 (per unit time: per step / dt),
    by repeated QR: Q ← qr(J_t Q), λ_i = Σ_t log|R_t,ii| / ((T − discard)·dt), from a random
    orthonormal Q. The first `discard` Jacobians only align Q and are not counted. A map's
    Jacobians (e.g. a PLRNN's A + W·diag(1[z_t > 0])) or an ODE's flow over dt."""
    Q, sums, counted = None, None, 0
    with np.errstate(divide="ignore"):
        for t, J in enumerate(jacobians):
            J = np.asarray(J, dtype=float)
            if Q is None:
                k = J.shape[0] if k is None else k
                Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((J.shape[0], k)))[0]
                sums = np.zeros(k)
            Q, R = np.linalg.qr(J @ Q)
            if t >= discard:
                sums += np.log(np.abs(np.diag(R)))
                counted += 1
    if not counted:
        raise NumericsError(f"no Jacobians left after discarding {discard}")
    return np.sort(sums / (counted * dt))[::-1]


def lyapunov_from_jacobians(jacobians: Iterable, dt: float = 1.0, discard: int = 0, seed: int = 0) -> float:
    """The maximal Lyapunov exponent: the growth rate of one renormalized tangent vector
    v ← J_t v / ‖J_t v‖, λ_max = Σ_t log ‖J_t v‖ / ((T − discard)·dt). See the spectrum version."""
    return float(lyapunov_spectrum_from_jacobians(jacobians, dt, k=1, discard=discard, seed=seed)[0])


def lyapunov_from_ode(rhs: Callable, x0, *, jacobian: Callable | None = None, time: float = 500.0,
                      transient: float = 10.0, seed: int = 0, rtol: float = 1e-6, atol: float = 1e-8) -> float:
    """λ_max of dx/dt = f(x) (`rhs(t, x)`): the growth rate of a tangent vector v along the
    trajectory from x0, by the variational equation with continuous renormalization,

        v' = J v − g v,  ℓ' = g,  g = vᵀJv / vᵀv,   λ_max = ℓ(time) / time,

    which keeps ‖v‖ fixed. J = `jacobian(x)`, or, without one, J v from central differences of f
    (the two-trajectory method in the limit of a small separation). The first `transient` time
    units move x onto the attractor and align v (seeded random start), and are not counted. The
    estimate fluctuates by the finite-time exponent's sd, ∝ 1/√time (Lorenz-63: ≈ 0.2/√time)."""
    if not time > 0 or transient < 0:
        raise NumericsError(f"time must be positive and transient ≥ 0, got {time} and {transient}")
    x0 = np.asarray(x0, dtype=float)
    n = x0.size

    def tangent(t, x, v):
        if jacobian is not None:
            return np.asarray(jacobian(x)) @ v
        norm = np.linalg.norm(v)
        eps = 1e-6 * max(1.0, np.linalg.norm(x))
        return (np.asarray(rhs(t, x + eps * v / norm)) - np.asarray(rhs(t, x - eps * v / norm))) * norm / (2 * eps)

    def augmented(t, u):
        x, v = u[:n], u[n:2 * n]
        Jv = tangent(t, x, v)
        g = v @ Jv / (v @ v)
        return np.concatenate([np.asarray(rhs(t, x), dtype=float), Jv - g * v, [g]])

    v0 = np.random.default_rng(seed).standard_normal(n)
    u = np.concatenate([x0, v0 / np.linalg.norm(v0), [0.0]])
    for span in (transient, time):
        if span > 0:
            solution = solve_ivp(augmented, (0.0, span), u, method="DOP853", rtol=rtol, atol=atol)
            if not solution.success or not np.all(np.isfinite(solution.y[:, -1])):
                raise NumericsError(f"integrating the variational equation failed: {solution.message}")
            u = solution.y[:, -1].copy()
            u[n:2 * n] /= np.linalg.norm(u[n:2 * n])
            grown, u[-1] = u[-1], 0.0
    return float(grown / time)


# ------------------------------------------------------------------------------------- prediction

def prediction_horizon(true, predicted, threshold: float, scale=None) -> int:
    """Steps until a free-running prediction fails: the number of leading steps whose normalized
    error e_t = √(mean_i ((x̂_t,i − x_t,i) / s_i)²) stays ≤ `threshold`, s_i the sd over time of the
    true variable i (or `scale`); the full length if it never exceeds it. On z-scored data e_t is
    the per-step RMSE over variables."""
    true, predicted = _pair(true, predicted)
    T = min(true.shape[0], predicted.shape[0])
    s = true.std(axis=0) if scale is None else np.broadcast_to(np.asarray(scale, dtype=float), (true.shape[1],))
    if np.any(s <= 0):
        raise NumericsError("prediction horizon needs a positive scale per variable (a constant true variable has none)")
    error = np.sqrt(np.mean(((predicted[:T] - true[:T]) / s) ** 2, axis=1))
    exceeded = np.flatnonzero(error > threshold)
    return int(exceeded[0]) if exceeded.size else T
