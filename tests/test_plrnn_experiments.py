"""P1–P4 (numerics/experiments/plrnn) and `rnnmemory plrnn bench`: tiny runs end to end, the
analysis of hand-set models with known answers, and bad input refused in one line before any run."""
import dataclasses
import json
import shlex

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from numerics.experiments.plrnn import analysis, long_range, regularization
from numerics.pipeline.cells import CellCache, cell_key
from numerics.pipeline.runner import run_cells
from numerics.plrnn.names import MODELS, TASKS
from numerics.train.recipe import SCHEDULES

TINY = long_range.SCALES["tiny"]


def test_the_experiments_name_the_trainers_tasks_models_and_schedules():
    assert long_range.MODELS == MODELS and long_range.TASKS == TASKS and long_range.SCHEDULES == SCHEDULES


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    todo = long_range.P1.cells(TINY)
    records = run_cells(todo, long_range.compute_runs, CellCache(tmp_path_factory.mktemp("p")),
                        group=long_range.TRAIN.group)
    found = {cell_key(c): r["result"] for c, r in zip(todo, records)}
    return lambda c: found[cell_key(c)]


def test_tiny_end_to_end(tiny, tmp_path):
    for experiment in (long_range.P1, analysis.P3, analysis.P4):
        numbers = experiment.analyze(TINY, tiny)
        json.dumps(dataclasses.asdict(numbers))  # JSON-ready
        claims = experiment.claims(TINY, numbers)
        assert all(isinstance(c.passed, bool) for c in claims)
        fig = experiment.plot(TINY, numbers)
        fig.savefig(tmp_path / f"{experiment.name}.png")
        assert (tmp_path / f"{experiment.name}.png").stat().st_size > 10_000
        assert experiment.describe(numbers)
    numbers = long_range.P1.analyze(TINY, tiny)
    assert set(numbers.rows["addition"]) == set(TINY.models)
    assert "rplrnn" in long_range.table(numbers)


def test_p2_tiny_end_to_end_and_its_claims_go_both_ways(tmp_path):
    config = regularization.SCALES["tiny"]
    todo = regularization.P2.cells(config)
    records = run_cells(todo, long_range.compute_runs, CellCache(tmp_path), group=long_range.TRAIN.group)
    found = {cell_key(c): r["result"] for c, r in zip(todo, records)}
    numbers = regularization.P2.analyze(config, lambda c: found[cell_key(c)])
    json.dumps(dataclasses.asdict(numbers))
    regularization.P2.plot(config, numbers).savefig(tmp_path / "P2.png")
    assert len(regularization.P2.describe(numbers)) > 100
    # the claims read the measured numbers: a learning penalized run passes, a failing one fails
    for plain_mse, penalized_mse, passes in ((0.16, 0.01, True), (0.16, 0.12, False)):
        rows = {"0.0": {"selected_mean": 0.07, "test_losses": [plain_mse] * 2},
                "5.0": {"selected_mean": 0.3, "test_losses": [penalized_mse] * 2}}
        claim = regularization.claims(config, dataclasses.replace(numbers, tau_rows=rows))[1]
        assert claim.id == "penalty_learns_at_long_T" and claim.passed is passes


def test_p2_packs_its_runs():
    cells = regularization.P2.cells(regularization.SCALES["quick"])
    assert len({long_range.pack_key(c) for c in cells}) == 1  # one recipe: packs of PACK runs


def _result(A, W, h, states):
    return {"parameters": {"A": A.tolist(), "W": W.tolist(), "h": h.tolist()}, "states": states.tolist(),
            "trajectory": states.tolist()}


def test_line_attractor_statistic_of_hand_set_models():
    rng = np.random.default_rng(0)
    M = 6
    W = 0.1 * rng.standard_normal((M, M))
    np.fill_diagonal(W, 0)
    A, h = np.full(M, 0.5), 0.1 * rng.standard_normal(M)
    states = rng.standard_normal((50, M))
    free = analysis.line_attractors(_result(A, W, h, states))
    regularized = A.copy(), W.copy(), h.copy()
    regularized[0][:2], regularized[1][:2], regularized[2][:2] = 1.0, 0.0, 0.0  # two line-attractor units
    line = analysis.line_attractors(_result(*regularized, states))
    assert line["region_distance"] < 1e-12 < free["region_distance"]
    assert free["regions"] == line["regions"] == len({tuple(s > 0) for s in states})


@pytest.mark.parametrize("extra, message", [
    (["--p", "1.5"], "must be in [0, 1]"), (["--tau", "-1"], "must be ≥ 0"), (["--T", "10"], "T must be ≥ 20"),
    (["--model", "rplrnn,gru"], "unknown model 'gru'"), (["--task", "copy"], "unknown task 'copy'"),
    (["--task", "mnist"], "needs the directory"), (["--task", "mnist", "--data-dir", "/nonexistent"], "not found"),
    (["--sizes", "10,10"], "three positive counts")])
def test_cli_refuses_bad_input_in_one_line_before_any_run(tmp_path, extra, message):
    result = CliRunner().invoke(main, ["plrnn", "bench", *extra, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_cli_bench_writes_its_files_and_a_rerun_reuses_its_cells(tmp_path):
    args = ["plrnn", "bench", "--T", "20", "--model", "rplrnn,rnn", "--seeds", "1", "--hidden", "5", "--steps", "3",
            "--batch", "8", "--sizes", "32,16,16", "--jobs", "1", "--out", str(tmp_path)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    for name in ("result.json", "bench.png", "table.txt"):
        assert (tmp_path / name).is_file()
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["command"] == shlex.join(["rnnmemory", *args])  # the invocation as typed
    second = CliRunner().invoke(main, args)
    assert "2 runs (0 computed, 2 reused)" in second.output


@pytest.mark.parametrize("target, name", [("numpy", "plrnn_numpy.py"), ("latex", "plrnn.tex")])
def test_cli_emit_writes_the_derived_functions(tmp_path, target, name):
    result = CliRunner().invoke(main, ["plrnn", "emit", "--target", target, "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "e" / name).read_text()
    assert "Do not edit" in text and "region_jacobian" in text or "J_D" in text
    if target == "numpy":  # the written module evaluates: a region Jacobian by hand
        namespace = {}
        exec(text, namespace)
        A, W, d = np.array([0.5, 1.0]), np.array([[0.0, 2.0], [3.0, 0.0]]), np.array([1.0, 0.0])
        np.testing.assert_allclose(namespace["region_jacobian"](A, W, d), [[0.5, 0.0], [3.0, 1.0]])


def test_cli_bench_on_digits_uses_its_own_splits(tmp_path):
    result = CliRunner().invoke(main, ["plrnn", "bench", "--task", "digits", "--model", "plrnn", "--seeds", "1",
                                       "--hidden", "6", "--steps", "2", "--jobs", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "digits" in (tmp_path / "table.txt").read_text()
