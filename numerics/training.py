"""Training a linear RNN beside its infinite-width equivalent, from the same initial function.

Three trainers see the same data, the same step size and the same initial function:
  rnn           a `LinearRNN`, trained by `train`;
  convolution   a `ScaledConvolution` (the impulse response with per-lag rate α_j), trained by `train`;
  closed_form   `kernel_gradient_descent`, the exact gradient-descent trajectory of the convolution.

Conventions
- On length-T sequences the prediction is the causal convolution with the first T Markov
  parameters, ŷ = X L (`design_matrix`, `predict`), and training goes through that form: it is the
  recurrence's output exactly (tests check it) and costs O(T n²) a step whatever the batch.
- Loss: ½ · mean over samples, positions and outputs of (ŷ − y)². With N averaged entries a step η
  on the parameters moves the function by η/N times the kernel, so the closed form steps by η/N.
- center: train f − f_0 (the function minus its initial value), so every trainer starts from 0.
- lazy_scale A: the output is multiplied by A and the objective divided by A²; the function then
  moves with the same kernel while the parameters move A times less. Reported losses are the
  ½-MSE of the scaled output, without the 1/A².
- Impulse responses are the effective ones the loss sees, A·(L − L(0)) or A·L.
- White inputs have identity covariance, so the test excess error is ‖L − L*‖² over the T lags.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from derivations.spec import DEFAULT, Spec

from .device import resolve_device, resolve_dtype
from .errors import NumericsError, TrainingDiverged
from .model import LinearRNN, causal_convolution, lagged_inputs
from .ntk import gram_diagonal, generic_tangent_gram, largest_cross_term, structured_tangent_gram, theory_lag_weights
from .teachers import parse_teacher

TASKS = ("seq2one", "seq2seq")
OPTIMIZERS = ("gd", "sgd", "adam")
KERNELS = ("theory", "empirical")
DIVERGENCE_FACTOR = 1e6  # a loss this many times its initial value counts as diverged


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


def predict(X: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """ŷ = X L: (samples, positions, lags, n_x) with (lags, n_y, n_x) → (samples, positions, n_y)."""
    return torch.einsum("nrjc,jac->nra", X, L)


def half_mse(X: torch.Tensor, L: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (predict(X, L) - y).square().mean()


@dataclasses.dataclass(frozen=True)
class Problem:
    """What every trainer sees: train and test design tensors and targets, and the teacher (lags, n_y, n_x)."""

    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    teacher: torch.Tensor


def make_problem(teacher: np.ndarray, samples: int, length: int, task: str, test_samples: int, seed: int,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Problem:
    """White-noise inputs labelled by a scalar teacher impulse response of `length` lags."""
    generator = torch.Generator().manual_seed(seed)
    L_star = torch.as_tensor(teacher, dtype=dtype, device=device).reshape(length, 1, 1)
    X, X_test = (design_matrix(white_noise_data(count, length, 1, generator, dtype, device), task)
                 for count in (samples, test_samples))
    return Problem(X, predict(X, L_star), X_test, predict(X_test, L_star), L_star)


class ScaledConvolution(nn.Module):
    """A causal convolution trained with per-lag rate α_j: L_j = L0_j + √(α_j / n_x) θ_j, θ(0) = 0.

    A gradient step η on θ moves L_j by η α_j / n_x times its gradient: gradient descent on the
    impulse response under the kernel Θ = Σ_j α_j <x_{k-j}, x'_{k'-j}> / n_x, the RNN's kernel at
    infinite width. Same interface as `LinearRNN` (markov_parameters, forward, param_groups).
    """

    def __init__(self, alpha: torch.Tensor, L0: torch.Tensor):
        super().__init__()
        self.register_buffer("L0", L0.detach().clone())
        self.register_buffer("scale", (alpha.to(L0) / L0.shape[2]).sqrt()[:, None, None])
        self.theta = nn.Parameter(torch.zeros_like(self.L0))

    def markov_parameters(self, lags: int) -> torch.Tensor:
        if lags > self.L0.shape[0]:
            raise NumericsError(f"the convolution has {self.L0.shape[0]} lags, {lags} were asked for")
        return (self.L0 + self.scale * self.theta)[:lags]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return causal_convolution(self.markov_parameters(x.shape[1]), x)

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.theta], "lr": lr}]


def _geometric_sum(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Σ_{s<t} (1 - x)^s = (1 - (1 - x)^t) / x, kept accurate as x → 0, where it tends to t."""
    below = x < 1
    decay = torch.where(below, torch.expm1(t * torch.log1p(-torch.where(below, x, 0.0))), (1 - x) ** t - 1)
    safe = torch.where(x == 0, 1.0, x)
    return torch.where(x == 0, t, -decay / safe)


def kernel_gradient_descent(X: torch.Tensor, y: torch.Tensor, alpha: torch.Tensor, L0: torch.Tensor,
                            lr: float, steps: int) -> torch.Tensor:
    """Gradient descent on the impulse response with per-lag rate α_j, in closed form, at steps 0 … steps.

    With D = diag(α_j / n_x) over the (lag, input) columns, K = X D Xᵀ = Q diag(w) Qᵀ and the loss's
    step ε = η/N (N entries averaged),
        L(t) = L(0) + D Xᵀ Q diag(g_t(w)) Qᵀ (y − X L(0)),  g_t(w) = ε Σ_{s<t} (1 − εw)^s,
    which is (1 − (1 − εw)^t)/w, or t·ε on a flat direction (w = 0). It is evaluated from the lag
    side, D Xᵀ g(X D Xᵀ) = D^{1/2} g(A) D^{1/2} Xᵀ with A = D^{1/2} XᵀX D^{1/2} (g is a polynomial),
    so the eigenproblem has the size of the lags, not of the samples.
    X: (samples, positions, lags, n_x), y: (samples, positions, n_y), L0: (lags, n_y, n_x).
    Returns (steps + 1, lags, n_y, n_x).
    """
    lags, n_y, n_x = L0.shape
    rows = X.reshape(-1, lags * n_x)
    root = (alpha.to(X) / n_x).repeat_interleave(n_x).sqrt()  # D^{1/2}, one entry per (lag, input) column
    eps = lr / (rows.shape[0] * n_y)  # the loss averages over rows and outputs
    w, P = torch.linalg.eigh(root[:, None] * (rows.T @ rows) * root[None, :])
    start = L0.permute(0, 2, 1).reshape(lags * n_x, n_y)
    pulled = P.T @ (root[:, None] * (rows.T @ (y.reshape(-1, n_y) - rows @ start)))
    t = torch.arange(steps + 1, dtype=X.dtype, device=X.device)[:, None]
    gains = eps * _geometric_sum(eps * w[None, :], t)  # (steps + 1, lags·n_x)
    moves = root[:, None] * (P @ (gains[:, :, None] * pulled))  # (steps + 1, lags·n_x, n_y)
    return (start + moves).reshape(steps + 1, lags, n_x, n_y).permute(0, 1, 3, 2)


def stable_lr(X: torch.Tensor, grams: list[torch.Tensor], optimizer: str) -> float:
    """A step that keeps the residual dynamics r ← (1 − η K / N) r stable for every tangent Gram given.

    K = X (G / n_x) Xᵀ over (row, output) pairs, N their number.
    gd: η = N / λ_max(K), the fastest mode removed in one step (stable up to 2N / λ_max); λ_max is
        taken from the lag side, (XᵀX ⊗ I_{n_y}) G / n_x, which has the same nonzero eigenvalues.
    sgd: η = 1 / max_i K_ii, since λ_max(K_B) ≤ tr K_B ≤ N_B max_i K_ii bounds every minibatch.
    """
    if optimizer not in ("gd", "sgd"):
        raise NumericsError(f"lr='auto' is defined for gd and sgd, not {optimizer} (its step does not follow the kernel)")
    steps = []
    for gram in grams:
        lags, n_y, n_x = gram.shape[:3]
        rows = X.reshape(-1, lags, n_x)
        if optimizer == "gd":
            lag_side = torch.einsum("mjc,mJd,Jadkef->jackef", rows, rows, gram / n_x).reshape(gram.shape[:3].numel(), -1)
            steps.append(rows.shape[0] * n_y / float(torch.linalg.eigvals(lag_side).real.max()))
        else:
            steps.append(1 / float(torch.einsum("mjc,jacJad,mJd->ma", rows, gram / n_x, rows).max()))
    return min(steps)


def _curves(problem: Problem, responses: torch.Tensor) -> dict:
    """Train loss, test loss and test excess error ‖L − L*‖² along a trajectory of impulse responses."""
    return {
        "train_loss": [float(half_mse(problem.X, L, problem.y)) for L in responses],
        "test_loss": [float(half_mse(problem.X_test, L, problem.y_test)) for L in responses],
        "test_error": [float((L - problem.teacher).square().sum()) for L in responses],
    }


def train(model: nn.Module, problem: Problem, *, lr: float, steps: int, optimizer: str = "gd", center: bool = False,
          lazy_scale: float = 1.0, batch_size: int | None = None, seed: int = 0, name: str = "model",
          progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The one training loop: any module with `markov_parameters` and `param_groups`, on the ½-MSE.

    gd uses every sample each step; sgd a random minibatch of `batch_size` samples (default a quarter),
    drawn from `seed` so that every trainer sees the same minibatches; adam is full-batch Adam.
    Returns the curves of `_curves` and 'responses', the effective impulse response at steps
    0 … steps. Raises `TrainingDiverged` when the train loss is non-finite or passes
    DIVERGENCE_FACTOR times its initial value.
    """
    if optimizer not in OPTIMIZERS:
        raise NumericsError(f"unknown optimizer {optimizer!r} (choose {', '.join(OPTIMIZERS)})")
    lags, samples = problem.teacher.shape[0], problem.X.shape[0]
    initial = model.markov_parameters(lags).detach()
    groups = model.param_groups(lr)
    opt = torch.optim.Adam(groups) if optimizer == "adam" else torch.optim.SGD(groups)
    batch = batch_size or max(1, samples // 4)
    batches = torch.Generator().manual_seed(seed)
    responses, first_loss = [], None
    for step in range(steps + 1):
        L = model.markov_parameters(lags)
        L = lazy_scale * (L - initial if center else L)
        loss = float(half_mse(problem.X, L.detach(), problem.y))
        responses.append(L.detach())
        first_loss = loss if first_loss is None else first_loss
        if not math.isfinite(loss) or (first_loss > 0 and loss > DIVERGENCE_FACTOR * first_loss):
            raise TrainingDiverged(name, step, loss, {"responses": torch.stack(responses), **_curves(problem, responses)})
        if progress:
            progress(name, step, steps)
        if step == steps:
            break
        rows = torch.randperm(samples, generator=batches)[:batch] if optimizer == "sgd" else slice(None)
        objective = half_mse(problem.X[rows], L, problem.y[rows]) / lazy_scale**2
        opt.zero_grad()
        objective.backward()
        opt.step()
    return {"responses": torch.stack(responses), **_curves(problem, responses)}


def compare_training(teacher: str, *, width: int, spec: Spec = DEFAULT, sigma_w: float = 0.5, sigma_f: float = 1.0,
                     sigma_c: float = 1.0, sigma_d: float = 1.0, steps: int = 200, samples: int = 20, length: int = 40,
                     task: str = "seq2one", optimizer: str = "gd", lr: float | str = "auto", center: bool = False,
                     lazy_scale: float = 1.0, kernel: str = "theory", batch_size: int | None = None,
                     test_samples: int = 500, teacher_seed: int = 0, device: str = "cpu", dtype: str = "float64",
                     seed: int = 0, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train an RNN, its scaled convolution and the closed form from the same initial function.

    kernel: where the convolution's lag weights α_j come from — 'theory' (derivations.emit) or
    'empirical' (the diagonal of this RNN's tangent Gram at initialization). The closed form is
    gradient descent's trajectory; with sgd or adam it is still the gd prediction.
    Returns JSON-ready lists: per-trainer curves (rnn, convolution, closed_form), 'deviation'
    ‖L_rnn − L_conv‖ / ‖L_conv − L_conv(0)‖ per step (NaN at step 0, where it is 0/0), the lag
    weights, the responses, and 'final' with deviation and the three test excess errors.
    """
    if task not in TASKS:
        raise NumericsError(f"unknown task {task!r} (choose {' or '.join(TASKS)})")
    if kernel not in KERNELS:
        raise NumericsError(f"unknown kernel {kernel!r} (choose {' or '.join(KERNELS)})")
    if min(width, samples, length, test_samples, steps + 1) < 1 or not lazy_scale > 0:
        raise NumericsError("width, samples, length, test_samples and lazy_scale must be positive, steps non-negative")
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    model_seed, data_seed, batch_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(3))
    problem = make_problem(parse_teacher(teacher, length, teacher_seed), samples, length, task, test_samples,
                           data_seed, dtype, device)
    sigmas = {"W": sigma_w, "F": sigma_f, "C": sigma_c, "D": sigma_d}
    rnn = LinearRNN(spec, width, sigmas=sigmas, dtype=dtype, device=device, seed=model_seed)
    rnn_gram = structured_tangent_gram(rnn, length)
    empirical = gram_diagonal(rnn_gram)
    alpha = empirical if kernel == "empirical" else torch.as_tensor(theory_lag_weights(spec, length, sigmas)).to(empirical)
    initial = rnn.markov_parameters(length).detach()
    convolution = ScaledConvolution(alpha, initial)
    if lr == "auto":
        lr = stable_lr(problem.X, [rnn_gram, generic_tangent_gram(convolution, length)], optimizer)
    start = torch.zeros_like(initial) if center else lazy_scale * initial
    closed = kernel_gradient_descent(problem.X, problem.y, alpha, start, lr, steps)
    runs = {"closed_form": {"responses": closed, **_curves(problem, closed)}}
    options = dict(lr=lr, steps=steps, optimizer=optimizer, center=center, lazy_scale=lazy_scale,
                   batch_size=batch_size, seed=batch_seed, progress=progress)
    try:
        for name, model in (("convolution", convolution), ("rnn", rnn)):
            runs[name] = train(model, problem, name=name, **options)
    except TrainingDiverged as error:
        error.curves = {**runs, error.trainer: error.curves}
        raise
    L_rnn, L_conv = runs["rnn"].pop("responses"), runs["convolution"].pop("responses")
    closed = runs["closed_form"].pop("responses")
    norms = lambda L: L.flatten(1).norm(dim=1)  # noqa: E731 - per-step Frobenius norm
    deviation = (norms(L_rnn - L_conv) / norms(L_conv - L_conv[0])).tolist()
    flat = lambda L: L.flatten().tolist()  # noqa: E731
    return {
        "lr": float(lr),
        "step": list(range(steps + 1)),
        **runs,
        "deviation": deviation,
        "lag_weights": flat(alpha),
        "empirical_lag_weights": flat(empirical),
        "largest_cross_term": largest_cross_term(rnn_gram),
        "response": {"teacher": flat(problem.teacher), "initial": flat(start), "rnn": flat(L_rnn[-1]),
                     "convolution": flat(L_conv[-1]), "closed_form": flat(closed[-1])},
        "final": {"deviation": deviation[-1], "test_error_rnn": runs["rnn"]["test_error"][-1],
                  "test_error_conv": runs["convolution"]["test_error"][-1],
                  "test_error_closed_form": runs["closed_form"]["test_error"][-1]},
    }


def compare_training_many(configs: list[dict], progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """`compare_training` for many configurations (keyword dicts), results in the same order.

    Sweeps call this, not `compare_training`, so that configurations of one shape can be trained
    as one batched ensemble.
    """
    return [compare_training(**config, progress=progress) for config in configs]
