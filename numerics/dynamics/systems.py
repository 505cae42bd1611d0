"""Dynamical systems and recorded series for reconstruction (docs/theory.md, paper 3, and
"Data that can be had offline").

Built in, integrated with scipy's `solve_ivp` (DOP853, rtol = atol = 1e-9), nothing else needed:

  lorenz63   Lorenz (1963), σ = 10, ρ = 28, β = 8/3: chaotic, one time scale,
             λ_max ≈ 0.9056 (Viswanath 1998; Sprott 2003, "Chaos and Time-Series Analysis").
  bursting   Hindmarsh & Rose (1984), a substitute for the paper's neuron (see `hindmarsh_rose`):
             fast spikes riding on slow bursts.

Any flow of `dysts` (`dysts.flows.<Name>`, e.g. 'Lorenz', 'Rossler') works where dysts is
installed; its right-hand side is integrated here with the same solver and sampling, and its
metadata's `maximum_lyapunov_estimated` is kept as the reference.

A `Series` holds the clean and the observed (noisy) trajectory, shape (time, variables), with
everything needed to reproduce it. Observation noise is Gaussian, independent per step and
variable, with sd = `noise` × that variable's sd over the clean trajectory (a relative level, so
one number means the same on every system; the paper gave absolute sds per variable). Z-scoring,
when asked, uses the observed series' mean and sd and applies the same map to the clean one.

Users' data: `load_series(path)` reads a .npy or .csv of shape (time, variables).
`parse_system('lorenz63' | 'bursting' | DYSTS_NAME | 'data:FILE', …)` checks a request, and
`make_series(spec)` carries it out.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

from ..errors import NumericsError

RTOL = ATOL = 1e-9
BUILTIN = ("lorenz63", "bursting")


@dataclass(frozen=True)
class System:
    """An autonomous ODE dx/dt = f(x): `rhs(t, x)` as solve_ivp calls it, `jacobian(x)` = ∂f/∂x
    (None where unknown), a start `initial`, the default sampling step `dt` and `transient` (time
    units discarded), and `reference` values with their sources (e.g. 'lyapunov_max')."""

    name: str
    variables: tuple[str, ...]
    parameters: dict
    rhs: Callable[[float, np.ndarray], np.ndarray]
    jacobian: Callable[[np.ndarray], np.ndarray] | None
    initial: np.ndarray
    dt: float
    transient: float
    reference: dict = field(default_factory=dict)


def lorenz63(sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> System:
    """Lorenz-63: ẋ = σ(y − x), ẏ = x(ρ − z) − y, ż = xy − βz."""

    def rhs(t, u):
        x, y, z = u
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    def jacobian(u):
        x, y, z = u
        return np.array([[-sigma, sigma, 0.0], [rho - z, -1.0, -x], [y, x, -beta]])

    standard = (sigma, rho, beta) == (10.0, 28.0, 8.0 / 3.0)
    reference = {"lyapunov_max": 0.9056, "source": "Viswanath 1998; Sprott 2003"} if standard else {}
    return System("lorenz63", ("x", "y", "z"), {"sigma": sigma, "rho": rho, "beta": beta}, rhs, jacobian,
                  np.array([1.0, 1.0, 1.0]), dt=0.01, transient=50.0, reference=reference)


def hindmarsh_rose(a: float = 1.0, b: float = 3.0, c: float = 1.0, d: float = 5.0, s: float = 4.0,
                   x_rest: float = -1.6, r: float = 0.005, current: float = 2.95) -> System:
    """Hindmarsh–Rose bursting neuron (Hindmarsh & Rose 1984, Proc. R. Soc. Lond. B 221:87):

        ẋ = y − a x³ + b x² − z + I,   ẏ = c − d x² − y,   ż = r (s (x − x_R) − z)

    x the membrane potential, y the fast recovery, z the slow adaptation current (rate r ≪ 1).
    The paper's neuron (V, n, h; g_NMDA …, docs/theory.md) is the one to match, but its equations are
    not public, so this standard model stands in for it: it has the same structure, fast spikes
    on a slow burst cycle. Parameters a, b, c, d, s, x_R are the standard ones; r = 0.005 and
    I = 2.95 are chosen for regular bursting, measured here: 5 spikes per burst (spike intervals
    11–25 time units), a quiet period of ≈ 90 between bursts, a burst period ≈ 150 (regular for
    I ∈ [2.86, 3.02]; I = 3.25, the usual chaotic setting, gives irregular bursts of 1–5 spikes).
    """

    def rhs(t, u):
        x, y, z = u
        return np.array([y - a * x**3 + b * x**2 - z + current, c - d * x**2 - y, r * (s * (x - x_rest) - z)])

    def jacobian(u):
        x = u[0]
        return np.array([[-3 * a * x**2 + 2 * b * x, 1.0, -1.0], [-2 * d * x, -1.0, 0.0], [r * s, 0.0, -r]])

    parameters = {"a": a, "b": b, "c": c, "d": d, "s": s, "x_rest": x_rest, "r": r, "current": current}
    return System("bursting", ("x", "y", "z"), parameters, rhs, jacobian, np.array([-1.6, -10.0, 2.0]),
                  dt=0.5, transient=1000.0,
                  reference={"model": "Hindmarsh-Rose 1984, substitute for the paper's neuron"})


def dysts_system(name: str) -> System:
    """The flow `dysts.flows.<name>` with its published parameters, start and sampling step."""
    try:
        from dysts import flows
    except ImportError:
        raise NumericsError(f"unknown system {name!r}: the built-in ones are {', '.join(BUILTIN)} and data:FILE "
                            "reads a file; any dysts flow name works with pip install dysts") from None
    cls = getattr(flows, name, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "rhs", None)):
        raise NumericsError(f"unknown system {name!r}: not one of {', '.join(BUILTIN)}, data:FILE or a dysts flow")
    model = cls()
    initial = np.asarray(model.ic, dtype=float).ravel()

    def rhs(t, x):
        return np.asarray(model.rhs(x, t), dtype=float)

    jacobian = None
    if getattr(model, "has_jacobian", lambda: False)():
        def jacobian(x):
            return np.asarray(model.jac(x, 0.0), dtype=float)

    dt = float(getattr(model, "dt", None) or 0.01)
    period = getattr(model, "period", None)
    reference = {}
    if getattr(model, "maximum_lyapunov_estimated", None) is not None:
        reference = {"lyapunov_max": float(model.maximum_lyapunov_estimated), "source": "dysts metadata"}
    parameters = {k: np.asarray(v).tolist() for k, v in getattr(model, "params", {}).items()}
    return System(name, tuple(f"x{i}" for i in range(initial.size)), parameters, rhs, jacobian, initial,
                  dt=dt, transient=20.0 * float(period) if period else 1000.0 * dt, reference=reference)


def get_system(name: str, parameters: dict | None = None) -> System:
    """A built-in system ('lorenz63', 'bursting'; `parameters` override the defaults) or a dysts flow."""
    if name == "lorenz63":
        return lorenz63(**(parameters or {}))
    if name == "bursting":
        return hindmarsh_rose(**(parameters or {}))
    if parameters:
        raise NumericsError(f"parameters can be set only for {', '.join(BUILTIN)}, not {name!r}")
    return dysts_system(name)


@dataclass(frozen=True)
class Series:
    """A multivariate series, arrays of shape (time, variables).

    `clean` is the trajectory, `observed` the same plus observation noise (equal for data); both
    z-scored when `zscore` (x ↦ (x − mean) / sd with the observed series' `mean` and `sd`; zeros
    and ones otherwise). `noise` is the observation noise's sd as a fraction of each variable's sd.
    """

    system: str
    clean: np.ndarray
    observed: np.ndarray
    dt: float
    variables: tuple[str, ...]
    parameters: dict
    mean: np.ndarray
    sd: np.ndarray
    zscore: bool
    noise: float = 0.0
    transient: float = 0.0
    seed: int | None = None
    reference: dict = field(default_factory=dict)

    def record(self) -> dict:
        """JSON-ready description (everything but the two trajectories)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("clean", "observed")}
        out.update(mean=self.mean.tolist(), sd=self.sd.tolist(), variables=list(self.variables),
                   length=int(self.observed.shape[0]))
        return out


def _check_sampling(dt, length, noise, transient, min_length: int) -> None:
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise NumericsError(f"sampling step dt must be positive, got {dt}")
    if length is not None and length < min_length:
        raise NumericsError(f"length {length} is too short: at least {min_length} steps needed")
    if not np.all(np.isfinite(noise)) or np.any(np.asarray(noise) < 0):
        raise NumericsError(f"observation noise must be a finite fraction ≥ 0, got {noise}")
    if transient is not None and not (np.isfinite(transient) and transient >= 0):
        raise NumericsError(f"transient must be ≥ 0 time units, got {transient}")


def _normalize(clean: np.ndarray, observed: np.ndarray, zscore: bool):
    if not zscore:
        return clean, observed, np.zeros(observed.shape[1]), np.ones(observed.shape[1])
    mean, sd = observed.mean(axis=0), observed.std(axis=0)
    if np.any(sd == 0):
        raise NumericsError(f"cannot z-score: variables {np.flatnonzero(sd == 0).tolist()} are constant")
    return (clean - mean) / sd, (observed - mean) / sd, mean, sd


def simulate(system: str | System, *, dt: float | None = None, length: int = 2000, transient: float | None = None,
             noise: float | np.ndarray = 0.0, seed: int = 0, zscore: bool = True,
             parameters: dict | None = None) -> Series:
    """Integrate `system` from a seeded start near its `initial` state, discard `transient` time
    units, keep `length` samples `dt` apart (defaults: the system's), add observation noise of
    sd `noise` × each clean variable's sd, and z-score if asked. `seed` draws both the start's
    perturbation (1e-3 relative) and the noise, from independent streams."""
    sys_ = system if isinstance(system, System) else get_system(system, parameters)
    dt = sys_.dt if dt is None else dt
    transient = sys_.transient if transient is None else transient
    _check_sampling(dt, length, noise, transient, min_length=2)
    start_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x0 = sys_.initial * (1 + 1e-3 * start_rng.standard_normal(sys_.initial.size)) + 1e-3 * start_rng.standard_normal(
        sys_.initial.size)
    times = transient + dt * np.arange(length)
    solution = solve_ivp(sys_.rhs, (0.0, times[-1]), x0, method="DOP853", t_eval=times, rtol=RTOL, atol=ATOL)
    if not solution.success or not np.all(np.isfinite(solution.y)):
        raise NumericsError(f"integrating {sys_.name} failed: {solution.message}")
    clean = solution.y.T
    observed = clean + np.asarray(noise) * clean.std(axis=0) * noise_rng.standard_normal(clean.shape)
    clean, observed, mean, sd = _normalize(clean, observed, zscore)
    return Series(sys_.name, clean, observed, float(dt), sys_.variables, dict(sys_.parameters), mean, sd, zscore,
                  noise=np.asarray(noise).tolist(), transient=float(transient), seed=seed,
                  reference=dict(sys_.reference))


def _read_array(path: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """The array in a .npy or .csv file and the CSV header's names, if it has one."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".npy", ".csv"):
        raise NumericsError(f"data file {path!r} must be .npy or .csv, got {suffix or 'no suffix'}")
    if not os.path.isfile(path):
        raise NumericsError(f"data file {path!r} does not exist")
    try:
        if suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False), dtype=float), None
        try:
            return np.loadtxt(path, delimiter=",", ndmin=2), None
        except ValueError:  # a header row: names, then numbers
            with open(path, encoding="utf-8") as handle:
                names = tuple(name.strip().strip('"') for name in handle.readline().split(","))
            return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1), names
    except (OSError, ValueError, TypeError, EOFError) as error:
        raise NumericsError(f"cannot read data file {path!r}: {str(error).splitlines()[0]}") from None


def load_series(path: str, *, dt: float = 1.0, min_length: int = 2, zscore: bool = True) -> Series:
    """A user's series from a .npy or .csv file of shape (time, variables), `dt` apart; a CSV may
    start with a header row of names. Raises NumericsError when the file is missing or unreadable,
    not 2-D, has non-finite values or fewer than `min_length` steps."""
    _check_sampling(dt, None, 0.0, None, min_length)
    data, names = _read_array(path)
    if data.ndim != 2:
        raise NumericsError(f"data file {path!r} holds a {data.ndim}-D array {data.shape}; expected (time, variables)")
    if not np.all(np.isfinite(data)):
        raise NumericsError(f"data file {path!r} has {int(np.sum(~np.isfinite(data)))} non-finite values")
    if data.shape[0] < min_length:
        hint = " (is it transposed?)" if data.shape[1] >= min_length else ""
        raise NumericsError(f"data file {path!r} has {data.shape[0]} steps; at least {min_length} needed{hint}")
    if names is None or len(names) != data.shape[1]:
        names = tuple(f"x{i}" for i in range(data.shape[1]))
    _, observed, mean, sd = _normalize(data, data, zscore)
    return Series(f"data:{path}", observed, observed, float(dt), names, {"path": os.path.abspath(path)}, mean, sd,
                  zscore)


@dataclass(frozen=True)
class SystemSpec:
    """A checked request for a series: `kind` 'builtin', 'dysts' or 'data'; `name` the system or
    the file; sampling step, length, transient (None: the system's defaults) and noise."""

    kind: str
    name: str
    dt: float | None = None
    length: int | None = None
    noise: float = 0.0
    transient: float | None = None


def parse_system(text: str, *, dt: float | None = None, length: int | None = None, noise: float = 0.0,
                 transient: float | None = None, min_length: int = 2) -> SystemSpec:
    """'lorenz63' | 'bursting' | DYSTS_NAME | 'data:FILE' with its sampling, checked; a one-line
    NumericsError for an unknown system, a missing file, dt ≤ 0, noise < 0, length < min_length."""
    _check_sampling(dt, length, noise, transient, min_length)
    if text.startswith("data:"):
        path = text[len("data:"):]
        if not path:
            raise NumericsError("data:FILE needs a file name")
        if noise:
            raise NumericsError("observation noise is added to simulated systems only, not to data")
        if not os.path.isfile(path):
            raise NumericsError(f"data file {path!r} does not exist")
        return SystemSpec("data", path, dt, length, 0.0, None)
    if text in BUILTIN:
        return SystemSpec("builtin", text, dt, length, noise, transient)
    dysts_system(text)  # raises for unknown names and missing dysts
    return SystemSpec("dysts", text, dt, length, noise, transient)


def make_series(spec: SystemSpec, *, seed: int = 0, zscore: bool = True, min_length: int = 2) -> Series:
    """The series a `SystemSpec` asks for: simulated (default length 2000) or read from its file
    (dt 1 unless given; cut to `length` when given)."""
    if spec.kind == "data":
        series = load_series(spec.name, dt=spec.dt or 1.0, min_length=min_length, zscore=False)
        data = series.observed[: spec.length] if spec.length else series.observed
        _, observed, mean, sd = _normalize(data, data, zscore)
        return dataclasses.replace(series, clean=observed, observed=observed, mean=mean, sd=sd, zscore=zscore)
    return simulate(spec.name, dt=spec.dt, length=spec.length or 2000, transient=spec.transient, noise=spec.noise,
                    seed=seed, zscore=zscore)
