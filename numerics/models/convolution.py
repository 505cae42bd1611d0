"""The infinite-width equivalent of a linear RNN: a causal convolution trained under the lag kernel."""
from __future__ import annotations

import torch
from torch import nn

from ..data.convolution import causal_convolution
from ..errors import NumericsError

# A kernel or covariance whose most negative eigenvalue passes this fraction of its largest is not PSD:
# below it, negative eigenvalues are rounding and are set to 0.
PSD_TOLERANCE = 1e-8


def symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric PSD square root of a symmetric PSD matrix (or a stack of them), by eigh;
    eigenvalues below 0 by rounding are clipped to 0."""
    if not bool(torch.isfinite(matrix).all()):
        raise NumericsError("a lag kernel or covariance has entries that are not finite")
    if bool(((matrix - matrix.mT).abs() > PSD_TOLERANCE * matrix.abs().amax((-2, -1), keepdim=True)).any()):
        raise NumericsError("a lag kernel or covariance must be symmetric")
    w, P = torch.linalg.eigh(matrix)
    if bool((w < -PSD_TOLERANCE * w.abs().amax(-1, keepdim=True)).any()):
        raise NumericsError(f"a lag kernel or covariance must be positive semidefinite (eigenvalue {float(w.min()):.3g})")
    return (P * w.clamp(min=0).sqrt()[..., None, :]) @ P.mT


class ScaledConvolution(nn.Module):
    """A causal convolution trained under the lag kernel: L = L0 + (Θ / n_x)^{1/2} θ along the lags, θ(0) = 0.

    A gradient step η on θ moves L by η Θ/n_x times its gradient: gradient descent on the impulse
    response under the kernel Σ_jk Θ_jk <x_{k-j}, x'_{k'-k}> / n_x, the RNN's kernel at infinite
    width. alpha is either the per-lag rates α_j (Θ = diag α, L_j = L0_j + √(α_j / n_x) θ_j, the
    Gaussian-W case) or the full symmetric PSD Θ (lags, lags), whose symmetric root mixes the lags.
    Same interface as `LinearRNN` (markov_parameters, forward, param_groups). With L0 of shape
    (K, lags, n_y, n_x) and α (K, lags) or Θ (K, lags, lags) it holds K convolutions (`members`).
    """

    def __init__(self, alpha: torch.Tensor, L0: torch.Tensor):
        super().__init__()
        self.register_buffer("L0", L0.detach().clone())
        self.full = alpha.dim() == L0.dim() - 1  # Θ given as a matrix
        if self.full:
            self.register_buffer("scale", symmetric_sqrt(alpha.to(L0) / L0.shape[-1]))  # (…, lags, lags)
        else:
            self.register_buffer("scale", (alpha.to(L0) / L0.shape[-1]).sqrt()[..., None, None])
        self.theta = nn.Parameter(torch.zeros_like(self.L0))
        self.members = L0.shape[0] if L0.dim() == 4 else None

    def markov_parameters(self, lags: int) -> torch.Tensor:
        if lags > self.L0.shape[-3]:
            raise NumericsError(f"the convolution has {self.L0.shape[-3]} lags, {lags} were asked for")
        if self.full:
            return (self.L0 + torch.einsum("...jk,...kac->...jac", self.scale, self.theta))[..., :lags, :, :]
        return (self.L0 + self.scale * self.theta)[..., :lags, :, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return causal_convolution(self.markov_parameters(x.shape[-2]), x)

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.theta], "lr": lr}]

    def tangent_gram(self, lags: int) -> torch.Tensor:
        """Its tangent Gram, Θ_jk δ_ab δ_cd over the (lag, output, input) entries: what `generic_tangent_gram`
        computes by autodiff (for diagonal α the same floating-point operations, so the same numbers), without it."""
        lead, (n_y, n_x) = self.L0.shape[:-3], self.L0.shape[-2:]
        if self.full:
            lag_gram = n_x * (self.scale @ self.scale.mT)[..., :lags, :lags]
            eye_y = torch.eye(n_y, dtype=self.L0.dtype, device=self.L0.device)
            eye_x = torch.eye(n_x, dtype=self.L0.dtype, device=self.L0.device)
            return torch.einsum("...jk,ab,cd->...jackbd", lag_gram, eye_y, eye_x)
        diagonal = (n_x * self.scale.square()).expand(*self.L0.shape)[..., :lags, :, :]
        return torch.diag_embed(diagonal.flatten(-3)).reshape(*lead, lags, n_y, n_x, lags, n_y, n_x)
