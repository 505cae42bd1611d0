"""The PLRNN, its regularizer, the baselines' initializations, the hand-written recurrence, and one
training run (numerics/plrnn/), against closed forms and the plain autograd loop."""
import math

import numpy as np
import pytest
import torch

from numerics.errors import NumericsError, TrainingDiverged
from numerics.plrnn.model import C_SCALE, PLRNN, build_model, regularized_units
from numerics.plrnn.names import MODELS
from numerics.plrnn.recurrence import plrnn_states, plrnn_states_reference
from numerics.plrnn.speed import BASELINE, training_steps
from numerics.plrnn.train import train_long_range

M = 10


def _trained_parameters(model):
    """Move every parameter off its initial value, so regularizer checks see general values."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=torch.Generator().manual_seed(param.numel()),
                                         dtype=param.dtype))
    return model


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_the_regularizer_and_its_gradient_match_the_closed_form(reduction):
    model = _trained_parameters(PLRNN(2, M, 1, seed=0, p=0.35, tau_a=2.0, tau_w=3.0, reduction=reduction))
    n = regularized_units(M, 0.35)
    assert n == model.regularized == 3
    A, h = model.A.detach().double(), model.h.detach().double()
    W = model.W.detach().double() * (1 - torch.eye(M, dtype=torch.float64))
    a, w, b = (n, n * M, n) if reduction == "mean" else (1, 1, 1)  # the divisor of each term
    value = 2.0 * ((A[:n] - 1) ** 2).sum() / a + 3.0 * (W[:n] ** 2).sum() / w + 3.0 * (h[:n] ** 2).sum() / b
    penalty = model.regularizer()
    assert math.isclose(float(penalty.detach()), float(value), rel_tol=1e-5)
    penalty.backward()
    grad_A, grad_W, grad_h = torch.zeros(M, dtype=torch.float64), torch.zeros(M, M, dtype=torch.float64), \
        torch.zeros(M, dtype=torch.float64)
    grad_A[:n] = 2.0 * 2 * (A[:n] - 1) / a
    grad_W[:n] = 3.0 * 2 * W[:n] / w  # the masked diagonal has no gradient
    grad_h[:n] = 3.0 * 2 * h[:n] / b
    for param, expected in ((model.A, grad_A), (model.W, grad_W), (model.h, grad_h)):
        assert torch.allclose(param.grad.double(), expected, atol=1e-6)
    assert model.C.grad is None and model.z0.grad is None


def test_no_regularized_unit_or_strength_gives_no_penalty():
    assert float(PLRNN(2, M, 1, seed=0, p=0.05, tau_a=5.0, tau_w=5.0).regularizer()) == 0.0  # ⌊0.5⌋ = 0 units
    assert float(_trained_parameters(PLRNN(2, M, 1, seed=0, p=1.0)).regularizer()) == 0.0  # τ = 0
    assert regularized_units(100, 0.29) == 29 and regularized_units(40, 0.5) == 20


def test_the_diagonal_of_W_is_masked_in_every_forward_pass():
    model = PLRNN(2, M, 1, seed=0)
    inputs = torch.rand(4, 25, 2, generator=torch.Generator().manual_seed(0))
    before = model(inputs)
    with torch.no_grad():
        model.W.fill_diagonal_(7.0)
    assert torch.equal(model(inputs), before)
    model(inputs).sum().backward()
    assert torch.all(torch.diagonal(model.W.grad) == 0) and model.W.grad.abs().sum() > 0
    assert torch.all(torch.diagonal(model.dynamics()["W"]) == 0)


@pytest.mark.parametrize("name, attractors", [("rplrnn", 20), ("iplrnn", 40), ("plrnn", 0)])
def test_plrnn_models_start_with_their_attractor_units(name, attractors):
    model = build_model(name, 2, 40, 1, seed=1)
    A, W, h = model.A.detach(), model.W.detach(), model.h.detach()
    n = attractors
    assert torch.all(A[:n] == 1) and torch.all(W[:n] == 0) and torch.all(h[:n] == 0)
    assert torch.all(torch.diagonal(W) == 0) and torch.all((model.z0 >= 0) & (model.z0 < 1))
    if n < 40:  # the other units: the public code's law, A + W shrunk to spectral radius ≤ 1
        free = torch.diag(A) + W
        free[:n] = 0
        assert float(torch.linalg.eigvals(free.double()).abs().max()) <= 1 and W[n:].abs().sum() > 0
        assert h[n:].abs().sum() > 0
    # the small input matrix, sd C_SCALE/√M (within 5 sd of a sample sd over 80 entries)
    assert abs(float(model.C.detach().std()) / (C_SCALE(40) / math.sqrt(40)) - 1) < 5 * math.sqrt(1 / 160)
    if n:  # attractor units are still driven, and read by the other units
        assert model.C[:n].abs().sum() > 0 and (n == 40 or W[n:, :n].abs().sum() > 0)
    assert model.regularized == (20 if name == "rplrnn" else 0)


def test_baseline_initializations():
    irnn = build_model("irnn", 2, M, 1, seed=0).rnn
    assert torch.equal(irnn.weight_hh_l0, torch.eye(M))
    assert torch.all(irnn.bias_ih_l0 == 0) and torch.all(irnn.bias_hh_l0 == 0)
    assert irnn.weight_ih_l0.abs().max() <= 1 / math.sqrt(M) and irnn.weight_ih_l0.std() > 0.1  # torch's law kept

    nprnn = build_model("nprnn", 2, M, 1, seed=0).rnn.weight_hh_l0.detach().double()
    assert torch.allclose(nprnn, nprnn.T) and math.isclose(float(torch.linalg.eigvalsh(nprnn)[-1]), 1.0, rel_tol=1e-5)

    rnn = build_model("rnn", 2, M, 1, seed=0)
    for param in rnn.parameters():  # torch's default law, U(±1/√M)
        assert param.abs().max() <= 1 / math.sqrt(M) and param.abs().max() > 0.5 / math.sqrt(M)

    lstm = build_model("lstm", 2, M, 1, seed=0).rnn
    forget = slice(M, 2 * M)
    assert torch.all(lstm.bias_ih_l0[forget] + lstm.bias_hh_l0[forget] == 1)


def test_the_ornn_stays_orthogonal_through_training():
    model = build_model("ornn", 2, M, 1, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    inputs = torch.rand(8, 20, 2, generator=torch.Generator().manual_seed(0))
    start = model.rnn.weight_hh_l0.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        model(inputs).square().mean().backward()
        opt.step()
    W = model.rnn.weight_hh_l0.detach().double()
    assert torch.allclose(W @ W.T, torch.eye(M, dtype=torch.float64), atol=1e-5)
    assert not torch.allclose(W.float(), start, atol=1e-3)  # it did move


def test_models_are_drawn_from_the_seed_alone():
    state = torch.get_rng_state()
    for name in MODELS:
        a, b = build_model(name, 2, M, 1, seed=4), build_model(name, 2, M, 1, seed=4)
        assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
        c = build_model(name, 2, M, 1, seed=5)
        assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))
    assert torch.equal(state, torch.get_rng_state())  # torch's global generator untouched


@pytest.mark.parametrize("every_step", [False, True])
def test_the_fast_recurrence_matches_the_autograd_loop(every_step):
    g = torch.Generator().manual_seed(0)
    T, N = 30, 5
    drive = torch.randn(T, N, M, generator=g, dtype=torch.float64)
    A = torch.rand(M, generator=g, dtype=torch.float64)
    W = torch.randn(M, M, generator=g, dtype=torch.float64) / math.sqrt(M)
    z0 = torch.randn(M, generator=g, dtype=torch.float64)
    weights = torch.randn((T, N, M) if every_step else (N, M), generator=g, dtype=torch.float64)
    results = []
    for fn in (plrnn_states, plrnn_states_reference):
        leaves = [x.clone().requires_grad_() for x in (drive, A, W, z0)]
        out = fn(*leaves, every_step=every_step)
        (out * weights).sum().backward()
        results.append([out.detach(), *(x.grad for x in leaves)])
    for fast, slow in zip(*results):
        assert torch.allclose(fast, slow, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the path that stores no states
        assert torch.allclose(plrnn_states(drive, A, W, z0, every_step=every_step), results[1][0], atol=1e-12)
    small = 4  # gradcheck on a small case (its Jacobian is dense)
    leaves = [drive[:6, :3, :small].clone(), A[:small].clone(), W[:small, :small].clone(), z0[:small].clone()]
    assert torch.autograd.gradcheck(lambda d, a, w, z: plrnn_states(d, a, w, z, every_step=every_step),
                                    [x.requires_grad_() for x in leaves])


def test_every_step_readout_and_states():
    model = PLRNN(2, M, 3, seed=0, readout="every")
    inputs = torch.rand(4, 22, 2, generator=torch.Generator().manual_seed(1))
    outputs, states = model(inputs), model.states(inputs)
    assert outputs.shape == (4, 22, 3) and states.shape == (4, 22, M)
    last = PLRNN(2, M, 3, seed=0)
    assert torch.allclose(last(inputs), outputs[:, -1], atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: build_model("rplrnn", 2, M, 1, 0, p=1.5), "p must be"),
    (lambda: build_model("rplrnn", 2, M, 1, 0, p=-0.1), "p must be"),
    (lambda: build_model("rplrnn", 2, M, 1, 0, tau_a=-1), "tau_a must be"),
    (lambda: build_model("plrnn", 2, M, 1, 0, tau_w=float("nan")), "tau_w must be"),
    (lambda: build_model("gru", 2, M, 1, 0), "unknown model"),
    (lambda: build_model("rnn", 2, M, 1, 0, readout="every"), "needs a PLRNN"),
    (lambda: build_model("rplrnn", 2, M, 1, 0, reduction="max"), "unknown reduction"),
    (lambda: build_model("rplrnn", 2, 0, 1, 0), "hidden must be"),
    (lambda: train_long_range("addition", 30, "gru", 0), "unknown model"),
    (lambda: train_long_range("addition", 19, "rplrnn", 0), "T must be ≥ 20"),
    (lambda: train_long_range("copy", 30, "rplrnn", 0), "unknown task"),
    (lambda: train_long_range("addition", 30, "rplrnn", 0, p=2), "p must be"),
    (lambda: train_long_range("addition", 30, "rplrnn", 0, lr=0), "lr must be"),
    (lambda: train_long_range("addition", 30, "rplrnn", 0, batch=50, train_size=20), "exceeds"),
    (lambda: train_long_range("mnist", None, "rplrnn", 0), "needs the directory"),
])
def test_bad_input_is_refused_in_one_line(call, message):
    with pytest.raises(NumericsError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


RUN = {"hidden": 8, "steps": 6, "batch": 16, "train_size": 48, "val_size": 24, "test_size": 24, "track_every": 2}


def test_training_is_reproducible_by_seed_and_returns_what_analysis_needs():
    first = train_long_range("addition", 20, "rplrnn", 3, **RUN)
    second = train_long_range("addition", 20, "rplrnn", 3, **RUN)
    first.pop("timing"), second.pop("timing")
    assert first == second
    other = train_long_range("addition", 20, "rplrnn", 4, **RUN)
    assert other["curve"]["train_loss"] != first["curve"]["train_loss"]
    curve = first["curve"]
    assert curve["step"] == [0, 2, 4, 6] and first["metric"] == "fraction_correct"
    assert first["selected"]["val_metric"] == max(curve["val_metric"])
    assert first["best_test"]["test_metric"] == max(curve["test_metric"])
    assert first["final"]["step"] == 6 and first["config"]["regularizer"]["units"] == 4
    params = first["parameters"]
    assert len(params["A"]) == 8 and np.all(np.diag(params["W"]) == 0) and len(params["h"]) == 8
    assert np.asarray(first["states"]).shape == (300, 8)
    assert curve["regularizer"][0] == 0.0 and curve["regularizer"][-1] > 0  # the attractors start exact


@pytest.mark.parametrize("model, task", [("lstm", "multiplication"), ("ornn", "digits"), ("iplrnn", "digits")])
def test_other_models_and_tasks_run(model, task):
    sizes = {k: RUN[k] for k in ("train_size", "val_size", "test_size")} if task != "digits" else {}
    result = train_long_range(task, 20 if task != "digits" else None, model, 0, hidden=6, steps=2, batch=16,
                              track_every=1, **sizes)
    assert result["config"]["T"] == (64 if task == "digits" else 20)
    assert (result["parameters"] is None) == (model not in ("rplrnn", "plrnn", "iplrnn"))
    assert result["metric"] == ("accuracy" if task == "digits" else "fraction_correct")


def test_a_non_finite_loss_ends_the_run():
    with pytest.raises(TrainingDiverged):
        train_long_range("addition", 20, "plrnn", 0, **{**RUN, "steps": 30}, lr=1e30, clip=None)


def test_the_timed_steps_run_and_train():
    steps = training_steps(8, 4, 20)
    assert BASELINE in steps and "rplrnn" in steps
    for step in steps.values():
        step()
