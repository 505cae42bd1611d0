"""One training run of a PLRNN or a baseline on a long-range task (docs/theory.md, paper 3).

    train_long_range(task, T, model, seed, *, hidden=40, steps=…, …) → a JSON-ready dict

Tasks (`TASKS`; nothing is downloaded):
  addition, multiplication   `numerics.data.long_range` at length T: train, validation and test
             sets generated from SeedSequence([data_seed, task, T, split]), sizes `train_size`,
             `val_size`, `test_size` (defaults below; the public code used 100 000 and 10 000 test).
             MSE on the output after the last step; metric: the fraction of trials with
             |error| < 0.04.
  digits     scikit-learn's 8×8 digits as 64 steps of one pixel in [0, 1], the 60/20/20 seeded
             train/validation/test split of `numerics.data.digits.digits_sequences`. T is 64 (or None).
  mnist      sequential MNIST, 784 steps of one normalized pixel (`mnist_normalized`), from the IDX
             files in `data_dir` (refused without it): validation = `val_size` (default 5 000) of the
             60 000 training images, a seeded choice; test = the 10 000 test images (or a seeded
             `test_size` of them). T is 784 (or None).
  digits and mnist: cross-entropy on the 10 outputs after the last step; metric: accuracy.
`train_subset` (any task) trains on that many training sequences, a seeded choice by data_seed.

Training: Adam (lr 1e-3; `schedule` 'constant' as the public code, or 'cosine': annealed to 0 over
the run, the toolkit's choice for short CPU runs, where a constant rate left rplrnn's test
fraction swinging between 0.06 and 0.98 from one checkpoint to the next at T = 100), the gradient
norm clipped to `clip` (3), minibatches of `batch` (500) sequences drawn without replacement, a
fresh seeded permutation every epoch; the loss is the task
loss plus the model's regularizer (the rplrnn's; zero for the others). A non-finite loss raises
`TrainingDiverged`.

Checkpoints at steps 0, track_every, 2·track_every, … and the last: the loss on a fixed probe of
≤ 2048 training sequences, the regularizer, the validation loss and metric, the test metric.
Model selection is on the validation split: `selected` is the checkpoint with the highest
validation metric (the earliest on ties) and its test metric is the run's result. `best_test` is
the highest test metric over checkpoints — what the public code reported (it picked the best test
epoch) — so the difference is visible; `final` is the last checkpoint.

Seeds: the data depend on `data_seed` only (default 0), so every model and seed sees the same
sequences; the model is drawn from SeedSequence([seed, 1]) (`derived_seed`), the minibatch order
from [seed, 2], the analysed states from [seed, 4]. torch's global generator is never read.

For analysis (fixed points, Jacobian products) the result also holds, at the selected checkpoint,
the PLRNN's parameters A, W (diagonal masked), h, C, z0 and B, and `STATE_COUNT` states z_t
visited on the first `STATE_SEQUENCES` test sequences (a seeded choice of (sequence, step) pairs);
a baseline's visited hidden states likewise.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from ..data.digits import digits_sequences, mnist_fingerprint
from ..data.long_range import TOLERANCE, fraction_correct, marker_problem, mnist_normalized
from ..device import resolve_device
from ..errors import NumericsError, TrainingDiverged, check_choice, check_int
from ..train.runtime import (
    Recipe,
    Selection,
    check_seed,
    derived_seed,
    fit,
    in_chunks,
    task_loss,
    task_metric,
    torch_threads,
    versions,
)
from .model import PLRNN, build_model
from .names import DEFAULTS, LENGTHS, MARKER_TASKS, MODELS, TASKS

PROBE = 2048  # training sequences on which the curve's training loss is measured
STATE_SEQUENCES, STATE_COUNT = 64, 300


def _seeded_rows(count: int, total: int, data_seed: int, stream: int, what: str) -> torch.Tensor:
    if count > total:
        raise NumericsError(f"{what} {count} exceeds the {total} sequences available")
    rng = np.random.default_rng(np.random.SeedSequence([data_seed, stream]))
    return torch.as_tensor(np.sort(rng.choice(total, count, replace=False)))


def load_long_range(task: str, T: int | None, *, data_seed: int = 0, train_size: int | None = None,
                    val_size: int | None = None, test_size: int | None = None, data_dir=None,
                    train_subset: int | None = None) -> dict:
    """{"train", "validation", "test"} → (inputs (N, T, K), targets), on the CPU (module docstring)."""
    if task not in TASKS:
        raise NumericsError(f"unknown task {task!r} (choose {', '.join(TASKS)})")
    data_seed = check_int(data_seed, "data_seed", 0)
    if task in MARKER_TASKS:
        sizes = {k: check_int(v if v is not None else DEFAULTS[task][k], k)
                 for k, v in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size))}
        index = MARKER_TASKS.index(task)
        splits = {split: marker_problem(task, T, sizes[key], [data_seed, index, T, code])
                  for code, (split, key) in enumerate((("train", "train_size"), ("validation", "val_size"),
                                                       ("test", "test_size")))}
    else:
        if T is not None and T != LENGTHS[task]:
            raise NumericsError(f"task {task!r} has {LENGTHS[task]} steps; T must be {LENGTHS[task]} or None, got {T!r}")
        if train_size is not None:
            raise NumericsError(f"task {task!r} has a fixed training set; use train_subset to train on fewer sequences")
        if task == "digits":
            if val_size is not None or test_size is not None:
                raise NumericsError("task 'digits' has fixed validation and test splits (60/20/20)")
            splits = digits_sequences(data_seed)
        else:
            data = mnist_normalized(data_dir, seed=data_seed)
            inputs, labels = data["train"]
            count = check_int(val_size if val_size is not None else DEFAULTS["mnist"]["val_size"], "val_size")
            held = _seeded_rows(count, len(labels), data_seed, 5, "val_size")
            keep = torch.ones(len(labels), dtype=torch.bool)
            keep[held] = False
            splits = {"train": (inputs[keep], labels[keep]), "validation": (inputs[held], labels[held]),
                      "test": data["test"]}
            if test_size is not None:
                rows = _seeded_rows(check_int(test_size, "test_size"), len(data["test"][1]), data_seed, 6, "test_size")
                splits["test"] = tuple(t[rows] for t in data["test"])
    if train_subset is not None:
        inputs, targets = splits["train"]
        rows = _seeded_rows(check_int(train_subset, "train_subset"), len(targets), data_seed, 3, "train_subset")
        splits["train"] = (inputs[rows], targets[rows])
    return splits


def _fraction_correct(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return fraction_correct(outputs, targets)


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return task_metric("accuracy", outputs, targets)


def _visited_states(model: nn.Module, inputs: torch.Tensor, seed: int) -> list:
    """STATE_COUNT states visited on the first STATE_SEQUENCES sequences, a seeded choice of (sequence, step)."""
    with torch.no_grad():
        states = model.states(inputs[:STATE_SEQUENCES]).flatten(0, 1)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4]))
    rows = np.sort(rng.choice(len(states), min(STATE_COUNT, len(states)), replace=False))
    return states[torch.as_tensor(rows, device=states.device)].to("cpu", torch.float64).tolist()


def train_long_range(task: str, T: int | None, model: str, seed: int, *, hidden: int = 40, steps: int | None = None,
                     batch: int | None = None, lr: float = 1e-3, clip: float | None = 3.0, p: float = 0.5,
                     tau_a: float = 5.0, tau_w: float = 5.0, reduction: str = "mean",
                     train_size: int | None = None, val_size: int | None = None, test_size: int | None = None,
                     track_every: int | None = None, data_seed: int = 0, device: str = "cpu",
                     threads: int | None = 1, data_dir=None, train_subset: int | None = None,
                     schedule: str = "constant") -> dict:
    """Train one model on one task; its checkpoints, selected and best results, and analysis data.

    task: addition, multiplication, digits or mnist; T: the length (digits and mnist: None or their
    own); model: one of `MODELS`; p, tau_a, tau_w, reduction: the rplrnn's regularizer (ignored,
    but checked, for the others). steps, batch, track_every and the split sizes default per task
    (`DEFAULTS`). clip: gradient-norm clip (None: none). threads: torch's intra-op threads during
    the run (None leaves them). data_dir: the MNIST directory.

    Returns {"config", "metric" ("fraction_correct" or "accuracy"), "curve": {"step", "train_loss",
    "regularizer", "val_loss", "val_metric", "test_metric"}, "selected": {"step", "val_metric",
    "test_metric"}, "best_test": {"step", "test_metric"}, "final": {"step", "val_metric",
    "test_metric"}, "parameters" (PLRNN models: A, W, h, C, z0, B as lists; else None),
    "states" (visited states, lists), "trajectory" (PLRNN models: z_0 … z_T of the first test sequence),
    "timing": {"seconds"}} (module docstring).
    Raises NumericsError for bad input, TrainingDiverged when the loss is not finite.
    """
    check_choice(task, "task", TASKS)
    check_choice(model, "model", MODELS)
    seed = check_seed(seed)
    settings = {k: v for k, v in DEFAULTS[task].items() if k in ("steps", "batch", "track_every")}
    for key, value in (("steps", steps), ("batch", batch), ("track_every", track_every)):
        if value is not None:
            settings[key] = value
    recipe = Recipe(settings["steps"], lr, "adam", schedule, clip, settings["track_every"])
    batch = check_int(settings["batch"], "batch")
    target = resolve_device(device)
    inputs_k, outputs = (2, 1) if task in MARKER_TASKS else (1, 10)
    net = build_model(model, inputs_k, hidden, outputs, derived_seed(seed, 1), p=p, tau_a=tau_a, tau_w=tau_w,
                      reduction=reduction)
    source = mnist_fingerprint(data_dir) if task == "mnist" and data_dir is not None else {}
    splits = load_long_range(task, T, data_seed=data_seed, train_size=train_size, val_size=val_size,
                             test_size=test_size, data_dir=data_dir, train_subset=train_subset)
    train, validation, test = (tuple(t.to(target) for t in splits[k]) for k in ("train", "validation", "test"))
    if batch > len(train[1]):
        raise NumericsError(f"batch {batch} exceeds the {len(train[1])} training sequences")
    length = int(train[0].shape[1])
    what = f"{model} on {task} (T = {length})"

    start = time.perf_counter()
    with torch_threads(threads):
        net = net.to(target)
        order = torch.Generator().manual_seed(derived_seed(seed, 2))
        curve = {"step": [], "train_loss": [], "regularizer": [], "val_loss": [], "val_metric": [], "test_metric": []}
        selection = Selection()
        kind, score = ("mse", _fraction_correct) if task in MARKER_TASKS else ("ce", _accuracy)

        def evaluate(step: int) -> None:
            net.eval()
            with torch.no_grad():
                train_loss = float(task_loss(kind, in_chunks(net, train[0][:PROBE]), train[1][:PROBE]))
                penalty = float(net.regularizer())
                val_out = in_chunks(net, validation[0])
                val_loss, val_metric = float(task_loss(kind, val_out, validation[1])), score(val_out, validation[1])
                test_metric = score(in_chunks(net, test[0]), test[1])
            net.train()
            if not math.isfinite(train_loss):
                raise TrainingDiverged(what, step, train_loss, curve)
            for key, value in zip(curve, (step, train_loss, penalty, val_loss, val_metric, test_metric)):
                curve[key].append(value)
            selection.offer(step, val_metric, net)

        epoch = {"order": None, "position": 0}  # minibatches without replacement, a fresh permutation every epoch

        def objective(step: int) -> torch.Tensor:
            if epoch["order"] is None or epoch["position"] + batch > len(epoch["order"]):
                epoch.update(order=torch.randperm(len(train[1]), generator=order), position=0)
            rows = epoch["order"][epoch["position"]:epoch["position"] + batch].to(target)
            epoch["position"] += batch
            return task_loss(kind, net(train[0][rows]), train[1][rows]) + net.regularizer()

        fit(net, recipe, objective, what=what, curve=curve, evaluate=evaluate)
        with selection.selected(net):
            parameters = None
            if isinstance(net, PLRNN):
                parameters = {k: v.tolist() for k, v in net.dynamics().items()}
                parameters["B"] = net.B.detach().to("cpu", torch.float64).tolist()
            states = _visited_states(net, test[0], seed)
            trajectory = None
            if isinstance(net, PLRNN):  # z_0 … z_T of the first test sequence, for Jacobian products
                with torch.no_grad():
                    path = torch.cat([net.z0.detach()[None], net.states(test[0][:1])[0]])
                trajectory = path.to("cpu", torch.float64).tolist()
    seconds = time.perf_counter() - start

    at = curve["step"].index(selection.step)
    best = int(np.argmax(curve["test_metric"]))  # the first maximum
    config = {"task": task, "T": length, "model": model, "seed": seed, "hidden": int(hidden), "steps": recipe.steps,
              "batch": batch, "lr": recipe.lr, "schedule": schedule, "clip": recipe.clip, "optimizer": "adam",
              "track_every": recipe.track_every, "data_seed": int(data_seed),
              "sizes": {k: len(v[1]) for k, v in (("train", train), ("validation", validation), ("test", test))},
              "regularizer": ({"p": float(p), "tau_a": float(tau_a), "tau_w": float(tau_w), "reduction": reduction,
                               "units": net.regularized} if model == "rplrnn" else None),
              "tolerance": TOLERANCE if task in MARKER_TASKS else None, "device": str(target),
              "threads": threads, "dtype": str(torch.get_default_dtype()).removeprefix("torch."),
              "versions": versions(), **source}
    if train_subset is not None:
        config["train_subset"] = int(train_subset)
    return {"config": config, "metric": "fraction_correct" if task in MARKER_TASKS else "accuracy", "curve": curve,
            "selected": {"step": selection.step, "val_metric": curve["val_metric"][at],
                         "test_metric": curve["test_metric"][at]},
            "best_test": {"step": curve["step"][best], "test_metric": curve["test_metric"][best]},
            "final": {"step": curve["step"][-1], "val_metric": curve["val_metric"][-1],
                      "test_metric": curve["test_metric"][-1]},
            "parameters": parameters, "states": states, "trajectory": trajectory, "timing": {"seconds": seconds}}
