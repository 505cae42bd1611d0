"""R1 and R2: reconstructing dynamical systems with the PLRNN (Schmidt et al., ICLR 2021, part 2).

A cell (kind 'plrnn-reconstruct') simulates a system (`numerics.dynamics.systems`: Lorenz-63, the
Hindmarsh–Rose bursting neuron standing in for the paper's, any dysts name where dysts is installed,
or `data:FILE`), z-scores it, trains one model on its first `length` samples
(`numerics.plrnn.reconstruct.train_reconstruction`: BPTT with sparse teacher forcing, the toolkit's
method; the paper used EM), lets the trained model run freely through the held-out samples and scores the generated trajectory against the held-out one
(`numerics.dynamics.measures`):
  D_stsp     state-space KL divergence by binning (BINS per dimension over the true trajectory's range,
             generated points outside clipped into the edge cells)
  spectrum   MSE between amplitude spectra of the z-scored series, all bins and the system's low and
             high bands (`SYSTEMS`), and the Hellinger distance of the smoothed power spectra
  λ_max      the generated trajectory's maximal Lyapunov exponent from the trained PLRNN's Jacobians
             (per unit of time), against the true system's (Lorenz: 0.9056, Viswanath 1998; others
             estimated from the ODE's variational equation); the GRU's is not computed
  horizon    steps until the normalized prediction error first exceeds HORIZON_ERROR
Every model is scored on the held-out samples after the first BURN_IN: a PLRNN is driven through them
(forced at every step), so its latent units start in the data's phase; an LSTM or GRU starts from the
last burn-in sample and its learned initial state (its state is not the observation, so nothing forces
it), which shortens its prediction horizon against a PLRNN's.
A generated trajectory that leaves the data's range by far (|x| > ESCAPE sd) or stops being finite has
"escaped": its step is recorded and it gets no measures.

R3 (analysis.py): the trained PLRNNs' dynamics: eigenvalues of A + W D at their fixed points, or in their most visited
    linear region (`analysis.line_attractors`, as P3), per system and model.
R1: true and generated attractors side by side on the truth's axes, amplitude spectra overlaid, every
    seed's key measure, the measures per seed and their medians. Claims (over the seeds): the
    rPLRNN's generated trajectories stay bounded; each PLRNN's Lorenz trajectories are chaotic with the
    true exponent (median λ_max within a factor WITHIN; the fraction of seeds within it is stated); on
    the bursting neuron the rPLRNN's low-band spectrum error is shown lower than the PLRNN's (the
    paper's claim that regularization captures the slow time scale; a one-sided rank test over the
    seeds, `stats.p_lower`, since medians of a few seeds of teacher-forced chaos flip with rounding).
R2 (tau_sweep.py): the regularization strength τ on the bursting neuron, from cells of this kind.

Checkpoints: when the computation's `Context` names a folder (`plrnn reconstruct` gives OUT/checkpoints),
each training run checkpoints there under its cell's key and resumes from it after an interruption,
with identical numbers; with `Context.progress` each run reports its step and loss on stderr every
tenth of its steps. `plrnn reconstruct` also writes the trajectories (`trajectory_file`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np

from ...pipeline.experiment import Claim, Experiment, Lookup, fmt
from ...plrnn.names import RECONSTRUCTION_MODELS as MODELS
from ...stats import LEVEL, p_lower, smallest_p
from .long_range import LABELS
from .reconstruction_report import describe, plot, shown_name, table  # noqa: F401
from .reconstruction_run import (  # noqa: F401
    BINS,
    BURN_IN,
    ESCAPE,
    HORIZON_ERROR,
    RECONSTRUCT,
    SYSTEMS,
    WITHIN,
    bands_for,
    compute,
    forcing_interval,
    settings,
)

# 2: visited states kept (R3); 3: a burn-in; 4: one scored segment for all, no DC bin; 5: ≤ PLOT_POINTS kept;
# 6: a system's PLRNN runs at one recipe train as one pack
CELL_VERSION = 6
@dataclasses.dataclass(frozen=True)
class Training:
    hidden: int = 50
    window: int | None = None  # None: the system's own (`SYSTEMS`)
    tau_tf: int | None = None
    steps: int = 3000  # quick: a PLRNN run ≈ 11–18 s on one core (a GRU's ≈ 4× that: full scale only)
    batch: int = 16
    lr: float = 5e-3
    schedule: str = "cosine"
    p: float = 0.5
    tau: float = 5.0


@dataclasses.dataclass(frozen=True)
class Config:
    systems: tuple = ("lorenz63", "bursting")
    models: tuple = ("rplrnn", "plrnn")  # the GRU and LSTM baselines: full scale and `plrnn reconstruct`
    # claims read all seeds (medians, fractions, rank tests): at 3 seeds rounding alone flipped three verdicts
    # (packed against alone); 8 packed seeds cost about 5 minutes of one core for R1 and R2 together
    seeds: int = 8
    length: int = 6000  # training samples
    test_length: int = 4000  # held-out samples the free run is scored against
    noise: float = 0.05  # observation noise, a fraction of each variable's sd
    taus: tuple = (0.0, 1.0, 5.0)  # R2, on the bursting neuron (τ = 0 and 5: R1's cells; full: up to 100)
    training: Training = Training()
    dt: float | None = None  # the sampling step of every system (None: each system's own, `SYSTEMS`)
    band_edge: float | None = None  # low/high spectrum bands split here (cycles per time unit; None: `SYSTEMS`)
    # a system's own recipe where it needs one: (system, Training, dt); the others use `training` and `dt`
    per_system: tuple = ()
    # `plrnn reconstruct`'s runs: each trains alone with checkpoints (a separate cell key from reproduce's
    # packed runs, whose float32 rounding differs)
    resumable: bool = False


def recipe(c: Config, system: str) -> tuple[Training, float | None]:
    """The training recipe and sampling step a system's runs use."""
    for name, training, dt in c.per_system:
        if name == system:
            return training, dt
    return c.training, c.dt


SCALES = {"quick": Config(),
          # Lorenz-63 at full scale: the recipe under which the quick scale's limit cycles became chaos (2 of 3
          # rPLRNN seeds within 2× of λ_max at 100 000 steps; docs/papers/plrnn.md): dt 0.01, windows of 200
          # forced every 25 steps (a quarter of a Lyapunov time), M = 30, Adam 1e-3 cosine, batch 16
          "full": Config(models=("rplrnn", "plrnn", "lstm", "gru"), seeds=8, length=20_000, test_length=20_000,
                         taus=(0.0, 0.5, 1.0, 5.0, 25.0, 100.0), training=Training(steps=30_000, batch=32),
                         per_system=(("lorenz63", Training(hidden=30, window=200, tau_tf=25, steps=100_000, batch=16,
                                                           lr=1e-3), 0.01),)),
          "tiny": Config(models=("rplrnn", "gru"), seeds=2, length=300, test_length=200, taus=(0.0, 5.0),
                         training=Training(hidden=6, window=20, tau_tf=5, steps=3, batch=4))}


def _window(t: Training, system: str) -> int:
    return settings(system)["window"] if t.window is None else t.window


def _forcing(t: Training, system: str) -> int:
    return settings(system)["tau_tf"] if t.tau_tf is None else t.tau_tf


def cell(c: Config, system: str, model: str, seed: int, tau: float | None = None) -> dict:
    t, dt = recipe(c, system)
    inputs = {"kind": "plrnn-reconstruct", "version": CELL_VERSION, "system": system,
              "dt": settings(system)["dt"] if dt is None else float(dt),
              "length": c.length, "test_length": c.test_length, "noise": c.noise, "data_seed": 0, "model": model,
              "seed": seed, "hidden": t.hidden, "window": _window(t, system), "tau_tf": _forcing(t, system),
              "steps": t.steps,
              "batch": t.batch, "lr": t.lr, "schedule": t.schedule}
    if model == "rplrnn":
        inputs.update(p=t.p, tau=float(t.tau if tau is None else tau))
    if c.band_edge is not None:
        inputs["band_edge"] = float(c.band_edge)
    if c.resumable:
        inputs["resumable"] = True
    if system.startswith("data:"):  # the file's content names the cell, not only its path
        path = Path(system[len("data:"):])
        inputs["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return inputs


def cells(c: Config) -> list:
    return [cell(c, s, m, seed) for s in c.systems for m in c.models for seed in range(c.seeds)]


def check_config(c: Config) -> list[str]:
    """Refuse, in one line and before any run: an unknown system or model, a data file that is not a
    finite 2-D array or is too short for the training and held-out samples, dt ≤ 0, noise < 0,
    τ_tf ≤ 0, a window longer than the training samples, p outside [0, 1], τ < 0, and a hidden size
    smaller than the observed dimension (teacher forcing needs M ≥ N). Returns notes for the user
    (a data file longer than the samples used: which rows are used)."""
    from ...dynamics import systems
    from ...errors import NumericsError

    for model in c.models:
        if model not in MODELS:
            raise NumericsError(f"unknown model {model!r} (choose {', '.join(MODELS)})")
    if not (c.systems and c.models):
        raise NumericsError("reconstruction needs at least one system and one model")
    if c.test_length < BURN_IN + 2:
        raise NumericsError(f"the held-out samples must be at least {BURN_IN + 2} (a burn-in of {BURN_IN} and a free "
                            f"run), got {c.test_length}")
    for system in c.systems:
        t = recipe(c, system)[0]
        window, tau_tf = _window(t, system), _forcing(t, system)
        if tau_tf < 1:
            raise NumericsError(f"the teacher-forcing interval τ_tf must be ≥ 1, got {tau_tf}")
        if not 2 <= window <= c.length:
            raise NumericsError(f"the window must be from 2 to the {c.length} training samples, got {window}")
        if not 0 <= t.p <= 1 or not t.tau >= 0 or any(not tau >= 0 for tau in c.taus):
            raise NumericsError(f"p must be in [0, 1] and τ ≥ 0, got p = {t.p:g}, τ = {t.tau:g}")
    notes = []
    for system in c.systems:
        inputs, t = cell(c, system, c.models[0], 0), recipe(c, system)[0]
        need = c.length + c.test_length
        spec = systems.parse_system(system, dt=inputs["dt"], length=need,
                                    noise=0.0 if system.startswith("data:") else c.noise, min_length=need)
        if spec.kind == "data":
            series = systems.load_series(spec.name, dt=spec.dt or 1.0, min_length=need, zscore=False)
            observed, dt, rows = series.observed.shape[1], series.dt, len(series.observed)
            if rows > need:
                notes.append(f"{system}: using the first {need:,} of its {rows:,} rows ({c.length:,} to train, "
                             f"{c.test_length:,} held out); raise --length or --test-length to use more")
        else:
            observed, dt = len(systems.get_system(system).variables), spec.dt or systems.get_system(system).dt
        frequencies = np.fft.rfftfreq(c.test_length - BURN_IN + 1, dt)
        for name, band in bands_for(system, c.band_edge).items():
            if band is not None and not ((frequencies > 0) & (frequencies >= band[0]) & (frequencies < band[1])).any():
                raise NumericsError(f"{system} at dt = {dt:g}: the spectrum band {name} {band} holds no frequency bin of "
                                    f"{c.test_length - BURN_IN + 1} scored samples; change --dt or --test-length")
        if t.hidden < observed and any(m in ("rplrnn", "plrnn") for m in c.models):
            raise NumericsError(f"{system} has {observed} observed variables: teacher forcing needs hidden ≥ {observed}, "
                                f"got {t.hidden}")
        if "rplrnn" in c.models and int(t.hidden * t.p + 1e-9) > t.hidden - observed:
            raise NumericsError(f"the rPLRNN's ⌊M·p⌋ = {int(t.hidden * t.p + 1e-9)} regularized units must leave the "
                                f"{observed} observed ones free: lower p or raise hidden above {t.hidden}")
    return notes


def command_config(systems, models, seeds: int, *, length: int, test_length: int, dt: float | None, noise: float,
                   hidden: int, window: int | None, tau_tf, steps: int, batch: int, lr: float, schedule: str, p: float,
                   tau: float, band_edge: float | None = None) -> tuple[Config, list[str]]:
    """The checked config of `rnnmemory plrnn reconstruct` from its options (data files resolved,
    τ_tf 'auto' chosen) and the notes to show the user; bad input fails here, in one line, before any
    run or file."""
    from ...errors import NumericsError

    if any(s == "data:" for s in systems):
        raise NumericsError("data:FILE needs a file name")
    systems = tuple(f"data:{Path(s[5:]).expanduser().resolve()}" if s.startswith("data:") else s for s in systems)
    if dt is not None and not dt > 0:
        raise NumericsError(f"--dt must be > 0, got {dt:g}")
    if not noise >= 0:
        raise NumericsError(f"--noise must be ≥ 0, got {noise:g}")
    if band_edge is not None and not band_edge > 0:
        raise NumericsError(f"--band-edge must be > 0 (cycles per time unit), got {band_edge:g}")
    notes = []
    if tau_tf == "auto":
        if len(systems) > 1:
            raise NumericsError("--tau-tf auto chooses one interval per system: give one --system at a time")
        tau_tf, how = forcing_interval(systems[0], dt or settings(systems[0])["dt"], length)
        notes.append(f"τ_tf = {tau_tf} ({how})")
    elif tau_tf is not None and not str(tau_tf).lstrip("-").isdigit():
        raise NumericsError(f"--tau-tf must be a whole number or auto, got {tau_tf!r}")
    training = Training(hidden=hidden, window=window, tau_tf=None if tau_tf is None else int(tau_tf), steps=steps,
                        batch=batch, lr=lr, schedule=schedule, p=p, tau=tau)
    config = Config(systems=systems, models=tuple(models), seeds=seeds, length=length, test_length=test_length,
                    noise=noise, training=training, dt=dt, band_edge=band_edge, resumable=True)
    notes += check_config(config)
    return config, notes


# ---------------------------------------------------------------- R1


MEASURES = ("kl", "hellinger", "lyapunov", "horizon", "spectrum_all", "spectrum_low", "spectrum_high")


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _measures(result: dict) -> dict:
    """One run's measures (None where it diverged, escaped or has no such measure)."""
    if result.get("status") == "diverged":
        return dict.fromkeys(MEASURES)
    m = result["measures"]
    out = {key: m.get(key) for key in ("kl", "hellinger", "lyapunov", "horizon")}
    out.update({f"spectrum_{band}": (m.get("spectrum") or {}).get(band) for band in ("all", "low", "high")})
    return out


def score_row(results: list, true_lyapunov: float | None = None) -> dict:
    """Per seed every measure (`seeds`: measure → list), the median over seeds of each (None where no
    seed has it), how many seeds escaped or diverged, and the fraction of seeds whose λ_max is within
    a factor WITHIN of the true one (an escaped or diverged seed counts as not reproducing it)."""
    done = [r for r in results if r.get("status") != "diverged"]
    per_seed = [_measures(r) for r in results]
    row = {"runs": len(results), "diverged": len(results) - len(done),
           "escaped": sum(r["measures"]["escaped"] is not None for r in done),
           "seeds": {key: [m[key] for m in per_seed] for key in MEASURES}}
    row.update({key: _median(row["seeds"][key]) for key in MEASURES})
    if true_lyapunov:
        row["lyapunov_reproduced"] = float(np.mean([v is not None and true_lyapunov / WITHIN <= v <= WITHIN * true_lyapunov
                                                    for v in row["seeds"]["lyapunov"]]))
    return row


@dataclasses.dataclass
class Reconstruction:
    systems: list
    models: list
    seeds: int
    setting: str
    rows: dict  # system → model → score_row (medians over seeds, and every seed's measures)
    true_lyapunov: dict  # system → λ_max of the true system
    show: dict  # system → {"true", "variables", "spectrum_true", model → {"generated", "spectrum_generated"}} (seed 0)
    bands: dict = dataclasses.field(default_factory=dict)  # system → the spectrum bands it is scored on


def training_setting(c: Config) -> str:
    def one(t: Training, systems: list) -> str:
        windows = "windows of " + ", ".join(f"{_window(t, s)} ({s})" for s in systems)
        forcing = "every " + ", ".join(f"{_forcing(t, s)} ({s})" for s in systems) + " steps"
        return (f"M = {t.hidden}, {windows}, teacher forcing {forcing}, {t.steps} steps of batch {t.batch}, "
                f"Adam {t.lr:g} ({t.schedule}); rPLRNN p = {t.p:g}, τ = {t.tau:g}")
    own = [name for name, _, _ in c.per_system if name in c.systems]
    shared = [s for s in c.systems if s not in own]
    parts = ([one(c.training, shared)] if shared else []) + [
        f"{name}: " + one(recipe(c, name)[0], [name]) + f", dt = {recipe(c, name)[1] or settings(name)['dt']:g}"
        for name in own]
    return (f"{'; '.join(parts)}; {c.length} training and {c.test_length} held-out samples, noise {c.noise:g} sd; "
            f"{c.seeds} seed{'s' * (c.seeds != 1)}")


def analyze(c: Config, lookup: Lookup) -> Reconstruction:
    rows, lyapunov, show = {}, {}, {}
    for system in c.systems:
        rows[system], show[system] = {}, {}
        found = {model: [lookup(cell(c, system, model, s)) for s in range(c.seeds)] for model in c.models}
        done = [r for results in found.values() for r in results if r.get("status") != "diverged"]
        if done:
            lyapunov[system] = done[0]["true_lyapunov"]
            show[system].update(true=done[0]["true"], variables=done[0]["variables"],
                                spectrum_true=done[0]["spectrum_true"])
        for model, results in found.items():
            rows[system][model] = score_row(results, lyapunov.get(system))
            first = results[0]
            if first.get("status") != "diverged":
                show[system][model] = {"generated": first["generated"], "spectrum_generated": first["spectrum_generated"]}
    return Reconstruction(list(c.systems), list(c.models), c.seeds, training_setting(c), rows, lyapunov, show,
                          {s: bands_for(s, c.band_edge) for s in c.systems})


def claims(c: Config, n: Reconstruction) -> list:
    out = []
    if "rplrnn" not in n.models:
        return out
    bad = [f"{s}: {r['escaped']} escaped, {r['diverged']} diverged" for s in n.systems
           for r in [n.rows[s]["rplrnn"]] if r["escaped"] or r["diverged"]]
    out.append(Claim("rplrnn_stays_bounded", "the rPLRNN's free-running trajectories stay within the data's range "
                     f"(|x| ≤ {ESCAPE:g} sd) on every system and seed", bad or 0, "0 escaped", not bad,
                     "R1/result.json: numbers.rows"))
    true = n.true_lyapunov.get("lorenz63")
    for model in [m for m in ("rplrnn", "plrnn") if m in n.models and "lorenz63" in n.systems]:
        row = n.rows["lorenz63"][model]
        value = row["lyapunov"]
        # a limit cycle has λ_max ≈ 0 and can come out slightly positive: ask for the true exponent's scale
        out.append(Claim(f"{model}_lorenz_chaotic", f"the {LABELS[model]}'s generated Lorenz-63 trajectories are chaotic "
                         f"with the true system's exponent: median λ_max over {n.seeds} seeds, per unit time (true "
                         f"{fmt(true, 3)}; seeds within a factor {WITHIN:g}: {fmt(row.get('lyapunov_reproduced'), 2)})",
                         value, f"within a factor {WITHIN:g} of the true one", value is not None and true is not None
                         and true / WITHIN <= value <= WITHIN * true, f"R1/result.json: numbers.rows.lorenz63.{model}"))
    if "bursting" in n.systems and "plrnn" in n.models:
        rows = n.rows["bursting"]
        r, p = rows["rplrnn"]["spectrum_low"], rows["plrnn"]["spectrum_low"]
        failed = {m: rows[m]["escaped"] + rows[m]["diverged"] for m in ("rplrnn", "plrnn")}
        value = p_lower(*(rows[m]["seeds"]["spectrum_low"] for m in ("rplrnn", "plrnn")))
        floor = smallest_p(n.seeds, n.seeds)
        out.append(Claim("rplrnn_slow_time_scale", "on the bursting neuron the rPLRNN's low-band spectrum error (the "
                         f"slow bursts) is lower than the PLRNN's (the paper's claim): one-sided Mann–Whitney over "
                         f"{n.seeds} seeds each, escaped or diverged seeds ranked worst ({failed['rplrnn']} and "
                         f"{failed['plrnn']}); medians {fmt(r, 2)} and {fmt(p, 2)}"
                         + (f" (with {n.seeds} seeds p cannot go below {floor:.2g})" if floor >= LEVEL else ""),
                         value, f"p < {LEVEL:g}", value < LEVEL, "R1/result.json: numbers.rows.bursting"))
    return out


def trajectory_file(c: Config, lookup: Lookup) -> dict:
    """{"trajectories.npz": the held-out and generated trajectories of every run that finished, as
    SYSTEM_MODEL_SEED_true and _generated (at most PLOT_POINTS points each)}."""
    arrays = {}
    for inputs in cells(c):
        result = lookup(inputs)
        if result.get("status") != "diverged":
            system = Path(inputs["system"][5:]).stem if inputs["system"].startswith("data:") else inputs["system"]
            name = f"{system}_{inputs['model']}_{inputs['seed']}"
            arrays[f"{name}_generated"], arrays[f"{name}_true"] = np.array(result["generated"]), np.array(result["true"])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return {"trajectories.npz": buffer.getvalue()}


R1 = Experiment("R1", "Reconstructing Lorenz-63 and a bursting neuron: attractors, spectra, measures", "plrnn", SCALES,
                Reconstruction, cells, analyze, claims, plot, describe, kinds={"plrnn-reconstruct": RECONSTRUCT},
                table=table, files=trajectory_file)

