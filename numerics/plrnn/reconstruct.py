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
from .names import RECONSTRUCTION_MODELS

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
    check_choice(model, "model", RECONSTRUCTION_MODELS)
    x = _series(series)
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

    start = time.perf_counter()
    with torch_threads(threads):
        net = net.to(target)
        data = torch.as_tensor(x, dtype=dtype, device=target)
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


