"""Long-range benchmark problems of the rPLRNN paper (docs/theory.md, paper 3), generated here.

- `addition_problem`, `multiplication_problem` (Hochreiter & Schmidhuber 1997, as the public
  reg-PLRNN code states them): two input channels over T steps. Channel 0 holds a value
  U[0, 1) at every step; channel 1 is 0 except for a 1 at two marked steps, t₁ ∈ {0, …, 9} and
  t₂ ∈ {0, …, ⌊T/2⌋ − 1}, drawn uniformly and drawn again, both, while they coincide (so the pair
  is uniform over the pairs with t₁ ≠ t₂; t₂ may come before t₁). The target, read after the
  last step, is the sum or the product of the two marked values. A trial is correct when the
  absolute error is below `TOLERANCE` = 0.04 (`correct`, `fraction_correct`). Predicting the
  mean target scores ≈ 0.078 (addition, density 1 at the mean 1) and ≈ 0.111 (multiplication,
  density −ln ¼ at the mean ¼): the chance levels docs/theory.md quotes.
- `mnist_normalized`: sequential MNIST for the PLRNN, `numerics.data.digits.mnist_sequences`
  (the same IDX reader as the eigen benchmark) with the public code's normalization
  (x − 0.1307)/0.3081 of pixels in [0, 1].

Every draw comes from `np.random.default_rng(SeedSequence(seed))` (`seed` an int or a sequence of
ints, e.g. [data_seed, split]), in float64, then becomes torch tensors in the default dtype:
inputs (N, T, 2), targets (N, 1).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import NumericsError
from .digits import mnist_sequences

TOLERANCE = 0.04  # |error| below this: a correct trial
FIRST_MARKER_STEPS = 10  # t₁ ∈ {0, …, 9}
MIN_LENGTH = 20  # T/2 must leave t₂ room beyond t₁'s range
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
COMBINE = {"addition": np.add, "multiplication": np.multiply}


def _entropy(seed) -> list[int]:
    values = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values):
        raise NumericsError(f"a data seed is an integer ≥ 0 or a sequence of them, got {seed!r}")
    return [int(v) for v in values]


def _check_length(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)):
        raise NumericsError(f"the sequence length T must be an integer, got {T!r}")
    if T < MIN_LENGTH:
        raise NumericsError(f"T must be ≥ {MIN_LENGTH} for the markers (t₁ ≤ 9, t₂ < T/2), got T = {T}")
    return int(T)


def marker_positions(T: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(t₁, t₂) for `count` sequences: t₁ uniform on {0..9}, t₂ on {0..⌊T/2⌋ − 1}, redrawn while equal."""
    first = rng.integers(0, FIRST_MARKER_STEPS, count)
    second = rng.integers(0, T // 2, count)
    clash = np.flatnonzero(first == second)
    while clash.size:
        first[clash] = rng.integers(0, FIRST_MARKER_STEPS, clash.size)
        second[clash] = rng.integers(0, T // 2, clash.size)
        clash = clash[first[clash] == second[clash]]
    return first, second


def marker_problem(task: str, T: int, count: int, seed) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` sequences of the addition or multiplication problem: (inputs (N, T, 2), targets (N, 1))."""
    if task not in COMBINE:
        raise NumericsError(f"unknown marker problem {task!r} (choose {', '.join(COMBINE)})")
    T = _check_length(T)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise NumericsError(f"the number of sequences must be an integer ≥ 1, got {count!r}")
    rng = np.random.default_rng(np.random.SeedSequence(_entropy(seed)))
    values = rng.random((count, T))
    first, second = marker_positions(T, count, rng)
    rows = np.arange(count)
    markers = np.zeros((count, T))
    markers[rows, first] = markers[rows, second] = 1.0
    targets = COMBINE[task](values[rows, first], values[rows, second])
    dtype = torch.get_default_dtype()
    inputs = torch.as_tensor(np.stack([values, markers], axis=-1), dtype=dtype)
    return inputs, torch.as_tensor(targets, dtype=dtype).unsqueeze(-1)


def addition_problem(T: int, count: int, seed) -> tuple[torch.Tensor, torch.Tensor]:
    """The addition problem: the target is the sum of the two marked values (see the module docstring)."""
    return marker_problem("addition", T, count, seed)


def multiplication_problem(T: int, count: int, seed) -> tuple[torch.Tensor, torch.Tensor]:
    """The multiplication problem: the target is the product of the two marked values."""
    return marker_problem("multiplication", T, count, seed)


def correct(outputs: torch.Tensor, targets: torch.Tensor, tolerance: float = TOLERANCE) -> torch.Tensor:
    """Boolean per trial: |output − target| < tolerance (outputs and targets (N, 1) or (N,))."""
    return (outputs.reshape(-1) - targets.reshape(-1)).abs() < tolerance


def fraction_correct(outputs: torch.Tensor, targets: torch.Tensor, tolerance: float = TOLERANCE) -> float:
    """The fraction of correct trials, the metric of the addition and multiplication problems."""
    return float(correct(outputs, targets, tolerance).to(torch.float64).mean())


def mnist_normalized(data_dir, *, permuted: bool = False, seed: int = 0) -> dict:
    """Sequential MNIST, 784 steps of one pixel, normalized as the public code: (x − 0.1307)/0.3081
    with x ∈ [0, 1]. {"train", "test"} → (inputs (N, 784, 1), labels (N,)), "permutation" as
    `mnist_sequences` (None unless permuted). Raises NumericsError without the directory or files."""
    if data_dir is None:
        raise NumericsError("sequential MNIST needs the directory of the MNIST IDX files (data_dir)")
    data = mnist_sequences(data_dir, permuted=permuted, seed=seed)
    for split in ("train", "test"):
        inputs, labels = data[split]
        data[split] = ((inputs - MNIST_MEAN) / MNIST_STD, labels)
    return data

