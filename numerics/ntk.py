"""The empirical tangent kernel of a linear RNN's impulse response, and the theory it is checked against.

The tangent Gram of the Markov parameters is
    G[(j, a, c), (j', b, c')] = n_x Σ_X r_X <∂L_j[a, c]/∂θ_X, ∂L_j'[b, c']/∂θ_X>,
summed over the trained blocks X with their rate factors r_X (`LinearRNN.rate_factor`: λ_X, or
λ_X / n in the standard parameterization). The factor n_x matches the kernel normalization
Θ = Σ_j α_j <x_{k-j}, x'_{k'-j}> / n_x, so at infinite width G → δ_jj' δ_ab δ_cc' α_j and the
diagonal estimates the lag weights α_j. Shape (J, n_y, n_x, J, n_y, n_x).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev

from derivations.spec import BLOCKS, Spec

from .errors import NumericsError
from .model import LinearRNN


class _MarkovParameters(nn.Module):
    """Exposes `markov_parameters` as `forward`, which is what functional_call calls."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lags: int) -> torch.Tensor:
        return self.model.markov_parameters(lags)


def generic_tangent_gram(model: nn.Module, lags: int) -> torch.Tensor:
    """The tangent Gram by automatic differentiation (torch.func.jacrev).

    Works for any module with `markov_parameters(lags)` and `param_groups(lr)`; the rate of each
    parameter is its group's learning rate at lr = 1. Memory grows like lags × (number of parameters).
    """
    names = {id(p): name for name, p in model.named_parameters()}
    rates = {names[id(p)]: group["lr"] for group in model.param_groups(1.0) for p in group["params"]}
    params = {"model." + name: p.detach() for name, p in model.named_parameters()}
    adapter = _MarkovParameters(model)
    jacobians = jacrev(lambda ps: functional_call(adapter, ps, (lags,)))(params)
    shape = model.markov_parameters(lags).shape
    gram = 0
    for name, jac in jacobians.items():
        flat = jac.reshape(shape.numel(), -1)
        gram = gram + rates[name[len("model."):]] * flat @ flat.T
    return shape[2] * gram.reshape(*shape, *shape)


def _krylov(matrix: torch.Tensor, start: torch.Tensor, count: int) -> torch.Tensor:
    """[start, M start, M² start, …] (count terms), shape (count, *start.shape)."""
    vectors = [start]
    for _ in range(count - 1):
        vectors.append(matrix @ vectors[-1])
    return torch.stack(vectors[:count])


@torch.no_grad()
def structured_tangent_gram(model: LinearRNN, lags: int) -> torch.Tensor:
    """The tangent Gram of a `LinearRNN` from the structure of L_j = C W^p F (p = j - input_lag).

    ∂L/∂C pairs the right Krylov vectors V_r = W^r F, ∂L/∂F the left ones U_m = (Wᵀ)^m Cᵀ, and since
    d(W^p) = Σ_{m<p} W^m dW W^{p-1-m}, the W block is Σ_{m<p, m'<p'} (U_m·U_m')(V_{p-1-m}·V_{p'-1-m'}):
    a 2-D full convolution of the two small Gram matrices. No autodiff; memory O(lags·n) beyond
    the weights. Agrees with `generic_tangent_gram` to rounding.
    """
    W, F, C, D = model.matrices()
    n_x, n_y, shift = model.n_x, model.n_y, model.spec.input_lag
    powers = max(lags - shift, 0)  # lags with a state term; their powers of W are 0 … powers-1
    coef = {b: model.rate_factor.get(b, 0.0) * model.multiplier[b] ** 2 for b in model.spec.blocks}
    eye_x, eye_y = torch.eye(n_x, dtype=W.dtype, device=W.device), torch.eye(n_y, dtype=W.dtype, device=W.device)
    gram = W.new_zeros(lags, n_y, n_x, lags, n_y, n_x)
    if powers:
        V = _krylov(W, F, powers)  # (powers, n, n_x)
        U = _krylov(W.T, C.T, powers)  # (powers, n, n_y)
        v_gram = torch.einsum("ric,sid->rcsd", V, V)
        u_gram = torch.einsum("mia,lib->malb", U, U)
        state = gram[shift:, :, :, shift:, :, :]  # a view: the lags that carry C W^p F
        state += coef["C"] * torch.einsum("ab,rcsd->racsbd", eye_y, v_gram)
        state += coef["F"] * torch.einsum("cd,rasb->racsbd", eye_x, u_gram)
        if powers > 1 and coef["W"]:
            images = v_gram.permute(1, 3, 0, 2).reshape(n_x * n_x, 1, powers, powers)
            kernels = u_gram.permute(1, 3, 0, 2).reshape(n_y * n_y, 1, powers, powers).flip(-1, -2)
            full = nn.functional.conv2d(images, kernels, padding=powers - 1)  # index q is power q + 1
            w_part = full[:, :, : powers - 1, : powers - 1].reshape(n_x, n_x, n_y, n_y, powers - 1, powers - 1)
            state[1:, :, :, 1:, :, :] += coef["W"] * w_part.permute(4, 2, 0, 5, 3, 1)
    if D is not None:
        gram[0, :, :, 0, :, :] += coef["D"] * torch.einsum("ab,cd->acbd", eye_y, eye_x)
    return n_x * gram


def gram_diagonal(gram: torch.Tensor) -> torch.Tensor:
    """Per-lag weights from a tangent Gram: G[j, a, c, j, a, c] averaged over the (a, c) entries."""
    lags, n_y, n_x = gram.shape[:3]
    return gram.reshape(lags * n_y * n_x, -1).diagonal().reshape(lags, n_y * n_x).mean(1)


def largest_cross_term(gram: torch.Tensor) -> float:
    """max |G_ik| / √(G_ii G_kk) over distinct entries i ≠ k (cross-lag and cross-entry); → 0 like n^{-1/2}."""
    size = gram.shape[:3].numel()
    flat = gram.reshape(size, size)
    keep = flat.diagonal() > 0  # entries no trained block reaches carry no kernel
    flat = flat[keep][:, keep]
    scale = flat.diagonal().sqrt()
    relative = (flat / scale[:, None] / scale[None, :]).fill_diagonal_(0)
    return float(relative.abs().max()) if relative.numel() > 1 else 0.0


def empirical_lag_weights(model: LinearRNN, lags: int) -> torch.Tensor:
    """The diagonal of the structured tangent Gram: the finite-width estimate of α_j, shape (lags,)."""
    return gram_diagonal(structured_tangent_gram(model, lags))


def _theory(function: str, spec: Spec, lags: int, sigmas: dict | None) -> np.ndarray:
    try:
        from derivations import emit
    except ImportError as error:
        raise NumericsError(f"theory predictions need derivations.emit, which is not available ({error})") from None
    sigmas = {**{b: 1.0 for b in BLOCKS}, **(sigmas or {})}
    values = getattr(emit.numpy_module(spec), function)(np.arange(lags), *(float(sigmas[b]) for b in BLOCKS))
    return np.broadcast_to(np.asarray(values, dtype=float), (lags,)).copy()


def theory_lag_weights(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """α_j for j < lags at infinite width (n_x = n_y = 1), from the generated `derivations.emit` code."""
    return _theory("lag_weights", spec, lags, sigmas)


def theory_initial_variance(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """Variance of the entries of L_j(0) at infinite width (n_x = n_y = 1), from `derivations.emit`."""
    return _theory("initial_impulse_variance", spec, lags, sigmas)
