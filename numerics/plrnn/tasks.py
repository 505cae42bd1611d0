"""The long-range tasks of the rPLRNN paper as splits of tensors, and how each is scored.

  addition, multiplication   `numerics.data.long_range` at length T: train, validation and test
             sets generated from SeedSequence([data_seed, task, T, split]), sizes `train_size`,
             `val_size`, `test_size` (defaults: `names.DEFAULTS`; the public code used 100 000 and 10 000 test).
             MSE on the output after the last step; metric: the fraction of trials with |error| < 0.04.
  digits     scikit-learn's 8×8 digits as 64 steps of one pixel in [0, 1], the 60/20/20 seeded
             train/validation/test split of `numerics.data.digits.digits_sequences`. T is 64 (or None).
  mnist      sequential MNIST, 784 steps of one normalized pixel (`mnist_normalized`), from the IDX
             files in `data_dir` (refused without it): validation = `val_size` (default 5 000) of the
             60 000 training images, a seeded choice; test = the 10 000 test images (or a seeded
             `test_size` of them). T is 784 (or None).
  digits and mnist: cross-entropy on the 10 outputs after the last step; metric: accuracy.
`train_subset` (any task) trains on that many training sequences, a seeded choice by data_seed.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.digits import digits_sequences
from ..data.long_range import fraction_correct, marker_problem, mnist_normalized
from ..errors import NumericsError, check_int
from ..train.runtime import task_loss, task_metric
from .names import DEFAULTS, LENGTHS, MARKER_TASKS, TASKS


def scoring(task: str) -> tuple[str, str]:
    """(the loss, the metric) of a task: ("mse", "fraction_correct") or ("ce", "accuracy")."""
    return ("mse", "fraction_correct") if task in MARKER_TASKS else ("ce", "accuracy")


def score(task: str, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """(loss, metric) of one run's outputs on a split."""
    loss, metric = scoring(task)
    value = fraction_correct(outputs, targets) if metric == "fraction_correct" else task_metric("accuracy", outputs,
                                                                                                 targets)
    return float(task_loss(loss, outputs, targets)), value


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


