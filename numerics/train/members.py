"""The linear RNN's trainer, for any module with `markov_parameters` and `param_groups` on any `Problem`:
full-batch gradient descent (or SGD, or Adam) on the function's ½-MSE, recorded at every step as
impulse responses, the kernel regime's natural currency.

- Ensembles: `train_members` steps K independent models stacked on a leading dimension (a stacked
  `LinearRNN` or `ScaledConvolution`) on a stack of K problems; `train` is that loop for one model.
  Each member (a run) has its own step size, minibatch generator and divergence check; the update
  with per-run rates is the training runtime's `packed.step_runs`.
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
from .packed import step_runs

OPTIMIZERS = ("gd", "sgd", "adam")
DIVERGENCE_FACTOR = 1e6  # a loss this many times its initial value counts as diverged


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
    rates = [torch.tensor([lr * rate for lr in lrs], dtype=p.dtype, device=p.device) for p, rate in groups]
    adam = [{} for _ in groups]
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
        step_runs([p for p, _ in groups], grads, rates, adam, optimizer, moving if stopped else None, run_axis=not single)
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
