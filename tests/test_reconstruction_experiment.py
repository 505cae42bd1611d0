"""R1, R2 (numerics/experiments/plrnn/reconstruction.py) and `rnnmemory plrnn reconstruct`: tiny runs end to
end, users' own data, escaped trajectories, and bad input refused in one line before any run."""
import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from numerics.experiments.plrnn import analysis, reconstruction, reconstruction_run, tau_sweep
from numerics.pipeline.cells import CellCache, cell_key
from numerics.pipeline.runner import run_cells
from numerics.plrnn.names import RECONSTRUCTION_MODELS as MODELS

TINY = reconstruction.SCALES["tiny"]
SMALL = ["--length", "300", "--test-length", "200", "--hidden", "6", "--window", "20", "--tau-tf", "5", "--steps", "3",
         "--batch", "4", "--jobs", "1"]


def test_the_experiment_names_the_trainers_models():
    assert reconstruction.MODELS == MODELS


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    todo = list({cell_key(c): c for c in reconstruction.R1.cells(TINY) + tau_sweep.R2.cells(TINY)}.values())
    records = run_cells(todo, reconstruction.compute, CellCache(tmp_path), group=reconstruction.RECONSTRUCT.group)
    found = {cell_key(c): r["result"] for c, r in zip(todo, records)}
    for experiment in (reconstruction.R1, tau_sweep.R2, analysis.R3):
        numbers = experiment.analyze(TINY, lambda c: found[cell_key(c)])
        json.dumps(dataclasses.asdict(numbers))
        assert all(isinstance(c.passed, bool) for c in experiment.claims(TINY, numbers))
        fig = experiment.plot(TINY, numbers)
        fig.savefig(tmp_path / f"{experiment.name}.png")
        assert (tmp_path / f"{experiment.name}.png").stat().st_size > 10_000 and experiment.describe(numbers)
    result = found[cell_key(reconstruction.cell(TINY, "lorenz63", "rplrnn", 0))]
    assert result["true_lyapunov"] == pytest.approx(0.9056) and set(result["measures"]) >= {"escaped", "horizon"}


def test_an_escaped_trajectory_is_found_at_its_first_bad_step():
    gen = np.zeros((10, 3))
    gen[6, 1] = reconstruction.ESCAPE * 2
    gen[8] = np.nan
    assert reconstruction_run._escaped(gen) == 6 and reconstruction_run._escaped(np.zeros((5, 2))) is None


def test_cli_reconstructs_a_users_csv(tmp_path):
    t = np.arange(600) * 0.1
    np.savetxt(tmp_path / "rec.csv", np.c_[np.sin(t), np.cos(t)], delimiter=",", header="u,v", comments="")
    result = CliRunner().invoke(main, ["plrnn", "reconstruct", "--system", f"data:{tmp_path / 'rec.csv'}", "--dt", "0.1",
                                       "--model", "plrnn", *SMALL, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "rec.csv/plrnn seed 0: step 3/3" in result.output  # the run's progress, on stderr
    arrays = np.load(tmp_path / "out" / "trajectories.npz")
    assert arrays["rec_plrnn_0_true"].shape[1] == 2
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert record["command"].startswith("rnnmemory plrnn reconstruct --system data:")
    assert list((tmp_path / "out" / "checkpoints").glob("*.pt"))
    again = CliRunner().invoke(main, ["plrnn", "reconstruct", "--system", f"data:{tmp_path / 'rec.csv'}", "--dt", "0.1",
                                      "--model", "plrnn", *SMALL, "--out", str(tmp_path / "out")])
    assert "1 runs (0 computed, 1 reused)" in again.output
    # a band edge splits a user's spectrum into the low and high bands (a new cell: the edge is an input)
    split = CliRunner().invoke(main, ["plrnn", "reconstruct", "--system", f"data:{tmp_path / 'rec.csv'}", "--dt", "0.1",
                                      "--model", "plrnn", *SMALL, "--band-edge", "0.5", "--out", str(tmp_path / "split")])
    assert split.exit_code == 0, split.output
    measures = json.loads((tmp_path / "split" / "result.json").read_text())["numbers"]["rows"]
    row = next(iter(measures.values()))["plrnn"]
    assert row["spectrum_low"] is not None and row["spectrum_high"] is not None
    assert next(iter(json.loads((tmp_path / "out" / "result.json").read_text())["numbers"]["rows"].values())
                )["plrnn"]["spectrum_low"] is None


@pytest.mark.parametrize("extra, message", [
    (["--system", "nosuchsystem"], "nosuchsystem"), (["--dt", "0"], "--dt must be > 0"), (["--noise", "-1"], "≥ 0"),
    (["--tau-tf", "0"], "τ_tf must be ≥ 1"), (["--hidden", "2", "--model", "plrnn"], "hidden ≥ 3"),
    (["--model", "transformer"], "unknown model"), (["--system", "data:/nonexistent.npy"], "does not exist"),
    (["--window", "1"], "window"), (["--dt", "1.5"], "holds no frequency bin"), (["--system", "data:"], "file name")])
def test_cli_refuses_bad_input_in_one_line_before_any_run(tmp_path, extra, message):
    result = CliRunner().invoke(main, ["plrnn", "reconstruct", *extra, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [(np.zeros(50), "expected (time, variables)"),
                                              (np.full((400, 2), np.nan), "non-finite"),
                                              (np.zeros((40, 2)), "at least 4300 needed")])
def test_a_bad_data_file_is_refused(tmp_path, content, message):
    np.save(tmp_path / "bad.npy", content)
    result = CliRunner().invoke(main, ["plrnn", "reconstruct", "--system", f"data:{tmp_path / 'bad.npy'}",
                                       "--length", "300", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_model_scored_against_its_own_run_gets_the_known_measures():
    """A PLRNN set by hand to a stable limit cycle (the oscillator of tests/test_reconstruct.py): its free
    run scored against itself has zero divergence and spectrum error and the full horizon, and λ_max
    from its Jacobians is the cycle's Floquet multiplier per step, known from the composed map."""
    import torch

    from numerics.dynamics import measures
    from numerics.plrnn.generators import build_reconstruction_model, generate, jacobians

    model = build_reconstruction_model("plrnn", 2, 2, 0)
    with torch.no_grad():
        model.plrnn.A.copy_(torch.tensor([0.9, 0.5]))
        model.plrnn.W.copy_(torch.tensor([[0.0, -1.0], [1.0, 0.0]]))
        model.plrnn.h.copy_(torch.tensor([1.0, -1.0]))
    run = generate(model, torch.tensor([0.3, 0.2]), 3000)
    z = run["states"][1000:].double().numpy()  # on the cycle
    assert measures.state_space_kl_binned(z, z, bins=8) == 0 and measures.prediction_horizon(z, z, 0.5) == len(z)
    assert measures.spectrum_mse(z, z, 1.0)["all"] == 0
    J = jacobians(model, torch.as_tensor(z)).double().numpy()
    period = next(k for k in range(1, 200) if np.allclose(z[k], z[0], atol=1e-9))
    product = np.eye(2)
    for step in J[:period]:
        product = step @ product
    floquet = np.log(np.abs(np.linalg.eigvals(product)).max()) / period
    # after 20 periods aligning the tangent vector, 50 whole periods give the multiplier's growth exactly
    estimate = measures.lyapunov_from_jacobians(J[: 70 * period], 1.0, discard=20 * period)
    assert estimate == pytest.approx(floquet, abs=1e-9)


def test_the_forcing_interval_follows_the_prediction_horizon(tmp_path):
    # Lorenz-63: the Lyapunov time 1/(0.9056 · 0.05) ≈ 22 steps
    assert reconstruction.forcing_interval("lorenz63", 0.05, 2000)[0] == 22
    # data: a sine's autocorrelation cos(ωk) first falls below 1/e at ωk = arccos(1/e)
    t = np.arange(2000)
    np.save(tmp_path / "sine.npy", np.c_[np.sin(0.05 * t)])
    tau, how = reconstruction.forcing_interval(f"data:{tmp_path / 'sine.npy'}", 1.0, 2000)
    assert "autocorrelation" in how and abs(tau - np.arccos(np.exp(-1)) / 0.05) <= 2
    bad = CliRunner().invoke(main, ["plrnn", "reconstruct", "--tau-tf", "often", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "--tau-tf" in bad.output and not (tmp_path / "o").exists()


def test_the_rank_test_separates_seeds_and_ranks_a_failed_seed_worst():
    """stats.p_lower: 8 seeds wholly below 8 others give the exact one-sided p 1/C(16, 8); the reverse
    is not shown; a seed that escaped (None) counts against its model."""
    from math import comb

    from numerics.stats import holm, p_lower

    low, high = [0.01 * k for k in range(1, 9)], [0.1 + 0.01 * k for k in range(8)]
    assert p_lower(low, high) == pytest.approx(1 / comb(16, 8))
    assert p_lower(high, low) > 0.99
    assert p_lower(low[:-1] + [None], high) > p_lower(low, high)  # its worst seed escaped: weaker evidence
    assert p_lower(high, low[:-1] + [None]) < p_lower(high, low)  # the other model's seed escaped: stronger
    # Holm: sorted p's times m, m − 1, …, kept monotone and ≤ 1
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"a": 0.6, "b": 0.7}) == pytest.approx({"a": 1.0, "b": 1.0})


def test_r2_claims_a_penalty_only_when_the_rank_test_shows_it():
    """The τ sweep's claim: a τ whose every seed beats every τ = 0 seed is shown (Holm-corrected over the
    τ's), the same spread of values at every τ is not, and picking the best of many τ's pays the
    correction."""
    def sweep(rows: dict) -> tau_sweep.TauSweep:
        return tau_sweep.TauSweep(list(map(float, rows)), 8, "", {
            t: {"seeds": {"spectrum_low": v}, "spectrum_low": float(np.median([x for x in v if x is not None]))}
            for t, v in rows.items()})

    zero = [0.03, 0.05, 0.04, 0.06, None, 0.045, 0.035, 0.055]
    from numerics.stats import p_lower

    penalized = [0.001 * k for k in range(1, 9)]
    [shown] = tau_sweep.sweep_claims(None, sweep({"0.0": zero, "1.0": penalized, "5.0": zero}))
    assert shown.passed and "τ = 1.0" in shown.claim
    assert shown.measured == pytest.approx(2 * p_lower(penalized, zero))  # Holm over two τ's: the smaller p, doubled
    [same] = tau_sweep.sweep_claims(None, sweep({"0.0": zero, "1.0": list(reversed(zero)), "5.0": zero}))
    assert not same.passed
    # one τ just significant alone (p ≈ 0.02) is not after correcting for nine others
    nearly = [0.021, 0.024, 0.028, 0.031, 0.034, 0.037, 0.043, 0.048]
    single = tau_sweep.sweep_claims(None, sweep({"0.0": zero, "1.0": nearly}))[0]
    many = tau_sweep.sweep_claims(None, sweep({"0.0": zero, "1.0": nearly, **{f"{k}.5": zero for k in range(9)}}))[0]
    assert single.passed and not many.passed and many.measured == pytest.approx(min(1.0, 10 * single.measured))


def test_r1_claims_the_slow_band_only_when_the_rank_test_shows_it():
    """R1's slow-band claim: rPLRNN seeds wholly below the PLRNN's pass, the reverse fails, an escaped
    PLRNN seed no longer decides it alone, and with 3 seeds the claim says p cannot reach the level."""
    from types import SimpleNamespace

    def claim(rplrnn, plrnn):
        rows = {m: {"spectrum_low": float(np.median([x for x in v if x is not None])), "escaped": v.count(None),
                    "diverged": 0, "seeds": {"spectrum_low": v}} for m, v in (("rplrnn", rplrnn), ("plrnn", plrnn))}
        n = SimpleNamespace(models=["rplrnn", "plrnn"], systems=["bursting"], rows={"bursting": rows},
                            true_lyapunov={}, seeds=len(rplrnn))
        return {c.id: c for c in reconstruction.claims(None, n)}["rplrnn_slow_time_scale"]

    low, high = [0.01 * k for k in range(1, 9)], [0.1 + 0.01 * k for k in range(8)]
    assert claim(low, high).passed and not claim(high, low).passed
    mixed = [0.03, 0.05, 0.04, 0.06, 0.045, 0.035, 0.055, 0.025]
    assert not claim(mixed, list(reversed(mixed[:-1])) + [None]).passed  # one escaped seed is not a result
    few = claim(low[:3], high[:3])
    assert not few.passed and "cannot go below 0.05" in few.claim
