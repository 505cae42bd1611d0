"""K runs stepped as one computation: every parameter carries the runs on its leading axis (a stacked
model), and each run has its own learning rate, its own optimizer state and can be frozen alone.

    step_runs(params, grads, rates, states, optimizer, moving=None, run_axis=True)

Adam's update is elementwise, so run k's moments live in row k of each moment tensor and never mix
with another run's; `adam_step` is torch.optim.Adam's update (defaults) with a learning rate per run.
A run that diverged is frozen by a zero rate (`moving`), so it stays where it stopped while the
others go on. The linear RNN's ensembles (`members`) train this way.
"""
from __future__ import annotations

import torch


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
