"""A linear RNN written as an explicit recurrence, parameterized by a `Spec`.

The network and the SymPy derivation read the same `derivations.spec.Spec`, so "convention B" or
"standard parameterization" means one thing in both places. See the spec's docstring for the model.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from derivations.spec import BLOCKS, FAN_IN, Spec

from .errors import NumericsError


def lagged_inputs(x: torch.Tensor, lags: int) -> torch.Tensor:
    """X[b, k, j, c] = x[b, k - j, c] (0 before the sequence starts), shape (batch, T, lags, n_x).

    With it a causal convolution is one contraction: ŷ[b, k] = Σ_j L_j x[b, k - j].
    """
    padded = nn.functional.pad(x, (0, 0, lags - 1, 0))  # lags-1 zeros before time 0
    windows = padded.unfold(1, lags, 1)  # (batch, T, n_x, lags), window k ends at time k
    return windows.flip(-1).permute(0, 1, 3, 2)


class _Krylov(torch.autograd.Function):
    """V_p = (s W)^p F for p < count, shape (count, n, n_x), with a backward that needs one big product.

    Plain autograd through the chain of products forms and adds one n×n outer product per step;
    here the adjoint runs back along the chain, A_p = dV_p + s Wᵀ A_{p+1}, and the gradient
    s Σ_p A_p V_{p-1}ᵀ is a single (n × count·n_x)(count·n_x × n) product.
    """

    generate_vmap_rule = True  # so that torch.func (jacrev in the generic tangent Gram) can use it

    @staticmethod
    def forward(W, F, scale, count):
        V = [F]
        for _ in range(count - 1):
            V.append(scale * (W @ V[-1]))
        return torch.stack(V)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)
        ctx.scale = inputs[2]

    @staticmethod
    def backward(ctx, dV):
        W, V = ctx.saved_tensors
        adjoints = [dV[-1]]
        for p in range(V.shape[0] - 2, -1, -1):
            adjoints.append(dV[p] + ctx.scale * (W.T @ adjoints[-1]))
        A = torch.stack(adjoints[::-1])
        flat = lambda T: T.permute(1, 0, 2).reshape(T.shape[1], -1)  # noqa: E731 - (count, n, k) → (n, count·k)
        grad_W = ctx.scale * flat(A[1:]) @ flat(V[:-1]).T if ctx.needs_input_grad[0] else None  # frozen W: skip
        return grad_W, A[0], None, None


def causal_convolution(L: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """ŷ[b, k, a] = Σ_j L[j, a, c] x[b, k - j, c] for an impulse response L of shape (lags, n_y, n_x)."""
    return torch.einsum("btjc,jac->bta", lagged_inputs(x, L.shape[0]), L)


class LinearRNN(nn.Module):
    """h_k = W h_{k-1} + F x_{k - input_lag}, ŷ_k = C h_k (+ D x_k), h_{-1} = 0.

    Holds the spec's parameters: tilde matrices (iid N(0, 1)) in the ntk parameterization, whose
    effective matrices are σ_X X̃ / √fan_in; raw matrices with variance σ_X² / fan_in in the standard
    one. Trained blocks are parameters, frozen blocks buffers. Weights are drawn on the CPU in
    float64 from `seed` and then moved, so a seed gives the same network on every device.

    Learning rates (`rate_factor`, used by `param_groups` and the tangent Gram): block X moves at
    λ_X in the ntk parameterization and at λ_X / n in the standard one, so in the standard
    parameterization the reported kernel is the raw-parameter kernel divided by n.
    """

    def __init__(self, spec: Spec, width: int, n_x: int = 1, n_y: int = 1, sigmas: dict | None = None,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", seed: int = 0):
        super().__init__()
        sigmas = {**{b: 1.0 for b in BLOCKS}, **(sigmas or {})}
        if set(sigmas) - set(BLOCKS):
            raise NumericsError(f"unknown blocks in sigmas: {sorted(set(sigmas) - set(BLOCKS))} (blocks are W, F, C, D)")
        self.spec, self.width, self.n_x, self.n_y = spec, width, n_x, n_y
        self.sigmas = {b: float(sigmas[b]) for b in spec.blocks}
        fan_in = {"n": width, "n_x": n_x}
        shapes = {"W": (width, width), "F": (width, n_x), "C": (n_y, width), "D": (n_y, n_x)}
        generator = torch.Generator().manual_seed(seed)
        self.multiplier, self.rate_factor = {}, {}
        for block in spec.blocks:  # fixed draw order: the seed fixes every block
            scale = self.sigmas[block] / math.sqrt(fan_in[FAN_IN[block]])
            entries = torch.randn(shapes[block], generator=generator, dtype=torch.float64)
            if spec.param == "ntk":
                self.multiplier[block] = scale
            else:
                entries, self.multiplier[block] = entries * scale, 1.0
            entries = entries.to(device=device, dtype=dtype)
            if block in spec.trained:
                self.register_parameter(block, nn.Parameter(entries))
                self.rate_factor[block] = float(spec.rate(block)) / (1 if spec.param == "ntk" else width)
            else:
                self.register_buffer(block, entries)

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The effective (W, F, C, D), D None without the feed-through."""
        W, F, C = (self.multiplier[b] * getattr(self, b) for b in "WFC")
        D = self.multiplier["D"] * self.D if self.spec.feedthrough else None
        return W, F, C, D

    def markov_parameters(self, lags: int) -> torch.Tensor:
        """L_j for j < lags, shape (lags, n_y, n_x): C W^{j - input_lag} F, plus D at j = 0.

        Built from the Krylov vectors W^p F one product at a time, never forming a matrix power;
        the multiplier of W scales the vectors, so the n×n effective W is never formed either.
        """
        m = self.multiplier
        head = self.W.new_zeros(min(self.spec.input_lag, lags), self.n_y, self.n_x)  # convention B: no state term at lag 0
        L = head
        if lags > head.shape[0]:
            V = _Krylov.apply(self.W, m["F"] * self.F, m["W"], lags - head.shape[0])
            L = torch.cat([head, m["C"] * torch.einsum("ai,pic->pac", self.C, V)])
        return torch.cat([L[:1] + m["D"] * self.D, L[1:]]) if self.spec.feedthrough else L

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the recurrence on x of shape (batch, T, n_x); returns (batch, T, n_y). The reference path."""
        W, F, C, D = self.matrices()
        entering = x if self.spec.input_lag == 0 else nn.functional.pad(x, (0, 0, 1, 0))[:, :-1]
        h, outputs = x.new_zeros(x.shape[0], self.width), []
        for k in range(x.shape[1]):
            h = h @ W.T + entering[:, k] @ F.T
            outputs.append(h @ C.T)
        y = torch.stack(outputs, 1)
        return y if D is None else y + x @ D.T

    def forward_convolution(self, x: torch.Tensor) -> torch.Tensor:
        """The same map as `forward`, as the causal convolution with the impulse response."""
        return causal_convolution(self.markov_parameters(x.shape[1]), x)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: block X at lr·λ_X (ntk) or lr·λ_X/n (standard)."""
        return [{"params": [getattr(self, b)], "lr": lr * self.rate_factor[b], "block": b} for b in self.spec.trained]
