"""Dynamical-system reconstruction with a PLRNN (numerics/plrnn/reconstruct.py): teacher forcing's
replacement and gradient cut checked directly, the Jacobians against autograd, a hand-set limit
cycle, training on data of a known PLRNN, checkpoint-resume, seeds and bad input."""
import math

import numpy as np
import pytest
import torch

from numerics.errors import NumericsError
from numerics.plrnn.generators import (
    PLRNNGenerator,
    build_reconstruction_model,
    forced_observations,
    forced_states,
    generate,
    jacobians,
    model_from_result,
)
from numerics.plrnn.names import RECONSTRUCTION_MODELS as MODELS
from numerics.plrnn.reconstruct import train_reconstruction
from numerics.plrnn.speed import BASELINE
from numerics.plrnn.speed import reconstruction_steps as training_steps

PERIOD = 17  # the oscillator's cycle, verified in test_the_hand_set_oscillator_has_an_attracting_17_cycle


def _perturbed(model, scale=0.3, seed=0):
    """Move every trainable parameter off its initial value, so the latent units matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(scale * torch.randn(param.shape, generator=g, dtype=torch.float64).to(param.dtype))
    return model


def oscillator(dtype=torch.float64) -> PLRNNGenerator:
    """Two units, both observed: unit 1 a slow leaky integrator of a constant drive (A = 0.9, h = 1)
    that excites unit 2 (A = 0.5, h = −1), which inhibits unit 1 — an excitation–inhibition loop
    that relu turns into a piecewise-linear relaxation oscillator."""
    model = PLRNNGenerator(2, 2, seed=0).to(dtype)
    with torch.no_grad():
        model.plrnn.A.copy_(torch.tensor([0.9, 0.5]))
        model.plrnn.W.copy_(torch.tensor([[0.0, -1.0], [1.0, 0.0]]))
        model.plrnn.h.copy_(torch.tensor([1.0, -1.0]))
    return model


def measured_period(x: np.ndarray, tol: float = 1e-9, longest: int = 100) -> int | None:
    """The smallest P with |x_{t+P} − x_t| ≤ tol over the whole trajectory, or None."""
    for P in range(1, min(longest, len(x) // 2) + 1):
        if np.abs(x[P:] - x[:-P]).max() <= tol:
            return P
    return None


def oscillator_series(length=500, transient=100) -> np.ndarray:
    x = generate(oscillator(), torch.tensor([0.3, 0.7]), length + transient - 1)["observations"][transient:].numpy()
    return (x - x.mean(0)) / x.std(0)


# teacher forcing


def test_forcing_puts_the_data_on_the_observed_units_at_every_forced_step_and_nothing_else():
    N, M, L, tau = 2, 5, 13, 4
    model = _perturbed(PLRNNGenerator(N, M, seed=3, p=0.4, tau=1.0))
    x = torch.randn(3, L, N, generator=torch.Generator().manual_seed(1))
    states, predicted = forced_states(model, x, tau)
    assert states.shape == (3, L, M) and predicted.shape == (3, L - 1, M)
    for k in range(L):
        if k % tau == 0:  # k = 0, 4, 8, 12: exactly the data on the observed units
            assert torch.equal(states[:, k, :N], x[:, k])
        if k >= 1:  # the latent units are never replaced; unforced steps are the prediction itself
            units = slice(N, M) if k % tau == 0 else slice(0, M)
            assert torch.equal(states[:, k, units], predicted[:, k - 1, units])
    assert torch.equal(states[:, 0, N:], model.plrnn.z0[N:].detach().expand(3, M - N))
    # the prediction before the replacement is the model's own, not the data
    assert not torch.allclose(predicted[:, tau - 1, :N], x[:, tau])
    # unbatched windows give unbatched runs
    single = forced_states(model, x[0], tau)
    assert torch.equal(single.states, states[0]) and torch.equal(single.predicted, predicted[0])


def test_the_forced_units_cut_the_gradient():
    """d z_9 / d x_0 by autograd equals the product of the Jacobians with the observed rows zeroed
    at the forced steps 4 and 8 — and differs from the product without the cut."""
    N, M, tau = 2, 5, 4
    model = _perturbed(PLRNNGenerator(N, M, seed=3).double(), scale=0.5)
    x = torch.randn(12, N, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    states, _ = forced_states(model, x, tau)
    by_autograd = torch.stack([torch.autograd.grad(states[9, i], x, retain_graph=True)[0][0] for i in range(M)])
    J = jacobians(model, states.detach())
    cut = torch.diag(torch.tensor([0.0] * N + [1.0] * (M - N), dtype=torch.float64))
    E = torch.eye(M, N, dtype=torch.float64)  # z_0 = [x_0, z̄]
    chain, uncut = E, E
    for k in range(9):  # z_{k+1} from z_k
        chain, uncut = J[k] @ chain, J[k] @ uncut
        if (k + 1) % tau == 0:
            chain = cut @ chain
    assert torch.allclose(by_autograd, chain, atol=1e-12)
    assert chain.abs().max() > 1e-3  # the latent units still carry the gradient across the forced steps
    assert (chain - uncut).abs().max() > 1e-3  # and the cut removes a real path
    # the replaced values themselves depend on no parameter
    grads = torch.autograd.grad(states[8, :N].sum(), [q for q in model.parameters() if q.requires_grad],
                                allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_forcing_only_at_the_start_is_free_running(name):
    """With τ_tf ≥ L the forced predictions are the free-running trajectory from x_0."""
    model = _perturbed(build_reconstruction_model(name, 2, 6, 0, p=0.5, tau=1.0), scale=0.2)
    x = torch.randn(1, 9, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        forced = forced_observations(model, x, 9)
    free = generate(model, x[:, 0], 8)["observations"]
    assert torch.allclose(forced, free[:, 1:], atol=1e-6)
    assert torch.equal(free[:, 0], x[:, 0])


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_forcing_every_step_feeds_the_baselines_the_data(name):
    model = _perturbed(build_reconstruction_model(name, 2, 6, 0), scale=0.2)
    x = torch.randn(3, 7, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        forced = forced_observations(model, x, 1)
        state, expected = model.initial_state(3), []
        for k in range(6):
            state, out = model.step(x[:, k], state)
            expected.append(out)
    assert torch.equal(forced, torch.stack(expected, 1))


# the model's dynamics


def test_the_jacobians_match_autograd_and_the_regularized_units_are_the_last():
    model = _perturbed(PLRNNGenerator(3, 8, seed=1, p=0.5, tau=2.0).double())
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    J = jacobians(model, z)
    for t in range(6):
        assert torch.allclose(J[t], torch.autograd.functional.jacobian(lambda v: model.step(v[None])[0], z[t]))
    fresh = PLRNNGenerator(3, 8, seed=1, p=0.5, tau=2.0)
    A, W, h = fresh.plrnn.A.detach(), fresh.plrnn.recurrent_matrix().detach(), fresh.plrnn.h.detach()
    assert fresh.plrnn.regularized == 4
    assert torch.all(A[4:] == 1) and torch.all(W[4:] == 0) and torch.all(h[4:] == 0)
    assert torch.all(A[:4] != 1) and torch.all(h[:4] != 0)  # the observed (forced) units are free
    assert torch.equal(fresh.plrnn.B.detach(), torch.eye(3, 8)) and not fresh.plrnn.B.requires_grad
    assert torch.all(fresh.plrnn.C == 0) and not fresh.plrnn.C.requires_grad
    with torch.no_grad():
        model.plrnn.W.fill_diagonal_(0.0)
    A, W, h = model.plrnn.A.detach(), model.plrnn.W.detach(), model.plrnn.h.detach()
    expected = 2.0 * ((A[4:] - 1) ** 2).mean() + 2.0 * (W[4:] ** 2).mean() + 2.0 * (h[4:] ** 2).mean()
    assert math.isclose(float(model.regularizer().detach()), float(expected), rel_tol=1e-12)


def test_the_hand_set_oscillator_has_an_attracting_17_cycle():
    model = oscillator()
    runs = [generate(model, torch.tensor(start), 1400)["states"][1000:].numpy() for start in ([0.3, 0.7], [-2.0, 5.0])]
    assert measured_period(runs[0]) == PERIOD and measured_period(runs[1]) == PERIOD
    cycle = runs[0][:PERIOD]
    # the two starts land on the same cycle, possibly at another phase
    assert min(np.abs(np.roll(cycle, s, 0) - runs[1][:PERIOD]).max() for s in range(PERIOD)) < 1e-9
    # each point stays off the switching borders, so the map is affine near it ...
    assert np.abs(cycle).min() > 0.1
    # ... and the cycle is the fixed point of the composed affine map, with a contracting linear part
    J = jacobians(model, torch.tensor(cycle)).numpy()
    h = model.plrnn.h.detach().numpy()
    product, offset = np.eye(2), np.zeros(2)
    for t in range(PERIOD):
        product, offset = J[t] @ product, J[t] @ offset + h
    assert np.allclose(np.linalg.solve(np.eye(2) - product, offset), cycle[0], atol=1e-12)
    assert np.abs(np.linalg.eigvals(product)).max() < 0.5
    # the observations are the two units themselves (identity observation)
    free = generate(model, torch.tensor([0.3, 0.7]), 50)
    assert torch.equal(free["observations"], free["states"])


# training


@pytest.mark.parametrize("name", MODELS)
def test_training_on_data_of_a_known_plrnn_reduces_the_loss_tenfold(name):
    result = train_reconstruction(oscillator_series(), name, hidden=8, window=20, tau_tf=5, steps=300, batch=16,
                                  lr=1e-2, p=0.5, tau=1.0, seed=0)
    loss = result["curve"]["loss"]
    assert len(loss) == 300 and result["curve"]["step"] == list(range(1, 301))
    assert np.mean(loss[:5]) > 10 * np.mean(loss[-20:])
    assert result["config"]["data"]["dimensions"] == 2 and result["resumed_from"] is None
    net = model_from_result(result)
    if name in ("rplrnn", "plrnn"):
        assert set(result["parameters"]) == {"A", "W", "h", "z0", "B"}
        assert (result["config"]["regularizer"] is None) == (name == "plrnn")
        assert np.allclose(net.plrnn.A.detach().numpy(), result["parameters"]["A"])
    assert torch.isfinite(generate(net, torch.zeros(2), 100)["observations"]).all()


def _run(**options):
    settings = {"hidden": 6, "window": 12, "tau_tf": 3, "steps": 20, "batch": 4, "lr": 1e-2, "seed": 0,
                "p": 0.5, "tau": 1.0, "schedule": "cosine"}
    return train_reconstruction(oscillator_series(200), options.pop("model", "rplrnn"), **(settings | options))


class Crash(Exception):
    pass


@pytest.mark.parametrize("name", ["rplrnn", "gru"])
def test_a_run_interrupted_and_resumed_gives_the_same_numbers(tmp_path, name):
    straight = _run(model=name)
    path = tmp_path / "run.ckpt"

    def crash(step, loss):
        if step == 13:
            raise Crash

    with pytest.raises(Crash):
        _run(model=name, checkpoint=path, checkpoint_every=5, progress=crash)
    assert torch.load(path, weights_only=True)["step"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]  # no temporary file left
    seen = []
    resumed = _run(model=name, checkpoint=path, checkpoint_every=5, progress=lambda step, loss: seen.append(step))
    assert resumed["resumed_from"] == 10 and seen == list(range(11, 21))
    assert resumed["curve"] == straight["curve"]
    assert resumed["parameters"] == straight["parameters"]
    # a finished run's checkpoint returns the same numbers without training
    again = _run(model=name, checkpoint=path, checkpoint_every=5)
    assert again["resumed_from"] == 20 and again["parameters"] == straight["parameters"]
    with pytest.raises(NumericsError, match="another run"):
        _run(model=name, checkpoint=path, seed=1)


def test_seeds_decide_every_number():
    first, second, other = _run(), _run(), _run(seed=1)
    assert first["curve"] == second["curve"] and first["parameters"] == second["parameters"]
    assert first["curve"]["loss"] != other["curve"]["loss"]
    state = torch.random.get_rng_state()
    _run(steps=2)
    assert torch.equal(torch.random.get_rng_state(), state)  # torch's global generator is left alone


def test_the_training_steps_run_and_name_the_baseline():
    steps = training_steps(hidden=6, batch=3, window=10, tau_tf=3, observed=2)
    assert set(steps) == {BASELINE, "rplrnn", "lstm", "gru"}
    for step in steps.values():
        step()


@pytest.mark.parametrize("change, message", [
    ({"tau_tf": 0}, "tau_tf"),
    ({"tau_tf": -2}, "tau_tf"),
    ({"window": 1}, "window"),
    ({"window": 201}, "longer than the series"),
    ({"hidden": 1}, "smaller than the observed dimension"),
    ({"model": "transformer"}, "unknown model"),
    ({"p": 0.9}, "latent"),
    ({"schedule": "step"}, "schedule"),
    ({"series": np.ones(50)}, "2-D"),
    ({"series": np.where(np.arange(40)[:, None] == 7, np.nan, np.ones((40, 2)))}, "non-finite"),
])
def test_bad_input_is_refused_in_one_line(change, message):
    options = {"series": oscillator_series(200), "model": "rplrnn", "hidden": 6, "window": 12, "tau_tf": 3,
               "steps": 2, "batch": 4, "p": 0.5, "tau": 1.0} | change
    with pytest.raises(NumericsError, match=message) as error:
        train_reconstruction(options.pop("series"), options.pop("model"), **options)
    assert "\n" not in str(error.value)


def test_generation_refuses_a_start_of_the_wrong_size():
    with pytest.raises(NumericsError, match="start"):
        generate(oscillator(), torch.zeros(3), 5)
    with pytest.raises(NumericsError, match="PLRNN"):
        forced_states(build_reconstruction_model("lstm", 2, 4, 0), torch.zeros(5, 2), 2)


def test_a_learned_observation_starts_at_the_identity_and_is_trained():
    result = _run(model="plrnn", observation="learned", steps=5)
    B = np.array(result["parameters"]["B"])
    assert result["config"]["observation"] == "learned"
    assert B.shape == (2, 6) and 0 < np.abs(B - np.eye(2, 6)).max() < 0.5
    net = model_from_result(result)
    z = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(net.observe(z), z @ torch.tensor(B, dtype=z.dtype).t())
