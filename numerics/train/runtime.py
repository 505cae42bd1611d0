"""The training runtime: everything a trainer shares except its model, its loss and its data.

    fit(model, recipe, objective, what=…, curve=…, evaluate=…, after_step=…, checkpoint=…)

One loop for every trainer of the toolkit (eigen classifiers and translation, the PLRNN on long-range
problems and on dynamical systems; the linear RNN's kernel-regime runs step K stacked networks with
per-run rates through `packed`): each step draws its batch and computes the objective
(`objective(step)`), takes one optimizer step with the gradient norm clipped (`descend`; a
non-finite loss raises `TrainingDiverged` with the curve so far), advances the learning-rate
schedule, lets the trainer record the step (`after_step`), scores the tracked steps (`evaluate`,
also at step 0) and writes the checkpoint file. What else lives here:

  derived_seed, check_seed      the one way a run's seed becomes independent streams
  torch_threads                 torch's intra-op threads for the length of a run, restored after
  Recipe                        steps, rate, optimizer, schedule, clip, tracking: checked once
  task_loss, task_metric        the losses and metrics of the toolkit's tasks, by name
  in_chunks                     a model on a whole split, in bounded memory
  Selection                     the checkpoint with the best validation metric (model selection)
  Checkpoint                    a run's state in one file; a run that finds it resumes, same numbers
  Stopping                      stop early once a run is solved (or stops improving), recorded with the run
  diverged_result, versions     a diverged run as a result (a sweep records it, it does not fail); versions
  progress_reporter             a long run's step and loss on stderr every tenth of its steps

Nothing here reads torch's global generator: data streams are `torch.Generator`s seeded by
`derived_seed`, so a seed gives the same numbers on the CPU.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import platform
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import NumericsError, TrainingDiverged, check_int
from .recipe import Recipe

EVAL_CHUNK = 2048  # sequences per forward pass when a whole split is scored


# ---------------------------------------------------------------- seeds and threads


def check_seed(seed) -> int:
    return check_int(seed, "seed", 0)


def derived_seed(seed: int, stream: int) -> int:
    """An independent seed for one stream of a run (the model, the batches, …): numpy's SeedSequence."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0] >> 1)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op threads set to `threads` for the block (None: left alone), restored after.
    A sweep runs one cell per worker: one thread per run is the fastest use of the cores across
    runs, and the numbers do not depend on how many cores a worker has."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads"))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def flush_denormals():
    """Subnormal floats (below 1.2e-38 in float32) flushed to zero on this thread for the block, restored
    after. A PLRNN's vanishing gradients pass through that range, where x86 arithmetic is tens of
    times slower: at K = 8 packed runs (M = 40, T = 100) the step ran at half speed. Such values are
    zero for training purposes (the largest gradient entries are ~1e-3); float64 never gets there."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def descend(params, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None, what: str, step: int,
            curve: dict) -> None:
    """One optimizer step on `loss` (gradient norm clipped to `clip`); a non-finite loss ends the run."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(what, step, float(loss.detach()), curve)
    optimizer.zero_grad()
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


# ---------------------------------------------------------------- losses, metrics, scoring

LOSSES = ("bce", "ce", "mse")  # one logit's binary cross-entropy, cross-entropy over classes, mean squared error
METRICS = ("accuracy", "r2")


def task_loss(name: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if name == "bce":
        return nn.functional.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets)
    if name == "ce":
        return nn.functional.cross_entropy(outputs, targets)
    if name == "mse":
        return nn.functional.mse_loss(outputs, targets)
    raise NumericsError(f"unknown loss {name!r} (choose {', '.join(LOSSES)})")


def task_metric(name: str, outputs: torch.Tensor, targets: torch.Tensor, loss_name: str = "ce") -> float:
    """accuracy (the sign of one logit under 'bce', else the largest output) or r2 = 1 − MSE / Var(targets)."""
    if name == "r2":
        return float(1 - ((outputs - targets) ** 2).mean() / targets.var(unbiased=False))
    if name != "accuracy":
        raise NumericsError(f"unknown metric {name!r} (choose {', '.join(METRICS)})")
    predicted = (outputs.squeeze(-1) > 0).to(targets.dtype) if loss_name == "bce" else outputs.argmax(-1)
    return float((predicted == targets).to(torch.float64).mean())


def in_chunks(model: Callable, *inputs: torch.Tensor, chunk: int = EVAL_CHUNK) -> torch.Tensor:
    """model(*inputs) on a whole split, `chunk` sequences at a time when it is larger (the states of
    60 000 MNIST sequences of 784 steps would not fit at once)."""
    if len(inputs[0]) <= chunk:
        return model(*inputs)
    return torch.cat([model(*(x[i:i + chunk] for x in inputs)) for i in range(0, len(inputs[0]), chunk)])


class Selection:
    """Model selection: the tracked step with the highest validation metric (the earliest on ties),
    with a copy of the model's state there."""

    def __init__(self):
        self.step, self.metric, self.state = None, -math.inf, None

    def offer(self, step: int, value: float, model: nn.Module) -> None:
        if value > self.metric:
            self.step, self.metric = step, value
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @contextlib.contextmanager
    def selected(self, model: nn.Module):
        """The model at the selected step for the block, at its own state again after."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(own)


# ---------------------------------------------------------------- checkpoint files


class Checkpoint:
    """A run's state in one file: model, optimizer, schedule, the trainer's own parts (`extras`:
    name → (get, set), e.g. a batch generator and the curve) and the step, written atomically every
    `every` steps and at the last. A run that finds the file resumes from it, and gives the same
    numbers as a run never interrupted; a file of another run (a differing `keys` entry of
    `config`) is refused in one line."""

    def __init__(self, path, config: dict, keys: tuple, every: int = 100):
        self.path, self.config, self.keys = Path(path), config, tuple(keys)
        self.every = check_int(every, "checkpoint_every")

    def resume(self, model: nn.Module, optimizer, schedule, extras: dict, steps: int) -> int | None:
        """Load the file into the run when it exists; the step it was saved at (None without a file)."""
        if not self.path.exists():
            return None
        saved = torch.load(self.path, map_location="cpu", weights_only=True)  # load_state_dict moves to the device
        differ = [k for k in self.keys if saved["config"].get(k) != self.config[k]]
        if differ:
            raise NumericsError(f"checkpoint {self.path} belongs to another run (it differs in {', '.join(differ)})")
        if saved["step"] > steps:
            raise NumericsError(f"checkpoint {self.path} is at step {saved['step']}, past steps = {steps}")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])
        for name, (_, put) in extras.items():
            put(saved[name])
        return saved["step"]

    def save(self, step: int, model: nn.Module, optimizer, schedule, extras: dict) -> None:
        from ..io import write_atomic

        payload = {"config": self.config, "step": step, "model": model.state_dict(),
                   "optimizer": optimizer.state_dict(), "schedule": None if schedule is None else schedule.state_dict(),
                   **{name: get() for name, (get, _) in extras.items()}}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_atomic(self.path, buffer.getvalue())

    def due(self, step: int, steps: int) -> bool:
        return step % self.every == 0 or step == steps


# ---------------------------------------------------------------- results and reports


def diverged_result(error: TrainingDiverged, curve: bool = True) -> dict:
    """A diverged run as a sweep records it: a result, not an error (with the curve up to there)."""
    def plain(curves: dict) -> dict:  # lists of numbers, as JSON holds them (impulse responses left out: too large)
        return {k: plain(v) if isinstance(v, dict) else v.tolist() if hasattr(v, "tolist") else v
                for k, v in curves.items() if k != "responses"}

    out = {"status": "diverged", "diverged": {"trainer": error.trainer, "step": error.step, "loss": error.loss}}
    if curve:
        out["curve"] = plain(error.curves)
    return out


def versions() -> dict:
    """The versions a run's numbers depend on, recorded in its config (strings, so a checkpoint loads)."""
    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__)}


def progress_reporter(name: str, steps: int) -> Callable[[int, float], None]:
    """progress(step, loss) that prints every tenth of a run's steps on stderr, so a long run shows it is alive."""
    every = max(1, steps // 10)

    def report(step: int, value: float) -> None:
        if step % every == 0 or step == steps:
            print(f"rnnmemory: {name}: step {step}/{steps}, loss {value:.4g}", file=sys.stderr, flush=True)
    return report


# ---------------------------------------------------------------- the loop


@dataclasses.dataclass
class Outcome:
    """How a run ended: the step a checkpoint resumed from (None: none), and the step and reason it
    stopped early (None: it ran all its steps)."""

    resumed_from: int | None = None
    stopped_at: int | None = None
    stop_reason: str | None = None


def fit(model: nn.Module, recipe: Recipe, objective: Callable[[int], torch.Tensor], *, what: str, curve: dict,
        params: list | None = None, evaluate: Callable[[int], str | None] | None = None,
        after_step: Callable[[int, torch.Tensor], None] | None = None, checkpoint: Checkpoint | None = None,
        extras: dict | None = None) -> Outcome:
    """Train `model` for `recipe.steps` steps (module docstring). objective(step) draws the step's
    batch and returns the loss to descend; after_step(step, loss) records it (and reports progress);
    evaluate(step) scores the tracked steps (`recipe.tracks`) and step 0, and returns a reason to stop
    early (a `Stopping` rule's verdict) or None. `params`: the trained parameters (default every
    parameter that requires a gradient); the clip acts on all of them."""
    params = [p for p in model.parameters() if p.requires_grad] if params is None else params
    optimizer = recipe.make_optimizer(params)
    schedule = recipe.make_schedule(optimizer)
    extras = extras or {}
    resumed = checkpoint.resume(model, optimizer, schedule, extras, recipe.steps) if checkpoint is not None else None
    outcome, done = Outcome(resumed), resumed or 0
    if evaluate is not None and resumed is None and recipe.track_every is not None:
        evaluate(0)
    clipped = list(model.parameters())
    for step in range(done + 1, recipe.steps + 1):
        value = objective(step)
        descend(clipped, optimizer, value, recipe.clip, what, step, curve)
        if schedule is not None:
            schedule.step()
        if after_step is not None:
            after_step(step, value)
        reason = evaluate(step) if evaluate is not None and recipe.tracks(step) else None
        if checkpoint is not None and (checkpoint.due(step, recipe.steps) or reason):
            checkpoint.save(step, model, optimizer, schedule, extras)
        if reason:
            outcome.stopped_at, outcome.stop_reason = step, reason
            break
    if checkpoint is not None and done == recipe.steps and not checkpoint.path.exists():
        checkpoint.save(recipe.steps, model, optimizer, schedule, extras)
    return outcome


@dataclasses.dataclass(frozen=True)
class Stopping:
    """When a run may stop before its last step, without changing a verdict: once its validation metric
    has reached `criterion` (the task's bar for "solved") at `checks` tracked steps in a row; or, with
    `patience`, once it has not improved on its best for that many tracked steps. None: never."""

    criterion: float | None = None
    checks: int = 3
    patience: int | None = None

    def __post_init__(self):
        check_int(self.checks, "checks")
        if self.patience is not None:
            check_int(self.patience, "patience")

    def watch(self) -> Callable[[float], str | None]:
        """A fresh watcher for one run: watcher(validation metric at this tracked step) → reason or None."""
        state = {"met": 0, "best": -math.inf, "since": 0}

        def watcher(value: float) -> str | None:
            state["met"] = state["met"] + 1 if self.criterion is not None and value >= self.criterion else 0
            state["best"], state["since"] = (value, 0) if value > state["best"] else (state["best"], state["since"] + 1)
            if self.criterion is not None and state["met"] >= self.checks:
                return f"validation metric ≥ {self.criterion:g} at {self.checks} checks in a row"
            if self.patience is not None and state["since"] >= self.patience:
                return f"no improvement of the validation metric in {self.patience} checks"
            return None
        return watcher
