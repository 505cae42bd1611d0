"""What every trainer sees: a `Problem` (train and test designs, targets, a reference response),
the white-noise problems of a teacher impulse response, and the one way a run's seed is split.

Conventions: on length-T sequences the prediction is the causal convolution with the first T
Markov parameters, ŷ = X L (`design_matrix`, `predict`; by FFT from the raw inputs for long
seq2seq sequences). Loss: ½ · mean over samples, positions and outputs of (ŷ − y)². White
inputs have identity covariance, so the test excess error of a response is ‖L − L*‖².
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..device import resolve_device, resolve_dtype
from ..errors import NumericsError
from .convolution import FFT_MIN_LAGS, causal_convolution, lagged_inputs
from .teachers import parse_teacher

TASKS = ("seq2one", "seq2seq")


@dataclasses.dataclass(frozen=True)
class Seeds:
    """The independent seeds of one run: the network, the data, the minibatches."""

    model: int
    data: int
    batch: int


def split_seed(seed: int) -> Seeds:
    """The one way a run's seed becomes its model, data and minibatch seeds (numpy's SeedSequence)."""
    if not isinstance(seed, int) or seed < 0:
        raise NumericsError(f"a seed must be an integer ≥ 0, got {seed!r}")
    return Seeds(*(int(s) for s in np.random.SeedSequence(seed).generate_state(3)))


def white_noise_data(samples: int, length: int, n_x: int = 1, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> torch.Tensor:
    """Inputs x of shape (samples, length, n_x), iid N(0, 1), drawn on the CPU so a seed fixes them everywhere."""
    return torch.randn(samples, length, n_x, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)


def design_matrix(x: torch.Tensor, task: str) -> torch.Tensor:
    """Lagged inputs at the positions the task scores, shape (samples, positions, T, n_x).

    seq2one scores the last step only (1 position), seq2seq every step (T positions).
    """
    X = lagged_inputs(x, x.shape[1])
    if task == "seq2one":
        return X[:, -1:]
    if task == "seq2seq":
        return X
    raise NumericsError(f"unknown task {task!r} (choose {' or '.join(TASKS)})")


def predict(X: torch.Tensor, L: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """ŷ = X L: (samples, positions, lags, n_x) with (lags, n_y, n_x) → (samples, positions, n_y).

    Leading dimensions of X and L (before samples and lags) are independent problems. Given x,
    the raw inputs a seq2seq design X was built from, long responses are applied by FFT instead
    (`causal_convolution` chooses by size); the result is the same to rounding.
    """
    if x is not None and X.shape[-3] == x.shape[-2] and L.shape[-3] >= FFT_MIN_LAGS:
        return causal_convolution(L, x)
    return torch.einsum("...nrjc,...jac->...nra", X, L)


def half_mse(X: torch.Tensor, L: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """½ · mean of (ŷ − y)², one value per problem when X and L carry leading dimensions."""
    return 0.5 * (predict(X, L, x) - y).square().mean((-3, -2, -1))


@dataclasses.dataclass(frozen=True)
class Problem:
    """What every trainer sees: train and test design tensors and targets, and the teacher (lags, n_y, n_x).

    x and x_test, when given, are the raw input sequences (samples, T, n_x) behind a seq2seq
    design, which `predict` uses for the FFT path. A leading dimension on every tensor makes a
    stack of problems, one per ensemble member (`stack_problems`).
    """

    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    teacher: torch.Tensor
    x: torch.Tensor | None = None
    x_test: torch.Tensor | None = None


def stack_problems(problems: list[Problem]) -> Problem:
    """Problems of one shape as one, every tensor with a leading dimension (one entry per problem)."""
    fields = {}
    for field in dataclasses.fields(Problem):
        values = [getattr(p, field.name) for p in problems]
        fields[field.name] = None if any(v is None for v in values) else torch.stack(values)
    return Problem(**fields)


def make_problem(teacher: np.ndarray, samples: int, length: int, task: str, test_samples: int, seed: int,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Problem:
    """White-noise inputs labelled by a scalar teacher impulse response of `length` lags."""
    generator = torch.Generator().manual_seed(seed)
    L_star = torch.as_tensor(teacher, dtype=dtype, device=device).reshape(length, 1, 1)
    x, x_test = (white_noise_data(count, length, 1, generator, dtype, device) for count in (samples, test_samples))
    X, X_test = design_matrix(x, task), design_matrix(x_test, task)
    raw = (x, x_test) if task == "seq2seq" else (None, None)
    return Problem(X, predict(X, L_star), X_test, predict(X_test, L_star), L_star, *raw)



@dataclasses.dataclass(frozen=True)
class WhiteNoise:
    """Seq-to-one or seq-to-seq problems on white-noise inputs labelled by a teacher impulse response.

    teacher: a string of `parse_teacher` (decay:ρ, delay:k, …); teacher_seed draws random (lti) teachers.
    """

    teacher: str
    samples: int = 20
    length: int = 40
    task: str = "seq2one"
    test_samples: int = 500
    teacher_seed: int = 0

    def __post_init__(self):
        if self.task not in TASKS:
            raise NumericsError(f"unknown task {self.task!r} (choose {' or '.join(TASKS)})")
        if min(self.samples, self.length, self.test_samples) < 1:
            raise NumericsError("samples, length and test_samples must be positive")

    @classmethod
    def from_dict(cls, data: dict) -> "WhiteNoise":
        """The fields of `data` that describe the problem (a cell's config holds more)."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def shape(self) -> tuple:
        """What problems must share to be trained as one ensemble."""
        return (self.samples, self.length, self.task, self.test_samples)

    def problem(self, seed: int, dtype: str = "float64", device: str = "cpu") -> Problem:
        """The problem of run `seed` (its data seed, `split_seed(seed).data`)."""
        teacher = parse_teacher(self.teacher, self.length, self.teacher_seed)
        return make_problem(teacher, self.samples, self.length, self.task, self.test_samples,
                            split_seed(seed).data, resolve_dtype(dtype), resolve_device(device))
