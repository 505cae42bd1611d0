"""K PLRNNs of one size trained as one computation: every parameter carries the runs on its first axis.

    PackedPLRNN([PLRNN, …])      the runs' parameters stacked (each run keeps its own draw, its own
                                  regularized units, τ_A and τ_W); unpack(k, model) copies run k back
    PackedReluRNN([TorchRNN, …])  K of the ReLU baselines (rnn, irnn, nprnn: torch's nn.RNN(relu)) likewise
    packed_forced_loss(packed, windows, tau_tf, observed)   K generators under sparse teacher forcing

The recurrence is `recurrence.packed_plrnn_states` (the hand-written backward, batched over runs),
so run k's numbers are its own: a run whose loss turns non-finite never touches another, and the
results equal each run trained alone to rounding. The readout is B z_T, read at the last step.

A ReLU RNN is a PLRNN with A = 0 in its pre-activation z_t = W_hh relu(z_{t−1}) + W_ih s_t + b_ih + b_hh
(h_t = relu(z_t), h_0 = 0, so z_0 = 0), read by its linear head on relu(z_T): the same recurrence
packs K of them. Their parameters stay torch's (both biases, the head's bias), so each run's
clip and Adam moments are those of the nn.RNN trained alone.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import NumericsError
from ..train.packed import over_runs
from .model import PLRNN, end_units
from .recurrence import packed_plrnn_states

PARAMETERS = ("A", "W", "h", "C", "z0", "B")


class PackedPLRNN(nn.Module):
    """K PLRNNs (same input size, width, outputs, readout and reduction) as one module."""

    def __init__(self, models: list[PLRNN]):
        super().__init__()
        if not models:
            raise NumericsError("a pack needs at least one PLRNN")
        first = models[0]
        shapes = {tuple(getattr(m, name).shape for name in PARAMETERS) for m in models}
        trained = {tuple(getattr(m, name).requires_grad for name in PARAMETERS) for m in models}
        if len(shapes) != 1 or len({m.readout for m in models}) != 1 or len({m.reduction for m in models}) != 1 \
                or len(trained) != 1:
            raise NumericsError("packed PLRNNs must share input size, width, outputs, the readout, the regularizer's "
                                "reduction and which parameters are trained")
        for name in PARAMETERS:  # a block frozen in the runs (a generator's C, its identity B) stays frozen
            self.register_parameter(name, nn.Parameter(torch.stack([getattr(m, name).detach() for m in models]),
                                                       requires_grad=getattr(first, name).requires_grad))
        self.readout = first.readout
        M = first.hidden
        self.reduction = first.reduction
        units = torch.zeros(len(models), M, dtype=first.A.dtype)
        for k, m in enumerate(models):
            units[k, end_units(M, m.regularized, m.regularized_at)] = 1.0
        self.register_buffer("units", units, persistent=False)  # (K, M): 1 on each run's regularized units
        self.register_buffer("tau_a", torch.tensor([m.tau_a for m in models], dtype=first.A.dtype), persistent=False)
        self.register_buffer("tau_w", torch.tensor([m.tau_w for m in models], dtype=first.A.dtype), persistent=False)
        self.register_buffer("off_diagonal", first.off_diagonal.clone(), persistent=False)

    @property
    def runs(self) -> int:
        return self.A.shape[0]

    def recurrent_matrix(self) -> torch.Tensor:
        return self.W * self.off_diagonal

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """B z_T per run, (K, N, outputs), for inputs (K, N, T, input_size) — each run its own batch —
        or (N, T, input_size), the same batch for every run (scoring a split). Readout at the last step."""
        if self.readout != "last":
            raise NumericsError("a packed forward reads the last step; generators are run by `packed_forced_loss`")
        if inputs.dim() == 3:
            inputs = inputs.expand(self.runs, *inputs.shape)
        # time-major (T, K, N, I): each step's slice is one contiguous block; the drive C s_t + h is
        # formed inside the recurrence, step by step (a (T, K, N, M) drive would not stay in cache)
        z = packed_plrnn_states(inputs.permute(2, 0, 1, 3), self.C, self.h, self.A, self.recurrent_matrix(), self.z0)
        return over_runs(torch.bmm, z, self.B.transpose(1, 2))

    def regularizer(self) -> torch.Tensor:
        """Each run's τ_A·Σ(A_reg − 1)² + τ_W·ΣW_reg² + τ_W·Σh_reg² (means or sums, as `PLRNN.regularizer`): (K,)."""
        units, M = self.units, self.A.shape[1]
        count = units.sum(1)
        parts = (((self.A - 1) ** 2 * units).sum(1), (self.recurrent_matrix() ** 2 * units[:, :, None]).sum((1, 2)),
                 (self.h ** 2 * units).sum(1))
        if self.reduction == "mean":
            safe = count.clamp(min=1)
            parts = (parts[0] / safe, parts[1] / (safe * M), parts[2] / safe)
        return torch.where(count > 0, self.tau_a * parts[0] + self.tau_w * (parts[1] + parts[2]), 0.0)

    @torch.no_grad()
    def unpack(self, k: int, model: PLRNN) -> PLRNN:
        """Copy run k's parameters into `model` (a PLRNN of the same shape), as trained alone it would be."""
        for name in PARAMETERS:
            getattr(model, name).copy_(getattr(self, name)[k])
        return model

    def run_state(self, k: int) -> dict:
        """Run k's parameters, detached copies (for model selection)."""
        return {name: getattr(self, name)[k].detach().clone() for name in PARAMETERS}

    @torch.no_grad()
    def load_run_state(self, k: int, state: dict) -> None:
        for name in PARAMETERS:
            getattr(self, name)[k].copy_(state[name])


class PackedReluRNN(nn.Module):
    """K ReLU baselines (`model.TorchRNN` over nn.RNN(relu), one layer, same sizes) as one module; the
    interface of `PackedPLRNN` (forward, regularizer, unpack, run_state, load_run_state)."""

    NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")

    def __init__(self, models: list):
        super().__init__()
        if not models:
            raise NumericsError("a pack needs at least one network")
        if any(not isinstance(m.rnn, nn.RNN) or m.rnn.nonlinearity != "relu" or m.rnn.num_layers != 1
               or nn.utils.parametrize.is_parametrized(m.rnn) for m in models):
            raise NumericsError("packed baselines are one-layer nn.RNN(relu) without parametrizations")
        if len({tuple(q.shape for q in (*m.rnn.parameters(), *m.head.parameters())) for m in models}) != 1:
            raise NumericsError("packed baselines must share input size, width and outputs")
        for name in self.NAMES:
            self.register_parameter(name, nn.Parameter(torch.stack([getattr(m.rnn, name).detach() for m in models])))
        self.head_weight = nn.Parameter(torch.stack([m.head.weight.detach() for m in models]))  # (K, O, M)
        self.head_bias = nn.Parameter(torch.stack([m.head.bias.detach() for m in models]))  # (K, O)
        K, M = self.weight_hh_l0.shape[:2]
        self.register_buffer("zeros", self.weight_hh_l0.new_zeros(K, M), persistent=False)  # A = 0 and z_0 = 0

    @property
    def runs(self) -> int:
        return self.weight_hh_l0.shape[0]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """head(relu(z_T)) per run, (K, N, outputs), for inputs (K, N, T, I) or (N, T, I) (as `PackedPLRNN`)."""
        if inputs.dim() == 3:
            inputs = inputs.expand(self.runs, *inputs.shape)
        z = packed_plrnn_states(inputs.permute(2, 0, 1, 3), self.weight_ih_l0, self.bias_ih_l0 + self.bias_hh_l0,
                                self.zeros, self.weight_hh_l0, self.zeros)
        head = self.head_weight.transpose(1, 2)
        return over_runs(torch.baddbmm, self.head_bias.unsqueeze(1), z.clamp_min(0), head)

    def regularizer(self) -> torch.Tensor:
        return self.zeros[:, 0]

    def _tensors(self) -> dict:
        return {**{name: getattr(self, name) for name in self.NAMES}, "weight": self.head_weight,
                "bias": self.head_bias}

    @torch.no_grad()
    def unpack(self, k: int, model):
        """Copy run k's parameters into `model` (a TorchRNN of the same shape)."""
        for name, value in self._tensors().items():
            target = getattr(model.rnn, name) if name in self.NAMES else getattr(model.head, name)
            target.copy_(value[k])
        return model

    def run_state(self, k: int) -> dict:
        return {name: value[k].detach().clone() for name, value in self._tensors().items()}

    @torch.no_grad()
    def load_run_state(self, k: int, state: dict) -> None:
        for name, value in self._tensors().items():
            value[k].copy_(state[name])


def packed_forced_loss(packed: PackedPLRNN, windows: torch.Tensor, tau_tf: int, observed: int) -> torch.Tensor:
    """`generators.forced_loss` for K PLRNN generators with the identity observation, each on its own
    windows (K, batch, L, N): the first N units are the observations, replaced by the data every τ_tf
    steps; returns the (K,) mean squared errors of the forced predictions of x_1 … x_{L−1}."""
    K, batch, L, N = windows.shape
    M = packed.A.shape[1]
    W_t, A, h = packed.recurrent_matrix().transpose(1, 2), packed.A[:, None, :], packed.h[:, None, :]
    z = torch.cat([windows[:, :, 0], packed.z0[:, None, observed:].expand(K, batch, M - observed)], 2)
    predicted = []
    for k in range(1, L):
        z = torch.addcmul(torch.baddbmm(h, z.clamp_min(0), W_t), z, A)
        predicted.append(z[..., :observed])
        if k % tau_tf == 0:
            z = torch.cat([windows[:, :, k], z[..., observed:]], 2)  # the data replace the observed units
    return (torch.stack(predicted, 2) - windows[:, :, 1:]).square().mean((1, 2, 3))
