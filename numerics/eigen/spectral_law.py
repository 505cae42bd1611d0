"""The fitting half of the eigen initializer: a parametric eigenvalue law fitted to the spectra of
trained recurrent blocks, samples from it, and the spectrum file `spectral:file=…` reads.

    fit_law(eigenvalues)                      → law (dict: parameters, counts, goodness of fit)
    goodness_of_fit(law, eigenvalues)         → Kolmogorov–Smirnov statistics of eigenvalues under a law
    sample_law(law, n, rng)                   → n eigenvalues, closed under conjugation
    write_spectrum(law, path, n=…, seed=…, provenance={…})  → PATH (.npy) and PATH.json

The law (the toolkit's reconstruction: the paper's own construction is not public, docs/theory.md
"Eigen view (paper 2)"). The eigenvalues of a real matrix are real or come in conjugate pairs
r·e^{±iθ}, θ ∈ (0, π), so the law has five parts, each a few numbers:

  r_max          the largest modulus in the pool: the law's support is the disk |λ| ≤ r_max, so a
                 sampled spectrum never has a larger radius than the trained ones had
  fraction_real  the fraction of eigenvalues that are real (counted as eigenvalues, a pair as two)
  pair_modulus   r/r_max ~ Beta(a, b) for the complex pairs
  pair_phase     θ/π ~ Beta(a, b) for the pairs, independent of r (the Spearman correlation of r
                 and θ is reported, to show where that assumption fails)
  real_modulus   |λ|/r_max ~ Beta(a, b) for the real eigenvalues, with sign + at rate `positive`

Why Beta laws: on a bounded interval they are the two-parameter family that holds the cases the
theory names — the circular law of a Gaussian matrix is exactly pair_modulus Beta(2, 1) (density
2r/R²), pair_phase Beta(1, 1) and real_modulus Beta(1, 1) (its real eigenvalues are uniform on
[−R, R]); `spectral:modulus=uniform` is Beta(1, 1); moduli piled up near r_max (trained memory
modes) are b < 1 — and their maximum-likelihood fit is a root of two digamma equations, so it is
deterministic. What they cannot hold (a point mass, two separate rings) shows as a small KS p-value.

The fit. r_max is the sample maximum. Given it, the other moduli are an iid sample of the law
truncated at r_max, so each Beta is fitted by maximum likelihood (scipy.stats.beta.fit, loc 0 and
scale 1 fixed) to the moduli without that one maximal eigenvalue — the maximum carries the scale,
not the shape, and at u = 1 the Beta likelihood is 0 or ∞. `fraction_real` and `positive` are the
sample frequencies (their maximum-likelihood estimates). A part with fewer than MIN_FIT eigenvalues
borrows: a modulus law from the other kind's, the phase law Beta(1, 1), the sign split from the
pairs' share with Re λ > 0 (the rule by which `numerics.models.families` turns a pair into a real
eigenvalue); each part records where it came from ("from") and on how many eigenvalues ("n").
KS p-values are computed with the fitted parameters, so they are optimistic (Lilliefors): a small
one is evidence against the law, a large one is not proof of it.

A real eigenvalue is one with |Im λ| ≤ REAL_TOL·max|λ| of its array (LAPACK returns them with
Im = 0 exactly); each array must be closed under conjugation, as a real matrix's spectrum is, and
each pair enters the fit once, through its member with Im λ > 0.

The file holds one eigenvalue per block — the reals and each pair's member with Im λ > 0 — because
`derivations.families.load_spectrum` adds the conjugates itself; writing both members would count
every pair twice against the reals.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import NumericsError
from ..io import to_json, write_atomic

MIN_FIT = 10  # fewest eigenvalues a Beta law is fitted to; fewer borrow (see the module docstring)
REAL_TOL = 1e-9  # |Im λ| ≤ REAL_TOL·max|λ|: a real eigenvalue
_EDGE = 1e-12  # Beta samples and data are kept inside (0, 1) by this much
LAW_KEYS = ("r_max", "fraction_real", "positive", "pair_modulus", "pair_phase", "real_modulus")


def _pooled(eigenvalues) -> tuple[np.ndarray, np.ndarray, int]:
    """The reals and the pairs' upper members (Im > 0) of all arrays, and the number of arrays."""
    if isinstance(eigenvalues, np.ndarray):
        eigenvalues = [eigenvalues]
    eigenvalues = list(eigenvalues)
    if not eigenvalues:
        raise NumericsError("no eigenvalues to fit: the list of arrays is empty")
    reals, uppers = [], []
    for i, values in enumerate(eigenvalues):
        values = np.asarray(values)
        if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.number):
            raise NumericsError(f"eigenvalue array {i} must be a non-empty 1-D numeric vector, got shape {values.shape} ({values.dtype})")
        values = values.astype(complex)
        if not np.all(np.isfinite(values)):
            raise NumericsError(f"eigenvalue array {i} has non-finite values (the network diverged?)")
        tol = REAL_TOL * float(np.max(np.abs(values)))
        real = np.abs(values.imag) <= tol
        upper, lower = values.imag > tol, values.imag < -tol
        if upper.sum() != lower.sum():
            raise NumericsError(f"eigenvalue array {i} is not closed under conjugation ({upper.sum()} with Im > 0, "
                                f"{lower.sum()} with Im < 0): not the spectrum of a real matrix")
        reals.append(values[real].real)
        uppers.append(values[upper])
    return np.concatenate(reals), np.concatenate(uppers), len(eigenvalues)


def _beta_fit(u: np.ndarray, what: str) -> dict:
    u = np.clip(u, _EDGE, 1 - _EDGE)
    if np.ptp(u) <= 1e-9:
        raise NumericsError(f"the {what} have no spread (all ≈ {u[0]:.6g}); a Beta law does not describe a point mass")
    a, b, _, _ = stats.beta.fit(u, floc=0, fscale=1)
    if not (np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0):
        raise NumericsError(f"the Beta fit to the {what} failed (a={a}, b={b})")
    return {"a": float(a), "b": float(b)}


def fit_law(eigenvalues: list[np.ndarray]) -> dict:
    """The law (module docstring) fitted to the pooled eigenvalues of trained recurrent blocks (one
    complex or real array per block), with counts and `goodness_of_fit` on the same eigenvalues.
    Deterministic. Raises NumericsError on empty or non-finite input, spectra not closed under
    conjugation, too few eigenvalues, or a modulus sample without spread."""
    reals, uppers, arrays = _pooled(eigenvalues)
    n_real, n_pair = reals.size, uppers.size
    r_max = float(max(np.max(np.abs(reals), initial=0.0), np.max(np.abs(uppers), initial=0.0)))
    if r_max == 0:
        raise NumericsError("every eigenvalue is 0: there is no modulus law to fit")
    u_real, u_pair = np.abs(reals) / r_max, np.abs(uppers) / r_max
    # the maximum sets the scale: fit the shapes to the rest (truncation at the sample maximum)
    if n_pair and (not n_real or u_pair.max() >= u_real.max()):
        fit_pair, fit_real = np.delete(u_pair, np.argmax(u_pair)), u_real
    else:
        fit_pair, fit_real = u_pair, np.delete(u_real, np.argmax(u_real))
    law = {"r_max": r_max, "fraction_real": n_real / (n_real + 2 * n_pair)}
    if fit_pair.size >= MIN_FIT:
        law["pair_modulus"] = {**_beta_fit(fit_pair, "moduli of the complex pairs"), "from": "pairs", "n": int(fit_pair.size)}
        law["pair_phase"] = {**_beta_fit(np.angle(uppers) / math.pi, "phases of the complex pairs"), "from": "pairs", "n": int(n_pair)}
    if fit_real.size >= MIN_FIT:
        law["real_modulus"] = {**_beta_fit(fit_real, "moduli of the real eigenvalues"), "from": "reals", "n": int(fit_real.size)}
    if "pair_modulus" not in law and "real_modulus" not in law:
        raise NumericsError(f"too few eigenvalues to fit a law: {n_real} real and {n_pair} pairs "
                            f"(a Beta law needs {MIN_FIT} of one kind)")
    law.setdefault("pair_modulus", {**law.get("real_modulus", {}), "from": "reals"})
    law.setdefault("pair_phase", {"a": 1.0, "b": 1.0, "from": "default (uniform)", "n": 0})
    law.setdefault("real_modulus", {**law["pair_modulus"], "from": "pairs"})
    if n_real:
        law["positive"] = {"p": float(np.mean(reals > 0)), "from": "reals", "n": int(n_real)}
    else:
        law["positive"] = {"p": float(np.mean(uppers.real > 0)), "from": "pairs (sign of Re λ)", "n": int(n_pair)}
    law["counts"] = {"arrays": arrays, "eigenvalues": int(n_real + 2 * n_pair), "real": int(n_real), "pairs": int(n_pair)}
    law["goodness"] = goodness_of_fit(law, eigenvalues)
    return law


def _beta(part: dict):
    return stats.beta(part["a"], part["b"])


def goodness_of_fit(law: dict, eigenvalues: list[np.ndarray]) -> dict:
    """Kolmogorov–Smirnov tests (scipy.stats.kstest) of each continuous marginal of `eigenvalues`
    against `law`: pair moduli and phases, real moduli (moduli scaled by the law's r_max; those
    beyond it count as above the whole law). Plus the Spearman correlation of the pairs' r and θ,
    which the law takes to be independent. A marginal with no eigenvalues gets null."""
    _check_law(law)
    reals, uppers, _ = _pooled(eigenvalues)
    r_max = law["r_max"]

    def ks(sample, part):
        if sample.size == 0:
            return {"statistic": None, "pvalue": None, "n": 0}
        test = stats.kstest(sample, _beta(part).cdf)
        return {"statistic": float(test.statistic), "pvalue": float(test.pvalue), "n": int(sample.size)}

    result = {"pair_modulus": ks(np.abs(uppers) / r_max, law["pair_modulus"]),
              "pair_phase": ks(np.angle(uppers) / math.pi, law["pair_phase"]),
              "real_modulus": ks(np.abs(reals) / r_max, law["real_modulus"])}
    if uppers.size >= 3 and np.ptp(np.abs(uppers)) > 0 and np.ptp(np.angle(uppers)) > 0:
        rho = stats.spearmanr(np.abs(uppers), np.angle(uppers))
        result["pair_modulus_phase_spearman"] = {"rho": float(rho.statistic), "pvalue": float(rho.pvalue), "n": int(uppers.size)}
    else:
        result["pair_modulus_phase_spearman"] = {"rho": None, "pvalue": None, "n": int(uppers.size)}
    result["note"] = "p-values use the fitted parameters, so they are optimistic (Lilliefors)"
    return result


def _check_law(law) -> None:
    missing = [k for k in LAW_KEYS if not isinstance(law, dict) or k not in law]
    if missing:
        raise NumericsError(f"not an eigenvalue law: missing {', '.join(missing)}")
    try:
        r_max, f, p = float(law["r_max"]), float(law["fraction_real"]), float(law["positive"]["p"])
        shapes = [float(law[k][s]) for k in ("pair_modulus", "pair_phase", "real_modulus") for s in ("a", "b")]
    except (KeyError, TypeError, ValueError):
        raise NumericsError("not an eigenvalue law: a parameter is missing or not a number") from None
    if not (math.isfinite(r_max) and r_max > 0 and 0 <= f <= 1 and 0 <= p <= 1
            and all(math.isfinite(s) and s > 0 for s in shapes)):
        raise NumericsError(f"not an eigenvalue law: r_max > 0, fraction_real and positive in [0, 1] and Beta "
                            f"shapes > 0 are needed (r_max={r_max}, fraction_real={f}, positive={p}, shapes={shapes})")


def _real_count(n: int, fraction: float) -> int:
    """The number of real eigenvalues in n: the integer of n's parity (the rest form pairs) nearest
    fraction·n, ties to the smaller."""
    target = fraction * n
    candidates = np.arange(n % 2, n + 1, 2)
    return int(candidates[np.argmin(np.abs(candidates - target))])


def sample_law(law: dict, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """n eigenvalues drawn from `law`, closed under conjugation: the reals, then the pairs' upper
    members, then their conjugates (complex dtype). The number of reals is fixed, the integer of n's
    parity nearest fraction_real·n (a random count would only add noise); moduli r_max·Beta,
    phases π·Beta (kept inside (0, π), so a pair never becomes real), signs + with rate `positive`.
    Every modulus is ≤ r_max."""
    _check_law(law)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise NumericsError(f"the number of eigenvalues must be a positive integer, got {n!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    r_max = float(law["r_max"])
    n_real = _real_count(int(n), float(law["fraction_real"]))
    n_pair = (int(n) - n_real) // 2

    def beta(part, size):
        return np.clip(rng.beta(part["a"], part["b"], size), _EDGE, 1 - _EDGE)

    reals = r_max * beta(law["real_modulus"], n_real) * np.where(rng.random(n_real) < law["positive"]["p"], 1.0, -1.0)
    pairs = r_max * beta(law["pair_modulus"], n_pair) * np.exp(1j * math.pi * beta(law["pair_phase"], n_pair))
    return np.concatenate([reals.astype(complex), pairs, pairs.conj()])


ABLATIONS = ("moduli", "phases")


def ablated_law(law: dict, keep: str) -> dict:
    """The law with one half replaced by what a Xavier block has (its circular law, radius 1):
    keep='moduli': the fitted moduli (r_max, pair and real moduli, fraction real), phases uniform and
    signs even; keep='phases': the fitted phases, fraction real and signs, moduli of the circular law
    (pairs Beta(2, 1), reals Beta(1, 1), r_max 1). Which half of the law carries an effect is what
    the ablation of E1 (eigen-moduli, eigen-phases) asks."""
    _check_law(law)
    if keep not in ABLATIONS:
        raise NumericsError(f"unknown ablation {keep!r} (choose {', '.join(ABLATIONS)})")
    out = {k: law[k] for k in LAW_KEYS}
    xavier = "a Xavier block's circular law"
    if keep == "moduli":
        out.update(pair_phase={"a": 1.0, "b": 1.0, "from": xavier, "n": 0}, positive={"p": 0.5, "from": xavier, "n": 0})
    else:
        out.update(r_max=1.0, pair_modulus={"a": 2.0, "b": 1.0, "from": xavier, "n": 0},
                   real_modulus={"a": 1.0, "b": 1.0, "from": xavier, "n": 0})
    out["ablation"] = f"keeps the fitted {keep}; the rest from {xavier}"
    return out


def write_spectrum(law: dict, path: str | Path, *, n: int = 1024, seed: int = 0, provenance: dict | None = None) -> Path:
    """Draw n eigenvalues (`sample_law` with np.random.default_rng(seed)) and write them to PATH
    (.npy, one eigenvalue per block: reals and the pairs' members with Im > 0, complex dtype unless
    all are real — what `load_spectrum` reads and completes with the conjugates), and PATH.json:
    the law's parameters and goodness of fit, the sample (n, seed) and `provenance` (task, cell,
    seeds, command…). Both files are built before either is written, and each is written
    atomically. Returns PATH."""
    path = Path(path)
    if path.suffix != ".npy":
        raise NumericsError(f"a spectrum file must end in .npy, got {path}")
    if not path.parent.is_dir():
        raise NumericsError(f"no such directory: {path.parent}")
    values = sample_law(law, n, np.random.default_rng(seed))
    stored = values[values.imag >= 0]  # reals (Im = 0 exactly) and the upper members
    if np.all(stored.imag == 0):
        stored = stored.real
    buffer = io.BytesIO()
    np.save(buffer, stored, allow_pickle=False)
    sidecar = {"format": "eigenvalues of a spectral:file=… init; one per block (reals, then pairs' members with "
                         "Im > 0); the conjugates are implied",
               "law": {k: law[k] for k in (*LAW_KEYS, "counts", "ablation") if k in law},
               "goodness": law.get("goodness"),
               "sample": {"n": int(n), "seed": int(seed), "stored": int(stored.size),
                          "max_modulus": float(np.max(np.abs(values)))},
               "provenance": provenance or {}}
    try:
        text = to_json(sidecar)
    except (TypeError, ValueError) as error:
        raise NumericsError(f"the provenance cannot be written as JSON ({error})") from None
    json.loads(text)  # JSON-clean before anything touches the disk
    write_atomic(path.with_name(path.name + ".json"), text)
    write_atomic(path, buffer.getvalue())
    return path
