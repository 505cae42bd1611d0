"""Runs trained as one packed module equal the same runs trained alone (numerics/eigen/batched.py)."""
import numpy as np
import pytest
import torch

from numerics.eigen.batched import Packed, train_batched
from numerics.eigen.model import build_model
from numerics.eigen.tasks import load_task
from numerics.eigen.train import train_classifier
from numerics.errors import NumericsError

OPTIONS = {"steps": 12, "track_every": 4, "hidden": 6}


def _close(batched: dict, alone: dict) -> None:
    assert batched["config"] == {**alone["config"], "batched": batched["config"]["batched"]}
    assert batched["curve"]["step"] == alone["curve"]["step"]
    # float32 sums of exact zeros in another order: differences at the rounding level only
    np.testing.assert_allclose(batched["curve"]["train_loss"], alone["curve"]["train_loss"], rtol=1e-5)
    # an accuracy (a count) must agree exactly and does, since one sequence is ≥ 1e-3 of it; a
    # regression R² is a float32 sum, equal to rounding (the matrix kernels may differ per CPU)
    np.testing.assert_allclose(batched["curve"]["test_metric"], alone["curve"]["test_metric"], rtol=1e-5, atol=0)
    for key, steps in alone["eigenvalues"].items():
        np.testing.assert_allclose(np.sort_complex(np.array(batched["eigenvalues"][key][-1]) @ [1, 1j]),
                                   np.sort_complex(np.array(steps[-1]) @ [1, 1j]), atol=1e-5)


@pytest.mark.parametrize("task, cell", [("tomita:3", "gru"), ("digits", "lstm"), ("recall:3", "rnn")])
def test_batched_runs_equal_runs_alone(task, cell):
    runs = [("xavier", 0), ("orthogonal", 1), ("nprnn", 0)]
    batched = train_batched(task, cell, runs, **OPTIONS)
    for result, (init, seed) in zip(batched, runs):
        _close(result, train_classifier(task, cell, init, seed, **OPTIONS))
        assert result["config"]["batched"] == 3


def test_a_diverging_run_stops_alone_and_the_others_go_on():
    runs = [("xavier:gain=40", 0), ("identity", 1)]  # a ReLU net with gain 40 overflows in 64 steps
    diverging, fine = train_batched("digits", "rnn-relu", runs, **OPTIONS)
    with pytest.raises(NumericsError) as alone:
        train_classifier("digits", "rnn-relu", *runs[0], **OPTIONS)
    assert diverging["status"] == "diverged" and diverging["diverged"]["step"] == alone.value.step
    _close(fine, train_classifier("digits", "rnn-relu", *runs[1], **OPTIONS))


def test_off_diagonal_blocks_stay_zero_and_each_run_unpacks_to_its_own_network():
    data = load_task("tomita:4")
    models = [build_model(data, "lstm", init, seed, hidden=5) for init, seed in (("xavier", 0), ("kaiming", 3))]
    packed = Packed(models)
    opt = torch.optim.Adam(packed.parameters(), lr=0.1)
    inputs = torch.cat([data.train[0][:16]] * 2, dim=-1)
    lengths = torch.stack([data.train[1][:16]] * 2)
    for _ in range(3):
        opt.zero_grad()
        packed(inputs, lengths).pow(2).sum().backward()
        opt.step()
    weight = packed.rnn.weight_hh_l0.detach().view(4, 2, 5, 2, 5)
    assert torch.count_nonzero(weight[:, 0, :, 1, :]) == 0 and torch.count_nonzero(weight[:, 1, :, 0, :]) == 0
    assert torch.count_nonzero(packed.rnn.weight_ih_l0.detach().view(4, 2, 5, 2, 2)[:, 0, :, 1, :]) == 0
    for k, model in enumerate(models):
        packed.unpack(k, model)
        with torch.no_grad():
            np.testing.assert_allclose(model(data.train[0][:16], data.train[1][:16]).numpy(),
                                       packed(inputs, lengths)[:, k].numpy(), rtol=1e-5, atol=1e-6)


def test_no_runs_is_refused():
    with pytest.raises(NumericsError, match="at least one"):
        train_batched("tomita:3", "gru", [])
