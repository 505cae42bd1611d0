"""Theory on the numeric side: the derived lag kernel (through the generated code, never
re-derived here), gradient descent under the infinite-width kernel in closed form, and its
expected learning curve over the random initial function.

The lag kernel Θ_jk couples the rates of lags j and k. For Gaussian W it is diagonal, Θ = diag(α_j)
(the lag weights, from the generated code); for the other initializer families of W it is a full
symmetric PSD matrix (`derivations.lag_kernel.kernel_matrix`), and so is the covariance Σ_0 of
the initial impulse response. Every function below takes either form: a vector is the diagonal.

Kernel gradient descent on the impulse response under Θ is affine in where it starts:
    L(t) = A_t L(0) + b_t,
b_t being the run from L(0) = 0 (the centered run) and A_t L(0) the run from L(0) with targets 0.
An uncentered network starts from a random L(0) with covariance Σ_0 (diag(v_j), the derived
`initial_impulse_variance`, for Gaussian W), so every quadratic loss Q(L) = ‖M(L − c)‖² has
    E Q(L(t)) = Q(b_t) + ‖M A_t Σ_0^{1/2}‖_F²:
the bias of the centered run plus the variance the random initial function leaves behind.
Both parts are computed by `kernel_gradient_descent` itself (b_t from zero; the columns of A_t
from L(0) = e_i with zero targets), so no formula is repeated here. Scalar input and output.
"""
from __future__ import annotations

import numpy as np
import torch

from derivations.spec import BLOCKS, DEFAULT_SIGMAS, Spec

from ..data.problem import Problem
from ..errors import NumericsError
from ..models.convolution import ScaledConvolution, symmetric_sqrt
from .generated import generated_module


def _theory(function: str, spec: Spec, lags: int, sigmas: dict | None) -> np.ndarray:
    sigmas = {"W": 1.0, **DEFAULT_SIGMAS, **(sigmas or {})}
    with np.errstate(over="ignore", invalid="ignore"):  # σ_W ≫ 1 overflows to inf, which callers refuse
        values = getattr(generated_module(spec), function)(np.arange(lags), *(float(sigmas[b]) for b in BLOCKS))
    return np.broadcast_to(np.asarray(values, dtype=float), (lags,)).copy()


def _kernel_matrix(spec: Spec, lags: int, sigmas: dict | None) -> dict:
    """`derivations.lag_kernel.kernel_matrix` for a non-Gaussian family (SymPy is imported here only)."""
    try:
        from derivations.lag_kernel import kernel_matrix
    except ImportError as error:
        raise NumericsError(f"the lag kernel of W from {spec.init} needs derivations.lag_kernel ({error})") from None
    with np.errstate(over="ignore", invalid="ignore"):
        return kernel_matrix(spec, lags, {"W": 1.0, **DEFAULT_SIGMAS, **(sigmas or {})})


def theory_lag_weights(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """α_j = Θ_jj for j < lags at infinite width (n_x = n_y = 1), from the generated `derivations.emit`
    code (Gaussian W) or the diagonal of `theory_lag_kernel` (other families). sigmas: {"W": σ_W, …}
    keyed by block letter; the blocks not given take `DEFAULT_SIGMAS` (σ_W 1)."""
    if spec.family != "gaussian":
        return np.diagonal(_kernel_matrix(spec, lags, sigmas)["kernel"]).copy()
    return _theory("lag_weights", spec, lags, sigmas)


def theory_initial_variance(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """Variance of the entries of L_j(0) at infinite width (n_x = n_y = 1), from `derivations.emit`
    (Gaussian W) or the diagonal of `theory_initial_covariance` (other families)."""
    if spec.family != "gaussian":
        return np.diagonal(_kernel_matrix(spec, lags, sigmas)["covariance"]).copy()
    return _theory("initial_impulse_variance", spec, lags, sigmas)


def theory_lag_kernel(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """Θ_jk for j, k < lags at infinite width (n_x = n_y = 1), shape (lags, lags): diag(α_j) for
    Gaussian W (the generated code, no SymPy), `derivations.lag_kernel.kernel_matrix` otherwise."""
    if spec.family == "gaussian":
        return np.diag(theory_lag_weights(spec, lags, sigmas))
    return _kernel_matrix(spec, lags, sigmas)["kernel"]


def theory_initial_covariance(spec: Spec, lags: int, sigmas: dict | None = None) -> np.ndarray:
    """n_x Cov(L_j(0), L_k(0)) for j, k < lags at infinite width (n_x = n_y = 1), shape (lags, lags):
    diag of `theory_initial_variance` for Gaussian W, `kernel_matrix`'s covariance otherwise."""
    if spec.family == "gaussian":
        return np.diag(theory_initial_variance(spec, lags, sigmas))
    return _kernel_matrix(spec, lags, sigmas)["covariance"]


def _geometric_sum(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Σ_{s<t} (1 - x)^s = (1 - (1 - x)^t) / x, kept accurate as x → 0, where it tends to t."""
    below = x < 1
    decay = torch.where(below, torch.expm1(t * torch.log1p(-torch.where(below, x, 0.0))), (1 - x) ** t - 1)
    safe = torch.where(x == 0, 1.0, x)
    return torch.where(x == 0, t, -decay / safe)


def kernel_gradient_descent(X: torch.Tensor, y: torch.Tensor, alpha: torch.Tensor, L0: torch.Tensor,
                            lr: float, steps: int) -> torch.Tensor:
    """Gradient descent on the impulse response under the lag kernel Θ, in closed form, at steps 0 … steps.

    alpha: the per-lag rates α_j, shape (lags,) (Θ = diag α), or the full kernel Θ, (lags, lags),
    symmetric PSD. With D = Θ/n_x ⊗ I_{n_x} over the (lag, input) columns, K = X D Xᵀ = Q diag(w) Qᵀ
    and the loss's step ε = η/N (N entries averaged),
        L(t) = L(0) + D Xᵀ Q diag(g_t(w)) Qᵀ (y − X L(0)),  g_t(w) = ε Σ_{s<t} (1 − εw)^s,
    which is (1 − (1 − εw)^t)/w, or t·ε on a flat direction (w = 0). It is evaluated from the lag
    side, D Xᵀ g(X D Xᵀ) = D^{1/2} g(A) D^{1/2} Xᵀ with A = D^{1/2} XᵀX D^{1/2} (g is a polynomial,
    D^{1/2} the symmetric root, diagonal when Θ is), so the eigenproblem has the size of the lags,
    not of the samples.
    X: (samples, positions, lags, n_x), y: (samples, positions, n_y), L0: (lags, n_y, n_x).
    Returns (steps + 1, lags, n_y, n_x).
    """
    lags, n_y, n_x = L0.shape
    rows = X.reshape(-1, lags * n_x)
    if alpha.dim() == 1:
        root = (alpha.to(X) / n_x).repeat_interleave(n_x).sqrt()  # D^{1/2}, one entry per (lag, input) column
        A = root[:, None] * (rows.T @ rows) * root[None, :]
    else:
        eye = torch.eye(n_x, dtype=X.dtype, device=X.device)
        root = torch.kron(symmetric_sqrt(alpha.to(X) / n_x), eye)  # (Θ/n_x)^{1/2} ⊗ I_{n_x}
        A = root @ (rows.T @ rows) @ root

    def apply(M: torch.Tensor) -> torch.Tensor:  # D^{1/2} M
        return root[:, None] * M if root.dim() == 1 else root @ M

    eps = lr / (rows.shape[0] * n_y)  # the loss averages over rows and outputs
    w, P = torch.linalg.eigh(A)
    start = L0.permute(0, 2, 1).reshape(lags * n_x, n_y)
    pulled = P.T @ apply(rows.T @ (y.reshape(-1, n_y) - rows @ start))
    t = torch.arange(steps + 1, dtype=X.dtype, device=X.device)[:, None]
    gains = eps * _geometric_sum(eps * w[None, :], t)  # (steps + 1, lags·n_x)
    moves = apply(P @ (gains[:, :, None] * pulled))  # (steps + 1, lags·n_x, n_y)
    return (start + moves).reshape(steps + 1, lags, n_x, n_y).permute(0, 1, 3, 2)


def stable_lr(X: torch.Tensor, grams: list[torch.Tensor], optimizer: str) -> float:
    """A step that keeps the residual dynamics r ← (1 − η K / N) r stable for every tangent Gram given.

    K = X (G / n_x) Xᵀ over (row, output) pairs, N their number.
    gd: η = N / λ_max(K), the fastest mode removed in one step (stable up to 2N / λ_max); λ_max is
        taken from the lag side, (XᵀX ⊗ I_{n_y}) G / n_x, which has the same nonzero eigenvalues.
    sgd: η = 1 / max_i K_ii, since λ_max(K_B) ≤ tr K_B ≤ N_B max_i K_ii bounds every minibatch.
    """
    if optimizer not in ("gd", "sgd"):
        raise NumericsError(f"lr='auto' is defined for gd and sgd, not {optimizer} (its step does not follow the kernel)")
    steps = []
    for gram in grams:
        lags, n_y, n_x = gram.shape[:3]
        rows = X.reshape(-1, lags, n_x)
        if optimizer == "gd":
            lag_side = torch.einsum("mjc,mJd,Jadkef->jackef", rows, rows, gram / n_x).reshape(gram.shape[:3].numel(), -1)
            largest = float(torch.linalg.eigvals(lag_side).real.max())
            if not largest > 0:
                raise NumericsError("the tangent kernel is zero at these σ's (σ_F or σ_C = 0?): nothing would train")
            steps.append(rows.shape[0] * n_y / largest)
        else:
            largest = float(torch.einsum("mjc,jacJad,mJd->ma", rows, gram / n_x, rows).max())
            if not largest > 0:
                raise NumericsError("the tangent kernel is zero at these σ's (σ_F or σ_C = 0?): nothing would train")
            steps.append(1 / largest)
    return min(steps)


def theory_step(X: torch.Tensor, alpha: torch.Tensor) -> float:
    """The automatic gd step of `stable_lr` for the infinite-width kernel: lag weights α_j or lag kernel Θ.

    Sweeps train every width at this step, so that all widths and the theory share one clock.
    """
    lags = X.shape[2]
    convolution = ScaledConvolution(torch.as_tensor(alpha).to(X), X.new_zeros(lags, 1, 1))
    return stable_lr(X, [convolution.tangent_gram(lags)], "gd")


def propagator(X: torch.Tensor, alpha: torch.Tensor, lr: float, steps: int) -> torch.Tensor:
    """A with L(t) = A[t] L(0) + b[t] for kernel gradient descent under α_j or Θ, shape (steps + 1, lags, lags).

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

    alpha: lag weights α_j (lags,) or the lag kernel Θ (lags, lags); variance: the variances v_j of
    L_j(0) (lags,) or their covariance Σ_0 (lags, lags) (ignored when centered);
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
        variance = torch.as_tensor(np.array(variance, dtype=float)).to(X)
        A = A[-1:] if final_only else A
        if variance.dim() == 1:
            spread = A * variance.sqrt()[None, None, :]  # A_t Σ_0^{1/2}
        else:
            spread = A @ symmetric_sqrt(variance)

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
