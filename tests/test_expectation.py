"""The expected learning curve of kernel gradient descent over the random initial function."""
import numpy as np
import pytest
import torch

from derivations.spec import DEFAULT
from numerics.data.problem import make_problem
from numerics.data.teachers import parse_teacher
from numerics.kernels.theory import (
    expected_curves,
    kernel_gradient_descent,
    propagator,
    theory_initial_variance,
    theory_lag_weights,
    theory_step,
)
from numerics.train.members import curves

LAGS, STEPS = 10, 30
SIGMAS = {"W": 0.9, "F": 1.0, "C": 1.0, "D": 1.0}


@pytest.fixture(scope="module")
def setting():
    problem = make_problem(parse_teacher("decay:0.8", LAGS), 5, LAGS, "seq2one", 40, seed=3)
    alpha = torch.as_tensor(theory_lag_weights(DEFAULT, LAGS, SIGMAS))
    variance = theory_initial_variance(DEFAULT, LAGS, SIGMAS)
    return problem, alpha, variance, theory_step(problem.X, alpha)


def test_propagator_columns_are_runs_from_unit_starts(setting):
    problem, alpha, _, lr = setting
    A = propagator(problem.X, alpha, lr, STEPS)
    for i in (0, 4, LAGS - 1):
        start = torch.zeros(LAGS, 1, 1, dtype=torch.float64)
        start[i] = 1
        run = kernel_gradient_descent(problem.X, torch.zeros_like(problem.y), alpha, start, lr, STEPS)
        torch.testing.assert_close(A[:, :, i], run.reshape(STEPS + 1, LAGS), rtol=1e-10, atol=1e-12)


def test_centered_curves_are_the_run_from_zero(setting):
    problem, alpha, variance, lr = setting
    expected = expected_curves(problem, alpha, variance, lr, STEPS, centered=True)
    run = curves(problem, kernel_gradient_descent(problem.X, problem.y, alpha,
                                                   torch.zeros(LAGS, 1, 1, dtype=torch.float64), lr, STEPS))
    for key in ("train_loss", "test_loss", "test_error"):
        np.testing.assert_allclose(expected[key], run[key], rtol=1e-10)
    last = expected_curves(problem, alpha, variance, lr, STEPS, centered=True, final_only=True)
    assert last["test_error"] == pytest.approx(expected["test_error"][-1:], rel=1e-12)


def test_uncentered_curves_match_monte_carlo_over_initial_functions(setting):
    """Average kernel gradient descent over 3000 draws of L(0) ~ N(0, diag v_j); the exact
    expectation must lie within 4 Monte Carlo standard errors at every recorded step."""
    problem, alpha, variance, lr = setting
    expected = expected_curves(problem, alpha, variance, lr, STEPS, centered=False)
    generator = torch.Generator().manual_seed(0)
    draws = 3000
    starts = (torch.randn(draws, LAGS, generator=generator, dtype=torch.float64)
              * torch.as_tensor(variance).sqrt())
    # Every draw at once: the draws are independent outputs of one run (loss averages over them).
    runs = kernel_gradient_descent(problem.X, problem.y.expand(-1, -1, draws), alpha, starts.T.reshape(LAGS, draws, 1),
                                   lr * draws, STEPS)  # (steps + 1, lags, draws, 1)
    errors = (runs[..., 0] - problem.teacher.reshape(1, LAGS, 1)).square().sum(1)  # (steps + 1, draws)
    mean, se = errors.mean(1).numpy(), (errors.std(1) / np.sqrt(draws)).numpy()
    for t in (0, 5, STEPS):
        assert abs(expected["test_error"][t] - mean[t]) < 4 * se[t], (t, expected["test_error"][t], mean[t], se[t])
    last = expected_curves(problem, alpha, variance, lr, STEPS, centered=False, final_only=True,
                           A=propagator(problem.X, alpha, lr, STEPS)[-1:])
    assert last["test_error"][0] == pytest.approx(expected["test_error"][-1], rel=1e-12)
