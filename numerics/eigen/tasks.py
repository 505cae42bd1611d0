"""The eigen benchmark's tasks as tensors (nothing is downloaded): `load_task(task, data_seed)` → `Task`.

  tomita:N   Tomita grammar N (1–7), binary: train on lengths 1–12, test on the longer lengths 13–24
             (even and odd, so grammars 2 and 5, which accept nothing of odd length, have both
             classes in the test set); 64 strings per length, balanced within each length where
             both classes exist (`numerics.data.tomita.dataset`). Inputs one-hot (2 channels).
             Metric: accuracy of the sign of one logit; loss binary cross-entropy.
  digits     scikit-learn's 8×8 digits as 64 steps of one pixel (`numerics.data.digits`), 10 classes,
             the 60% train split for training and the 20% test split for the metric (the validation
             split is not used). Metric: accuracy; loss cross-entropy.
  recall:D   regression: a value v ~ U(−1, 1) is the input at step 0, followed by D steps of zero
             input; the target, read at the last step (D + 1 steps in all), is v itself. A network
             that solves it holds v in a mode with |λ| ≈ 1 (or in a fixed point of its dynamics).
             1024 training and 512 test values. Metric: R² = 1 − MSE / Var(v) on the test values;
             loss MSE.
  mnist      pixel-by-pixel MNIST (Le et al. 2015): the standard IDX files in a directory the caller
             names (`data_dir`; `numerics.data.digits.mnist_sequences`, nothing downloaded) as 784
             steps of one pixel in [0, 1], row-major; the 60 000 training images for training (or a
             seeded `train_subset` of them) and the 10 000 test images for the metric. 10 classes,
             accuracy, cross-entropy. Without `data_dir` the task is refused in one line.
  pmnist     permuted MNIST: the same, every image read in one fixed pixel order,
             `pixel_permutation(784, data_seed)`, so the order depends on `data_seed` only.
The data depend on `data_seed` only (default 0), so every cell, initializer and seed of a
benchmark sees the same strings, images and values. `train_subset` (any task; default all) trains
on that many training sequences, a seeded choice by `data_seed`, e.g. to run MNIST on a CPU.
"""
from __future__ import annotations

import re

import numpy as np
import torch

from ..data import tomita
from ..data.digits import digits_sequences, mnist_sequences
from ..errors import NumericsError, check_int
from .names import MNIST_TASKS, TASKS

TOMITA_TRAIN, TOMITA_TEST, TOMITA_PER_LENGTH = range(1, 13), range(13, 25), 64
RECALL_TRAIN, RECALL_TEST, RECALL_MAX_DELAY = 1024, 512, 10_000


class Task:
    """A task's tensors and how it is scored: inputs (N, T, C), lengths (N,), targets, per split."""

    def __init__(self, name: str, kind: str, outputs: int, loss: str, metric: str, train: tuple, test: tuple):
        self.name, self.kind, self.outputs, self.loss, self.metric = name, kind, outputs, loss, metric
        self.train, self.test = train, test  # (inputs, lengths, targets)

    @property
    def input_size(self) -> int:
        return self.train[0].shape[-1]

    def sizes(self) -> dict:
        return {"train": len(self.train[2]), "test": len(self.test[2]),
                "train_steps": int(self.train[0].shape[1]), "test_steps": int(self.test[0].shape[1])}


def _positive_int(text: str, what: str, task: str) -> int:
    if not re.fullmatch(r"\d+", text or ""):
        raise NumericsError(f"task {task!r}: {what} must be a whole number, got {text!r}")
    return int(text)


def _subset(split: tuple, count: int | None, data_seed: int, task: str) -> tuple:
    if count is None:
        return split
    count = check_int(count, "train_subset")
    if count > len(split[2]):
        raise NumericsError(f"task {task!r}: train_subset {count} exceeds its {len(split[2])} training sequences")
    rows = np.sort(np.random.default_rng(np.random.SeedSequence([data_seed, 3])).choice(len(split[2]), count,
                                                                                          replace=False))
    rows = torch.as_tensor(rows)
    return tuple(t[rows] for t in split)


def load_task(task: str, data_seed: int = 0, *, data_dir=None, train_subset: int | None = None) -> Task:
    """The data of a task string (see the module docstring), on the CPU in the default dtype.

    data_dir: the MNIST directory (mnist and pmnist need it; the other tasks ignore it).
    train_subset: train on that many training sequences, a seeded choice by data_seed (None: all).
    """
    data = _load_task(task, data_seed, data_dir)
    data.train = _subset(data.train, train_subset, data_seed, task)
    return data


def _load_task(task: str, data_seed: int, data_dir) -> Task:
    if not isinstance(task, str):
        raise NumericsError(f"a task is a string ({', '.join(TASKS)}), got {task!r}")
    kind, _, arg = task.partition(":")
    if kind in MNIST_TASKS and not arg:
        if data_dir is None:
            raise NumericsError(f"task {task!r} needs the directory of the MNIST IDX files (data_dir; "
                                "--data-dir DIR on the command line)")
        data = mnist_sequences(data_dir, permuted=kind == "pmnist", seed=data_seed)
        train, test = ((x, torch.full((len(y),), x.shape[1], dtype=torch.long), y)
                       for x, y in (data["train"], data["test"]))
        return Task(task, kind, 10, "ce", "accuracy", train, test)
    if kind == "tomita":
        grammar = _positive_int(arg, "the grammar number", task)
        data = tomita.dataset(grammar, TOMITA_TRAIN, TOMITA_TEST, TOMITA_PER_LENGTH, data_seed)
        train, test = ((b.inputs, b.lengths, b.labels) for b in (data["train"], data["test"]))
        return Task(task, kind, 1, "bce", "accuracy", train, test)
    if kind == "digits" and not arg:
        data = digits_sequences(data_seed)
        train, test = ((x, torch.full((len(y),), x.shape[1], dtype=torch.long), y)
                       for x, y in (data["train"], data["test"]))
        return Task(task, kind, 10, "ce", "accuracy", train, test)
    if kind == "recall":
        delay = _positive_int(arg, "the delay D", task)
        if not 1 <= delay <= RECALL_MAX_DELAY:
            raise NumericsError(f"task {task!r}: the delay must be 1 to {RECALL_MAX_DELAY}, got {delay}")
        rng = np.random.default_rng(np.random.SeedSequence([data_seed, delay]))

        def split(count):
            values = torch.as_tensor(rng.uniform(-1, 1, count), dtype=torch.get_default_dtype())
            inputs = torch.zeros(count, delay + 1, 1)
            inputs[:, 0, 0] = values
            return inputs, torch.full((count,), delay + 1, dtype=torch.long), values.unsqueeze(-1)
        return Task(task, kind, 1, "mse", "r2", split(RECALL_TRAIN), split(RECALL_TEST))
    raise NumericsError(f"unknown task {task!r} (choose {', '.join(TASKS)})")


