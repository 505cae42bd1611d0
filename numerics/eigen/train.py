"""The eigen benchmark's training run: one torch recurrent network on one task, with the eigenvalues
of every recurrent gate block recorded along the way.

    train_classifier(task, cell, init, seed, *, hidden=32, steps=…, …) → a JSON-ready dict

Tasks: `tasks.load_task` (tomita:N, digits, recall:D, mnist, pmnist); the network:
`model.build_model` (torch's nn.RNN / nn.LSTM / nn.GRU and a linear readout); the loop: the
training runtime's `fit`. Each step draws `batch` training sequences uniformly with replacement
from a generator seeded by `derived_seed(seed, 2)`; at steps 0, track_every, 2·track_every, … and
the last, the whole train and test sets are scored and the spectra of the gate blocks recorded.
One torch thread per run by default (`torch_threads`). Nothing reads torch's global generator, so
a seed gives the same numbers on the CPU (on a GPU, cuDNN's RNN kernels may differ in the last bits).
A run on MNIST records the resolved directory and `mnist_fingerprint` of its files in its config,
so results from different files never pass as one.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from ..data.digits import mnist_fingerprint
from ..device import resolve_device
from ..errors import TrainingDiverged, check_choice, check_int
from ..train.runtime import Recipe, check_seed, derived_seed, fit, in_chunks, task_loss, task_metric, torch_threads
from .model import CELLS, SequenceClassifier, build_model, spectra
from .names import DEFAULTS, MNIST_TASKS
from .tasks import Task, load_task


def train_classifier(task: str, cell: str, init: str, seed: int, *, hidden: int = 32, layers: int = 1,
                     steps: int | None = None, batch: int | None = None, lr: float | None = None,
                     optimizer: str = "adam", clip: float | None = 1.0, track_every: int | None = None,
                     threshold: float | None = None, data_seed: int = 0, device: str = "cpu",
                     threads: int | None = 1, data_dir=None, train_subset: int | None = None) -> dict:
    """Train one network on one task; its learning curve, spectra and config as JSON-ready numbers.

    task: tomita:N, digits, recall:D, mnist or pmnist (`tasks`); cell: rnn, rnn-tanh, rnn-relu, lstm, gru;
    init: an initializer of `numerics.models.initializers` as 'name' or 'name:key=value,…', or
    eigen:FILE. steps, batch, lr, track_every, threshold default per task kind (`names.DEFAULTS`).
    clip: the gradient-norm clip (None: none). threads: torch's intra-op threads during the run
    (None leaves the setting alone). data_dir: the MNIST directory, needed by mnist and pmnist;
    train_subset: train on that many training sequences (a seeded choice by data_seed; None: all).

    Returns {"config", "curve": {"step", "train_loss", "test_metric"} (the whole train and test sets,
    at steps 0, track_every, 2·track_every, …, and the last step), "metric" ("accuracy" or "r2"),
    "final_metric", "threshold", "steps_to_threshold" (the first tracked step whose test metric is
    ≥ threshold, so its resolution is track_every; None if never), "eigenvalues": {"layer/gate":
    [one list of [real, imag] per tracked step]}}.
    Raises NumericsError for an unknown task, cell, initializer or option, TrainingDiverged (a
    NumericsError) when a training loss is not finite.
    """
    run = Run.prepare(task, cell, hidden=hidden, layers=layers, steps=steps, batch=batch, lr=lr,
                      optimizer=optimizer, clip=clip, track_every=track_every, threshold=threshold,
                      data_seed=data_seed, device=device, data_dir=data_dir, train_subset=train_subset)
    check_seed(seed)
    with torch_threads(threads):
        model = build_model(run.data, cell, init, seed, hidden, layers).to(run.device)
        batches = torch.Generator().manual_seed(derived_seed(seed, 2))
        tracker = Tracker(run, f"{cell} on {task}")
        inputs, lengths, targets = run.train

        def objective(step: int) -> torch.Tensor:
            rows = torch.randint(len(targets), (run.batch,), generator=batches).to(run.device)
            return task_loss(run.data.loss, model(inputs[rows], lengths[rows]), targets[rows])

        fit(model, run.recipe, objective, what=tracker.what, curve=tracker.curve,
            evaluate=lambda step: tracker.track(model, step))
    return tracker.result(init, seed)


@dataclasses.dataclass
class Run:
    """The checked settings and data of a training run, shared by every network trained with them."""
    data: Task
    cell: str
    hidden: int
    layers: int
    recipe: Recipe
    batch: int
    threshold: float
    data_seed: int
    train_subset: int | None
    source: dict
    device: torch.device
    train: tuple
    test: tuple

    @classmethod
    def prepare(cls, task: str, cell: str, *, hidden: int = 32, layers: int = 1, steps=None, batch=None, lr=None,
                optimizer: str = "adam", clip: float | None = 1.0, track_every=None, threshold=None,
                data_seed: int = 0, device: str = "cpu", data_dir=None, train_subset: int | None = None) -> "Run":
        """Check the options (one-line NumericsError for a bad one) and load the task's data."""
        data = load_task(task, data_seed, data_dir=data_dir, train_subset=train_subset)
        source = mnist_fingerprint(data_dir) if data.kind in MNIST_TASKS else {}
        settings = dict(DEFAULTS[data.kind])
        for key, value in (("steps", steps), ("batch", batch), ("lr", lr), ("track_every", track_every),
                           ("threshold", threshold)):
            if value is not None:
                settings[key] = value
        recipe = Recipe(settings["steps"], settings["lr"], optimizer, "constant", clip, settings["track_every"])
        check_choice(cell, "cell", CELLS)
        target = resolve_device(device)
        return cls(data, cell, hidden, layers, recipe, check_int(settings["batch"], "batch"), settings["threshold"], data_seed, train_subset, source,
                   target, tuple(t.to(target) for t in data.train), tuple(t.to(target) for t in data.test))

    def config(self, init: str, seed: int) -> dict:
        recipe = self.recipe
        config = {"task": self.data.name, "cell": self.cell, "init": init, "seed": int(seed), "hidden": self.hidden,
                  "layers": self.layers, "steps": recipe.steps, "batch": self.batch, "lr": recipe.lr,
                  "optimizer": recipe.optimizer, "clip": None if recipe.clip is None else float(recipe.clip),
                  "track_every": recipe.track_every, "data_seed": self.data_seed, "data": self.data.sizes(),
                  "dtype": str(torch.get_default_dtype()).removeprefix("torch."), "torch": torch.__version__,
                  **self.source}
        if self.train_subset is not None:
            config["train_subset"] = int(self.train_subset)
        return config


class Tracker:
    """A run's learning curve and spectra: the whole train and test sets scored at tracked steps."""

    def __init__(self, run: Run, what: str):
        self.run, self.what = run, what
        self.curve = {"step": [], "train_loss": [], "test_metric": []}
        self.spectra: dict[str, list] = {}

    def track(self, model: SequenceClassifier, step: int) -> None:
        run, task = self.run, self.run.data
        model.eval()
        with torch.no_grad():
            train_loss = float(task_loss(task.loss, in_chunks(model, *run.train[:2]), run.train[2]))
            score = task_metric(task.metric, in_chunks(model, *run.test[:2]), run.test[2], task.loss)
        model.train()
        if not math.isfinite(train_loss):
            raise TrainingDiverged(self.what, step, train_loss, self.curve)
        self.curve["step"].append(step)
        self.curve["train_loss"].append(train_loss)
        self.curve["test_metric"].append(score)
        for key, values in spectra(model).items():
            self.spectra.setdefault(key, []).append(values)

    def result(self, init: str, seed: int) -> dict:
        curve, threshold = self.curve, float(self.run.threshold)
        reached = [s for s, m in zip(curve["step"], curve["test_metric"]) if m >= threshold]
        return {"config": self.run.config(init, seed), "curve": curve, "metric": self.run.data.metric,
                "final_metric": curve["test_metric"][-1], "threshold": threshold,
                "steps_to_threshold": reached[0] if reached else None, "eigenvalues": self.spectra}
