"""The real-data problem: yearly sunspot numbers from statsmodels, as one-step-ahead prediction."""
import json

import numpy as np
import pytest
import torch

from numerics import Comparison, compare_training
from numerics.data import sunspots as realdata


def test_sunspots_load_completely():
    years, values = realdata.load_sunspots()
    assert len(values) == 309 and years[0] == 1700 and years[-1] == 2008
    assert np.all(np.isfinite(values)) and np.all(np.diff(years) == 1) and values.min() >= 0


def test_the_source_is_cited():
    source = realdata.source()
    assert "Royal Observatory of Belgium" in source["citation"] and "SILSO" in source["citation"]
    assert "ngdc" in source["statsmodels_source"].lower()


def test_window_problem_splits_in_time_and_standardizes_on_training_years():
    lags, split = 12, 1900
    problem, about = realdata.window_problem(lags, split)
    years, values = realdata.load_sunspots()
    assert about["train_windows"] == split - 1700 - lags and about["test_windows"] == 2008 - split + 1
    assert problem.X.shape == (about["train_windows"], 1, lags, 1) and problem.y_test.shape[0] == about["test_windows"]
    train = values[years < split]
    assert about["mean"] == pytest.approx(train.mean()) and about["sd"] == pytest.approx(train.std())
    z = (values - train.mean()) / train.std()
    # The first window predicts 1700 + lags from the years before it, most recent at lag 0.
    np.testing.assert_allclose(problem.X[0, 0, :, 0].numpy(), z[:lags][::-1])
    assert float(problem.y[0]) == pytest.approx(z[lags])
    # The reference is the least-squares filter of the training windows.
    rows = problem.X.reshape(-1, lags)
    gradient = rows.T @ (rows @ problem.teacher.reshape(-1) - problem.y.reshape(-1))
    assert float(gradient.abs().max()) < 1e-8


def test_training_on_sunspots_keeps_the_three_trainers_together():
    problem, _ = realdata.window_problem(6, 1900)
    config = Comparison(32, sigma_w=0.7, steps=8, lr="theory", center=True, seed=1)
    result = compare_training(problem, config)
    final = result["final"]
    assert final["test_loss_convolution"] == pytest.approx(final["test_loss_closed_form"], rel=1e-9)
    assert final["test_loss_rnn"] < result["rnn"]["test_loss"][0]  # it learned something
    json.dumps(result)
    again = compare_training(problem, config)
    assert again["final"] == final


def test_bad_split_is_an_error():
    with pytest.raises(ValueError, match="split year"):
        realdata.window_problem(24, 1710)
    assert isinstance(realdata.window_problem(4, 2000)[0].X, torch.Tensor)
