"""The PLRNN training step against torch's nn.RNN(nonlinearity='relu') of the same width, batch and
length — the goal is the PLRNN within 2× of that fused kernel on the CPU.

    training_steps(hidden, batch, length, device) → {name: a function running one step}
    reconstruction_steps(hidden, batch, window, tau_tf, observed, device) → the same for reconstruction

`numerics.bench.bench_plrnn` times them (`rnnmemory bench`).

One step: forward over the whole sequence, MSE on a linear readout after the last step (plus the
rplrnn's regularizer), backward, one Adam update, on the addition problem's inputs (2 channels).
Steps timed: 'nn.RNN relu' (baseline), 'rplrnn' (the model as trained: hand-written backward,
`numerics.plrnn.recurrence`), 'rplrnn, autograd loop' (the same map as the plain loop under
autograd: what the hand-written backward saves).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..data.long_range import addition_problem
from ..device import resolve_device
from .generators import build_reconstruction_model, forced_loss
from .model import build_model, torch_default_law
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


def reconstruction_steps(hidden: int = 40, batch: int = 64, window: int = 100, tau_tf: int = 10, observed: int = 3,
                         device: str | torch.device = "cpu") -> dict[str, Callable[[], None]]:
    """{name: one training step}, each on its own model and Adam state, the same seeded windows
    (batch, window, observed): 'nn.RNN relu' (the baseline: torch's fused nn.RNN(relu) of width
    `hidden` with a linear head, one-step-ahead on the data, MSE), 'rplrnn' (the reconstruction step
    of `train_reconstruction`: forced run, MSE, regularizer, backward, Adam), 'lstm', 'gru' (the same
    step for the baselines)."""
    device = resolve_device(device) if isinstance(device, str) else device
    windows = torch.randn(batch, window, observed, generator=torch.Generator().manual_seed(0)).to(device)
    steps = {}

    def make(net: nn.Module, loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
        opt = torch.optim.Adam([q for q in net.parameters() if q.requires_grad], lr=1e-3)

        def step():
            value = loss()
            opt.zero_grad()
            value.backward()
            opt.step()
        return step

    with torch.random.fork_rng(devices=[]):  # torch's constructors draw from the global generator
        rnn = nn.RNN(observed, hidden, nonlinearity="relu", batch_first=True)
        head = nn.Linear(hidden, observed)
    baseline = nn.ModuleList([rnn, head])
    torch_default_law(baseline.parameters(), hidden, torch.Generator().manual_seed(0))
    baseline.to(device)
    steps[BASELINE] = make(baseline, lambda: nn.functional.mse_loss(head(rnn(windows[:, :-1])[0]), windows[:, 1:]))
    for name in ("rplrnn", "lstm", "gru"):
        net = build_reconstruction_model(name, observed, hidden, 0).to(device)
        steps[name] = make(net, lambda net=net: forced_loss(net, windows, tau_tf) + net.regularizer())
    return steps
