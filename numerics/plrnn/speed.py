"""The PLRNN training step against torch's nn.RNN(nonlinearity='relu') of the same width, batch and
length — the issue's speed goal is the PLRNN within 2× of that fused kernel on the CPU.

    training_steps(hidden, batch, length, device) → {name: a function running one step}
    step_times(hidden=40, batch=500, length=100, …) → a record per step kind, seconds and ratios

One step: forward over the whole sequence, MSE on a linear readout after the last step (plus the
rplrnn's regularizer), backward, one Adam update, on the addition problem's inputs (2 channels).
Steps timed: 'nn.RNN relu' (baseline), 'rplrnn' (the model as trained: hand-written backward,
`numerics.plrnn.recurrence`), 'rplrnn, autograd loop' (the same map as the plain loop under
autograd: what the hand-written backward saves). Median of `repeats` calls after one warm-up, with
torch's threads set to `threads` for the measurement (and restored after).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from ..data.long_range import addition_problem
from ..device import resolve_device
from .model import build_model
from .recurrence import plrnn_states_reference

BASELINE = "nn.RNN relu"


def training_steps(hidden: int, batch: int, length: int, device: str | torch.device = "cpu") -> dict[str, Callable[[], None]]:
    """{name: one training step}, each on its own model and Adam state, same data."""
    device = resolve_device(device) if isinstance(device, str) else device
    inputs, targets = (t.to(device) for t in addition_problem(max(length, 20), batch, 0))
    inputs = inputs[:, :length]
    steps = {}

    def make(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        model = model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            loss = nn.functional.mse_loss(forward(inputs), targets) + model.regularizer()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    rnn = build_model("rnn", 2, hidden, 1, 0)
    steps[BASELINE] = make(rnn, rnn)
    plrnn = build_model("rplrnn", 2, hidden, 1, 0)
    steps["rplrnn"] = make(plrnn, plrnn)
    loop = build_model("rplrnn", 2, hidden, 1, 0).to(device)

    def autograd_loop(x: torch.Tensor) -> torch.Tensor:
        N, T, K = x.shape
        drive = torch.addmm(loop.h, x.transpose(0, 1).reshape(T * N, K), loop.C.t()).view(T, N, -1)
        return plrnn_states_reference(drive, loop.A, loop.recurrent_matrix(), loop.z0) @ loop.B.t()
    steps["rplrnn, autograd loop"] = make(loop, autograd_loop)
    return steps


def _median_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_times(hidden: int = 40, batch: int = 500, length: int = 100, *, threads: int | None = 1,
               repeats: int = 10, device: str = "cpu") -> list[dict]:
    """[{"name", "hidden", "batch", "length", "threads", "seconds", "ratio_to_baseline"}] for each
    step kind; ratio_to_baseline = seconds / nn.RNN's seconds (the goal: the rplrnn's ≤ 2).
    CPU timings only mean something with the threads fixed and the machine otherwise idle."""
    target = resolve_device(device)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        seconds = {name: _median_seconds(fn, repeats)
                   for name, fn in training_steps(hidden, batch, length, target).items()}
    finally:
        torch.set_num_threads(previous)
    return [{"name": name, "hidden": hidden, "batch": batch, "length": length, "device": str(target),
             "threads": torch.get_num_threads() if threads is None else threads, "seconds": s,
             "ratio_to_baseline": s / seconds[BASELINE]} for name, s in seconds.items()]
