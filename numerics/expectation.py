"""The expected learning curve of an infinite-width network: kernel gradient descent averaged over
its random initial function.

Gradient descent on the impulse response with per-lag rate α_j (`training.kernel_gradient_descent`)
is affine in where it starts:
    L(t) = A_t L(0) + b_t,
b_t being the run from L(0) = 0 (the centered run) and A_t L(0) the run from L(0) with targets 0.
An uncentered network starts from a random L(0) whose entries are independent with variance v_j
(the derived `initial_impulse_variance`), so every quadratic loss Q(L) = ‖M(L − c)‖² has
    E Q(L(t)) = Q(b_t) + ‖M A_t Σ_0^{1/2}‖_F²,   Σ_0 = diag(v_j):
the bias of the centered run plus the variance the random initial function leaves behind.
Both parts are computed by `kernel_gradient_descent` itself (b_t from zero; the columns of A_t
from L(0) = e_i with zero targets), so no formula is repeated here. Scalar input and output.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import NumericsError
from .ntk import generic_tangent_gram
from .training import Problem, ScaledConvolution, kernel_gradient_descent, stable_lr


def theory_step(X: torch.Tensor, alpha: torch.Tensor) -> float:
    """The automatic gd step of `stable_lr` for the infinite-width kernel with lag weights α_j.

    Sweeps train every width at this step, so that all widths and the theory share one clock.
    """
    lags = X.shape[2]
    convolution = ScaledConvolution(torch.as_tensor(alpha).to(X), X.new_zeros(lags, 1, 1))
    return stable_lr(X, [generic_tangent_gram(convolution, lags)], "gd")


def propagator(X: torch.Tensor, alpha: torch.Tensor, lr: float, steps: int) -> torch.Tensor:
    """A with L(t) = A[t] L(0) + b[t] for kernel gradient descent, shape (steps + 1, lags, lags).

    Column i is the run from L(0) = e_i with zero targets. All columns in one call: output i
    starts from e_i; outputs evolve independently but the loss averages over them, so the step is
    multiplied by their number. A does not depend on the targets, so one serves every teacher.
    """
    lags, n_x = X.shape[2], X.shape[3]
    if n_x != 1:
        raise NumericsError("the expected learning curve is implemented for scalar input and output")
    starts = torch.eye(lags, dtype=X.dtype, device=X.device).reshape(lags, lags, 1)
    targets = X.new_zeros(X.shape[0], X.shape[1], lags)
    return kernel_gradient_descent(X, targets, torch.as_tensor(alpha).to(X), starts, lr * lags,
                                   steps).reshape(steps + 1, lags, lags)


def expected_curves(problem: Problem, alpha, variance, lr: float, steps: int, centered: bool, *,
                    final_only: bool = False, A: torch.Tensor | None = None) -> dict:
    """Train loss, test loss (½-MSE) and test error ‖L − L*‖², each at steps 0 … steps (or at the
    last step only), averaged over the initial function (exact; centered runs start from 0 and
    are deterministic).

    alpha: lag weights α_j; variance: v_j, the variance of L_j(0) (ignored when centered);
    A: `propagator(problem.X, alpha, lr, steps)` when the caller already has it (its last step
    suffices with final_only).
    Returns numpy arrays, and 'bias_response', the final response of the run from 0 (= b_t).
    """
    X, y = problem.X, problem.y
    lags = X.shape[2]
    if y.shape[-1] != 1:
        raise NumericsError("the expected learning curve is implemented for scalar input and output")
    alpha = torch.as_tensor(np.asarray(alpha, dtype=float)).to(X)
    b = kernel_gradient_descent(X, y, alpha, X.new_zeros(lags, 1, 1), lr, steps).reshape(steps + 1, lags)
    keep = slice(steps, steps + 1) if final_only else slice(None)
    b = b[keep]
    if centered:
        spread = b.new_zeros(b.shape[0], lags, lags)
    else:
        A = propagator(X, alpha, lr, steps) if A is None else A
        root = torch.as_tensor(np.asarray(variance, dtype=float)).to(X).sqrt()
        spread = (A[-1:] if final_only else A) * root[None, None, :]  # A_t Σ_0^{1/2}

    def half_mse(rows, targets):
        rows, targets = rows.reshape(-1, lags), targets.reshape(-1)
        bias = (b @ rows.T - targets[None, :]).square().mean(1)
        var = torch.einsum("rj,tjk->trk", rows, spread).square().sum(2).mean(1)
        return (0.5 * (bias + var)).cpu().numpy()

    teacher = problem.teacher.reshape(lags)
    return {
        "train_loss": half_mse(problem.X, problem.y),
        "test_loss": half_mse(problem.X_test, problem.y_test),
        "test_error": ((b - teacher).square().sum(1) + spread.square().sum((1, 2))).cpu().numpy(),
        "bias_response": b[-1].cpu().numpy(),
    }
