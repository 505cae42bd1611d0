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

Training is `numerics.train.compare_training` on this `Problem`, as for any other.
"""
from __future__ import annotations

import numpy as np
import torch

from ..device import resolve_device, resolve_dtype
from ..errors import NumericsError
from .problem import Problem, design_matrix

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
