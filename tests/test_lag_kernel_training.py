"""Training under a full lag kernel Θ_jk (non-Gaussian W): the closed form, the scaled convolution,
the expected curve over a correlated initial function, and a wide identity-initialized RNN."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from derivations.spec import DEFAULT, Spec
from numerics.data.problem import make_problem
from numerics.data.teachers import parse_teacher
from numerics.kernels.empirical import generic_tangent_gram
from numerics.kernels.theory import (
    expected_curves,
    kernel_gradient_descent,
    propagator,
    theory_initial_covariance,
    theory_initial_variance,
    theory_lag_kernel,
    theory_lag_weights,
    theory_step,
)
from numerics.models.convolution import ScaledConvolution
from numerics.models.linear import LinearRNN
from numerics.train.compare import Comparison, compare_training, meaningful

SIGMAS = {"W": 0.8, "F": 1.0, "C": 1.0, "D": 1.0}


def random_kernel(lags: int, rank: int, seed: int) -> torch.Tensor:
    """A symmetric PSD Θ = B Bᵀ, singular when rank < lags (its root must clip rounding negatives)."""
    B = torch.randn(lags, rank, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return B @ B.T / rank


def design(samples: int, lags: int, n_x: int, n_y: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(samples, 2, lags, n_x, dtype=torch.float64, generator=g)
    y = torch.randn(samples, 2, n_y, dtype=torch.float64, generator=g)
    L0 = torch.randn(lags, n_y, n_x, dtype=torch.float64, generator=g)
    return X, y, L0


def test_gaussian_lag_kernel_is_the_diagonal_of_the_generated_code():
    assert np.array_equal(theory_lag_kernel(DEFAULT, 7, SIGMAS), np.diag(theory_lag_weights(DEFAULT, 7, SIGMAS)))
    assert np.array_equal(theory_initial_covariance(DEFAULT, 7, SIGMAS),
                          np.diag(theory_initial_variance(DEFAULT, 7, SIGMAS)))
    identity = Spec(init="identity")
    theta = theory_lag_kernel(identity, 7, SIGMAS)
    assert np.abs(theta - np.diag(np.diagonal(theta))).max() > 0.5  # the identity family couples the lags
    assert np.array_equal(np.diagonal(theta), theory_lag_weights(identity, 7, SIGMAS))
    assert np.array_equal(np.diagonal(theory_initial_covariance(identity, 7, SIGMAS)),
                          theory_initial_variance(identity, 7, SIGMAS))


def test_default_lag_kernel_does_not_import_sympy():
    code = ("import sys\nfrom derivations.spec import DEFAULT\n"
            "from numerics.kernels.theory import theory_lag_kernel, theory_initial_covariance\n"
            "theory_lag_kernel(DEFAULT, 5, {'W': 0.8}); theory_initial_covariance(DEFAULT, 5, {'W': 0.8})\n"
            "print('sympy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("n_x,n_y", [(1, 1), (2, 3)])
def test_diagonal_kernel_as_a_matrix_is_the_vector_form(n_x, n_y):
    lags, steps, lr = 6, 15, 0.5
    X, y, L0 = design(5, lags, n_x, n_y, seed=1)
    alpha = torch.tensor([2.0, 1.0, 0.5, 0.0, 0.3, 0.1], dtype=torch.float64)  # a frozen lag too
    vector = kernel_gradient_descent(X, y, alpha, L0, lr, steps)
    matrix = kernel_gradient_descent(X, y, torch.diag(alpha), L0, lr, steps)
    torch.testing.assert_close(matrix, vector, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_x,n_y,rank", [(1, 1, 6), (2, 3, 4)])
def test_closed_form_is_gradient_descent_of_the_scaled_convolution(n_x, n_y, rank):
    """Plain gradient steps on θ of L = L0 + (Θ/n_x)^{1/2} θ, against the closed form at every step."""
    lags, steps, lr = 6, 8, 0.3
    X, y, L0 = design(5, lags, n_x, n_y, seed=2)
    theta = random_kernel(lags, rank, seed=3)
    model = ScaledConvolution(theta, L0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    path = [model.markov_parameters(lags).detach()]
    for _ in range(steps):
        optimizer.zero_grad()
        loss = 0.5 * (torch.einsum("spjc,jac->spa", X, model.markov_parameters(lags)) - y).square().mean()
        loss.backward()
        optimizer.step()
        path.append(model.markov_parameters(lags).detach())
    closed = kernel_gradient_descent(X, y, theta, L0, lr, steps)
    torch.testing.assert_close(torch.stack(path), closed, rtol=1e-10, atol=1e-12)
    assert float((closed[-1] - closed[0]).norm()) > 0.1  # it did move


def test_tangent_gram_of_a_full_kernel_is_the_autodiff_gram():
    lags, n_y, n_x = 5, 2, 2
    thetas = torch.stack([random_kernel(lags, r, seed=4 + r) for r in (5, 3)])
    L0 = torch.randn(2, lags, n_y, n_x, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    stacked = ScaledConvolution(thetas, L0)
    for k in range(2):
        single = ScaledConvolution(thetas[k], L0[k])
        gram = single.tangent_gram(lags)
        torch.testing.assert_close(gram, generic_tangent_gram(single, lags), rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(gram.reshape(lags, n_y * n_x, lags, n_y * n_x)[:, 0, :, 0], thetas[k],
                                   rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(stacked.tangent_gram(lags)[k], gram, rtol=1e-12, atol=1e-14)
        assert single.tangent_gram(3).shape == (3, n_y, n_x, 3, n_y, n_x)


def test_expected_curves_with_a_full_covariance_match_monte_carlo():
    """Kernel gradient descent under the identity family's Θ from 3000 draws of L(0) ~ N(0, Σ_0) with a
    full-rank correlated Σ_0 = B Bᵀ (drawn through B, not through the root the code uses): the exact
    expectation must lie within 4 Monte Carlo standard errors."""
    lags, steps, draws = 8, 25, 3000
    problem = make_problem(parse_teacher("decay:0.8", lags), 5, lags, "seq2one", 40, seed=3)
    theta = torch.as_tensor(theory_lag_kernel(Spec(init="identity"), lags, SIGMAS))
    B = torch.randn(lags, lags, dtype=torch.float64, generator=torch.Generator().manual_seed(11)) / lags ** 0.5
    B = B + torch.eye(lags, dtype=torch.float64)
    covariance = (B @ B.T).numpy()
    lr = theory_step(problem.X, theta)
    expected = expected_curves(problem, theta.numpy(), covariance, lr, steps, centered=False)
    starts = torch.randn(draws, lags, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) @ B.T
    runs = kernel_gradient_descent(problem.X, problem.y.expand(-1, -1, draws), theta, starts.T.reshape(lags, draws, 1),
                                   lr * draws, steps)[..., 0]  # (steps + 1, lags, draws): independent outputs
    errors = (runs - problem.teacher.reshape(1, lags, 1)).square().sum(1)
    rows = problem.X.reshape(-1, lags)
    losses = 0.5 * (torch.einsum("rj,tjd->trd", rows, runs) - problem.y.reshape(1, -1, 1)).square().mean(1)
    for name, values in (("test_error", errors), ("train_loss", losses)):
        mean, se = values.mean(1).numpy(), (values.std(1) / np.sqrt(draws)).numpy()
        for t in (0, 5, steps):
            assert abs(expected[name][t] - mean[t]) < 4 * se[t], (name, t, expected[name][t], mean[t], se[t])
    last = expected_curves(problem, theta.numpy(), covariance, lr, steps, centered=False, final_only=True,
                           A=propagator(problem.X, theta, lr, steps)[-1:])
    assert last["test_error"][0] == pytest.approx(expected["test_error"][-1], rel=1e-12)
    diagonal = expected_curves(problem, theta.numpy(), np.diagonal(covariance), lr, steps, centered=False)
    assert abs(diagonal["test_error"][-1] - expected["test_error"][-1]) > 10 * se[-1]  # the correlations matter


def _identity_is_drawn() -> bool:
    W = LinearRNN(Spec(init="identity"), 8, seed=0).W.detach()
    return bool(torch.equal(W, torch.diag(W.diagonal())))


# Final deviation ‖L_rnn − L_Θ‖/‖L_Θ − L_0‖ for this setting (20 steps at the theory step, identity W,
# σ_W = 0.8), measured over seeds 0–2: ·√n between 0.01 and 0.26 at n = 256 and 0.02–0.10 at n = 1024,
# so we allow 1/√n; the diagonal-α closed form is 0.20–0.30 away at both widths (it does not shrink).
@pytest.mark.skipif(not _identity_is_drawn(), reason="LinearRNN does not yet draw W from the spec's family")
def test_wide_identity_rnn_follows_the_full_lag_kernel():
    lags, width, steps = 8, 1024, 20
    problem = make_problem(parse_teacher("decay:0.8", lags), 20, lags, "seq2one", 40, seed=3)
    config = Comparison(width=width, spec=Spec(init="identity"), sigma_w=0.8, steps=steps, lr="theory", seed=0)
    assert meaningful(problem, config) == []
    result = compare_training(problem, config)
    L0, rnn, closed = (torch.tensor(result["response"][k], dtype=torch.float64) for k in ("initial", "rnn", "closed_form"))
    assert np.allclose(result["lag_kernel"], theory_lag_kernel(config.spec, lags, config.sigmas))
    diagonal = kernel_gradient_descent(problem.X, problem.y, torch.tensor(result["lag_weights"], dtype=torch.float64),
                                       L0.reshape(lags, 1, 1),
                                       result["lr"], steps)[-1].flatten()
    move = float((closed - L0).norm())
    full_gap, diagonal_gap = float((rnn - closed).norm()) / move, float((rnn - diagonal).norm()) / move
    assert full_gap < width ** -0.5, full_gap
    assert diagonal_gap > 0.1 and diagonal_gap > 5 * width ** -0.5, diagonal_gap
