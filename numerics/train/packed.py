"""K runs stepped as one computation: every parameter carries the runs on its leading axis (a stacked
model), and each run has its own data stream, loss, gradient clip, optimizer state, stopping and
divergence, as if trained alone.

    fit_packed(model, recipe, objective, whats=…, curves=…, evaluate=…) → [RunEnd per run]
    step_runs(params, grads, rates, states, optimizer, moving=None, run_axis=True)   per-run rates
    over_runs(torch.baddbmm, bias, a, b)   a batched product whose numbers do not depend on K

Adam's update is elementwise, so run k's moments live in row k of each moment tensor and never mix
with another run's; `adam_step` is torch.optim.Adam's update (defaults) with a learning rate per run.
A run that diverged is frozen by a zero rate (`moving`), so it stays where it stopped while the
others go on. The linear RNN's ensembles (`members`) train this way.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from ..errors import TrainingDiverged


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


def step_runs(params: list[torch.Tensor], grads: list, rates: list[torch.Tensor], states: list[dict], optimizer: str,
              moving: torch.Tensor | None = None, run_axis: bool = True) -> None:
    """One update of every parameter in place: gd/sgd p − lr_k·g, or Adam with rate lr_k, per run k.

    params[i] (K, …) with the runs on axis 0 (run_axis=False: one run without that axis); grads[i]
    its gradient (None: it cannot reach the loss, a zero gradient); rates[i] (K,) the runs' rates for
    that tensor; states[i] its Adam state (a dict, filled on the first step); moving (K,) bool, False
    for frozen runs (None: all move)."""
    with torch.no_grad():
        for param, grad, rate, state in zip(params, grads, rates, states):
            grad = torch.zeros_like(param) if grad is None else grad
            lr = rate.view(-1, *[1] * (grad.dim() - (1 if run_axis else 0)))
            lr = lr * moving.view_as(lr).to(lr.dtype) if moving is not None else lr  # frozen runs stay put
            if optimizer == "adam":
                update = adam_step(param, grad, state, lr)
                param.sub_(update if run_axis else update.squeeze(0))
            else:  # p − lr·g in one pass, as torch.optim.SGD
                param.addcmul_(grad, lr if run_axis else lr.squeeze(0), value=-1)


def over_runs(product: Callable, *tensors: torch.Tensor) -> torch.Tensor:
    """product(*tensors) (torch.bmm, torch.baddbmm) over the runs' leading axis, with a pack of one
    computed as a batch of two: torch hands a batch of one to another kernel (matrix products then
    differ in the last bit), and a run's numbers must not depend on the size of its pack. The copy
    is an expanded view and gets a zero gradient."""
    if tensors[0].shape[0] > 1:
        return product(*tensors)
    return product(*(x.expand(2, *x.shape[1:]) for x in tensors))[:1]


@dataclasses.dataclass
class RunEnd:
    """How one run of a pack ended: 'finished' (every step), 'stopped' early (a `Stopping` rule) or
    'diverged' (its `TrainingDiverged`, with the curve up to there), and at which step."""

    status: str = "finished"
    step: int | None = None
    reason: str | None = None
    error: TrainingDiverged | None = None


def fit_packed(model: nn.Module, recipe, objective: Callable[[int, list], torch.Tensor], *, whats: list[str],
               curves: list[dict], evaluate: Callable[[int, list], dict] | None = None) -> list[RunEnd]:
    """Train the K runs of a packed model (every trained parameter with the runs on axis 0) for
    `recipe.steps` steps, as `runtime.fit` trains one, and each run as it would alone:

    objective(step, live) returns the (K,) losses, each run's on its own batch (the runs not in
    `live` may hold anything). A run whose loss is not finite stops there (`TrainingDiverged` with its
    curve, as `runtime.descend` raises alone). The live runs' losses are summed and descended once:
    their parameters are disjoint, so each run gets its own gradient; each is clipped to
    `recipe.clip` by its own norm (as `clip_grad_norm_`); Adam's update is elementwise, so each run
    keeps its own moments. A stopped run's gradient and moments are zero, so Adam leaves it where
    it stopped while the others go on. evaluate(step, live) scores step 0 and the tracked steps and
    returns {run: a reason to stop early, or a TrainingDiverged}. The loop ends when no run is live."""
    K = len(whats)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = recipe.make_optimizer(params)
    schedule = recipe.make_schedule(optimizer)
    ends = [RunEnd() for _ in range(K)]
    live = list(range(K))

    def stop(k: int, step: int, outcome) -> None:
        ends[k] = (RunEnd("diverged", step, str(outcome), outcome) if isinstance(outcome, TrainingDiverged)
                   else RunEnd("stopped", step, outcome))
        live.remove(k)
        with torch.no_grad():
            for param in params:
                for moment in optimizer.state.get(param, {}).values():
                    if torch.is_tensor(moment) and moment.shape == param.shape:
                        moment[k] = 0

    def check(step: int) -> None:
        for k, outcome in (evaluate(step, list(live)) if evaluate is not None else {}).items():
            stop(k, step, outcome)

    if recipe.track_every is not None:
        check(0)
    for step in range(1, recipe.steps + 1):
        if not live:
            break
        losses = objective(step, list(live))
        values = losses.detach()
        for k in [k for k in live if not torch.isfinite(values[k])]:
            stop(k, step, TrainingDiverged(whats[k], step, float(values[k]), curves[k]))
        if not live:
            break
        mask = torch.zeros(K, dtype=torch.bool, device=values.device)
        mask[live] = True
        optimizer.zero_grad()
        torch.where(mask, losses, torch.zeros_like(losses)).sum().backward()
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            norms = torch.stack([g.double().pow(2).flatten(1).sum(1) for g in grads]).sum(0).sqrt()
            factor = torch.where(mask, 1.0, 0.0).to(norms)
            if recipe.clip is not None:  # as nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when below 1
                factor = factor * (recipe.clip / (norms + 1e-6)).clamp(max=1.0)
            for p, g in zip(params, grads):
                if p.grad is None:
                    p.grad = g
                g.copy_(torch.where(mask.view(-1, *[1] * (g.dim() - 1)), g * factor.to(g.dtype).view(-1, *[1] * (g.dim() - 1)),
                                    torch.zeros_like(g)))
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if recipe.tracks(step):
            check(step)
    return ends
