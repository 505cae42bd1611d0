"""Training a linear RNN beside its infinite-width equivalent, from the same initial function.

Three trainers see the same data, the same step size and the same initial function:
  rnn           a `LinearRNN`, trained by `train`;
  convolution   a `ScaledConvolution` (the impulse response with per-lag rate α_j), trained by `train`;
  closed_form   `kernel_gradient_descent`, the exact gradient-descent trajectory of the convolution.

Conventions
- On length-T sequences the prediction is the causal convolution with the first T Markov
  parameters, ŷ = X L (`design_matrix`, `predict`; by FFT from the raw inputs for long seq2seq
  sequences), and training goes through that form: it is the recurrence's output exactly (tests
  check it) and costs O(T n²) a step whatever the batch (`LinearRNN.markov_parameters`).
- Ensembles: `compare_training_many` trains configurations of one shape as one batched
  computation, the networks stacked on a leading dimension (`LinearRNN.stack`, a stacked
  `ScaledConvolution`, `stack_problems`) and stepped together by the one loop (`train` is that
  loop for a single model); each member's numbers equal its own `compare_training` to rounding.
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
import inspect
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from derivations.spec import DEFAULT, Spec

from .device import resolve_device, resolve_dtype
from .errors import NumericsError, TrainingDiverged
from .model import FFT_MIN_LAGS, LinearRNN, causal_convolution, lagged_inputs
from .ntk import gram_diagonal, largest_cross_term, structured_tangent_gram, theory_lag_weights
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


class ScaledConvolution(nn.Module):
    """A causal convolution trained with per-lag rate α_j: L_j = L0_j + √(α_j / n_x) θ_j, θ(0) = 0.

    A gradient step η on θ moves L_j by η α_j / n_x times its gradient: gradient descent on the
    impulse response under the kernel Θ = Σ_j α_j <x_{k-j}, x'_{k'-j}> / n_x, the RNN's kernel at
    infinite width. Same interface as `LinearRNN` (markov_parameters, forward, param_groups).
    With α of shape (K, lags) and L0 (K, lags, n_y, n_x) it holds K convolutions (`members`).
    """

    def __init__(self, alpha: torch.Tensor, L0: torch.Tensor):
        super().__init__()
        self.register_buffer("L0", L0.detach().clone())
        self.register_buffer("scale", (alpha.to(L0) / L0.shape[-1]).sqrt()[..., None, None])
        self.theta = nn.Parameter(torch.zeros_like(self.L0))
        self.members = L0.shape[0] if L0.dim() == 4 else None

    def markov_parameters(self, lags: int) -> torch.Tensor:
        if lags > self.L0.shape[-3]:
            raise NumericsError(f"the convolution has {self.L0.shape[-3]} lags, {lags} were asked for")
        return (self.L0 + self.scale * self.theta)[..., :lags, :, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return causal_convolution(self.markov_parameters(x.shape[-2]), x)

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.theta], "lr": lr}]

    def tangent_gram(self, lags: int) -> torch.Tensor:
        """Its tangent Gram, diag(α_j) over the (lag, output, input) entries: what `generic_tangent_gram`
        computes by autodiff (the same floating-point operations, so the same numbers), without it."""
        lead, (n_y, n_x) = self.L0.shape[:-3], self.L0.shape[-2:]
        diagonal = (n_x * self.scale.square()).expand(*self.L0.shape)[..., :lags, :, :]
        return torch.diag_embed(diagonal.flatten(-3)).reshape(*lead, lags, n_y, n_x, lags, n_y, n_x)


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


def _member_curves(problem: Problem, responses: torch.Tensor, train_loss: torch.Tensor | None = None) -> list[dict]:
    """Train loss, test loss and test excess error ‖L − L*‖² along trajectories of impulse responses.

    problem: a stack of K problems; responses (steps, K, lags, n_y, n_x). Returns one dict of lists
    per member. Steps are evaluated together, in slices that bound the memory.
    """
    steps, K = responses.shape[:2]
    if train_loss is None:
        train_loss = _step_losses(problem.X, problem.y, problem.x, responses)
    test_loss = _step_losses(problem.X_test, problem.y_test, problem.x_test, responses)
    test_error = (responses - problem.teacher).square().sum((-3, -2, -1))
    columns = [c.T.tolist() for c in (train_loss, test_loss, test_error)]  # (K, steps) each
    return [{"train_loss": columns[0][k], "test_loss": columns[1][k], "test_error": columns[2][k]} for k in range(K)]


def _curves(problem: Problem, responses: torch.Tensor) -> dict:
    """`_member_curves` for one problem and one trajectory of responses (steps, lags, n_y, n_x)."""
    return _member_curves(stack_problems([problem]), responses.unsqueeze(1))[0]


def _step_losses(X: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None, responses: torch.Tensor) -> torch.Tensor:
    """The ½-MSE of member k's problem at its response of step s, shape (steps, K)."""
    size = max(1, 2 ** 20 // y.numel())  # steps per slice: about 2^20 predictions (and FFT buffers) at a time
    return torch.cat([half_mse(X, responses[s:s + size], y, x) for s in range(0, responses.shape[0], size)])


def _adam_step(param: torch.Tensor, grad: torch.Tensor, state: dict, lr: torch.Tensor,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.Tensor:
    """The update of torch.optim.Adam (defaults, one tensor), with a learning rate per member; returns the step."""
    if not state:
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
    state["step"] += 1
    state["exp_avg"].lerp_(grad, 1 - betas[0])
    state["exp_avg_sq"].mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    step_size = lr / (1 - betas[0] ** state["step"])
    denom = (state["exp_avg_sq"].sqrt() / (1 - betas[1] ** state["step"]) ** 0.5).add_(eps)
    return step_size * state["exp_avg"] / denom


def _train_members(model: nn.Module, problem: Problem, *, lrs: list[float], seeds: list[int], name: str, steps: int,
                   optimizer: str, center: bool, lazy_scale: float, batch_size: int | None,
                   progress: Callable[[str, int, int], None] | None) -> list[dict | TrainingDiverged]:
    """The training loop for K independent members stacked on a leading dimension (see `train`).

    The members share every tensor operation; each has its own step size, minibatch generator
    and divergence check. A member that diverges stops moving and gets its `TrainingDiverged`
    (with the curves up to that step); the others go on. Returns, per member, the run or the error.
    """
    if optimizer not in OPTIMIZERS:
        raise NumericsError(f"unknown optimizer {optimizer!r} (choose {', '.join(OPTIMIZERS)})")
    K, samples, lags = len(lrs), problem.X.shape[1], problem.teacher.shape[-3]
    single = getattr(model, "members", None) is None  # one network: give it the member dimension here
    impulse = (lambda: model.markov_parameters(lags).unsqueeze(0)) if single else (lambda: model.markov_parameters(lags))  # noqa: E731
    initial = impulse().detach()
    groups = [(p, group["lr"]) for group in model.param_groups(1.0) for p in group["params"]]  # rate factor per tensor
    rates = {id(p): torch.tensor([lr * rate for lr in lrs], dtype=p.dtype, device=p.device) for p, rate in groups}
    adam = {id(p): {} for p, _ in groups}
    batch = batch_size or max(1, samples // 4)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    members = torch.arange(K, device=initial.device)[:, None]
    responses, losses, first, moving = [], [], None, torch.ones(K, dtype=torch.bool, device=initial.device)
    stopped = {}  # member → (step, loss) where it diverged
    for step in range(steps + 1):
        L = impulse()
        L = lazy_scale * (L - initial if center else L)
        loss = half_mse(problem.X, L.detach(), problem.y, problem.x)
        responses.append(L.detach())
        losses.append(loss)
        values = loss.tolist()
        first = values if first is None else first
        for k, value in enumerate(values):
            if k not in stopped and (not math.isfinite(value) or (first[k] > 0 and value > DIVERGENCE_FACTOR * first[k])):
                stopped[k] = (step, value)
                moving[k] = False
        if progress:
            for k in range(K):
                if k not in stopped:
                    progress(name, step, steps)
        if step == steps or len(stopped) == K:
            break
        if optimizer == "sgd":
            rows = torch.stack([torch.randperm(samples, generator=g)[:batch] for g in generators]).to(initial.device)
            X, y = problem.X[members, rows], problem.y[members, rows]
            x = None if problem.x is None else problem.x[members, rows]
        else:
            X, y, x = problem.X, problem.y, problem.x
        objective = half_mse(X, L, y, x).sum() / lazy_scale**2  # members' parameters are disjoint
        grads = torch.autograd.grad(objective, [p for p, _ in groups], allow_unused=True)  # None: cannot reach the loss
        with torch.no_grad():
            for (param, _), grad in zip(groups, grads):
                grad = torch.zeros_like(param) if grad is None else grad
                lr = rates[id(param)].view(-1, *[1] * (grad.dim() - (0 if single else 1)))
                lr = lr * moving.view_as(lr).to(lr.dtype) if stopped else lr  # diverged members stay put
                if optimizer == "adam":
                    update = _adam_step(param, grad, adam[id(param)], lr)
                    param.sub_(update.squeeze(0) if single else update)
                else:  # p − lr·g in one pass, as torch.optim.SGD
                    param.addcmul_(grad, lr.squeeze(0) if single else lr, value=-1)
    responses, losses = torch.stack(responses), torch.stack(losses)
    curves = _member_curves(problem, responses, losses)
    outcomes = []
    for k in range(K):
        last = stopped.get(k, (len(responses) - 1, None))[0]
        run = {"responses": responses[: last + 1, k], **{key: values[: last + 1] for key, values in curves[k].items()}}
        outcomes.append(TrainingDiverged(name, last, stopped[k][1], run) if k in stopped else run)
    return outcomes


def train(model: nn.Module, problem: Problem, *, lr: float, steps: int, optimizer: str = "gd", center: bool = False,
          lazy_scale: float = 1.0, batch_size: int | None = None, seed: int = 0, name: str = "model",
          progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The one training loop: any module with `markov_parameters` and `param_groups`, on the ½-MSE.

    gd uses every sample each step; sgd a random minibatch of `batch_size` samples (default a quarter),
    drawn from `seed` so that every trainer sees the same minibatches; adam is full-batch Adam
    (torch.optim.Adam's update). Returns the curves (train_loss, test_loss, test_error) and
    'responses', the effective impulse response at steps 0 … steps. Raises `TrainingDiverged` when
    the train loss is non-finite or passes DIVERGENCE_FACTOR times its initial value.
    """
    stacked = stack_problems([problem])
    [outcome] = _train_members(model, stacked, lrs=[lr], seeds=[seed], name=name, steps=steps, optimizer=optimizer,
                               center=center, lazy_scale=lazy_scale, batch_size=batch_size, progress=progress)
    if isinstance(outcome, TrainingDiverged):
        raise outcome
    return outcome


@dataclasses.dataclass
class _Member:
    """One configuration of `compare_training`, set up: everything before the two training runs."""

    problem: Problem
    rnn: LinearRNN
    rnn_gram: torch.Tensor
    empirical: torch.Tensor
    alpha: torch.Tensor
    convolution: ScaledConvolution
    lr: float
    start: torch.Tensor
    closed: torch.Tensor
    batch_seed: int


def _prepare(teacher: str, *, width: int, spec: Spec, sigma_w: float, sigma_f: float, sigma_c: float, sigma_d: float,
             steps: int, samples: int, length: int, task: str, optimizer: str, lr: float | str, center: bool,
             lazy_scale: float, kernel: str, batch_size: int | None, test_samples: int, teacher_seed: int,
             device: str, dtype: str, seed: int) -> _Member:
    if task not in TASKS:
        raise NumericsError(f"unknown task {task!r} (choose {' or '.join(TASKS)})")
    if kernel not in KERNELS:
        raise NumericsError(f"unknown kernel {kernel!r} (choose {' or '.join(KERNELS)})")
    if optimizer not in OPTIMIZERS:
        raise NumericsError(f"unknown optimizer {optimizer!r} (choose {', '.join(OPTIMIZERS)})")
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
        lr = stable_lr(problem.X, [rnn_gram, convolution.tangent_gram(length)], optimizer)
    start = torch.zeros_like(initial) if center else lazy_scale * initial
    closed = kernel_gradient_descent(problem.X, problem.y, alpha, start, lr, steps)
    return _Member(problem, rnn, rnn_gram, empirical, alpha, convolution, lr, start, closed, batch_seed)


def _compare(configs: list[dict], progress: Callable[[str, int, int], None] | None) -> list[dict | TrainingDiverged]:
    """`compare_training` for configurations of one shape (complete keyword dicts), as one ensemble.

    The convolutions train as one stack, then the RNNs whose convolution did not diverge (the
    order of the single run, which stops at the first divergence). Returns results or errors.
    """
    members = [_prepare(**config) for config in configs]
    shared = configs[0]
    options = dict(steps=shared["steps"], optimizer=shared["optimizer"], center=shared["center"],
                   lazy_scale=shared["lazy_scale"], batch_size=shared["batch_size"], progress=progress)
    runs = [{"closed_form": {"responses": m.closed, **curves}}
            for m, curves in zip(members, _member_curves(stack_problems([m.problem for m in members]),
                                                          torch.stack([m.closed for m in members], 1)))]
    outcomes: list = [None] * len(members)
    alive = list(range(len(members)))
    for name in ("convolution", "rnn"):
        if not alive:
            break
        group = [members[k] for k in alive]
        if name == "convolution":
            model = ScaledConvolution(torch.stack([m.alpha for m in group]), torch.stack([m.convolution.L0 for m in group]))
        else:
            model = LinearRNN.stack([m.rnn for m in group])
        trained = _train_members(model, stack_problems([m.problem for m in group]), lrs=[m.lr for m in group],
                                 seeds=[m.batch_seed for m in group], name=name, **options)
        for k, run in zip(alive, trained):
            if isinstance(run, TrainingDiverged):
                run.curves = {**runs[k], name: run.curves}
                outcomes[k] = run
            else:
                runs[k][name] = run
        alive = [k for k in alive if outcomes[k] is None]
    for k in alive:
        outcomes[k] = _result(members[k], runs[k], shared["steps"])
    return outcomes


def _result(member: _Member, runs: dict, steps: int) -> dict:
    """The JSON-ready record of `compare_training` from the three finished runs."""
    L_rnn, L_conv = runs["rnn"].pop("responses"), runs["convolution"].pop("responses")
    closed = runs["closed_form"].pop("responses")
    norms = lambda L: L.flatten(1).norm(dim=1)  # noqa: E731 - per-step Frobenius norm
    deviation = (norms(L_rnn - L_conv) / norms(L_conv - L_conv[0])).tolist()
    deviation[0] = math.nan  # 0/0: both start from the same function (up to the rounding of two computations of it)
    flat = lambda L: L.flatten().tolist()  # noqa: E731
    return {
        "lr": float(member.lr),
        "step": list(range(steps + 1)),
        "closed_form": runs["closed_form"], "convolution": runs["convolution"], "rnn": runs["rnn"],
        "deviation": deviation,
        "lag_weights": flat(member.alpha),
        "empirical_lag_weights": flat(member.empirical),
        "largest_cross_term": largest_cross_term(member.rnn_gram),
        "response": {"teacher": flat(member.problem.teacher), "initial": flat(member.start), "rnn": flat(L_rnn[-1]),
                     "convolution": flat(L_conv[-1]), "closed_form": flat(closed[-1])},
        "final": {"deviation": deviation[-1], "test_error_rnn": runs["rnn"]["test_error"][-1],
                  "test_error_conv": runs["convolution"]["test_error"][-1],
                  "test_error_closed_form": runs["closed_form"]["test_error"][-1]},
    }


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
    Raises `TrainingDiverged` (its `curves` hold every run up to there) when a trainer diverges.
    """
    config = {key: value for key, value in locals().items() if key != "progress"}
    [outcome] = _compare([config], progress)
    if isinstance(outcome, TrainingDiverged):
        raise outcome
    return outcome


# Configurations that agree on these run as one ensemble (see `compare_training_many`).
SHAPE_KEYS = ("width", "length", "samples", "test_samples", "steps", "task", "optimizer", "batch_size", "spec",
              "dtype", "device", "center", "lazy_scale", "kernel")
# Ensemble size limits. On the CPU a stack pays while the members' matrices stay in cache together
# (measured: 32 networks of width 64 run ~7× faster as a stack, width 1024 ~1.5× slower), on a GPU
# while they fit in a quarter of the free memory.
ENSEMBLE_CPU_BYTES = 2 ** 22
ENSEMBLE_GPU_FRACTION = 0.25


def ensemble_size(width: int, dtype: torch.dtype, device: torch.device) -> int:
    """How many networks of this width `compare_training_many` trains as one stack."""
    per_network = width * width * torch.empty(0, dtype=dtype).element_size()
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(1, int(ENSEMBLE_GPU_FRACTION * free) // (8 * per_network))  # W, its gradient, Adam, powers
    return max(1, ENSEMBLE_CPU_BYTES // per_network)


def compare_training_many(configs: list[dict], progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """`compare_training` for many configurations (keyword dicts), results in the same order.

    Configurations that agree on `SHAPE_KEYS` train as batched ensembles of up to `ensemble_size`
    networks; each member keeps its own teacher, σ's, seeds, step size (lr='auto' included) and
    minibatches, and its result equals `compare_training(**config)` to rounding. Divergence: a
    diverging member stops, the others finish; then the first diverging configuration (in list
    order) raises its `TrainingDiverged`, its message prefixed with the configuration, with
    `index` (its position) and `results` (per configuration, the result dict or the
    `TrainingDiverged`) attached, so the caller can keep every finished result.
    """
    signature = inspect.signature(compare_training)
    complete = []
    for config in configs:
        bound = signature.bind(**config)
        bound.apply_defaults()
        complete.append({key: value for key, value in bound.arguments.items() if key != "progress"})
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(complete):
        device, dtype = resolve_device(config["device"]), resolve_dtype(config["dtype"])
        key = tuple(config[k] for k in SHAPE_KEYS if k not in ("device", "dtype")) + (device, dtype)
        groups.setdefault(key, []).append(index)
    outcomes: list = [None] * len(configs)
    for key, indices in groups.items():
        size = ensemble_size(complete[indices[0]]["width"], key[-1], key[-2])
        for start in range(0, len(indices), size):
            chunk = indices[start:start + size]
            for index, outcome in zip(chunk, _compare([complete[i] for i in chunk], progress)):
                outcomes[index] = outcome
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, TrainingDiverged):
            described = ", ".join(f"{k}={v!r}" for k, v in configs[index].items())
            outcome.args = (f"config {index} ({described}): {outcome.args[0]}",)
            outcome.index, outcome.results = index, outcomes
            raise outcome
    return outcomes
