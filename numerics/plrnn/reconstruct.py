"""Training a generative model of a dynamical system's time series (T × N, z-scored by the caller) by
BPTT with sparse teacher forcing: the models and the forcing are `generators`; the loop is the
training runtime's `fit`.

Training (`train_reconstruction`): `batch` windows of length `window` per step, start times drawn
uniformly from a torch.Generator seeded by SeedSequence([seed, 2]) (`derived_seed`); the model
drawn from [seed, 1]; torch's global generator is never read. Adam, gradient norm clipped to
`clip`, learning rate constant or cosine-annealed. `checkpoint=PATH` saves model, optimizer,
schedule, the window sampler's state, the curve and the step every `checkpoint_every` steps and at
the end, atomically; a run finding the file resumes from it, and gives the same numbers as a run
never interrupted.

    train_reconstruction(series, model, *, hidden, window, tau_tf, steps, batch, …) → JSON-ready dict
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import numpy as np
import torch

from ..device import resolve_device
from ..errors import NumericsError, check_choice, check_int
from ..train.runtime import Checkpoint, Recipe, check_seed, derived_seed, fit, torch_threads, versions
from .generators import PLRNNGenerator, build_reconstruction_model, check_forcing, forced_loss
from .names import PLRNN_MODELS, RECONSTRUCTION_MODELS

# config entries that define a run's numbers: a checkpoint resumes only a run that agrees on them
RUN_KEYS = ("model", "observed", "hidden", "window", "tau_tf", "batch", "lr", "clip", "schedule", "observation",
            "regularizer", "seed", "dtype", "data")


def _series(series) -> np.ndarray:
    if isinstance(series, torch.Tensor):
        series = series.detach().cpu().numpy()
    try:
        x = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise NumericsError(f"the series must be a numeric array (time, variables): {error}") from None
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise NumericsError(f"the series must be a 2-D array (time, variables), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise NumericsError(f"the series has {int((~np.isfinite(x)).sum())} non-finite values")
    return x


def _sampler(series: torch.Tensor, window: int, batch: int, generator: torch.Generator) -> Callable[[], torch.Tensor]:
    """Draws `batch` windows (batch, window, N), start times uniform over the series, from `generator`."""
    offsets = torch.arange(window)
    last = series.shape[0] - window

    def draw() -> torch.Tensor:
        starts = torch.randint(0, last + 1, (batch,), generator=generator)
        return series[(starts[:, None] + offsets).to(series.device)]
    return draw


def _setup(x: np.ndarray, model: str, *, hidden, window, tau_tf, steps, batch, lr, clip, schedule, p, tau, observation,
           seed, checkpoint_every, device, threads) -> tuple:
    """Checked inputs → (recipe, device, the model drawn from [seed, 1], the run's config)."""
    check_choice(model, "model", RECONSTRUCTION_MODELS)
    T, N = x.shape
    tau_tf, seed = check_forcing(tau_tf), check_seed(seed)
    window, hidden = check_int(window, "window", 2), check_int(hidden, "hidden")
    if window > T:
        raise NumericsError(f"window {window} is longer than the series ({T} steps)")
    recipe = Recipe(steps, lr, "adam", schedule, clip)
    batch, checkpoint_every = check_int(batch, "batch"), check_int(checkpoint_every, "checkpoint_every")
    target = resolve_device(device)
    net = build_reconstruction_model(model, N, hidden, derived_seed(seed, 1), p=p, tau=tau, observation=observation)
    is_plrnn = isinstance(net, PLRNNGenerator)
    regularizer = None
    if is_plrnn and net.plrnn.regularized:
        regularizer = {"p": float(p), "tau_a": net.plrnn.tau_a, "tau_w": net.plrnn.tau_w,
                       "reduction": net.plrnn.reduction, "units": net.plrnn.regularized, "at": "last"}
    dtype = torch.get_default_dtype()
    config = {"model": model, "observed": N, "hidden": hidden, "window": window, "tau_tf": tau_tf, "steps": recipe.steps,
              "batch": batch, "lr": recipe.lr, "clip": recipe.clip, "schedule": schedule,
              "optimizer": "adam", "observation": observation if is_plrnn else None, "regularizer": regularizer,
              "seed": seed, "checkpoint_every": checkpoint_every, "device": str(target), "threads": threads,
              "dtype": str(dtype).removeprefix("torch."),
              "data": {"length": T, "dimensions": N,
                       "sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()},
              "versions": versions()}
    return recipe, target, net, config


def train_reconstruction(series, model: str = "rplrnn", *, hidden: int = 20, window: int = 50, tau_tf: int = 10,
                         steps: int = 1000, batch: int = 32, lr: float = 1e-3, clip: float | None = 3.0,
                         schedule: str = "constant", p: float = 0.5, tau: float = 5.0,
                         observation: str = "identity", seed: int = 0, checkpoint=None,
                         checkpoint_every: int = 100, progress: Callable[[int, float], None] | None = None,
                         device: str = "cpu", threads: int | None = 1) -> dict:
    """Train one model on one series by BPTT with sparse teacher forcing (module docstring).

    series: (T, N), finite, z-scored by the caller. model: one of `MODELS`. hidden: M (PLRNNs: ≥ N).
    window: L, 2 ≤ L ≤ T. tau_tf: forcing interval (≥ 1; ≥ L: forced at the window's start only).
    p, tau: rplrnn's regularizer (τ_A = τ_W = τ). clip: gradient-norm clip (None: none).
    schedule: 'constant' or 'cosine' (annealed to 0 at `steps`). checkpoint: a file path (module
    docstring); progress(step, loss) after every step; threads: torch's intra-op threads during the
    run (None leaves them).

    Returns {"config", "curve": {"step", "loss" (the forced MSE of that step's windows),
    "regularizer"}, "parameters" (PLRNNs: A, W, h, z0, B; LSTM/GRU: their state dict), all lists,
    "resumed_from" (the checkpoint's step, or None), "timing": {"seconds", "seconds_per_step"}
    (this process's part of the run)}. Raises NumericsError for bad input, TrainingDiverged when
    the loss is not finite.
    """
    x = _series(series)
    recipe, target, net, config = _setup(x, model, hidden=hidden, window=window, tau_tf=tau_tf, steps=steps, batch=batch,
                                         lr=lr, clip=clip, schedule=schedule, p=p, tau=tau, observation=observation,
                                         seed=seed, checkpoint_every=checkpoint_every, device=device, threads=threads)
    tau_tf, seed, batch = config["tau_tf"], config["seed"], config["batch"]
    window, is_plrnn = config["window"], isinstance(net, PLRNNGenerator)
    start = time.perf_counter()
    with torch_threads(threads):
        net = net.to(target)
        data = torch.as_tensor(x, dtype=torch.get_default_dtype(), device=target)
        sampler = torch.Generator().manual_seed(derived_seed(seed, 2))
        draw = _sampler(data, window, batch, sampler)
        curve = {"step": [], "loss": [], "regularizer": []}
        parts = {}

        def objective(step: int) -> torch.Tensor:
            parts["fit"], parts["penalty"] = forced_loss(net, draw(), tau_tf), net.regularizer()
            return parts["fit"] + parts["penalty"]

        def after_step(step: int, _) -> None:
            loss = float(parts["fit"].detach())
            curve["step"].append(step)
            curve["loss"].append(loss)
            curve["regularizer"].append(float(parts["penalty"].detach()))
            if progress is not None:
                progress(step, loss)

        saved = None
        if checkpoint is not None:
            keys = RUN_KEYS + (("steps",) if schedule == "cosine" else ())
            saved = Checkpoint(checkpoint, config, keys, checkpoint_every)
        extras = {"sampler": (sampler.get_state, sampler.set_state),
                  "curve": (lambda: curve, lambda value: (curve.clear(), curve.update(value)))}
        resumed_from = fit(net, recipe, objective, what=f"{model} reconstruction", curve=curve, after_step=after_step,
                           checkpoint=saved, extras=extras).resumed_from
        parameters = net.parameters_dict() if is_plrnn else \
            {k: v.detach().to("cpu", torch.float64).tolist() for k, v in net.state_dict().items()}
    seconds = time.perf_counter() - start
    ran = recipe.steps - (resumed_from or 0)
    return {"config": config, "curve": curve, "parameters": parameters, "resumed_from": resumed_from,
            "timing": {"seconds": seconds, "seconds_per_step": seconds / ran if ran else None}}




def train_reconstructions(series, runs: list[dict], *, packed: bool = True, **options) -> list:
    """Several runs on one series, each {"model", "seed"} with optional "p" and "tau" (the other options
    are `train_reconstruction`'s and shared): the PLRNN-family runs with the identity observation train
    as one pack (`packed.PackedPLRNN`, the runtime's `fit_packed`), each with its own draw, window
    stream, penalty, clip and Adam moments, so its numbers are those of the run trained alone (to
    rounding; tests/test_plrnn_packed.py; packs of 1, 2 and 4 give a run the same float32 numbers);
    the others, and every run when packed=False or a checkpoint is asked for, train alone (packed
    runs report no progress). Returns per run its `train_reconstruction` result or its TrainingDiverged."""
    from ..errors import TrainingDiverged

    pack = [k for k, r in enumerate(runs) if r["model"] in PLRNN_MODELS] \
        if packed and options.get("checkpoint") is None and options.get("observation", "identity") == "identity" else []
    out: list = [None] * len(runs)
    for k, run in enumerate(runs):
        if k not in pack:
            try:
                out[k] = train_reconstruction(series, run["model"], seed=run["seed"], p=run.get("p", 0.5),
                                              tau=run.get("tau", 5.0), **options)
            except TrainingDiverged as error:
                out[k] = error
    if pack:  # a pack of one too: a run's numbers never depend on how many shared its pack
        for k, result in zip(pack, _train_pack(_series(series), [runs[k] for k in pack], **options)):
            out[k] = result
    return out


def _train_pack(x: np.ndarray, runs: list[dict], *, hidden: int = 20, window: int = 50, tau_tf: int = 10,
                steps: int = 1000, batch: int = 32, lr: float = 1e-3, clip: float | None = 3.0,
                schedule: str = "constant", observation: str = "identity", checkpoint_every: int = 100,
                device: str = "cpu", threads: int | None = 1, **_) -> list:
    from ..train.packed import fit_packed
    from .packed import PackedPLRNN, packed_forced_loss

    setups = [_setup(x, r["model"], hidden=hidden, window=window, tau_tf=tau_tf, steps=steps, batch=batch, lr=lr,
                     clip=clip, schedule=schedule, p=r.get("p", 0.5), tau=r.get("tau", 5.0), observation=observation,
                     seed=r["seed"], checkpoint_every=checkpoint_every, device=device, threads=threads) for r in runs]
    recipe, target = setups[0][0], setups[0][1]
    nets, configs = [s[2] for s in setups], [{**s[3], "packed": len(runs)} for s in setups]
    N, window, tau_tf = x.shape[1], configs[0]["window"], configs[0]["tau_tf"]
    whats = [f"{r['model']} reconstruction" for r in runs]
    curves = [{"step": [], "loss": [], "regularizer": []} for _ in runs]
    start = time.perf_counter()
    with torch_threads(threads):
        model = PackedPLRNN([net.plrnn for net in nets]).to(target)
        data = torch.as_tensor(x, dtype=torch.get_default_dtype(), device=target)
        draws = [_sampler(data, window, configs[0]["batch"], torch.Generator().manual_seed(derived_seed(c["seed"], 2)))
                 for c in configs]

        def objective(step: int, live: list) -> torch.Tensor:
            fit, penalty = packed_forced_loss(model, torch.stack([draw() for draw in draws]), tau_tf, N), model.regularizer()
            values = (fit.detach(), penalty.detach())
            for k in live:  # recorded before the update, as `after_step` records a run alone
                for key, value in zip(("step", "loss", "regularizer"), (step, float(values[0][k]), float(values[1][k]))):
                    curves[k][key].append(value)
            return fit + penalty

        ends = fit_packed(model, recipe, objective, whats=whats, curves=curves)
    seconds = time.perf_counter() - start
    results = []
    for k, (net, config, end) in enumerate(zip(nets, configs, ends)):
        if end.status == "diverged":  # alone, the diverged step is not in the curve
            for values in curves[k].values():
                values.pop()
            results.append(end.error)
            continue
        model.unpack(k, net.plrnn.to(target))
        results.append({"config": config, "curve": curves[k], "parameters": net.parameters_dict(), "resumed_from": None,
                        "timing": {"seconds": seconds / len(runs), "seconds_per_step": seconds / len(runs) / recipe.steps}})
    return results
