"""One reconstruction cell (kind 'plrnn-reconstruct'): simulate or read the system, z-score it, train one
model on its first `length` samples (`numerics.plrnn.reconstruct.train_reconstruction`), let it run
freely through the held-out samples after a burn-in and score the generated trajectory against them
(`numerics.dynamics.measures`); the per-system settings every R figure shares. The figures built on
these cells are R1 (`reconstruction`), R2 (`tau_sweep`) and R3 (`analysis`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...pipeline.experiment import Context, Kind

# per system: sampling step, spectrum bands (cycles per time unit), the two variables drawn, and the
# training window and teacher-forcing interval unless the config sets them. Lorenz-63 forces every 5
# steps (0.25 time units, a quarter of its Lyapunov time) in windows of 50: on seed 0 at M = 50 that gave
# chaotic free runs (λ_max 0.84 rPLRNN, 1.01 PLRNN; true 0.906) where windows of 100 forced every 10 gave
# limit cycles (λ_max ≤ 0.04). The bursting neuron keeps 100 and 10: its bursts last ≈ 300 samples, and
# 50 and 5 raised both models' low-band error (0.046–0.048 against 0.039–0.047).
SYSTEMS = {"lorenz63": {"dt": 0.05, "bands": {"all": None, "low": (0.0, 0.5), "high": (0.5, 10.0)}, "plot": (0, 2),
                        "window": 50, "tau_tf": 5},
           "bursting": {"dt": 0.5, "bands": {"all": None, "low": (0.0, 0.02), "high": (0.02, 1.0)}, "plot": (0, 2),
                        "window": 100, "tau_tf": 10}}
OTHER = {"dt": None, "bands": {"all": None}, "plot": (0, 1), "window": 100, "tau_tf": 10}  # dysts names, data files
BINS, ESCAPE, HORIZON_ERROR, PLOT_POINTS, SPECTRUM_POINTS, STATES = 8, 10.0, 0.5, 1500, 200, 300
WITHIN = 2.0  # λ_max reproduced: within this factor of the true exponent
BURN_IN = 100  # held-out samples that drive a PLRNN (forced every step) before it runs freely


def settings(system: str) -> dict:
    return SYSTEMS.get(system, OTHER)


def bands_for(system: str, edge: float | None = None) -> dict:
    """The spectrum bands a system is scored on: its own (`SYSTEMS`), or, with `edge` (cycles per time
    unit; `plrnn reconstruct --band-edge`), all, low (below the edge) and high (from it up)."""
    if edge is None:
        return settings(system)["bands"]
    return {"all": None, "low": (0.0, float(edge)), "high": (float(edge), float("inf"))}


def forcing_interval(system: str, dt: float | None, length: int) -> tuple[int, str]:
    """τ_tf from the data's prediction horizon (`plrnn reconstruct --tau-tf auto`): the Lyapunov time
    1/(λ_max dt) in steps where the system's λ_max is known (Lorenz-63, dysts systems), else the lag
    at which the series' autocorrelation, averaged over variables, first falls below 1/e. Returns
    (τ_tf ≥ 1, how it was chosen). A heuristic of the toolkit's, stated in the result's command."""
    from ...dynamics import systems

    spec = systems.parse_system(system, dt=dt, length=length, min_length=2)
    series = systems.make_series(spec, min_length=2)
    reference = (series.reference or {}).get("lyapunov_max")
    if reference and reference > 0:
        return max(1, round(1 / (reference * series.dt))), f"Lyapunov time 1/(λ_max dt), λ_max = {reference:g}"
    x = series.observed - series.observed.mean(0)
    spectrum = np.fft.rfft(x, n=2 * len(x), axis=0)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=0)[: len(x)]
    acf = (acf / acf[0]).mean(1)
    below = np.nonzero(acf < np.exp(-1))[0]
    return (int(below[0]) if len(below) else len(x) // 2) or 1, "autocorrelation time (1/e)"


def _escaped(gen: np.ndarray) -> int | None:
    bad = ~np.isfinite(gen).all(1) | (np.abs(np.nan_to_num(gen, nan=np.inf)) > ESCAPE).any(1)
    return int(np.argmax(bad)) if bad.any() else None


def _series(inputs: dict):
    """The cell's system simulated (or read), split into training samples and held-out ones."""
    from ...dynamics import systems

    spec = systems.parse_system(inputs["system"], dt=inputs["dt"], length=inputs["length"] + inputs["test_length"],
                                noise=0.0 if inputs["system"].startswith("data:") else inputs["noise"])
    series = systems.make_series(spec, seed=inputs["data_seed"], min_length=inputs["length"] + inputs["test_length"])
    return spec, series


def _training(inputs: dict) -> dict:
    return dict(hidden=inputs["hidden"], window=inputs["window"], tau_tf=inputs["tau_tf"], steps=inputs["steps"],
                batch=inputs["batch"], lr=inputs["lr"], schedule=inputs["schedule"])


def reconstruct(inputs: dict, device: str, context: Context | None = None) -> dict:
    """Simulate, train, generate and score one cell (module docstring)."""
    from ...pipeline.cells import cell_key
    from ...plrnn.reconstruct import train_reconstruction
    from ...train.runtime import progress_reporter

    spec, series = _series(inputs)
    context = context or Context()
    name = f"{inputs['system']}/{inputs['model']} seed {inputs['seed']}"
    result = train_reconstruction(series.observed[:inputs["length"]], inputs["model"], seed=inputs["seed"],
                                  p=inputs.get("p", 0.5), tau=inputs.get("tau", 0.0),
                                  checkpoint=_checkpoint(context.checkpoints, cell_key(inputs)), device=device,
                                  progress=progress_reporter(name, inputs["steps"]) if context.progress else None,
                                  **_training(inputs))
    return score(inputs, spec, series, result)


def score(inputs: dict, spec, series, result: dict) -> dict:
    """Generate from a trained run past the burn-in and score it against the held-out samples."""
    import torch

    from ...dynamics import measures, systems
    from ...plrnn.generators import forced_states, generate, model_from_result
    from ...plrnn.regions import step_jacobians

    x = series.observed
    true = x[inputs["length"]:]
    model = model_from_result(result)
    dtype = next(model.parameters()).dtype
    # every model is scored on the held-out samples after the burn-in; a PLRNN is driven through the
    # burn-in (forced at every step) so its latent units start in the data's phase
    start = torch.as_tensor(true[BURN_IN - 1], dtype=dtype)
    if inputs["model"] in ("rplrnn", "plrnn"):
        with torch.no_grad():
            start = forced_states(model, torch.as_tensor(true[:BURN_IN], dtype=dtype), 1).states[-1]
    true = true[BURN_IN - 1:]
    free = generate(model, start, len(true) - 1)
    gen = free["observations"].to("cpu", torch.float64).numpy()
    dt, bands = series.dt, bands_for(inputs["system"], inputs.get("band_edge"))
    escaped = _escaped(gen)
    scores = {"escaped": escaped, "horizon": measures.prediction_horizon(
        true, np.nan_to_num(gen, nan=1e6, posinf=1e6, neginf=-1e6), HORIZON_ERROR)}
    if escaped is None:
        limits = (true.min(0) - 0.5, true.max(0) + 0.5)  # the data's range: a stray point cannot widen the grid
        scores.update(kl=measures.state_space_kl_binned(true, gen, bins=BINS, limits=limits),
                      hellinger=measures.hellinger_spectrum(true, gen),
                      spectrum=measures.spectrum_mse(true, gen, dt, bands))
        if inputs["model"] in ("rplrnn", "plrnn"):  # the derived Jacobian, through its emitted code
            par = result["parameters"]
            J = step_jacobians(par["A"], par["W"], free["states"].to("cpu", torch.float64).numpy())
            scores["lyapunov"] = measures.lyapunov_from_jacobians(J, dt, discard=min(200, len(J) // 4))
    reference = series.reference.get("lyapunov_max") if series.reference else None
    if reference is None and spec.kind != "data":
        system = systems.get_system(inputs["system"])
        reference = measures.lyapunov_from_ode(system.rhs, system.initial, jacobian=system.jacobian,
                                               transient=system.transient, time=1000.0)  # on the attractor
    step = max(1, math.ceil(len(true) / PLOT_POINTS))  # at most PLOT_POINTS kept

    def spectrum(y):
        freqs, amplitude = measures.amplitude_spectrum(y[:, :1], dt)
        keep = np.unique(np.geomspace(1, len(freqs) - 1, SPECTRUM_POINTS).astype(int))
        return freqs[keep].tolist(), amplitude[keep, 0].tolist()

    states = None
    if inputs["model"] in ("rplrnn", "plrnn") and escaped is None:  # visited states, for the fixed points (R3)
        visited = free["states"].to("cpu", torch.float64).numpy()
        states = visited[:: max(1, len(visited) // STATES)].tolist()
    out = {"measures": scores, "true_lyapunov": reference, "states": states, "dt": dt, "variables": list(series.variables),
           "true": true[::step].tolist(), "generated": np.clip(gen[::step], -ESCAPE, ESCAPE).tolist(),
           "spectrum_true": spectrum(true), "spectrum_generated": spectrum(gen) if escaped is None else None,
           "loss": result["curve"]["loss"][::max(1, len(result["curve"]["loss"]) // 200)],
           "parameters": result["parameters"], "config": result["config"], "timing": result["timing"]}
    return out


def _checkpoint(folder: str | None, key: str) -> Path | None:
    """The run's checkpoint file in `folder`, or None where there is none or it cannot be written
    (a cluster's worker that does not see the folder runs without one)."""
    if folder is None:
        return None
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return Path(folder) / f"{key}.pt"


def compute(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'plrnn-reconstruct' that share a system and a recipe (`pack_key`): their PLRNN
    runs train as one pack (`train_reconstructions`; a lone run as a pack of one), each then generates
    and is scored alone. A 'resumable' cell (`plrnn reconstruct`'s) trains alone, checkpointing in the
    context's folder so it can resume; the flag is part of its key, so one key means one computation."""
    from ...errors import TrainingDiverged
    from ...plrnn.reconstruct import train_reconstructions
    from ...train.runtime import diverged_result

    context = context or Context()
    if chunk[0].get("resumable"):
        trained = [None] * len(chunk)
    else:
        spec, series = _series(chunk[0])
        trained = train_reconstructions(series.observed[:chunk[0]["length"]],
                                        [{"model": c["model"], "seed": c["seed"], "p": c.get("p", 0.5),
                                          "tau": c.get("tau", 0.0)} for c in chunk], device=device, **_training(chunk[0]))
    out = []
    for c, result in zip(chunk, trained):
        try:
            if isinstance(result, TrainingDiverged):
                raise result
            out.append(reconstruct(c, device, context) if result is None else score(c, spec, series, result))
        except TrainingDiverged as error:
            out.append(diverged_result(error))
    return out


def pack_key(c: dict) -> tuple:
    """Cells one `compute` call may train together: one system and data, one recipe; any model, seed, p, τ."""
    return tuple((k, str(v)) for k, v in sorted(c.items()) if k not in ("model", "seed", "p", "tau"))


GATES = {"lstm": 4, "gru": 3}  # matrix products per step against a PLRNN's one


def work(c: dict) -> float:
    return c["steps"] * c["window"] * c["batch"] * c["hidden"] ** 2 * GATES.get(c["model"], 1)


PACK = 6  # a system's runs at one recipe (3 seeds × rPLRNN and PLRNN at the quick scale) share a pack
RECONSTRUCT = Kind(compute, pack_key, chunk=PACK, work=work)


