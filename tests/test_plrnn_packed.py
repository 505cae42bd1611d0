"""K PLRNN runs trained as one packed computation equal the same runs trained alone
(numerics/plrnn/packed.py, numerics/plrnn/recurrence.py, numerics/train/packed.py)."""
import numpy as np
import pytest
import torch

from numerics.errors import TrainingDiverged
from numerics.plrnn.model import build_model
from numerics.plrnn.packed import PackedPLRNN
from numerics.plrnn.recurrence import packed_plrnn_states, plrnn_states_reference
from numerics.plrnn.train import train_runs
from numerics.train.packed import fit_packed
from numerics.train.recipe import Recipe
from numerics.train.runtime import Stopping

RUNS = [{"model": "rplrnn", "seed": 0, "p": 0.5, "tau_a": 5.0, "tau_w": 5.0},
        {"model": "plrnn", "seed": 1},
        {"model": "rplrnn", "seed": 2, "p": 0.25, "tau_a": 1.0, "tau_w": 1.0},
        {"model": "iplrnn", "seed": 3}]


def test_packed_recurrence_is_each_runs_own_forward_and_backward(float64):
    g = torch.Generator().manual_seed(0)
    T, K, N, M, I = 7, 3, 4, 5, 2
    x, C, h = torch.randn(T, K, N, I, generator=g), torch.randn(K, M, I, generator=g), torch.randn(K, M, generator=g)
    A, W = 0.5 * torch.rand(K, M, generator=g), 0.3 * torch.randn(K, M, M, generator=g)
    z0 = torch.randn(K, N, M, generator=g)
    params = [q.clone().requires_grad_() for q in (C, h, A, W, z0)]
    for every_step in (False, True):
        packed = packed_plrnn_states(x, *params, every_step=every_step)
        weights = torch.randn(packed.shape, generator=g)
        grads = torch.autograd.grad((packed * weights).sum(), params)
        for k in range(K):
            alone = [q[k].clone().requires_grad_() for q in (C, h, A, W, z0)]
            drive = x[:, k] @ alone[0].t() + alone[1]  # the drive C s_t + h of run k alone
            reference = plrnn_states_reference(drive, *alone[2:], every_step=every_step)
            run_weights = weights[:, k] if every_step else weights[k]
            torch.testing.assert_close(packed[:, k] if every_step else packed[k], reference, rtol=1e-12, atol=1e-12)
            for got, want in zip(grads, torch.autograd.grad((reference * run_weights).sum(), alone)):
                torch.testing.assert_close(got[k], want, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the scoring path (no graph) is the same map
        torch.testing.assert_close(packed_plrnn_states(x, *params, every_step=True), packed, rtol=1e-12, atol=1e-12)
    small = [q.clone().requires_grad_() for q in (C[:2, :3], h[:2, :3], A[:2, :3], W[:2, :3, :3], z0[:2, :2, :3])]
    assert torch.autograd.gradcheck(lambda *q: packed_plrnn_states(x[:3, :2, :2], *q, every_step=True), small)
    assert torch.autograd.gradcheck(lambda *q: packed_plrnn_states(x[:3, :2, :2], *q), small)


def test_packed_regularizer_is_each_runs_own(float64):
    for reduction in ("mean", "sum"):
        models = [build_model(r["model"], 2, 8, 1, r["seed"], p=r.get("p", 0.5), tau_a=r.get("tau_a", 5.0),
                              tau_w=r.get("tau_w", 5.0), reduction=reduction) for r in RUNS]
        with torch.no_grad():
            for m in models:  # off the attractor start, so every term counts
                for q in m.parameters():
                    q.add_(0.1 * torch.randn(q.shape, generator=torch.Generator().manual_seed(7)))
        packed = PackedPLRNN(models).regularizer()
        torch.testing.assert_close(packed, torch.stack([m.regularizer().reshape(()) for m in models]))


def test_packed_training_equals_training_alone(float64):
    """Four PLRNN-family runs (different seeds, models, p and τ): curves, selections and trained
    parameters equal to rounding, trained as one pack and one by one."""
    options = dict(hidden=8, steps=30, batch=16, lr=3e-3, train_size=128, val_size=64, test_size=64, track_every=10,
                   schedule="cosine")
    packed = train_runs("addition", 20, RUNS, **options)
    alone = train_runs("addition", 20, RUNS, packed=False, **options)
    for p, a in zip(packed, alone):
        assert p["config"]["packed"] == len(RUNS) and "packed" not in a["config"]
        for key, values in a["curve"].items():
            np.testing.assert_allclose(p["curve"][key], values, rtol=1e-9, atol=1e-12, err_msg=key)
        for key in ("selected", "best_test", "final"):
            assert p[key] == pytest.approx(a[key], rel=1e-9), key
        for name, value in a["parameters"].items():
            np.testing.assert_allclose(p["parameters"][name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_packed_relu_baselines_equal_nn_rnn_trained_alone(float64):
    """rnn, irnn and nprnn (torch's nn.RNN(relu), a PLRNN with A = 0) trained as one pack equal each
    trained alone through torch's own module: curves, selections, visited states; oRNN (a
    parametrization) and the LSTM beside them train alone."""
    runs = [{"model": "rnn", "seed": 0}, {"model": "irnn", "seed": 1}, {"model": "nprnn", "seed": 2},
            {"model": "rnn", "seed": 3}, {"model": "ornn", "seed": 4}, {"model": "lstm", "seed": 5}]
    options = dict(hidden=8, steps=30, batch=16, lr=3e-3, train_size=128, val_size=64, test_size=64, track_every=10,
                   schedule="cosine")
    packed = train_runs("addition", 20, runs, **options)
    alone = train_runs("addition", 20, runs, packed=False, **options)
    assert [r["config"].get("packed") for r in packed] == [4, 4, 4, 4, None, None]
    for p, a in zip(packed, alone):
        for key, values in a["curve"].items():
            np.testing.assert_allclose(p["curve"][key], values, rtol=1e-9, atol=1e-12, err_msg=key)
        for key in ("selected", "best_test", "final"):
            assert p[key] == pytest.approx(a[key], rel=1e-9), key
        np.testing.assert_allclose(p["states"], a["states"], rtol=1e-9, atol=1e-12)
    assert packed[0]["curve"]["train_loss"][-1] < packed[0]["curve"]["train_loss"][0]  # it trained


def test_a_long_range_runs_numbers_do_not_depend_on_its_pack():
    """float32, as reproduce runs: a PLRNN or a ReLU baseline packed with others and alone in a pack of
    one agree exactly, so a cached cell holds one set of numbers however its chunk was formed."""
    runs = [{"model": "rnn", "seed": 0}, {"model": "irnn", "seed": 1}, {"model": "rnn", "seed": 2},
            {"model": "rplrnn", "seed": 0}, {"model": "plrnn", "seed": 1}]
    options = dict(hidden=8, steps=20, batch=16, train_size=128, val_size=64, test_size=64, track_every=10)
    together = train_runs("addition", 20, runs, **options)
    assert [r["config"]["packed"] for r in together] == [3, 3, 3, 2, 2]
    for run, got in zip(runs, together):
        [alone] = train_runs("addition", 20, [run], **options)
        assert alone["config"]["packed"] == 1 and got["curve"] == alone["curve"] and got["states"] == alone["states"]


def test_a_diverging_run_leaves_the_others_alone(float64):
    """fit_packed: run 1's loss turns non-finite at step 3; it stops there with its curve, and runs 0
    and 2 end exactly where they end when no run diverges."""
    def train(poison: bool):
        model = torch.nn.Module()
        model.x = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0]]))

        def objective(step, live):
            losses = (model.x ** 2).sum(1) * torch.tensor([1.0, 2.0, 3.0])
            if poison and step >= 3:
                losses = torch.where(torch.arange(3) == 1, float("nan"), losses)
            return losses
        ends = fit_packed(model, Recipe(10, 0.1, clip=1.0), objective, whats=["0", "1", "2"], curves=[{}, {}, {}])
        return model.x.detach(), ends

    poisoned, ends = train(True)
    clean, clean_ends = train(False)
    assert ends[1].status == "diverged" and ends[1].step == 3 and isinstance(ends[1].error, TrainingDiverged)
    assert [e.status for e in (ends[0], ends[2], *clean_ends)] == ["finished"] * 5
    torch.testing.assert_close(poisoned[[0, 2]], clean[[0, 2]], rtol=0, atol=0)
    assert not torch.equal(poisoned[1], clean[1])


def test_a_run_that_meets_its_criterion_stops_and_says_why(float64):
    runs = [{"model": "rplrnn", "seed": 0}, {"model": "plrnn", "seed": 1}]
    options = dict(hidden=8, steps=40, batch=16, lr=3e-3, train_size=128, val_size=64, test_size=64, track_every=5)
    # a criterion every run meets at once (a fraction ≥ 0): each stops after `checks` tracked steps
    results = train_runs("addition", 20, runs, stopping=Stopping(0.0, checks=2), **options)
    for r in results:
        assert r["stopped"]["step"] == 5 and "≥ 0 at 2 checks" in r["stopped"]["reason"]
        assert r["curve"]["step"] == [0, 5]
    never = train_runs("addition", 20, runs, stopping=Stopping(1.1), **options)
    assert all(r["stopped"] is None and r["curve"]["step"][-1] == 40 for r in never)


def test_subnormals_are_flushed_only_inside_training():
    """flush_denormals (wrapped around every long-range run) zeroes float32 subnormals in arithmetic
    inside the block and restores IEEE behaviour after it."""
    from numerics.train.runtime import flush_denormals

    tiny = torch.tensor([1e-39], dtype=torch.float32)  # below float32's smallest normal, 1.18e-38
    with flush_denormals():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) == pytest.approx(1e-39, rel=1e-3)


def test_packed_reconstruction_runs_equal_the_runs_alone(float64):
    """Teacher-forced generators (rplrnn at two strengths, plrnn) trained as one pack: curves and
    parameters equal each run's own `train_reconstruction`; an LSTM beside them trains alone."""
    from numerics.plrnn.reconstruct import train_reconstruction, train_reconstructions

    t = np.linspace(0, 20, 400)
    series = np.stack([np.sin(t), np.cos(1.3 * t), np.sin(0.7 * t) * np.cos(t)], 1)
    runs = [{"model": "rplrnn", "seed": 0, "tau": 5.0}, {"model": "plrnn", "seed": 1},
            {"model": "rplrnn", "seed": 2, "p": 0.25, "tau": 1.0}, {"model": "lstm", "seed": 3}]
    options = dict(hidden=8, window=12, tau_tf=4, steps=6, batch=5, lr=0.01, schedule="cosine", clip=0.5)
    packed = train_reconstructions(series, runs, **options)
    assert [r["config"].get("packed") for r in packed] == [3, 3, 3, None]
    for run, got in zip(runs, packed):
        alone = train_reconstruction(series, run["model"], seed=run["seed"], p=run.get("p", 0.5),
                                     tau=run.get("tau", 5.0), **options)
        np.testing.assert_allclose(got["curve"]["loss"], alone["curve"]["loss"], rtol=1e-9)
        np.testing.assert_allclose(got["curve"]["regularizer"], alone["curve"]["regularizer"], rtol=1e-9, atol=1e-15)
        for name, value in alone["parameters"].items():
            np.testing.assert_allclose(got["parameters"][name], value, rtol=1e-8, atol=1e-12, err_msg=name)


def test_a_reconstruction_runs_numbers_do_not_depend_on_its_pack():
    """float32, as reproduce runs: a run packed with others and the same run in a pack of one agree
    exactly, so a cached cell holds one set of numbers however its chunk was formed."""
    from numerics.plrnn.reconstruct import train_reconstructions

    t = np.linspace(0, 20, 400)
    series = np.stack([np.sin(t), np.cos(1.3 * t)], 1)
    options = dict(hidden=8, window=12, tau_tf=4, steps=25, batch=5, lr=0.01)
    runs = [{"model": "rplrnn", "seed": 0, "tau": 5.0}, {"model": "plrnn", "seed": 1},
            {"model": "rplrnn", "seed": 2, "tau": 1.0}]
    together = train_reconstructions(series, runs, **options)
    for run, got in zip(runs, together):
        [alone] = train_reconstructions(series, [run], **options)
        assert alone["config"]["packed"] == 1 and got["curve"]["loss"] == alone["curve"]["loss"]
        assert got["parameters"] == alone["parameters"]
