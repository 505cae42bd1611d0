"""Several runs of one task and cell trained as one packed computation.

    train_packed(task, cell, [(init, seed), …], *, hidden=32, …) → one result per run

Each run's network is built as alone (`model.build_model`: torch's own nn.RNN / nn.LSTM / nn.GRU,
the initializer acting on it); their parameters are then stacked with the runs on a leading axis
and K networks advance as one: per time step one batched product (bmm) of the K recurrent weights
with the K states, then torch's gate equations (`CELL_STEPS`), so nothing is block-diagonal and no
flop is spent on zeros. The loop is the training runtime's `fit_packed`: each run reads its own
minibatch stream, has its own loss, gradient-norm clip and Adam moments, and stops alone when its
loss is not finite. At the tracked steps run k is copied back into its own nn module and scored
there (`Tracker`), so curves and spectra are read off torch's own networks.

The gate equations are torch's (the order of the gate rows in weight_ih/weight_hh and the GRU's
reset gate acting on W_hn·h + b_hn), so a packed run equals the same run alone up to rounding
(tests/test_eigen_packed.py, float64). Every run of a pack is computed independently of the
others (batched products and per-run reductions), so on the CPU a run's numbers do not depend on
which runs share its pack (tested: packs of 8 and of one agree exactly in float32): E1's cells are
packed by the runner however its chunks fall. On a GPU the batched kernels may be chosen by the
pack's size, so there the equality holds to rounding (not measured: no GPU was available).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import NumericsError, TrainingDiverged
from ..train.packed import fit_packed, over_runs
from ..train.runtime import check_seed, derived_seed, diverged_result, task_loss, torch_threads
from .model import SequenceClassifier, build_model
from .train import Run, Tracker


def _rnn_step(nonlinearity):
    def step(gi, gh, h, c):
        return nonlinearity(gi + gh), c
    return step


def _lstm_step(gi, gh, h, c):
    gates = gi + gh
    size = gates.shape[-1] // 4
    i, f, _, o = torch.sigmoid(gates).chunk(4, -1)  # one sigmoid over the four gates, tanh on g alone
    c = torch.addcmul(f * c, i, torch.tanh(gates[..., 2 * size:3 * size]))
    return o * torch.tanh(c), c


def _gru_step(gi, gh, h, c):
    ir, iz, i_n = gi.chunk(3, -1)
    hr, hz, h_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n), c  # (1 − z)·n + z·h, as torch writes it


CELL_STEPS = {"rnn_tanh": _rnn_step(torch.tanh), "rnn_relu": _rnn_step(torch.relu), "lstm": _lstm_step, "gru": _gru_step}


def _mode(rnn: nn.RNNBase) -> str:
    return rnn.mode.lower() if not isinstance(rnn, nn.RNN) else f"rnn_{rnn.nonlinearity}"


class PackedClassifier(nn.Module):
    """K SequenceClassifiers of one cell and size, their parameters stacked on a leading run axis."""

    def __init__(self, models: list[SequenceClassifier]):
        super().__init__()
        first = models[0].rnn
        if first.bidirectional or getattr(first, "proj_size", 0):
            raise NumericsError("packed training covers one-directional networks without projections")
        self.k, self.layers, self.step = len(models), first.num_layers, CELL_STEPS[_mode(first)]
        self.names = [name for name, _ in first.named_parameters()]
        self.rnn = nn.ParameterDict({name: nn.Parameter(torch.stack([getattr(m.rnn, name).detach() for m in models]))
                                     for name in self.names})
        self.readout_weight = nn.Parameter(torch.stack([m.readout.weight.detach() for m in models]))  # (K, O, H)
        self.readout_bias = nn.Parameter(torch.stack([m.readout.bias.detach() for m in models]))  # (K, O)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """inputs (K, N, T, C), lengths (K, N) → outputs (K, N, O), each run read at its sequences' last steps."""
        k, n, t, _ = inputs.shape
        states = inputs
        for layer in range(self.layers):
            p = {name: self.rnn[f"{name}_l{layer}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            drive = over_runs(torch.baddbmm, p["bias_ih"].unsqueeze(1), states.reshape(k, n * t, -1),
                                  p["weight_ih"].transpose(1, 2)).view(k, n, t, -1)
            recurrent = p["weight_hh"].transpose(1, 2)
            h = drive.new_zeros(k, n, recurrent.shape[1])
            c = torch.zeros_like(h)
            outputs = []
            for step_drive in drive.unbind(2):  # unbind, not drive[:, :, s]: one gradient buffer, not T
                h, c = self.step(step_drive, over_runs(torch.baddbmm, p["bias_hh"].unsqueeze(1), h, recurrent), h, c)
                outputs.append(h)
            states = torch.stack(outputs, 2)  # (K, N, T, H)
        index = (lengths - 1).clamp(min=0).view(k, n, 1, 1).expand(k, n, 1, states.shape[-1])
        last = states.gather(2, index).squeeze(2)
        last = torch.where((lengths > 0).unsqueeze(-1), last, torch.zeros_like(last))
        return over_runs(torch.baddbmm, self.readout_bias.unsqueeze(1), last, self.readout_weight.transpose(1, 2))

    @torch.no_grad()
    def unpack(self, k: int, model: SequenceClassifier) -> SequenceClassifier:
        """Copy run k's parameters into `model` (its own network, as train_classifier holds it)."""
        for name in self.names:
            getattr(model.rnn, name).copy_(self.rnn[name][k])
        model.readout.weight.copy_(self.readout_weight[k])
        model.readout.bias.copy_(self.readout_bias[k])
        return model


def train_packed(task: str, cell: str, runs: list[tuple[str, int]], *, hidden: int = 32, layers: int = 1,
                 steps: int | None = None, batch: int | None = None, lr: float | None = None,
                 optimizer: str = "adam", clip: float | None = 1.0, track_every: int | None = None,
                 threshold: float | None = None, data_seed: int = 0, device: str = "cpu",
                 threads: int | None = 1, data_dir=None, train_subset: int | None = None) -> list[dict]:
    """Train the runs [(init, seed), …] of one task and cell as one pack (module docstring).

    Options as `train_classifier`. Returns one result per run, in order: train_classifier's dict
    (its config with "trainer": "packed"), or `diverged_result` for a run whose loss was not finite.
    """
    if not runs:
        raise NumericsError("train_packed needs at least one (init, seed) run")
    run = Run.prepare(task, cell, hidden=hidden, layers=layers, steps=steps, batch=batch, lr=lr,
                      optimizer=optimizer, clip=clip, track_every=track_every, threshold=threshold,
                      data_seed=data_seed, device=device, data_dir=data_dir, train_subset=train_subset)
    seeds = [check_seed(seed) for _, seed in runs]
    with torch_threads(threads):
        models = [build_model(run.data, cell, init, seed, hidden, layers).to(run.device) for init, seed in runs]
        packed = PackedClassifier(models).to(run.device)
        streams = [torch.Generator().manual_seed(derived_seed(seed, 2)) for seed in seeds]
        trackers = [Tracker(run, f"{cell} on {task}") for _ in runs]
        inputs, lengths, targets = run.train

        def objective(step: int, live: list) -> torch.Tensor:
            # every run draws its batch, live or not, so a run's stream never depends on the others
            rows = [torch.randint(len(targets), (run.batch,), generator=g).to(run.device) for g in streams]
            outputs = packed(torch.stack([inputs[r] for r in rows]), torch.stack([lengths[r] for r in rows]))
            return torch.stack([task_loss(run.data.loss, outputs[k], targets[r]) for k, r in enumerate(rows)])

        def evaluate(step: int, live: list) -> dict:
            ended = {}
            for k in live:
                try:
                    trackers[k].track(packed.unpack(k, models[k]), step)
                except TrainingDiverged as error:
                    ended[k] = error
            return ended

        ends = fit_packed(packed, run.recipe, objective, whats=[t.what for t in trackers],
                          curves=[t.curve for t in trackers], evaluate=evaluate)
    out = []
    for end, tracker, (init, seed) in zip(ends, trackers, runs):
        if end.status == "diverged":
            out.append(diverged_result(end.error))
            continue
        result = tracker.result(init, seed)
        result["config"]["trainer"] = "packed"
        out.append(result)
    return out
