"""Training runs of a PLRNN or a baseline on a long-range task (docs/theory.md, paper 3).

    train_runs(task, T, [{"model", "seed", "p", "tau_a", "tau_w"}, …], *, hidden=40, steps=…, …)
        → one JSON-ready result (or TrainingDiverged) per run
    train_long_range(task, T, model, seed, …) → one run's result (raises TrainingDiverged)

Tasks and their scoring: `tasks`. Runs of the PLRNN family (rplrnn, plrnn, iplrnn; any p and τ) are
trained together as one packed computation (`packed.PackedPLRNN`, the training runtime's
`fit_packed`): each run has its own draw, minibatch stream, regularizer, clip, Adam moments, model
selection, stopping and divergence, and its numbers equal the run trained alone to rounding. The
ReLU baselines (rnn, irnn, nprnn: torch's nn.RNN(relu), a PLRNN with A = 0) pack the same way
(`packed.PackedReluRNN`); oRNN (an orthogonal parametrization) and the LSTM run alone through the
runtime's `fit`.

Training: Adam (lr 1e-3; `schedule` 'constant' as the public code, or 'cosine': annealed to 0 over
the run, the toolkit's choice for short CPU runs, where a constant rate left rplrnn's test
fraction swinging between 0.06 and 0.98 from one checkpoint to the next at T = 100), the gradient
norm clipped to `clip` (3), minibatches of `batch` sequences drawn without replacement, a fresh
seeded permutation every epoch; the loss is the task loss plus the model's regularizer (the
rplrnn's, with its `reduction`: 'mean' as the public code, 'sum' as the paper's formula).

Checkpoints at steps 0, track_every, 2·track_every, … and the last: the loss on a fixed probe of
≤ 2048 training sequences, the regularizer, the validation loss and metric, the test loss (the
MSE on the marker tasks, the released supplementary sweep's measure) and metric. Model selection is
on the validation split: `selected` is the checkpoint with the highest validation metric (the
earliest on ties) and its test numbers are the run's result. `best_test` is the highest test metric
over checkpoints — what the public code reported (it picked the best test epoch); `final` is the last
checkpoint. `stopping` (`runtime.Stopping`) may end a run early once its validation metric has met
the task's criterion for some checks in a row; the result says when and why (`stopped`).

Seeds: the data depend on `data_seed` only (default 0), so every model and seed sees the same
sequences; the model is drawn from SeedSequence([seed, 1]) (`derived_seed`), the minibatch order
from [seed, 2], the analysed states from [seed, 4]. torch's global generator is never read.

For analysis (fixed points, Jacobian products) the result also holds, at the selected checkpoint,
the PLRNN's parameters A, W (diagonal masked), h, C, z0 and B, `STATE_COUNT` states visited on the
first `STATE_SEQUENCES` test sequences (a seeded choice of (sequence, step) pairs) and z_0 … z_T
of the first test sequence; a baseline's visited hidden states likewise.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..data.digits import mnist_fingerprint
from ..data.long_range import TOLERANCE
from ..device import resolve_device
from ..errors import NumericsError, TrainingDiverged, check_choice, check_int
from ..train.packed import fit_packed
from ..train.recipe import Recipe
from ..train.runtime import (
    EVAL_CHUNK,
    Selection,
    Stopping,
    check_seed,
    derived_seed,
    fit,
    flush_denormals,
    in_chunks,
    task_loss,
    torch_threads,
    versions,
)
from .model import PLRNN, build_model, regularized_units
from .names import DEFAULTS, MARKER_TASKS, MODELS, PLRNN_MODELS, RELU_MODELS
from .packed import PackedPLRNN, PackedReluRNN
from .tasks import load_long_range, score, scoring

PROBE = 2048  # training sequences on which the curve's training loss is measured
STATE_SEQUENCES, STATE_COUNT = 64, 300
CURVE = ("step", "train_loss", "regularizer", "val_loss", "val_metric", "test_loss", "test_metric")


def train_long_range(task: str, T: int | None, model: str, seed: int, *, p: float = 0.5, tau_a: float = 5.0,
                     tau_w: float = 5.0, **options) -> dict:
    """Train one model on one task (options as `train_runs`); its result. Raises TrainingDiverged."""
    (result,) = train_runs(task, T, [{"model": model, "seed": seed, "p": p, "tau_a": tau_a, "tau_w": tau_w}],
                           **options)
    if isinstance(result, TrainingDiverged):
        raise result
    return result


def train_runs(task: str, T: int | None, runs: list[dict], *, hidden: int = 40, steps: int | None = None,
               batch: int | None = None, lr: float = 1e-3, clip: float | None = 3.0, reduction: str = "mean",
               train_size: int | None = None, val_size: int | None = None, test_size: int | None = None,
               track_every: int | None = None, data_seed: int = 0, device: str = "cpu", threads: int | None = 1,
               data_dir=None, train_subset: int | None = None, schedule: str = "constant",
               stopping: Stopping | None = None, packed: bool = True) -> list:
    """Train every run on one task with one recipe; per run its result dict or its TrainingDiverged.

    runs: [{"model": one of `MODELS`, "seed", and for the PLRNNs "p", "tau_a", "tau_w"}] — PLRNN-family
    runs train as one pack, the ReLU baselines as another (packed=False: alone, one after another; the
    numbers are the same to rounding, the time is not), oRNN and LSTM alone. task: addition,
    multiplication, digits or mnist; T: the length (digits and mnist: None or their own); reduction:
    the rplrnn regularizer's. steps, batch, track_every and the split sizes default per task
    (`names.DEFAULTS`); clip: gradient-norm clip (None: none); threads: torch's intra-op threads (None
    leaves them); data_dir: the MNIST directory.

    A result: {"config", "metric" ("fraction_correct" or "accuracy"), "curve": {CURVE…},
    "selected", "best_test", "final" (each {"step", "val_metric", "test_metric", "test_loss"}),
    "stopped" ({"step", "reason"} or None), "parameters" (PLRNN models: A, W, h, C, z0, B; else None),
    "states", "trajectory" (PLRNN models), "timing": {"seconds"}} (module docstring).
    """
    if not runs:
        raise NumericsError("train_runs needs at least one run")
    for run in runs:
        check_choice(run["model"], "model", MODELS)
        check_seed(run["seed"])
    settings = {k: v for k, v in DEFAULTS[check_choice(task, "task", DEFAULTS)].items()
                if k in ("steps", "batch", "track_every")}
    settings.update({k: v for k, v in (("steps", steps), ("batch", batch), ("track_every", track_every)) if v is not None})
    recipe = Recipe(settings["steps"], lr, "adam", schedule, clip, settings["track_every"])
    batch = check_int(settings["batch"], "batch")
    target = resolve_device(device)
    inputs_k, outputs = (2, 1) if task in MARKER_TASKS else (1, 10)
    nets = [build_model(r["model"], inputs_k, hidden, outputs, derived_seed(r["seed"], 1), p=r.get("p", 0.5),
                        tau_a=r.get("tau_a", 5.0), tau_w=r.get("tau_w", 5.0), reduction=reduction) for r in runs]
    source = mnist_fingerprint(data_dir) if task == "mnist" and data_dir is not None else {}
    splits = load_long_range(task, T, data_seed=data_seed, train_size=train_size, val_size=val_size,
                             test_size=test_size, data_dir=data_dir, train_subset=train_subset)
    data = {k: tuple(t.to(target) for t in splits[k]) for k in ("train", "validation", "test")}
    if batch > len(data["train"][1]):
        raise NumericsError(f"batch {batch} exceeds the {len(data['train'][1])} training sequences")
    length = int(data["train"][0].shape[1])
    config = {"task": task, "T": length, "hidden": int(hidden), "steps": recipe.steps, "batch": batch, "lr": recipe.lr,
              "schedule": schedule, "clip": recipe.clip, "optimizer": "adam", "track_every": recipe.track_every,
              "data_seed": int(data_seed), "sizes": {k: len(v[1]) for k, v in data.items()}, "reduction": reduction,
              "tolerance": TOLERANCE if task in MARKER_TASKS else None, "device": str(target), "threads": threads,
              "dtype": str(torch.get_default_dtype()).removeprefix("torch."), "subnormals": "flushed to zero", "versions": versions(), **source,
              **({"train_subset": int(train_subset)} if train_subset is not None else {}),
              **({"stopping": vars(stopping)} if stopping is not None else {})}
    packs = [(family, [k for k, r in enumerate(runs) if r["model"] in models])
             for family, models in ((PackedPLRNN, PLRNN_MODELS), (PackedReluRNN, RELU_MODELS))] if packed else []
    results: list = [None] * len(runs)
    with torch_threads(threads), flush_denormals():  # every run, packed or alone: the same numbers
        for family, pack in packs:
            if pack:
                for k, result in zip(pack, _train_pack(family, task, [runs[k] for k in pack],
                                                       [nets[k] for k in pack], data, recipe, batch, stopping,
                                                       config, target)):
                    results[k] = result
        for k in (k for k in range(len(runs)) if results[k] is None):
            results[k] = _train_alone(task, runs[k], nets[k].to(target), data, recipe, batch, stopping, config)
    return results


def _what(task: str, run: dict, length: int) -> str:
    return f"{run['model']} on {task} (T = {length})"


def _epochs(count: int, batch: int, seed: int, device) -> callable:
    """rows(step): minibatches without replacement, a fresh seeded permutation every epoch."""
    order, epoch = torch.Generator().manual_seed(derived_seed(seed, 2)), {"rows": None, "at": 0}

    def rows() -> torch.Tensor:
        if epoch["rows"] is None or epoch["at"] + batch > count:
            epoch.update(rows=torch.randperm(count, generator=order), at=0)
        out = epoch["rows"][epoch["at"]:epoch["at"] + batch].to(device)
        epoch["at"] += batch
        return out
    return rows


def _train_alone(task, run, net, data, recipe, batch, stopping, config) -> dict | TrainingDiverged:
    """A baseline (or any single model) through the runtime's `fit`."""
    train, validation, test = data["train"], data["validation"], data["test"]
    loss_name = scoring(task)[0]
    what, curve = _what(task, run, config["T"]), {key: [] for key in CURVE}
    selection, watch = Selection(), stopping.watch() if stopping else None
    rows = _epochs(len(train[1]), batch, run["seed"], train[0].device)
    start = time.perf_counter()

    def evaluate(step: int) -> str | None:
        net.eval()
        with torch.no_grad():
            train_loss, _ = score(task, in_chunks(net, train[0][:PROBE]), train[1][:PROBE])
            penalty = float(net.regularizer())
            val = score(task, in_chunks(net, validation[0]), validation[1])
            tested = score(task, in_chunks(net, test[0]), test[1])
        net.train()
        if not np.isfinite(train_loss):
            raise TrainingDiverged(what, step, train_loss, curve)
        for key, value in zip(CURVE, (step, train_loss, penalty, *val, *tested)):
            curve[key].append(value)
        selection.offer(step, val[1], net)
        return watch(val[1]) if watch else None

    def objective(step: int) -> torch.Tensor:
        batch_rows = rows()
        return task_loss(loss_name, net(train[0][batch_rows]), train[1][batch_rows]) + net.regularizer()

    try:
        outcome = fit(net, recipe, objective, what=what, curve=curve, evaluate=evaluate)
    except TrainingDiverged as error:
        return error
    stopped = {"step": outcome.stopped_at, "reason": outcome.stop_reason} if outcome.stopped_at else None
    with selection.selected(net):
        analysis = _analysis(net, test[0], run["seed"])
    return _result(run, config, curve, selection.step, stopped, analysis, time.perf_counter() - start)


def _train_pack(family, task, runs, nets, data, recipe, batch, stopping, config, target) -> list:
    """Runs of one family (`PackedPLRNN` or `PackedReluRNN`) as one pack through the runtime's `fit_packed`."""
    packed = family(nets).to(target)
    train, validation, test = data["train"], data["validation"], data["test"]
    K, loss_name = len(runs), scoring(task)[0]
    whats = [_what(task, r, config["T"]) for r in runs]
    curves = [{key: [] for key in CURVE} for _ in runs]
    best = [{"step": None, "metric": -np.inf, "state": None} for _ in runs]
    watches = [stopping.watch() if stopping else None for _ in runs]
    streams = [_epochs(len(train[1]), batch, r["seed"], target) for r in runs]
    start = time.perf_counter()

    def outputs(inputs: torch.Tensor) -> torch.Tensor:  # every run on a whole split, in chunks: (K, N, O)
        return torch.cat([packed(inputs[i:i + EVAL_CHUNK]) for i in range(0, len(inputs), EVAL_CHUNK)], 1)

    def evaluate(step: int, live: list) -> dict:
        packed.eval()
        with torch.no_grad():
            probe, penalty = outputs(train[0][:PROBE]), packed.regularizer()
            val_out, test_out = outputs(validation[0]), outputs(test[0])
        packed.train()
        ends = {}
        for k in live:
            train_loss = score(task, probe[k], train[1][:PROBE])[0]
            if not np.isfinite(train_loss):
                ends[k] = TrainingDiverged(whats[k], step, train_loss, curves[k])
                continue
            val, tested = score(task, val_out[k], validation[1]), score(task, test_out[k], test[1])
            for key, value in zip(CURVE, (step, train_loss, float(penalty[k]), *val, *tested)):
                curves[k][key].append(value)
            if val[1] > best[k]["metric"]:
                best[k].update(step=step, metric=val[1], state=packed.run_state(k))
            reason = watches[k](val[1]) if watches[k] else None
            if reason:
                ends[k] = reason
        return ends

    def objective(step: int, live: list) -> torch.Tensor:
        rows = [stream() for stream in streams]  # a stopped run's batch is computed and ignored
        inputs = torch.stack([train[0][r] for r in rows])
        out = packed(inputs)
        targets = torch.stack([train[1][r] for r in rows])
        if loss_name == "mse":
            losses = ((out - targets) ** 2).mean((1, 2))
        else:
            losses = nn.functional.cross_entropy(out.flatten(0, 1), targets.flatten(), reduction="none").view(K, -1).mean(1)
        return losses + packed.regularizer()

    ends = fit_packed(packed, recipe, objective, whats=whats, curves=curves, evaluate=evaluate)
    seconds = time.perf_counter() - start
    results = []
    for k, (run, net, end) in enumerate(zip(runs, nets, ends)):
        if end.status == "diverged":
            results.append(end.error)
            continue
        packed.load_run_state(k, best[k]["state"])
        analysis = _analysis(packed.unpack(k, net.to(target)), test[0], run["seed"])
        stopped = {"step": end.step, "reason": end.reason} if end.status == "stopped" else None
        results.append(_result(run, {**config, "packed": K}, curves[k], best[k]["step"], stopped, analysis, seconds / K))
    return results


def _visited_states(model: nn.Module, inputs: torch.Tensor, seed: int) -> list:
    """STATE_COUNT states visited on the first STATE_SEQUENCES sequences, a seeded choice of (sequence, step)."""
    with torch.no_grad():
        states = model.states(inputs[:STATE_SEQUENCES]).flatten(0, 1)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4]))
    rows = np.sort(rng.choice(len(states), min(STATE_COUNT, len(states)), replace=False))
    return states[torch.as_tensor(rows, device=states.device)].to("cpu", torch.float64).tolist()


def _analysis(net: nn.Module, test_inputs: torch.Tensor, seed: int) -> dict:
    """The selected model's parameters (PLRNNs), visited states and z_0 … z_T of the first test sequence."""
    out = {"parameters": None, "states": _visited_states(net, test_inputs, seed), "trajectory": None}
    if isinstance(net, PLRNN):
        out["parameters"] = {k: v.tolist() for k, v in net.dynamics().items()}
        out["parameters"]["B"] = net.B.detach().to("cpu", torch.float64).tolist()
        with torch.no_grad():
            path = torch.cat([net.z0.detach()[None], net.states(test_inputs[:1])[0]])
        out["trajectory"] = path.to("cpu", torch.float64).tolist()
    return out


def _result(run: dict, config: dict, curve: dict, selected: int, stopped: dict | None, analysis: dict,
            seconds: float) -> dict:
    model = run["model"]
    regularizer = None
    if model == "rplrnn":
        p = float(run.get("p", 0.5))
        regularizer = {"p": p, "tau_a": float(run.get("tau_a", 5.0)), "tau_w": float(run.get("tau_w", 5.0)),
                       "reduction": config["reduction"], "units": regularized_units(config["hidden"], p)}
    config = {**config, "model": model, "seed": int(run["seed"]), "regularizer": regularizer}

    def at(i: int) -> dict:
        return {"step": curve["step"][i], "val_metric": curve["val_metric"][i], "test_metric": curve["test_metric"][i],
                "test_loss": curve["test_loss"][i]}
    best = int(np.argmax(curve["test_metric"]))  # the first maximum
    return {"config": config, "metric": scoring(config["task"])[1], "curve": curve,
            "selected": at(curve["step"].index(selected)), "best_test": at(best), "final": at(-1), "stopped": stopped,
            **analysis, "timing": {"seconds": seconds}}
