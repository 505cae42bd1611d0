"""The PLRNN recurrence z_t = A ⊙ z_{t−1} + W relu(z_{t−1}) + d_t over a whole sequence, with a
hand-written backward pass (d_t = C s_t + h, the input drive, computed for all steps at once).

Why hand-written: a loop of small matrix products under autograd records ~5 nodes per step and
walks them back one by one; here the forward loop writes z_t and relu(z_t) into two preallocated
(T+1, N, M) buffers (3 kernels per step, no allocation) and the backward loop is the adjoint
recursion

    g_T = ∂L/∂z_T,   g_{t−1} = A ⊙ g_t + (g_t W) ⊙ 1[z_{t−1} > 0] (+ ∂L/∂z_{t−1} when every step is read)

(again 3 kernels per step), after which the parameter gradients are one product each:
∂L/∂W = Σ_t g_tᵀ relu(z_{t−1}) (one (M × NT)(NT × M) matmul), ∂L/∂A = Σ_t g_t ⊙ z_{t−1},
∂L/∂d_t = g_t, ∂L/∂z_0 = A ⊙ g_1 + (g_1 W) ⊙ 1[z_0 > 0]. relu′(0) = 0, as torch's relu.
On one CPU thread this training step runs faster than torch's fused nn.RNN(relu) of the same size
(`numerics.plrnn.speed`). W is used as given: the caller masks its diagonal before the call.

    plrnn_states(drive, A, W, z0, every_step=False)   fast path (training and evaluation)
    plrnn_states_reference(...)                        the plain autograd loop, for tests
    packed_plrnn_states(inputs, C, h, A, W, z0, …)     K runs on a run axis (numerics/plrnn/packed.py)
"""
from __future__ import annotations

import torch


class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, drive: torch.Tensor, A: torch.Tensor, W: torch.Tensor, z0: torch.Tensor, every_step: bool):
        T, N, M = drive.shape
        Z = drive.new_empty(T + 1, N, M)  # Z[t] = z_t, t = 0..T
        R = drive.new_empty(T, N, M)  # R[t] = relu(z_t), t = 0..T−1
        Z[0] = z0
        Wt = W.t()
        for t in range(T):
            torch.clamp_min(Z[t], 0, out=R[t])
            torch.addmm(drive[t], R[t], Wt, out=Z[t + 1])
            Z[t + 1].addcmul_(Z[t], A)
        ctx.save_for_backward(A, W, Z, R)
        ctx.every_step = every_step
        # copies: the buffers are kept for backward and must not be changed by the caller
        return Z[1:].clone() if every_step else Z[T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        A, W, Z, R = ctx.saved_tensors
        T, M = R.shape[0], R.shape[2]
        G = torch.empty_like(R)  # G[t] = ∂L/∂z_{t+1}
        active = Z[:T] > 0  # active[t] = 1[z_t > 0]
        G[T - 1] = grad[T - 1] if ctx.every_step else grad
        for t in range(T - 1, 0, -1):
            torch.mm(G[t], W, out=G[t - 1])
            G[t - 1].mul_(active[t]).addcmul_(G[t], A)
            if ctx.every_step:
                G[t - 1].add_(grad[t - 1])
        needs = ctx.needs_input_grad
        grad_A = (G * Z[:T]).sum((0, 1)) if needs[1] else None
        grad_W = G.reshape(-1, M).t() @ R.reshape(-1, M) if needs[2] else None
        grad_z0 = torch.addcmul((G[0] @ W).mul_(active[0]), G[0], A) if needs[3] else None
        return G, grad_A, grad_W, grad_z0, None


def plrnn_states(drive: torch.Tensor, A: torch.Tensor, W: torch.Tensor, z0: torch.Tensor, *,
                 every_step: bool = False) -> torch.Tensor:
    """z_T (N, M), or every z_1 … z_T time-major (T, N, M) when `every_step`.

    drive: (T, N, M), time-major, the input drive d_t = C s_t + h; A: (M,); W: (M, M) as used
    (its diagonal already masked); z0: (M,) or (N, M). Differentiable in all four through the
    hand-written backward when gradients are on; without them no states are stored beyond the
    ones returned, so long sequences can be scored in bounded memory.
    """
    T, N, M = drive.shape
    z0 = z0.expand(N, M)
    if torch.is_grad_enabled() and any(x.requires_grad for x in (drive, A, W, z0)):
        return _Recurrence.apply(drive.contiguous(), A, W, z0, bool(every_step))
    Wt = W.t()
    z = z0.clone()
    states = drive.new_empty(T, N, M) if every_step else None
    for t in range(T):
        z = torch.addmm(drive[t], z.clamp_min(0), Wt).addcmul_(z, A)
        if every_step:
            states[t] = z
    return states if every_step else z


def plrnn_states_reference(drive: torch.Tensor, A: torch.Tensor, W: torch.Tensor, z0: torch.Tensor, *,
                           every_step: bool = False) -> torch.Tensor:
    """The same map as `plrnn_states`, written as the plain loop under autograd (the reference)."""
    T, N, M = drive.shape
    z = z0.expand(N, M)
    states = []
    for t in range(T):
        z = A * z + torch.relu(z) @ W.t() + drive[t]
        states.append(z)
    return torch.stack(states) if every_step else z


class _PackedRecurrence(torch.autograd.Function):
    """The recurrence for K runs at once, the input drive d_t = C s_t + h computed inside the loop.

    Every tensor has the runs on its axis after time (inputs (T, K, N, I), C (K, M, I), h (K, M),
    A (K, M), W (K, M, M), z0 (K, N, M)); the products are batched over runs (bmm), so each run's
    numbers are its own and a non-finite run never touches another. Unlike `_Recurrence` (one run,
    whose (T, N, M) buffers stay in cache), K runs' buffers do not: a whole-sequence product, mask or
    transpose over (T, K, N, M) is bound by memory, so every reduction is formed step by step while
    the step's slice is in cache, and only z_t is stored. W, C and h act as one augmented matrix
    [Wᵀ; Cᵀ; h] on the row x_t = [relu(z_t), s_t, 1] (one (K, N, M + I + 1) buffer, remade each step):
    one product a step forward, and ∂L/∂[W, C, h] = Σ_t g_{t+1}ᵀ x_t one product a step backward;
    the adjoint g_t lives in two (K, N, M) buffers."""

    @staticmethod
    def forward(ctx, inputs, C, h, A, W, z0, every_step: bool):
        T, K, N, I = inputs.shape
        M = A.shape[1]
        Z = inputs.new_empty(T + 1, K, N, M)  # only z_t is kept: x_t is remade in backward (two T-long buffers would not stay in cache)
        Z[0] = z0
        x, relu, drive = _row(inputs, M)
        augmented = torch.cat([W.transpose(1, 2), C.transpose(1, 2), h[:, None, :]], 1)  # (K, M + I + 1, M)
        A_ = A[:, None, :]
        Zs, S = Z.unbind(0), inputs.unbind(0)  # views made once: indexing per step costs
        for t in range(T):
            torch.clamp_min(Zs[t], 0, out=relu)
            drive.copy_(S[t])
            torch.bmm(x, augmented, out=Zs[t + 1])
            Zs[t + 1].addcmul_(Zs[t], A_)
        ctx.save_for_backward(inputs, A, W, Z)
        ctx.every_step = every_step
        return Z[1:].clone() if every_step else Z[T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        inputs, A, W, Z = ctx.saved_tensors
        T, K, M = Z.shape[0] - 1, Z.shape[1], Z.shape[3]
        I = inputs.shape[3]
        A_ = A[:, None, :]
        grad_A = torch.zeros_like(Z[0])  # (K, N, M), summed over N at the end
        grad_augmented = W.new_zeros(K, M, M + I + 1)  # ∂L/∂[W, C, h]
        mask = torch.empty_like(Z[0])  # relu′(z_t) as numbers
        x, relu, drive = _row(inputs, M)
        g = (grad[T - 1] if ctx.every_step else grad).clone()  # g = ∂L/∂z_{t+1}
        previous = torch.empty_like(g)
        g, previous = (g, g.transpose(1, 2)), (previous, previous.transpose(1, 2))  # each buffer with its transpose
        Zs, S = Z.unbind(0), inputs.unbind(0)
        for t in range(T - 1, -1, -1):
            torch.clamp_min(Zs[t], 0, out=relu)
            drive.copy_(S[t])
            grad_augmented.baddbmm_(g[1], x)
            if ctx.needs_input_grad[3]:  # A (a ReLU RNN packed as a PLRNN has A = 0, fixed)
                grad_A.addcmul_(g[0], Zs[t])
            torch.bmm(g[0], W, out=previous[0])  # ∂L/∂z_t = A ⊙ g + (g W) ⊙ 1[z_t > 0] (+ ∂L/∂z_t read directly)
            torch.gt(Zs[t], 0, out=mask)
            previous[0].mul_(mask).addcmul_(g[0], A_)
            if ctx.every_step and t > 0:
                previous[0].add_(grad[t - 1])
            g, previous = previous, g
        needs = ctx.needs_input_grad  # g now holds ∂L/∂z_0
        return (None, grad_augmented[:, :, M:M + I] if needs[1] else None,
                grad_augmented[:, :, M + I] if needs[2] else None, grad_A.sum(1) if needs[3] else None,
                grad_augmented[:, :, :M] if needs[4] else None, g[0] if needs[5] else None, None)


def _row(inputs: torch.Tensor, M: int) -> tuple:
    """A (K, N, M + I + 1) buffer for x_t = [relu(z_t), s_t, 1], its ones column set, and its relu and s views."""
    _, K, N, I = inputs.shape
    x = inputs.new_empty(K, N, M + I + 1)
    x[..., M + I] = 1
    return x, x[..., :M], x[..., M:M + I]


def packed_plrnn_states(inputs: torch.Tensor, C: torch.Tensor, h: torch.Tensor, A: torch.Tensor, W: torch.Tensor,
                        z0: torch.Tensor, *, every_step: bool = False) -> torch.Tensor:
    """`plrnn_states` for K runs packed on a run axis, the drive C s_t + h included: inputs (T, K, N, I)
    time-major, C (K, M, I), h (K, M), A (K, M), W (K, M, M) (each run's diagonal masked), z0 (K, M) or
    (K, N, M) → z_T (K, N, M), or every z_1 … z_T (T, K, N, M). Differentiable in C, h, A, W and z0
    (not in the inputs)."""
    T, K, N, _ = inputs.shape
    M = A.shape[1]
    z0 = z0[:, None, :].expand(K, N, M) if z0.dim() == 2 else z0
    inputs = inputs.contiguous()
    if torch.is_grad_enabled() and any(x.requires_grad for x in (C, h, A, W, z0)):
        return _PackedRecurrence.apply(inputs, C, h, A, W, z0.contiguous(), bool(every_step))
    Wt, Ct, A_, h_ = W.transpose(1, 2), C.transpose(1, 2), A[:, None, :], h[:, None, :]
    z = z0.clone()
    states = inputs.new_empty(T, K, N, M) if every_step else None
    for t in range(T):
        z = torch.baddbmm(h_, inputs[t], Ct).baddbmm_(z.clamp_min(0), Wt).addcmul_(z, A_)
        if every_step:
            states[t] = z
    return states if every_step else z
