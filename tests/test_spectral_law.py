"""The eigen initializer's law (numerics.eigen.spectral_law): recovery of known parameters, goodness of fit
that tells a matching law from a wrong one, and spectrum files that the spectral family reads."""
import json

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import polygamma
from threadpoolctl import threadpool_limits

from derivations.families import load_spectrum
from derivations.lag_kernel import kernel_matrix
from derivations.spec import Spec
from numerics.eigen.spectral_law import fit_law, goodness_of_fit, sample_law, write_spectrum
from numerics.errors import NumericsError
from numerics.models.families import unit_recurrent_matrix

SIGMAS = {"W": 0.8, "F": 1.1, "C": 0.9, "D": 0.7}
RING = np.exp(1j * np.linspace(0.1, 3.0, 20))


@pytest.fixture(autouse=True)
def one_blas_thread():
    """The eigenvalue problems here are small; on 2 shared cores a multithreaded LAPACK spin-waits
    and runs them tens of times slower."""
    with threadpool_limits(1):
        yield


def make_law(r_max=1.1, fraction_real=0.2, positive=0.7, pair_modulus=(3.0, 0.8), pair_phase=(0.6, 1.5),
             real_modulus=(2.0, 1.2)) -> dict:
    beta = lambda ab: {"a": ab[0], "b": ab[1]}
    return {"r_max": r_max, "fraction_real": fraction_real, "positive": {"p": positive},
            "pair_modulus": beta(pair_modulus), "pair_phase": beta(pair_phase), "real_modulus": beta(real_modulus)}


def beta_standard_errors(a, b, n):
    """Asymptotic standard errors of the Beta maximum-likelihood estimates: the diagonal of the
    inverse Fisher information over n, I = [[ψ₁(a) − ψ₁(a+b), −ψ₁(a+b)], [−ψ₁(a+b), ψ₁(b) − ψ₁(a+b)]]."""
    t1 = lambda x: float(polygamma(1, x))
    info = np.array([[t1(a) - t1(a + b), -t1(a + b)], [-t1(a + b), t1(b) - t1(a + b)]])
    return np.sqrt(np.diag(np.linalg.inv(info)) / n)


def gaussian_eigenvalues(seed, n=400, count=3):
    """Circular law of radius 1: eigenvalues of N(0, 1/n) matrices (real arrays → conjugate pairs)."""
    rng = np.random.default_rng(seed)
    return [np.linalg.eigvals(rng.standard_normal((n, n)) / np.sqrt(n)) for _ in range(count)]


def test_fit_recovers_the_parameters_of_a_known_law():
    """Refit to 20000 draws: each Beta shape within 4 asymptotic standard errors (inverse Fisher
    information, computed for the sample size each part is fitted on), the sign split within 4
    binomial standard errors; the real fraction is exact (sample_law fixes the count); r_max is the
    sample maximum, ≤ the true one and, with b < 1 piling moduli at the edge, within 1e-3 of it."""
    truth = make_law()
    eigenvalues = sample_law(truth, 20000, np.random.default_rng(0))
    law = fit_law([eigenvalues])
    assert law["counts"] == {"arrays": 1, "eigenvalues": 20000, "real": 4000, "pairs": 8000}
    assert law["fraction_real"] == pytest.approx(0.2, abs=1e-12)
    assert truth["r_max"] * (1 - 1e-3) <= law["r_max"] <= truth["r_max"]
    for part in ("pair_modulus", "pair_phase", "real_modulus"):
        a, b = truth[part]["a"], truth[part]["b"]
        se = beta_standard_errors(a, b, law[part]["n"])
        assert abs(law[part]["a"] - a) < 4 * se[0] and abs(law[part]["b"] - b) < 4 * se[1], (part, law[part], se)
    p = truth["positive"]["p"]
    assert abs(law["positive"]["p"] - p) < 4 * np.sqrt(p * (1 - p) / 4000)
    assert law == fit_law([eigenvalues])  # deterministic
    json.dumps(law)  # JSON-ready


def test_goodness_is_high_for_a_matching_law_and_low_for_a_wrong_one():
    """The circular law is in the family (pair moduli Beta(2, 1), phases and real moduli uniform), so
    the law fitted to Gaussian eigenvalues passes every KS test (p > 0.01; over seeds 0–5 the
    smallest p was 0.066, the finite-n edge being the largest misfit). Ring eigenvalues (an
    orthogonal matrix's, radius 1) under that law fail it, and two separate rings — outside the
    family — fail even under their own fitted law."""
    disk = gaussian_eigenvalues(0)
    law = fit_law(disk)
    for part in ("pair_modulus", "pair_phase", "real_modulus"):
        assert law["goodness"][part]["pvalue"] > 0.01, (part, law["goodness"][part])
    assert 1.5 < law["pair_modulus"]["a"] < 3.5 and 0.8 < law["pair_phase"]["a"] < 1.5  # near Beta(2, 1), Beta(1, 1)

    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((200, 200)))
    ring = goodness_of_fit(law, [np.linalg.eigvals(q)])
    assert ring["pair_modulus"]["statistic"] > 0.5 and ring["pair_modulus"]["pvalue"] < 1e-10

    rng = np.random.default_rng(2)
    r = np.where(rng.random(1000) < 0.5, 0.3, 0.9) + 0.01 * rng.standard_normal(1000)
    pairs = r * np.exp(1j * np.pi * rng.random(1000))
    two_rings = fit_law([np.concatenate([pairs, pairs.conj(), [0.5, -0.4] * 10])])
    assert two_rings["goodness"]["pair_modulus"]["pvalue"] < 1e-10
    assert two_rings["goodness"]["pair_phase"]["pvalue"] > 0.01  # the phases are uniform and fit


def test_written_spectrum_is_read_by_the_spectral_family(tmp_path):
    law = fit_law(gaussian_eigenvalues(3))
    law["r_max"] = 0.95  # a stable law, so every lag kernel is defined
    path = write_spectrum(law, tmp_path / "eigen.npy", n=101, seed=7,
                          provenance={"task": "tomita:3", "cell": "rnn", "seeds": [0, 1], "command": "rnnmemory eigen fit"})
    values = load_spectrum(str(path))
    expected = sample_law(law, 101, np.random.default_rng(7))
    assert values.size == 101 and np.allclose(np.sort_complex(values), np.sort_complex(expected), rtol=0, atol=1e-15)
    assert np.max(np.abs(values)) <= law["r_max"]

    sidecar = json.loads((tmp_path / "eigen.npy.json").read_text())
    assert sidecar["provenance"]["task"] == "tomita:3" and sidecar["sample"] == {
        "n": 101, "seed": 7, "stored": int(np.sum(expected.imag >= 0)), "max_modulus": pytest.approx(np.max(np.abs(expected)))}
    assert sidecar["law"]["pair_modulus"] == law["pair_modulus"] and "pvalue" in sidecar["goodness"]["pair_phase"]

    spec = Spec(init=f"spectral:file={path}")
    kernel = kernel_matrix(spec, 6, SIGMAS)["kernel"]
    assert kernel.shape == (6, 6) and np.all(np.isfinite(kernel))
    W = unit_recurrent_matrix(spec, 60, torch.Generator().manual_seed(0), sigma_w=1.0)
    assert float(torch.linalg.eigvals(W).abs().max()) <= law["r_max"] + 1e-12


def test_all_real_and_all_complex_spectra():
    """A symmetric block has only real eigenvalues; the pair laws are then borrowed (modulus) or
    uniform (phase). An odd n with no real fraction still gets its one real eigenvalue."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((60, 60))
    law = fit_law([np.linalg.eigvalsh((A + A.T) / np.sqrt(240))])
    assert law["fraction_real"] == 1 and law["pair_modulus"]["from"] == "reals" and law["pair_phase"]["a"] == 1.0
    complex_only = make_law(fraction_real=0.0)
    values = sample_law(complex_only, 11, np.random.default_rng(0))
    assert np.sum(values.imag == 0) == 1 and np.allclose(np.sort_complex(values), np.sort_complex(values.conj()))


@pytest.mark.parametrize("eigenvalues,message", [
    ([], "list of arrays is empty"),
    ([np.array([])], "non-empty 1-D"),
    ([np.array([0.5, np.nan])], "non-finite"),
    ([np.array([0.5, np.inf + 0j])], "non-finite"),
    ([np.array([0.5 + 0.5j, 0.2])], "not closed under conjugation"),
    ([np.array([0.5, -0.2, 0.1])], "too few eigenvalues"),
    ([np.concatenate([RING, RING.conj()])], "no spread"),  # a point mass of moduli
])
def test_bad_input_is_one_line(eigenvalues, message):
    with pytest.raises(NumericsError, match=message) as error:
        fit_law(eigenvalues)
    assert "\n" not in str(error.value)


def test_bad_law_and_unwritable_provenance(tmp_path):
    with pytest.raises(NumericsError, match="missing r_max"):
        sample_law({}, 4)
    with pytest.raises(NumericsError, match="Beta shapes > 0"):
        sample_law(make_law(pair_modulus=(0.0, 1.0)), 4)
    with pytest.raises(NumericsError, match="positive integer"):
        sample_law(make_law(), 0)
    with pytest.raises(NumericsError, match="cannot be written as JSON"):
        write_spectrum(make_law(), tmp_path / "x.npy", n=8, provenance={"bad": object()})
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_ablated_laws_keep_one_half_and_take_the_other_from_a_xavier_block():
    from numerics.eigen.spectral_law import ablated_law

    law = fit_law(gaussian_eigenvalues(3))
    law = {**law, "r_max": 1.7, "pair_phase": {"a": 5.0, "b": 1.0}}  # phases piled near π: far from uniform
    moduli = sample_law(ablated_law(law, "moduli"), 4000, 0)
    upper = moduli[moduli.imag > 0]
    assert stats.kstest(np.angle(upper) / np.pi, "uniform").pvalue > 0.01  # phases: uniform again
    assert np.abs(moduli).max() > 1.2 and np.abs(moduli).max() <= 1.7  # moduli: the law's, up to r_max
    phases = sample_law(ablated_law(law, "phases"), 4000, 0)
    upper = phases[phases.imag > 0]
    assert np.median(np.angle(upper) / np.pi) > 0.8 and np.abs(phases).max() <= 1.0
    # the circular law of radius 1: pair moduli Beta(2, 1), density 2r
    assert stats.kstest(np.abs(upper), stats.beta(2, 1).cdf).pvalue > 0.01
    with pytest.raises(NumericsError, match="unknown ablation"):
        ablated_law(law, "radius")
