"""The paper's figures: each draws alone from cached cells; `rnnmemory figure` reuses them."""
import json

import pytest
from click.testing import CliRunner

import cli
from numerics import paper

TINY = paper.TINY


def run(*args):
    return CliRunner().invoke(cli.main, list(args))


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """Every cell of the tiny scale, computed once for this module."""
    out = tmp_path_factory.mktemp("paper")
    paper._keep_scale(out, TINY)
    paper.compute(TINY, out)
    return out


def cell_files(out):
    return sorted(p.name for p in (out / "cells").glob("*.json"))


def test_scales_round_trip_and_share_cells():
    for scale in (paper.QUICK, paper.FULL, TINY):
        assert paper.Scale.from_dict(json.loads(json.dumps(scale.to_dict()))) == scale
    # F4 reads F5's runs and F1 F2's, so they add no cells of their own.
    assert paper.count_cells(TINY, ["F4", "F5"]) == paper.count_cells(TINY, ["F5"])
    assert paper.count_cells(TINY, ["F1", "F2"]) == paper.count_cells(TINY, ["F1"])


@pytest.mark.parametrize("name", list(paper.FIGURES))
def test_each_figure_draws_from_cached_cells_alone(cached, name):
    before = cell_files(cached)
    path = paper.draw_figure(name, TINY, cached)
    assert cell_files(cached) == before  # drawing computes nothing
    assert (path / f"{name}.png").stat().st_size > 10_000 and (path / f"{name}.pdf").exists()
    record = json.loads((path / "result.json").read_text())
    assert record["figure"] == name and record["environment"]["git_commit"] is not None
    assert set(record["cells"]) <= set(before) and record["cells"]  # every number traces to cell files
    for claim in record["claims"]:
        assert {"id", "claim", "measured", "tolerance", "passed", "source"} <= set(claim)
        assert isinstance(claim["passed"], bool)


def test_theory_reproduces_compare_training_run_for_run(cached):
    """F5's expectation rebuilds compare_training's data from the seed; centered, it is the closed form."""
    record = json.loads((paper.draw_figure("F5", TINY, cached) / "result.json").read_text())
    (claim,) = [c for c in record["claims"] if c["id"] == "theory_reconstruction"]
    assert claim["passed"] and claim["measured"] < 1e-8


def test_figure_command_reuses_cached_cells(cached):
    before = cell_files(cached)
    result = run("figure", "F4", "--out", str(cached), "--device", "cpu", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("F4.png") and cell_files(cached) == before


def test_figure_command_computes_only_what_its_figure_needs(tmp_path):
    paper._keep_scale(tmp_path, TINY)
    result = run("figure", "F2", "--out", str(tmp_path), "--device", "cpu", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert len(cell_files(tmp_path)) == paper.count_cells(TINY, ["F2"])
    assert (tmp_path / "F2" / "F2.png").exists() and not (tmp_path / "F5").exists()


def test_a_directory_keeps_its_scale(cached):
    result = run("figure", "F1", "--full", "--out", str(cached), "--device", "cpu")
    assert result.exit_code == 2 and "tiny" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert run("figure", "F9", "--out", str(cached)).exit_code == 2


def test_quick_scale_stays_small():
    """The quick run must finish in minutes on 2 cores: a guard against growing it by accident."""
    assert paper.count_cells(paper.QUICK) < 500
    assert max(paper.QUICK.kernel_widths + paper.QUICK.curve_widths + paper.QUICK.regime_widths) <= 1024


def test_cells_of_one_shape_are_grouped():
    cells = paper.bv_cells(TINY)
    # One shape per centering: each is one batched compare_training_many call (up to the chunk size).
    assert len({paper.cell_group(c) for c in cells}) == 2
    assert paper.cell_group(paper.kernel_cell(TINY, 16, 0.5, 0)) != paper.cell_group(cells[0])


def test_output_path_that_is_a_file_is_an_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = run("figure", "F1", "--out", str(target), "--device", "cpu")
    assert result.exit_code == 2 and "file" in result.stderr
