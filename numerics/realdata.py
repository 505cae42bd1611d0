"""The memory question on real data: yearly sunspot numbers, predicted from the past window.

Data: the yearly sunspot numbers 1700–2008 (309 values) shipped inside statsmodels
(`statsmodels.datasets.sunspots`), read by statsmodels' own loader, nothing downloaded.
Framing: standardize with the mean and standard deviation of the training years, then predict
x_{k+1} from the window x_{k−T+1} … x_k read as a sequence (seq2one), so the impulse response L_j
weights the value j years before the last one seen. Windows whose target year is before
`split_year` train, the later ones test (a split in time, no shuffling).

There is no teacher here. `Problem.teacher` holds a reference instead: the least-squares filter of
the training windows, the point plain gradient descent converges to when the fit is
overdetermined. Its "test error" ‖L − L_ls‖² is only a distance; the score is the test loss.

Training reuses `numerics.training` (`LinearRNN`, `ScaledConvolution`, `train`,
`kernel_gradient_descent`) on this `Problem`: `compare_training` only builds white-noise problems
from a teacher string, so `train_on_problem` below is its three-trainer core for a given problem.
"""
from __future__ import annotations

import numpy as np
import torch

from derivations.spec import DEFAULT, Spec

from .device import resolve_device, resolve_dtype
from .errors import NumericsError
from .expectation import theory_step
from .model import LinearRNN
from .ntk import theory_lag_weights
from .training import Problem, ScaledConvolution, _curves, design_matrix, kernel_gradient_descent, train

SUNSPOTS = {
    "name": "Yearly sunspot numbers 1700–2008",
    "loader": "statsmodels.datasets.sunspots.load_pandas()",
    "citation": ("SILSO World Data Center, International Sunspot Number (version 1 series), Royal Observatory of "
                 "Belgium, Brussels (formerly SIDC; WDC-SILSO). As shipped in statsmodels, whose docstring gives the "
                 "source as the National Geophysical Data Center (NOAA NGDC), "
                 "http://www.ngdc.noaa.gov/stp/solar/solarda3.html, and the copyright as public domain."),
}


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """(years, sunspot numbers): 309 yearly values, 1700–2008, from the copy inside statsmodels."""
    try:
        from statsmodels.datasets import sunspots
    except ImportError as error:
        raise NumericsError(f"the real-data experiment needs statsmodels ({error}); pip install statsmodels") from None
    data = sunspots.load_pandas().data
    years, values = data["YEAR"].to_numpy(dtype=float), data["SUNACTIVITY"].to_numpy(dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(np.diff(years) == 1)):
        raise NumericsError("the sunspot series has gaps or missing values")
    return years.astype(int), values


def source() -> dict:
    """What the data set is and where it comes from, with statsmodels' own description."""
    from statsmodels.datasets import sunspots

    return {**SUNSPOTS, "statsmodels_title": sunspots.TITLE, "statsmodels_source": sunspots.SOURCE.strip(),
            "statsmodels_copyright": sunspots.COPYRIGHT}


def least_squares_filter(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The least-squares impulse response of a design (samples, 1, lags, 1), shape (lags, 1, 1)."""
    lags = X.shape[2]
    solution = torch.linalg.lstsq(X.reshape(-1, lags), y.reshape(-1, 1), driver="gelsd").solution
    return solution.reshape(lags, 1, 1)


def window_problem(lags: int, split_year: int, dtype: str = "float64", device: str = "cpu") -> tuple[Problem, dict]:
    """One-step-ahead prediction of the standardized sunspot series from the past `lags` years.

    Returns the `Problem` (teacher = least-squares filter of the training windows) and a description:
    years of the train and test targets, mean and standard deviation used, and the raw series.
    """
    years, values = load_sunspots()
    if not years[0] + lags < split_year <= years[-1]:
        raise NumericsError(f"split year {split_year} leaves no training or no test window for {lags} lags")
    train_years = years < split_year
    mean, sd = values[train_years].mean(), values[train_years].std()
    z = (values - mean) / sd
    targets = np.arange(lags, len(z))  # index of the predicted year; its window is z[k − lags : k]
    windows = np.stack([z[k - lags:k] for k in targets])[:, :, None]
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    X = design_matrix(torch.as_tensor(windows, dtype=dtype, device=device), "seq2one")
    y = torch.as_tensor(z[targets], dtype=dtype, device=device).reshape(-1, 1, 1)
    is_train = torch.as_tensor(years[targets] < split_year, device=device)
    reference = least_squares_filter(X[is_train], y[is_train])
    problem = Problem(X[is_train], y[is_train], X[~is_train], y[~is_train], reference)
    return problem, {"train_years": [int(years[targets][0]), int(split_year - 1)],
                     "test_years": [int(split_year), int(years[-1])], "mean": float(mean), "sd": float(sd),
                     "train_windows": int(is_train.sum()), "test_windows": int((~is_train).sum()),
                     "years": years.tolist(), "values": values.tolist()}


def train_on_problem(problem: Problem, *, width: int, spec: Spec = DEFAULT, sigma_w: float = 0.5,
                     sigma_f: float = 1.0, sigma_c: float = 1.0, sigma_d: float = 1.0, steps: int = 200,
                     lr: float | str = "theory", center: bool = False, seed: int = 0) -> dict:
    """Train an RNN, its scaled convolution and the closed form on `problem` from one initial function.

    The same three trainers as `compare_training` (theory lag weights, full-batch gd). lr 'theory'
    is the automatic step of the infinite-width kernel, so runs at every width use the same step.
    Returns the per-trainer curves and final impulse responses (JSON-ready) and 'final' numbers.
    """
    lags = problem.X.shape[2]
    model_seed, batch_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    sigmas = {"W": sigma_w, "F": sigma_f, "C": sigma_c, "D": sigma_d}
    rnn = LinearRNN(spec, width, sigmas=sigmas, dtype=problem.X.dtype, device=problem.X.device, seed=model_seed)
    alpha = torch.as_tensor(theory_lag_weights(spec, lags, sigmas)).to(problem.X)
    initial = rnn.markov_parameters(lags).detach()
    lr = theory_step(problem.X, alpha) if lr == "theory" else float(lr)
    start = torch.zeros_like(initial) if center else initial
    closed = kernel_gradient_descent(problem.X, problem.y, alpha, start, lr, steps)
    runs = {"closed_form": {"responses": closed, **_curves(problem, closed)}}
    for name, model in (("convolution", ScaledConvolution(alpha, initial)), ("rnn", rnn)):
        runs[name] = train(model, problem, lr=lr, steps=steps, center=center, seed=batch_seed, name=name)
    responses = {name: run.pop("responses") for name, run in runs.items()}
    gap = (responses["rnn"][-1] - responses["convolution"][-1]).norm()
    moved = (responses["convolution"][-1] - responses["convolution"][0]).norm()
    return {
        "lr": float(lr),
        **runs,
        "response": {"reference": problem.teacher.flatten().tolist(), "initial": start.flatten().tolist(),
                     **{name: L[-1].flatten().tolist() for name, L in responses.items()}},
        "final": {"deviation": float(gap / moved), **{f"test_loss_{name}": runs[name]["test_loss"][-1] for name in runs},
                  **{f"train_loss_{name}": runs[name]["train_loss"][-1] for name in runs}},
    }
