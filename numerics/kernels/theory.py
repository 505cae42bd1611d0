"""Theory on the numeric side: the derived lag weights (through the generated code, never
re-derived here), gradient descent under the infinite-width kernel in closed form, and its
expected learning curve over the random initial function.

Kernel gradient descent on the impulse response with per-lag rate α_j is affine in where it starts:
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

from derivations.spec import BLOCKS, DEFAULT, DEFAULT_SIGMAS, Spec

from ..data.problem import Problem
from ..errors import NumericsError
from ..models.convolution import ScaledConvolution
from ..train.loop import stable_lr


def _generated(spec: Spec):
    """The generated numpy functions of a spec. The default spec's are committed, and importing
    them directly keeps SymPy out of sweep workers."""
    if spec == DEFAULT:
        from derivations.generated import lag_weights_numpy

        return lag_weights_numpy
    try:
        from derivations import emit
    except ImportError as error:
        raise NumericsError(f"theory predictions need derivations.emit, which is not available ({error})") from None
    return emit.numpy_module(spec)


def _theory(function: str, spec: Spec, lags: int, sigmas: dict | None) -> np.ndarray:
    sigmas = {"W": 1.0, **DEFAULT_SIGMAS, **(sigmas or {})}
    with np.errstate(over="ignore", invalid="ignore"):  # σ_W ≫ 1 overflows to inf, which callers refuse
        values = getattr(_generated(spec), function)(np.arange(lags), *(float(sigmas[b]) for b in BLOCKS))
    return np.broadcast_to(np.asarray(values, dtype=float), (lags,)).copy()


def theory_lag_weights(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """α_j for j < lags at infinite width (n_x = n_y = 1), from the generated `derivations.emit` code."""
    return _theory("lag_weights", spec, lags, sigmas)


def theory_initial_variance(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """Variance of the entries of L_j(0) at infinite width (n_x = n_y = 1), from `derivations.emit`."""
    return _theory("initial_impulse_variance", spec, lags, sigmas)


def _geometric_sum(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Σ_{s<t} (1 - x)^s = (1 - (1 - x)^t) / x, kept accurate as x → 0, where it tends to t."""
    below = x < 1
    decay = torch.where(below, torch.expm1(t * torch.log1p(-torch.where(below, x, 0.0))), (1 - x) ** t - 1)
    safe = torch.where(x == 0, 1.0, x)
    return torch.where(x == 0, t, -decay / safe)


def kernel_gradient_descent(X: torch.Tensor, y: torch.Tensor, alpha: torch.Tensor, L0: torch.Tensor,
                            lr: float, steps: int) -> torch.Tensor:
    """Gradient descent on the impulse response with per-lag rate α_j, in closed form, at steps 0 … steps.

    With D = diag(α_j / n_x) over the (lag, input) columns, K = X D Xᵀ = Q diag(w) Qᵀ and the loss's
    step ε = η/N (N entries averaged),
        L(t) = L(0) + D Xᵀ Q diag(g_t(w)) Qᵀ (y − X L(0)),  g_t(w) = ε Σ_{s<t} (1 − εw)^s,
    which is (1 − (1 − εw)^t)/w, or t·ε on a flat direction (w = 0). It is evaluated from the lag
    side, D Xᵀ g(X D Xᵀ) = D^{1/2} g(A) D^{1/2} Xᵀ with A = D^{1/2} XᵀX D^{1/2} (g is a polynomial),
    so the eigenproblem has the size of the lags, not of the samples.
    X: (samples, positions, lags, n_x), y: (samples, positions, n_y), L0: (lags, n_y, n_x).
    Returns (steps + 1, lags, n_y, n_x).
    """
    lags, n_y, n_x = L0.shape
    rows = X.reshape(-1, lags * n_x)
    root = (alpha.to(X) / n_x).repeat_interleave(n_x).sqrt()  # D^{1/2}, one entry per (lag, input) column
    eps = lr / (rows.shape[0] * n_y)  # the loss averages over rows and outputs
    w, P = torch.linalg.eigh(root[:, None] * (rows.T @ rows) * root[None, :])
    start = L0.permute(0, 2, 1).reshape(lags * n_x, n_y)
    pulled = P.T @ (root[:, None] * (rows.T @ (y.reshape(-1, n_y) - rows @ start)))
    t = torch.arange(steps + 1, dtype=X.dtype, device=X.device)[:, None]
    gains = eps * _geometric_sum(eps * w[None, :], t)  # (steps + 1, lags·n_x)
    moves = root[:, None] * (P @ (gains[:, :, None] * pulled))  # (steps + 1, lags·n_x, n_y)
    return (start + moves).reshape(steps + 1, lags, n_x, n_y).permute(0, 1, 3, 2)


def theory_step(X: torch.Tensor, alpha: torch.Tensor) -> float:
    """The automatic gd step of `stable_lr` for the infinite-width kernel with lag weights α_j.

    Sweeps train every width at this step, so that all widths and the theory share one clock.
    """
    lags = X.shape[2]
    convolution = ScaledConvolution(torch.as_tensor(alpha).to(X), X.new_zeros(lags, 1, 1))
    return stable_lr(X, [convolution.tangent_gram(lags)], "gd")


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
