"""A linear RNN written as an explicit recurrence, parameterized by a `Spec`.

The network and the SymPy derivation read the same `derivations.spec.Spec`, so "convention B" or
"standard parameterization" means one thing in both places. See the spec's docstring for the model.

Two ways to compute the same map: `LinearRNN.forward`, the recurrence one step at a time (the
reference), and the fast path, the impulse response L_j = C W^j F (`markov_parameters`, built from
Krylov vectors in blocks, with its exact structured gradient) applied as a causal convolution
(`causal_convolution`, by FFT for long sequences). Tests hold the two equal to rounding.
"""
from __future__ import annotations

import math
import os

import torch
from torch import nn

from derivations.spec import BLOCKS, DEFAULT_SIGMAS, FAN_IN, Spec

from ..data.convolution import causal_convolution
from ..errors import NumericsError
from .families import recurrent_tilde

# Rough machine constants for the cost model that picks the Krylov block size: seconds per
# operation launched from Python, memory bandwidth in bytes/s, and the float64 flop/s that thin
# products (a matrix times a few vectors) reach, float32 twice that. Only their ratios matter,
# and only to choose between exact methods. The CPU numbers were fitted to a 2-core Xeon (torch
# 2.13, MKL), where thin products run far below the matmul peak; the GPU ones are an H100's
# nominal figures, not measured here.
MACHINES = {"cpu": (1e-5, 2e10, 1e10), "cuda": (1e-5, 2e12, 5e13)}
# On the CPU, a stack of matrices runs its Krylov chains in slices of at most this many bytes (~ L2).
CACHE_BYTES = 2 ** 20
def krylov_block(n: int, count: int, columns: int = 1, members: int = 1, device_type: str = "cpu",
                 itemsize: int = 8, chains: int = 2) -> int:
    """Block size b (a power of 2) for `chains` Krylov chains of `count` vectors of an n×n matrix.

    b = 1 is the plain chain, `count` products of the matrix with `columns` vectors, each reading
    the whole matrix. b = 2^s first squares the matrix s times (2n³ flops each, shared by the
    chains) and then needs about count/b products with b·columns vectors: it pays where reading
    the matrix or launching an operation costs more than the squarings, as on a GPU, for small
    widths, or for long chains. The modelled time uses `MACHINES`; `members` networks share every
    launched operation.
    """
    overhead, bandwidth, flops = MACHINES.get(device_type, MACHINES["cpu"])
    flops *= 8 / itemsize

    def product(k: int) -> float:
        return overhead + members * (itemsize * n * n / bandwidth + 2 * n * n * k / flops)

    def cost(levels: int) -> float:
        b = 2 ** levels
        squarings = max(ladder_size(count, b) - 1, 0)
        doubling = sum(product(columns * 2 ** i) for i in range(levels))
        return (squarings * (overhead + members * 2 * n ** 3 / flops)
                + chains * (doubling + (math.ceil(count / b) - 1) * product(b * columns)))

    return 2 ** min(range(math.ceil(math.log2(max(count, 1))) + 1), key=cost)


def ladder_size(count: int, block: int) -> int:
    """How many powers (sM)^(2^i) `krylov` needs for `count` vectors in blocks of `block`: the
    doubling uses i < log2(block), later blocks (if any) the power (sM)^block."""
    if block == 1:
        return 0
    return int(math.log2(block)) + (count > block)


def power_ladder(M: torch.Tensor, size: int) -> torch.Tensor:
    """M^(2^i) for i < size by repeated squaring, shape (size, ..., n, n)."""
    ladder = [M]
    for _ in range(size - 1):
        ladder.append(ladder[-1] @ ladder[-1])
    return torch.stack(ladder[:size]) if size else M.new_zeros(0)


def krylov(M: torch.Tensor, S: torch.Tensor, count: int, scale=1.0, block: int = 1,
           ladder: torch.Tensor | None = None, left: bool = False) -> torch.Tensor:
    """K_p = (scale·M)^p S for p < count, shape (..., count, n, k), for M (..., n, n) and S (..., n, k);
    with left=True the row vectors K_p = S (scale·M)^p, shape (..., count, k, n), for S (..., k, n).

    block = 1: the plain chain, one product per vector, never forming scale·M. block = b = 2^s,
    with ladder = `power_ladder(scale·M, ladder_size(count, b))`: the first block by doubling,
    [K_0 … K_{2^i − 1}] → append (sM)^(2^i) times it, then each next block is (sM)^b times the
    last one, so count/b + s products with b·k vectors replace count products with k vectors.
    The two agree to rounding (tests hold them to 1e-10 relative in float64). On the CPU a stack
    of matrices runs in slices of at most `CACHE_BYTES`, each slice's chain with its matrices in
    cache throughout: stepping all of a large stack at once streams it from memory every product.
    """
    if M.dim() > 2 and M.device.type == "cpu" and M.shape[0] > 1:
        size = max(1, CACHE_BYTES // (M[0].numel() * M.element_size()))
        if size < M.shape[0]:  # slices of the stack, each chain with its matrices in cache throughout
            part = lambda t, i: t[i:i + size] if torch.is_tensor(t) and t.dim() > 2 else t  # noqa: E731
            return torch.cat([krylov(M[i:i + size], S[i:i + size], count, part(scale, i), block,
                                     None if ladder is None else ladder[:, i:i + size], left)
                              for i in range(0, M.shape[0], size)])
    apply = (lambda A, X: X @ A) if left else (lambda A, X: A @ X)  # noqa: E731
    axis = -2 if left else -1  # where the vectors of a block sit side by side
    if block == 1:
        vectors = [S]
        for _ in range(count - 1):
            vectors.append(scale * apply(M, vectors[-1]))
        return torch.stack(vectors, -3)
    k = S.shape[axis]
    first = S
    for level in range(int(math.log2(block))):  # vectors ordered by power, then by vector
        if first.shape[axis] >= count * k:
            break
        first = torch.cat([first, apply(ladder[level], first)], axis)
    blocks = [first]
    for _ in range(math.ceil(count / block) - 1):
        blocks.append(apply(ladder[-1], blocks[-1]))
    vectors = torch.cat(blocks, axis).narrow(axis, 0, count * k)
    return vectors.unflatten(-2, (count, k)) if left else vectors.unflatten(-1, (count, k)).movedim(-2, -3)


def _hankel_adjoint(R: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """A_p = Σ_k R_kᵀ G_{p+k} (terms with p + k < count), for R (..., count, n_y, n), G (..., count, n_y, n_x).

    One product with the Hankel matrix H[(k, a), (p, c)] = G_{p+k}[a, c]; returns Aᵀ with rows
    (p, c), shape (..., count·n_x, n).
    """
    count, n_y, n_x = G.shape[-3:]
    padded = torch.cat([G, torch.zeros_like(G)], -3)
    hankel = padded.unfold(-3, count, 1)[..., :count, :, :, :]  # [..., k, a, c, p] = G_{k+p}[a, c]
    hankel = hankel.movedim(-1, -2).flatten(-4, -3).flatten(-2)  # (..., count·n_y, count·n_x)
    return hankel.mT @ R.flatten(-3, -2)


class _ImpulseResponse(torch.autograd.Function):
    """L_p = C (sW)^p F for p < count, shape (..., count, n_y, n_x), with its exact structured gradient.

    Forward: the right Krylov vectors V_p = (sW)^p F (`krylov`, in blocks of `block`), then L = C V.
    Backward, from the structure instead of through the chain: with the left Krylov vectors
    U_k = ((sW)ᵀ)^k Cᵀ (computed as the rows C (sW)^k, on the same squared powers) and the
    cotangent G_p = ∂ℓ/∂L_p,
        A_p = Σ_k U_k G_{p+k},  ∂ℓ/∂F = A_0,  ∂ℓ/∂C = Σ_p G_p V_pᵀ,  ∂ℓ/∂W = s Σ_{p≥1} A_p V_{p−1}ᵀ,
    since d(W^p) = Σ_m W^m dW W^{p−1−m}. A is one product with a Hankel matrix built from G and
    ∂ℓ/∂W one (n × count·n_x)(count·n_x × n) product. Leading dimensions are independent networks.
    """

    generate_vmap_rule = True  # so that torch.func (jacrev in the generic tangent Gram) can use it

    @staticmethod
    def forward(W, F, C, scale, count, block):
        ladder = power_ladder(scale * W, ladder_size(count, block)) if block > 1 else W.new_zeros(0)
        V = krylov(W, F, count, scale, block, ladder if block > 1 else None)
        return C.unsqueeze(-3) @ V, V, ladder

    @staticmethod
    def setup_context(ctx, inputs, output):
        W, F, C, scale, count, block = inputs
        _, V, ladder = output
        ctx.mark_non_differentiable(V, ladder)
        ctx.save_for_backward(W, C, V, ladder)
        ctx.scale, ctx.block = scale, block

    @staticmethod
    def backward(ctx, G, _V, _ladder):
        W, C, V, ladder = ctx.saved_tensors
        count, scale, block = V.shape[-3], ctx.scale, ctx.block
        grad_W = grad_F = grad_C = None
        if ctx.needs_input_grad[2]:
            grad_C = torch.einsum("...pac,...pic->...ai", G, V)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            R = krylov(W, C, count, scale, block, ladder if block > 1 else None, left=True)  # R_k = U_kᵀ
            A = _hankel_adjoint(R, G).unflatten(-2, (count, -1))  # A_pᵀ, (..., count, n_x, n)
            grad_F = A[..., 0, :, :].mT
            if ctx.needs_input_grad[0]:  # frozen W: skip the big product
                if count > 1:
                    # scale the thin factor, not the n×n product
                    grad_W = (scale * A[..., 1:, :, :].flatten(-3, -2)).mT @ V[..., :-1, :, :].movedim(-3, -2).flatten(-2).mT
                else:
                    grad_W = torch.zeros_like(W)
        return grad_W, grad_F, grad_C, None, None, None


# A network needs W, its gradient and a few Krylov buffers: about this many n×n float64 matrices.
MATRICES_PER_NETWORK = 4


def check_width(width: int) -> None:
    """Refuse a width that is not a positive integer, or whose network cannot fit in this machine's
    memory (before anything is allocated, so the error is one line, not an allocator's crash)."""
    if not isinstance(width, int) or width < 1:
        raise NumericsError(f"the width must be a positive integer, got {width!r}")
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: let the allocator decide
        return
    need = MATRICES_PER_NETWORK * 8 * width * width
    if need > memory:
        raise NumericsError(f"width {width} needs about {need / 2 ** 30:.3g} GiB for its recurrent matrix and "
                            f"gradients; this machine has {memory / 2 ** 30:.3g} GiB")


class LinearRNN(nn.Module):
    """h_k = W h_{k-1} + F x_{k - input_lag}, ŷ_k = C h_k (+ D x_k), h_{-1} = 0.

    Holds the spec's parameters: tilde matrices (iid N(0, 1); W̃ from the spec's initializer family,
    `models.families`) in the ntk parameterization, whose effective matrices are σ_X X̃ / √fan_in; raw
    matrices σ_X X̃ / √fan_in in the standard one. Trained blocks are parameters, frozen blocks buffers. Weights are drawn on the CPU in
    float64 from `seed` and then moved, so a seed gives the same network on every device.

    Learning rates (`rate_factor`, used by `param_groups` and the tangent Gram): block X moves at
    λ_X in the ntk parameterization and at λ_X / n in the standard one, so in the standard
    parameterization the reported kernel is the raw-parameter kernel divided by n.

    `LinearRNN.stack(networks)` holds K networks of one spec and shape as one module whose
    tensors have a leading dimension K (`members`); `markov_parameters` then returns one impulse
    response per network and costs one batched computation.
    """

    members: int | None = None  # K for a stack of networks, None for one network

    def __init__(self, spec: Spec, width: int, n_x: int = 1, n_y: int = 1, sigmas: dict | None = None,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", seed: int = 0):
        super().__init__()
        check_width(width)
        sigmas = {"W": 1.0, **DEFAULT_SIGMAS, **(sigmas or {})}
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
            if block == "W":  # the spec's family; the Gaussian's tilde entries are plain torch.randn
                entries = recurrent_tilde(spec, width, generator, sigma_w=self.sigmas["W"])
            else:
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

    @classmethod
    def stack(cls, networks: list[LinearRNN]) -> LinearRNN:
        """K networks of one spec, width, n_x, n_y, dtype and device as one module (copies of their tensors).

        Tensors get a leading dimension K; the multipliers (which hold σ_X) become (K, 1, 1) tensors.
        """
        first = networks[0]
        shape = lambda net: (net.spec, net.width, net.n_x, net.n_y, net.W.dtype, net.W.device)  # noqa: E731
        if any(net.members is not None or shape(net) != shape(first) for net in networks):
            raise NumericsError("only single networks of one spec, shape, dtype and device can be stacked")
        stacked = cls.__new__(cls)
        nn.Module.__init__(stacked)
        stacked.spec, stacked.width, stacked.n_x, stacked.n_y = first.spec, first.width, first.n_x, first.n_y
        stacked.members, stacked.sigmas, stacked.rate_factor = len(networks), [net.sigmas for net in networks], first.rate_factor
        stacked.multiplier = {b: torch.tensor([net.multiplier[b] for net in networks], dtype=first.W.dtype,
                                              device=first.W.device)[:, None, None] for b in first.spec.blocks}
        for block in first.spec.blocks:
            entries = torch.stack([getattr(net, block).detach() for net in networks])
            if block in first.spec.trained:
                stacked.register_parameter(block, nn.Parameter(entries))
            else:
                stacked.register_buffer(block, entries)
        return stacked

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The effective (W, F, C, D), D None without the feed-through."""
        W, F, C = (self.multiplier[b] * getattr(self, b) for b in "WFC")
        D = self.multiplier["D"] * self.D if self.spec.feedthrough else None
        return W, F, C, D

    def markov_parameters(self, lags: int, method: str = "fast") -> torch.Tensor:
        """L_j for j < lags, shape (lags, n_y, n_x) (with a leading K for a stack): C W^{j - input_lag} F, plus D at j = 0.

        method 'fast': the Krylov vectors W^p F in blocks where `krylov_block` says it pays, with
        the structured gradient of `_ImpulseResponse`. 'chain': one product per vector,
        differentiated by plain autograd (the reference the fast path is tested against). In
        both, the multiplier of W scales the vectors, so the plain chain never forms the n×n
        effective W.
        """
        if method not in ("fast", "chain"):
            raise NumericsError(f"unknown method {method!r} (choose fast or chain)")
        m, lead = self.multiplier, self.W.shape[:-2]
        shift = min(self.spec.input_lag, lags)
        L = self.W.new_zeros(*lead, shift, self.n_y, self.n_x)  # convention B: no state term at lag 0
        if lags > shift:
            count, F, C = lags - shift, m["F"] * self.F, m["C"] * self.C
            if method == "chain":
                state = C.unsqueeze(-3) @ krylov(self.W, F, count, m["W"])
            else:
                block = krylov_block(self.width, count, max(self.n_x, self.n_y), self.members or 1,
                                     self.W.device.type, self.W.element_size(), chains=2 if torch.is_grad_enabled() else 1)
                state, _, _ = _ImpulseResponse.apply(self.W, F, C, m["W"], count, block)
            L = torch.cat([L, state], -3)
        if not self.spec.feedthrough:
            return L
        return torch.cat([L[..., :1, :, :] + (m["D"] * self.D).unsqueeze(-3), L[..., 1:, :, :]], -3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the recurrence on x of shape (batch, T, n_x); returns (batch, T, n_y). The reference path."""
        if self.members is not None:
            raise NumericsError("the recurrence runs one network; use markov_parameters for a stack")
        W, F, C, D = self.matrices()
        entering = x if self.spec.input_lag == 0 else nn.functional.pad(x, (0, 0, 1, 0))[:, :-1]
        h, outputs = x.new_zeros(x.shape[0], self.width), []
        for k in range(x.shape[1]):
            h = h @ W.T + entering[:, k] @ F.T
            outputs.append(h @ C.T)
        y = torch.stack(outputs, 1)
        return y if D is None else y + x @ D.T

    def forward_convolution(self, x: torch.Tensor, method: str = "auto") -> torch.Tensor:
        """The same map as `forward`, as the causal convolution with the impulse response (the fast path)."""
        return causal_convolution(self.markov_parameters(x.shape[1]), x, method)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: block X at lr·λ_X (ntk) or lr·λ_X/n (standard)."""
        return [{"params": [getattr(self, b)], "lr": lr * self.rate_factor[b], "block": b} for b in self.spec.trained]
