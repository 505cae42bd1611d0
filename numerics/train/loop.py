"""The one training loop, for any module with `markov_parameters` and `param_groups` on any `Problem`.

- Ensembles: `train_members` steps K independent models stacked on a leading dimension (a stacked
  `LinearRNN` or `ScaledConvolution`) on a stack of K problems; `train` is that loop for one model.
  Each member has its own step size, minibatch generator and divergence check.
- Loss: ½ · mean over samples, positions and outputs of (ŷ − y)². With N averaged entries a step η
  on the parameters moves the function by η/N times the kernel, so the closed form steps by η/N.
- center: train f − f_0 (the function minus its initial value), so every trainer starts from 0.
- lazy_scale A: the output is multiplied by A and the objective divided by A²; the function then
  moves with the same kernel while the parameters move A times less. Reported losses are the
  ½-MSE of the scaled output, without the 1/A².
- Impulse responses are the effective ones the loss sees, A·(L − L(0)) or A·L.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..data.problem import Problem, half_mse, stack_problems
from ..errors import NumericsError, TrainingDiverged

OPTIMIZERS = ("gd", "sgd", "adam")
DIVERGENCE_FACTOR = 1e6  # a loss this many times its initial value counts as diverged


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
            largest = float(torch.linalg.eigvals(lag_side).real.max())
            if not largest > 0:
                raise NumericsError("the tangent kernel is zero at these σ's (σ_F or σ_C = 0?): nothing would train")
            steps.append(rows.shape[0] * n_y / largest)
        else:
            largest = float(torch.einsum("mjc,jacJad,mJd->ma", rows, gram / n_x, rows).max())
            if not largest > 0:
                raise NumericsError("the tangent kernel is zero at these σ's (σ_F or σ_C = 0?): nothing would train")
            steps.append(1 / largest)
    return min(steps)


def member_curves(problem: Problem, responses: torch.Tensor, train_loss: torch.Tensor | None = None) -> list[dict]:
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


def curves(problem: Problem, responses: torch.Tensor) -> dict:
    """`member_curves` for one problem and one trajectory of responses (steps, lags, n_y, n_x)."""
    return member_curves(stack_problems([problem]), responses.unsqueeze(1))[0]


def _step_losses(X: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None, responses: torch.Tensor) -> torch.Tensor:
    """The ½-MSE of member k's problem at its response of step s, shape (steps, K)."""
    size = max(1, 2 ** 20 // y.numel())  # steps per slice: about 2^20 predictions (and FFT buffers) at a time
    return torch.cat([half_mse(X, responses[s:s + size], y, x) for s in range(0, responses.shape[0], size)])


def adam_step(param: torch.Tensor, grad: torch.Tensor, state: dict, lr: torch.Tensor,
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


def train_members(model: nn.Module, problem: Problem, *, lrs: list[float], seeds: list[int], name: str, steps: int,
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
                    update = adam_step(param, grad, adam[id(param)], lr)
                    param.sub_(update.squeeze(0) if single else update)
                else:  # p − lr·g in one pass, as torch.optim.SGD
                    param.addcmul_(grad, lr.squeeze(0) if single else lr, value=-1)
    responses, losses = torch.stack(responses), torch.stack(losses)
    curves = member_curves(problem, responses, losses)
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
    [outcome] = train_members(model, stacked, lrs=[lr], seeds=[seed], name=name, steps=steps, optimizer=optimizer,
                               center=center, lazy_scale=lazy_scale, batch_size=batch_size, progress=progress)
    if isinstance(outcome, TrainingDiverged):
        raise outcome
    return outcome
