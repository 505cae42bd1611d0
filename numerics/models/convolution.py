"""The infinite-width equivalent of a linear RNN: a causal convolution trained with per-lag rates."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import NumericsError
from .linear import causal_convolution


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
