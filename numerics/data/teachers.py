"""Teacher impulse responses L*_j, j < lags, named by short strings (scalar input and output).

  decay:ρ          ρ^j
  delay:k          1 at lag k, 0 elsewhere
  resonant:r,θ     r^j cos(θ j)
  lti:DIM[,ρ]      c A^j b for a random stable DIM-state system (seeded, DIM ≤ 1000) whose A has spectral
                   radius ρ (0 < ρ < 1; default 0.9)
  file:PATH        a .npy or .csv real impulse response (1-D); shorter ones continue with zeros
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..errors import NumericsError

MAX_LTI_STATES = 1000  # a random DIM × DIM system: its eigenvalues cost DIM³


def _numbers(text: str, args: str, count: tuple[int, ...], kind=float) -> list:
    parts = args.split(",") if args else []
    if len(parts) not in count:
        wanted = " or ".join(str(c) for c in count)
        raise NumericsError(f"teacher {text!r} takes {wanted} number(s), got {len(parts)}")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        wanted = "integers" if kind is int else "numbers"
        raise NumericsError(f"teacher {text!r}: expected comma-separated {wanted} after ':', got {args!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise NumericsError(f"teacher {text!r}: parameters must be finite")
    return values


def _from_file(text: str, path: str, lags: int) -> np.ndarray:
    file = Path(path)
    if file.suffix not in (".npy", ".csv"):
        raise NumericsError(f"teacher {text!r}: file must be .npy or .csv")
    try:
        with warnings.catch_warnings():  # an empty file is refused below, in one line
            warnings.simplefilter("ignore", UserWarning)
            values = np.load(file) if file.suffix == ".npy" else np.loadtxt(file, delimiter=",", ndmin=1)
        if np.iscomplexobj(values):  # a cast to float would drop the imaginary parts silently
            raise NumericsError(f"teacher {text!r}: {path} holds complex numbers; an impulse response of a real "
                                "system is real")
        values = np.asarray(values, dtype=float)
    except (OSError, ValueError) as error:
        raise NumericsError(f"teacher {text!r}: cannot read {path} ({str(error).splitlines()[0]})") from None
    values = values.squeeze() if values.ndim > 1 and max(values.shape) == values.size else values
    if values.ndim != 1 or values.size == 0:
        raise NumericsError(f"teacher {text!r}: expected a 1-D impulse response, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise NumericsError(f"teacher {text!r}: the impulse response has non-finite entries")
    return np.pad(values[:lags], (0, max(lags - values.size, 0)))


def _random_lti(dim: int, radius: float, lags: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dim, dim))
    A *= radius / np.max(np.abs(np.linalg.eigvals(A)))  # stable when radius < 1
    b, c = rng.standard_normal(dim) / np.sqrt(dim), rng.standard_normal(dim)
    response, state = np.empty(lags), b
    for j in range(lags):
        response[j], state = c @ state, A @ state
    return response


def parse_teacher(text: str, lags: int, seed: int = 0) -> np.ndarray:
    """The impulse response named by `text` (see the module docstring), shape (lags,), float64."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing response is refused below
        response = _response(text, lags, seed)
    if not np.all(np.isfinite(response)):
        raise NumericsError(f"teacher {text!r}: its impulse response overflows over {lags} lags")
    return response


def _response(text: str, lags: int, seed: int) -> np.ndarray:
    kind, _, args = text.partition(":")
    j = np.arange(lags)
    if kind == "decay":
        (rho,) = _numbers(text, args, (1,))
        return rho ** j.astype(float)
    if kind == "delay":
        (k,) = _numbers(text, args, (1,), int)
        if not 0 <= k < lags:
            raise NumericsError(f"teacher {text!r}: the delay must be a lag between 0 and {lags - 1}")
        return (j == k).astype(float)
    if kind == "resonant":
        r, theta = _numbers(text, args, (2,))
        return r ** j.astype(float) * np.cos(theta * j)
    if kind == "lti":
        dim, *radius = _numbers(text, args, (1, 2))
        if dim != int(dim) or not 1 <= dim <= MAX_LTI_STATES:
            raise NumericsError(f"teacher {text!r}: the state dimension must be an integer from 1 to {MAX_LTI_STATES}")
        if radius and not 0 < radius[0] < 1:
            raise NumericsError(f"teacher {text!r}: the spectral radius must be in (0, 1), a stable system; "
                                f"got {radius[0]:g}")
        return _random_lti(int(dim), radius[0] if radius else 0.9, lags, seed)
    if kind == "file":
        if not args:
            raise NumericsError(f"teacher {text!r}: give a path, as file:PATH")
        return _from_file(text, args, lags)
    raise NumericsError(f"unknown teacher {text!r} (kinds: decay:ρ, delay:k, resonant:r,θ, lti:DIM[,ρ], file:PATH)")
