"""Samplers of W per initializer family (`numerics.models.families`): structure, scale, seeds, bad input."""
import math

import numpy as np
import pytest
import torch

from derivations.spec import Spec
from numerics.errors import NumericsError
from numerics.models.families import unit_recurrent_matrix
from numerics.models.linear import LinearRNN


def sample(init: str, width: int, sigma_w: float = 0.8, seed: int = 0) -> torch.Tensor:
    """W = σ_W·W̃_unit."""
    return sigma_w * unit_recurrent_matrix(Spec(init=init), width, torch.Generator().manual_seed(seed), sigma_w=sigma_w)


def effective_w(init: str, width: int, sigma_w: float, param: str = "ntk", seed: int = 0) -> torch.Tensor:
    net = LinearRNN(Spec(init=init, param=param), width, sigmas={"W": sigma_w}, seed=seed)
    return net.matrices()[0].detach()


@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_gaussian_stream_is_unchanged(param):
    """Committed results depend on it: W's entries are the generator's first randn draw, F's the next."""
    width, sigma_w, seed = 24, 0.7, 11
    net = LinearRNN(Spec(param=param), width, sigmas={"W": sigma_w}, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    entries = torch.randn((width, width), generator=generator, dtype=torch.float64)
    F = torch.randn((width, 1), generator=generator, dtype=torch.float64)
    expected = entries if param == "ntk" else entries * (sigma_w / math.sqrt(width))
    assert torch.equal(net.W.detach(), expected)
    assert torch.equal(net.F.detach(), F)  # σ_F = 1, n_x = 1: the same in both parameterizations


def test_network_scale_is_the_sampler_times_sigma_w():
    """ntk stores √n·W̃_unit with multiplier σ_W/√n, standard stores σ_W·W̃_unit: one W either way."""
    for init in ("orthogonal", "nprnn", "spectral", "attractor:p=0.5"):
        ntk, standard = effective_w(init, 32, 0.9), effective_w(init, 32, 0.9, param="standard")
        torch.testing.assert_close(ntk, sample(init, 32, 0.9), rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(standard, ntk, rtol=1e-12, atol=1e-14)


def test_orthogonal_is_sigma_times_an_orthogonal_matrix():
    W = sample("orthogonal", 50, 0.8)
    torch.testing.assert_close(W.T @ W, 0.64 * torch.eye(50, dtype=torch.float64))
    assert not torch.equal(W, sample("orthogonal", 50, 0.8, seed=1))


def test_identity_is_the_gain_times_i():
    assert torch.equal(sample("identity", 7, 0.9), 0.9 * torch.eye(7, dtype=torch.float64))
    torch.testing.assert_close(effective_w("identity", 7, 0.9), 0.9 * torch.eye(7, dtype=torch.float64))


def test_nprnn_has_spectral_radius_sigma():
    W = sample("nprnn", 60, 0.8)
    torch.testing.assert_close(W, W.T)
    eigenvalues = torch.linalg.eigvalsh(W)
    assert abs(float(eigenvalues[-1]) - 0.8) < 1e-12 and float(eigenvalues[0]) > 0.8 / 5 * 0.99


def test_attractor_units_and_gaussian_block():
    width, p, sigma_w = 40, 0.25, 0.8
    W = effective_w(f"attractor:p={p}", width, sigma_w)
    units = round(p * width)
    torch.testing.assert_close(W[:units, :units], torch.eye(units, dtype=torch.float64), rtol=0, atol=1e-15)
    assert not W[:units, units:].any() and not W[units:, :units].any()
    block = W[units:, units:]
    # entry variance σ_W²/m, m = n − round(p·n): within 4 standard errors (√(2/m²) relative)
    m = width - units
    assert abs(float(block.var()) * m / sigma_w ** 2 - 1) < 4 * math.sqrt(2) / m


def test_attractor_needs_a_positive_sigma_w():
    with pytest.raises(NumericsError, match="σ_W > 0"):
        LinearRNN(Spec(init="attractor"), 16, sigmas={"W": 0.0})


@pytest.mark.parametrize("init", ["spectral", "spectral:modulus=ring,phase=0.5", "spectral:modulus=uniform,phase=0"])
@pytest.mark.parametrize("width", [30, 31])
def test_spectral_is_normal_with_eigenvalues_in_the_disk(init, width):
    W = sample(init, width, 0.8)
    torch.testing.assert_close(W @ W.T, W.T @ W)
    moduli = torch.linalg.eigvals(W).abs()
    assert float(moduli.max()) <= 0.8 + 1e-12
    if "ring" in init:
        torch.testing.assert_close(moduli, torch.full_like(moduli, 0.8))
    if "phase=0" in init and "phase=0." not in init:  # real non-negative eigenvalues: W symmetric
        torch.testing.assert_close(W, W.T)


def test_spectral_file_draws_the_files_eigenvalues(tmp_path):
    values = np.array([0.5, -0.3, 0.6 * np.exp(1j * 0.4)])  # conjugate of the complex one implied
    np.save(tmp_path / "eigs.npy", values)
    W = sample(f"spectral:file={tmp_path / 'eigs.npy'}", 40, 1.0)
    torch.testing.assert_close(W @ W.T, W.T @ W)
    found = torch.linalg.eigvals(W).numpy()
    nearest = lambda allowed: np.min(np.abs(found[:, None] - np.asarray(allowed)[None, :]), axis=1)
    # the file's eigenvalues, but for a pair drawn for a single last unit: its real stand-in 0.6
    outside = nearest(np.concatenate([values, values.conj()])) > 1e-8
    assert outside.sum() <= 1 and np.all(nearest([0.6])[outside] < 1e-8)


def test_empirical_holds_block_diagonal_copies(tmp_path):
    M = np.random.default_rng(0).standard_normal((5, 5)) / 3
    np.save(tmp_path / "m.npy", M)
    W = sample(f"empirical:{tmp_path / 'm.npy'}", 15, 1.0)
    torch.testing.assert_close(W, torch.block_diag(*[torch.from_numpy(M)] * 3), rtol=1e-15, atol=0)
    with pytest.raises(NumericsError, match="not a multiple of the matrix size 5"):
        LinearRNN(Spec(init=f"empirical:{tmp_path / 'm.npy'}"), 16)


@pytest.mark.parametrize("init", ["orthogonal", "nprnn", "spectral", "attractor"])
def test_a_seed_fixes_the_matrix(init):
    assert torch.equal(sample(init, 20, seed=3), sample(init, 20, seed=3))
    assert not torch.equal(sample(init, 20, seed=3), sample(init, 20, seed=4))
