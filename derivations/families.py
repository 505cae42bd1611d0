"""Initializer families of the recurrent matrix W, as the spec names them (no SymPy, no torch).

`init` in a `Spec` is "NAME" or "NAME:key=value,…". Every family is written W = σ_W · W̃ with W̃ of
unit scale, and σ_W is also W's tangent scale s_W (ntk parameterization: W = σ_W W̃/√n with
W̃ = √n·(unit-scale matrix), as for the Gaussian). What σ_W means per family:

  gaussian    entry standard deviation × √n (iid N(0, σ_W²/n) entries)
  orthogonal  σ_W times a Haar-random orthogonal matrix
  identity    the gain g of W = g·I (the IRNN)
  nprnn       a factor on Talathi & Vartak's W = (I + AᵀA/n)/λ_max, A n×n with N(0, 1) entries
  spectral    the radius of the eigenvalue law of a normal matrix (2×2 rotation–scaling blocks in
              a Haar-random orthogonal basis); modulus=disk (circular law, the Gaussian's own
              eigenvalues), ring (all on the circle of radius σ_W) or uniform (modulus uniform on
              [0, σ_W]); phases uniform on (−φ, φ) with φ = phase·π; or file=PATH, a .npy vector of
              eigenvalues (real or complex, the law is their conjugate-symmetric empirical measure),
              scaled by σ_W
  attractor   a fraction p of units with self-weight 1 and no recurrent input (line attractors),
              the rest a Gaussian block with radius σ_W
  empirical   file=PATH, a .npy square matrix M: W = σ_W·M (σ_W = 1 is M itself); a network of
              width k·size holds k copies of M on the block diagonal, with M's moments exactly

The moment rules (derivations.moments) and the samplers (numerics.models.families) read these names.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np


class FamilyError(ValueError):
    """An initializer that does not exist or whose parameters are out of range; names the problem."""


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    params: dict  # parameter → default (None: required or optional file)
    doc: str


FAMILIES = {f.name: f for f in (
    Family("gaussian", {}, "iid N(0, σ_W²/n) entries (the default)"),
    Family("orthogonal", {}, "σ_W × Haar orthogonal"),
    Family("identity", {}, "σ_W · I (IRNN, gain g = σ_W)"),
    Family("nprnn", {}, "σ_W (I + AᵀA/n)/λ_max (Talathi & Vartak)"),
    Family("spectral", {"modulus": "disk", "phase": "1", "file": None},
           "normal matrix with a prescribed eigenvalue law of radius σ_W"),
    Family("attractor", {"p": "0.25"}, "fraction p of line-attractor units, the rest Gaussian σ_W"),
    Family("empirical", {"file": None}, "σ_W × a given matrix (.npy)"),
)}
MODULI = ("disk", "ring", "uniform")


def _number(family: str, key: str, value: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except ValueError:
        raise FamilyError(f"{family}: {key} is not a number: {value!r}") from None
    if not low <= x <= high:
        raise FamilyError(f"{family}: {key} must be in [{low:g}, {high:g}], got {value}")
    return x


def _load(family: str, path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise FamilyError(f"{family}: no such file: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise FamilyError(f"{family}: {path} is not a .npy array ({str(error).splitlines()[0]})") from None
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise FamilyError(f"{family}: {path} must hold finite numbers")
    return array


def load_matrix(path: str) -> np.ndarray:
    """The square real matrix of an `empirical` init."""
    M = _load("empirical", path)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0 or np.iscomplexobj(M):
        raise FamilyError(f"empirical: {path} must hold a square real matrix, got shape {M.shape} ({M.dtype})")
    return M.astype(float)


def load_spectrum(path: str) -> np.ndarray:
    """The eigenvalues of a `spectral:file=…` init, closed under conjugation: a file that already
    is (a real matrix's np.linalg.eigvals) is taken as it is; otherwise every complex value gets its
    conjugate, as a real matrix has them."""
    values = _load("spectral", path)
    if values.ndim != 1 or values.size == 0:
        raise FamilyError(f"spectral: {path} must hold a vector of eigenvalues, got shape {values.shape}")
    values = values.astype(complex)
    upper, lower = values[values.imag > 0], values[values.imag < 0]
    if len(upper) == len(lower) and np.allclose(np.sort_complex(upper), np.sort_complex(lower.conj())):
        return values  # already closed (np.linalg.eigvals of a real matrix): counted as given
    complex_part = values[values.imag != 0]
    return np.concatenate([values[values.imag == 0], complex_part, complex_part.conj()])


def _checked_digest(family: str, params: dict) -> str:
    """The file's content hash; a spec read back from a result names the hash it was made with."""
    digest = hashlib.sha256(Path(params["file"]).read_bytes()).hexdigest()[:16]
    if params.get("sha256", digest) != digest:
        raise FamilyError(f"{family}: {params['file']} has changed since this spec was written (sha256 {params['sha256']})")
    return digest


def parse(init: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """'NAME[:key=value,…]' → (name, sorted (key, value) pairs with defaults filled), validated.

    Files are checked here (shape, finite entries) and their content hash joins the parameters,
    so a cached result never outlives a changed file.
    """
    name, _, rest = str(init).strip().partition(":")
    if name not in FAMILIES:
        raise FamilyError(f"unknown initializer {name!r} (choose {', '.join(FAMILIES)})")
    family = FAMILIES[name]
    given = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if name == "empirical" and not sep and "file" not in given:  # empirical:PATH
            key, value, sep = "file", key, "="
        if not sep or key not in family.params and not (key == "sha256" and "file" in family.params):
            known = ", ".join(family.params) or "none"
            raise FamilyError(f"{name}: {item!r} is not KEY=VALUE with KEY among its parameters ({known})")
        if key in given:
            raise FamilyError(f"{name}: {key} is given twice")
        given[key] = value
    params = {k: v for k, v in family.params.items() if v is not None}
    params.update(given)
    if "file" in params:  # absolute, so cells computed elsewhere (another directory, a worker) find it
        params["file"] = str(Path(params["file"]).expanduser().resolve())
    if name == "attractor":
        params["p"] = repr(_number(name, "p", params["p"], 0.0, 1.0))
    if name == "spectral":
        if "file" in given and ({"modulus", "phase"} & set(given)):
            raise FamilyError("spectral: give either file=… or modulus/phase, not both")
        if "file" in params:
            load_spectrum(params["file"])
            params = {"file": params["file"], "sha256": _checked_digest(name, params)}
        else:
            if params["modulus"] not in MODULI:
                raise FamilyError(f"spectral: unknown modulus {params['modulus']!r} (choose {', '.join(MODULI)})")
            params["phase"] = repr(_number(name, "phase", params["phase"], 0.0, 1.0))
    if name == "empirical":
        if "file" not in params:
            raise FamilyError("empirical needs a matrix: empirical:PATH.npy")
        load_matrix(params["file"])
        params["sha256"] = _checked_digest(name, params)
    return name, tuple(sorted(params.items()))


def canonical(name: str, params: tuple[tuple[str, str], ...]) -> str:
    return name + (":" + ",".join(f"{k}={v}" for k, v in params) if params else "")

