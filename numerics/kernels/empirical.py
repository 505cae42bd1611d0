"""The empirical tangent kernel of a linear RNN's impulse response, and the theory it is checked against.

The tangent Gram of the Markov parameters is
    G[(j, a, c), (j', b, c')] = n_x Σ_X r_X <∂L_j[a, c]/∂θ_X, ∂L_j'[b, c']/∂θ_X>,
summed over the trained blocks X with their rate factors r_X (`LinearRNN.rate_factor`: λ_X, or
λ_X / n in the standard parameterization). The factor n_x matches the kernel normalization
Θ = Σ_j α_j <x_{k-j}, x'_{k'-j}> / n_x, so at infinite width G → δ_jj' δ_ab δ_cc' α_j and the
diagonal estimates the lag weights α_j. Shape (J, n_y, n_x, J, n_y, n_x).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev

from ..models.linear import LinearRNN, krylov, krylov_block, ladder_size, power_ladder

# The W block of the structured Gram is built in slices of about this many products (bounds its memory).
SLICE_ENTRIES = 2 ** 22


class _MarkovParameters(nn.Module):
    """Exposes `markov_parameters` as `forward`, which is what functional_call calls."""

    def __init__(self, model: nn.Module, options: dict):
        super().__init__()
        self.model, self.options = model, options

    def forward(self, lags: int) -> torch.Tensor:
        return self.model.markov_parameters(lags, **self.options)


def generic_tangent_gram(model: nn.Module, lags: int, **options) -> torch.Tensor:
    """The tangent Gram by automatic differentiation (torch.func.jacrev).

    Works for any module with `markov_parameters(lags)` and `param_groups(lr)`; the rate of each
    parameter is its group's learning rate at lr = 1. Memory grows like lags × (number of parameters).
    `options` go to `markov_parameters` (for a `LinearRNN`, method='chain' differentiates the plain
    chain of products, without the structured gradient of the fast path).
    """
    names = {id(p): name for name, p in model.named_parameters()}
    rates = {names[id(p)]: group["lr"] for group in model.param_groups(1.0) for p in group["params"]}
    params = {"model." + name: p.detach() for name, p in model.named_parameters()}
    adapter = _MarkovParameters(model, options)
    jacobians = jacrev(lambda ps: functional_call(adapter, ps, (lags,)))(params)
    shape = model.markov_parameters(lags, **options).shape
    gram = 0
    for name, jac in jacobians.items():
        flat = jac.reshape(shape.numel(), -1)
        gram = gram + rates[name[len("model."):]] * flat @ flat.T
    return shape[2] * gram.reshape(*shape, *shape)


@torch.no_grad()
def structured_tangent_gram(model: LinearRNN, lags: int) -> torch.Tensor:
    """The tangent Gram of a `LinearRNN` from the structure of L_j = C W^p F (p = j - input_lag).

    ∂L/∂C pairs the right Krylov vectors V_r = W^r F, ∂L/∂F the left ones U_m = (Wᵀ)^m Cᵀ, and since
    d(W^p) = Σ_{m<p} W^m dW W^{p-1-m}, the W block is Σ_{m<p, m'<p'} (U_m·U_m')(V_{p-1-m}·V_{p'-1-m'}):
    a 2-D full convolution of the two small Gram matrices, of which only the first quadrant is
    computed. No autodiff, no tensor of size n²·lags: memory O(lags·n) beyond the weights, time
    two Krylov chains (`krylov`, in blocks where they pay). Agrees with `generic_tangent_gram` to rounding.
    """
    m = model.multiplier
    n_x, n_y, shift = model.n_x, model.n_y, model.spec.input_lag
    powers = max(lags - shift, 0)  # lags with a state term; their powers of W are 0 … powers-1
    coef = {b: model.rate_factor.get(b, 0.0) * m[b] ** 2 for b in model.spec.blocks}
    W = model.W
    eye_x, eye_y = torch.eye(n_x, dtype=W.dtype, device=W.device), torch.eye(n_y, dtype=W.dtype, device=W.device)
    gram = W.new_zeros(lags, n_y, n_x, lags, n_y, n_x)
    if powers:
        block = krylov_block(model.width, powers, max(n_x, n_y), 1, W.device.type, W.element_size())
        ladder = power_ladder(m["W"] * W, ladder_size(powers, block)) if block > 1 else None
        F, C = m["F"] * model.F, m["C"] * model.C
        V = krylov(W, F, powers, m["W"], block, ladder)  # (powers, n, n_x)
        U = krylov(W, C, powers, m["W"], block, ladder, left=True)  # rows C W^m = U_mᵀ, (powers, n_y, n)
        v_gram = torch.einsum("ric,sid->rcsd", V, V)
        u_gram = torch.einsum("mai,lbi->malb", U, U)
        state = gram[shift:, :, :, shift:, :, :]  # a view: the lags that carry C W^p F
        state += coef["C"] * torch.einsum("ab,rcsd->racsbd", eye_y, v_gram)
        state += coef["F"] * torch.einsum("cd,rasb->racsbd", eye_x, u_gram)
        if powers > 1 and coef["W"]:
            q = powers - 1  # the W block at powers 1 … powers-1 needs convolution indices 0 … q-1
            state[1:, :, :, 1:, :, :] += coef["W"] * _convolution_quadrant(u_gram[:q, :, :q, :], v_gram[:q, :, :q, :])
    if model.spec.feedthrough:
        gram[0, :, :, 0, :, :] += coef["D"] * torch.einsum("ab,cd->acbd", eye_y, eye_x)
    return n_x * gram


def _convolution_quadrant(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """out[i, a, c, j, b, d] = Σ_{m+r=i} Σ_{l+s=j} u[m, a, l, b] v[r, c, s, d] for i, j < q.

    The first quadrant of the 2-D full convolution of u (q, n_y, q, n_y) and v (q, n_x, q, n_x):
    along the second index as a product with the Toeplitz matrices of u's rows, along the first
    as sums over anti-diagonals. q⁴ products done as matrix products, memory O(q³) in slices.
    """
    q, n_y, n_x = u.shape[0], u.shape[1], v.shape[1]
    out = u.new_zeros(q, n_y, n_x, q, n_y, n_x)
    padded = nn.functional.pad(u.permute(0, 1, 3, 2), (q - 1, 0))  # (m, a, b, q-1 zeros then l)
    size = max(1, SLICE_ENTRIES // (q * q * q * n_x * n_x * n_y * n_y))  # values of m per slice
    for start in range(0, q, size):
        toeplitz = padded[start:start + size].unfold(-1, q, 1).flip(-2)  # [m, a, b, s, j] = u[m, a, j - s, b]
        part = torch.einsum("rcsd,mabsj->mracjbd", v, toeplitz)  # Σ_s u[m, a, j - s, b] v[r, c, s, d]
        for offset in range(part.shape[0]):  # row i = m + r
            m = start + offset
            out[m:] += part[offset, : q - m]
    return out


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
