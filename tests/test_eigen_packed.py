"""Classifier runs trained as one pack equal the same runs trained alone in torch's own modules
(numerics/eigen/packed.py): the gate equations, the run axis, per-run streams, clips and Adam moments."""
import numpy as np
import pytest
import torch

from numerics.eigen.model import build_model
from numerics.eigen.packed import PackedClassifier, train_packed
from numerics.eigen.tasks import load_task
from numerics.eigen.train import train_classifier
from numerics.errors import NumericsError

OPTIONS = {"steps": 12, "track_every": 4, "hidden": 6}


def _close(packed: dict, alone: dict, rtol: float) -> None:
    assert packed["config"] == {**alone["config"], "trainer": "packed"}
    assert packed["curve"]["step"] == alone["curve"]["step"]
    np.testing.assert_allclose(packed["curve"]["train_loss"], alone["curve"]["train_loss"], rtol=rtol)
    np.testing.assert_allclose(packed["curve"]["test_metric"], alone["curve"]["test_metric"], rtol=rtol, atol=0)
    for key, steps in alone["eigenvalues"].items():
        np.testing.assert_allclose(np.sort_complex(np.array(packed["eigenvalues"][key][-1]) @ [1, 1j]),
                                   np.sort_complex(np.array(steps[-1]) @ [1, 1j]), atol=rtol)


@pytest.mark.parametrize("task, cell", [("tomita:3", "gru"), ("digits", "lstm"), ("recall:3", "rnn"),
                                        ("tomita:4", "rnn-relu")])
def test_packed_runs_equal_runs_alone_in_float64(float64, task, cell):
    runs = [("xavier", 0), ("orthogonal", 1), ("nprnn", 0)]
    for result, (init, seed) in zip(train_packed(task, cell, runs, **OPTIONS), runs):
        _close(result, train_classifier(task, cell, init, seed, **OPTIONS), rtol=1e-10)


def test_two_layers_and_the_forward_of_each_cell_match_torch(float64):
    data = load_task("tomita:4")
    inputs, lengths = data.train[0][:16], data.train[1][:16]
    for cell in ("rnn", "rnn-relu", "lstm", "gru"):
        models = [build_model(data, cell, init, seed, hidden=5, layers=2) for init, seed in (("xavier", 0), ("kaiming", 3))]
        packed = PackedClassifier(models)
        out = packed(torch.stack([inputs] * 2), torch.stack([lengths] * 2))
        for k, model in enumerate(models):
            np.testing.assert_allclose(out[k].detach().numpy(), model(inputs, lengths).detach().numpy(), rtol=1e-12)


def test_a_diverging_run_stops_alone_and_the_others_go_on():
    runs = [("xavier:gain=40", 0), ("identity", 1)]  # a ReLU net with gain 40 overflows in 64 steps
    diverging, fine = train_packed("digits", "rnn-relu", runs, **OPTIONS)
    with pytest.raises(NumericsError) as alone:
        train_classifier("digits", "rnn-relu", *runs[0], **OPTIONS)
    assert diverging["status"] == "diverged" and diverging["diverged"]["step"] == alone.value.step
    assert np.isfinite(fine["curve"]["train_loss"]).all()
    # the survivor's numbers are its numbers in a pack of one: the diverged run never touched it
    (single,) = train_packed("digits", "rnn-relu", runs[1:], **OPTIONS)
    assert fine["curve"] == single["curve"]


def test_no_runs_is_refused():
    with pytest.raises(NumericsError, match="at least one"):
        train_packed("tomita:3", "gru", [])
