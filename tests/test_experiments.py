"""The experiments: each draws alone from cached cells; `rnnmemory figure` reuses them; the registry
is the one list the CLI and the report read."""
import json

import matplotlib.pyplot as plt
import pytest
from click.testing import CliRunner

import cli
from numerics.experiments.registry import EXPERIMENTS, REGISTRY
from numerics.pipeline import reproduce as pipeline

TINY = "tiny"


def run(*args):
    return CliRunner().invoke(cli.main, list(args))


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """Every cell of the tiny scale, computed once for this module."""
    out = tmp_path_factory.mktemp("experiments")
    pipeline.keep_scale(REGISTRY, out, TINY)
    pipeline.compute(REGISTRY, TINY, out)
    return out


def cell_files(out):
    return sorted(p.name for p in (out / "cells").glob("*.json"))


def test_figures_share_cells():
    # F4 reads F5's runs and F1 F2's, so they add no cells of their own.
    assert pipeline.count_cells(REGISTRY, TINY, ["F4", "F5"]) == pipeline.count_cells(REGISTRY, TINY, ["F5"])
    assert pipeline.count_cells(REGISTRY, TINY, ["F1", "F2"]) == pipeline.count_cells(REGISTRY, TINY, ["F1"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_each_figure_draws_from_cached_cells_alone(cached, name):
    before = cell_files(cached)
    path = pipeline.draw(REGISTRY, name, TINY, cached)
    assert cell_files(cached) == before  # drawing computes nothing
    assert (path / f"{name}.png").stat().st_size > 10_000 and (path / f"{name}.pdf").exists()
    record = json.loads((path / "result.json").read_text())
    assert record["figure"] == name and record["environment"]["git_commit"] is not None
    assert set(record["cells"]) <= set(before)  # every number traces to cell files (or to theory alone)
    for claim in record["claims"]:
        assert {"id", "claim", "measured", "tolerance", "passed", "source"} <= set(claim)
        assert isinstance(claim["passed"], bool)
    # The description and the plot read the numbers alone: both work from result.json.
    exp = EXPERIMENTS[name]
    numbers = exp.numbers(**record["numbers"])
    assert len(exp.describe(numbers)) > 100
    plt.close(exp.plot(exp.config(TINY), numbers))


@pytest.mark.slow
def test_theory_reproduces_compare_training_run_for_run(cached):
    """F5's theory cells rebuild compare_training's data from the seed; centered, they are the closed form."""
    record = json.loads((pipeline.draw(REGISTRY, "F5", TINY, cached) / "result.json").read_text())
    (claim,) = [c for c in record["claims"] if c["id"] == "theory_reconstruction"]
    assert claim["passed"] and claim["measured"] < 1e-8


@pytest.mark.slow
def test_figure_command_reuses_cached_cells(cached):
    before = cell_files(cached)
    result = run("figure", "F4", "--out", str(cached), "--device", "cpu", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("F4.png") and cell_files(cached) == before


def test_figure_command_computes_only_what_its_figure_needs(tmp_path):
    result = run("figure", "F2", "--tiny", "--out", str(tmp_path), "--device", "cpu", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert len(cell_files(tmp_path)) == pipeline.count_cells(REGISTRY, TINY, ["F2"])
    assert (tmp_path / "F2" / "F2.png").exists() and not (tmp_path / "F5").exists()


def test_figure_lists_the_registry():
    result = run("figure", "--list", "--out", "unused")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(EXPERIMENTS)


@pytest.mark.slow
def test_a_directory_keeps_its_scale(cached):
    result = run("figure", "F1", "--full", "--out", str(cached), "--device", "cpu")
    assert result.exit_code == 2 and "tiny" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    unknown = run("figure", "F99", "--out", str(cached))
    assert unknown.exit_code == 2 and "F1" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1


def test_quick_scale_stays_small():
    """The quick run must finish in minutes on 2 cores: a guard against growing it by accident."""
    # a linear cell costs about a tenth of a second, so a count bounds its time; the training runs of
    # papers 2 and 3 cost seconds to minutes each: their guard is the planned time (tests/test_plan.py)
    linear = [n for n, e in EXPERIMENTS.items() if e.paper == "linear"]
    assert pipeline.count_cells(REGISTRY, "quick", linear) < 600
    widths = [w for exp in EXPERIMENTS.values() for w in getattr(exp.config("quick"), "widths", ())]
    assert max(widths) <= 1024


def test_cells_of_one_shape_are_grouped():
    cells = [c for c in EXPERIMENTS["F5"].cells(EXPERIMENTS["F5"].config(TINY)) if c["kind"] == "train"]
    # One shape per centering: each is one batched compare_training_many call (up to the chunk size).
    assert len({REGISTRY.group(c) for c in cells}) == 2
    kernel = EXPERIMENTS["F1"].cells(EXPERIMENTS["F1"].config(TINY))[0]
    assert REGISTRY.group(kernel) != REGISTRY.group(cells[0])


def test_output_path_that_is_a_file_is_an_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = run("figure", "F1", "--out", str(target), "--device", "cpu")
    assert result.exit_code == 2 and "file" in result.stderr


def test_a_full_disk_is_one_line_and_keeps_the_cells_written(tmp_path, monkeypatch):
    import errno

    import numerics.pipeline.cells as cells_module

    real, written = cells_module.write_atomic, []

    def fills_up(path, data):
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)
        written.append(path)

    monkeypatch.setattr(cells_module, "write_atomic", fills_up)
    result = run("figure", "F2", "--tiny", "--out", str(tmp_path), "--device", "cpu", "--jobs", "1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnnmemory: error: No space left on device") and "cells" in line
    assert sorted(p.name for p in (tmp_path / "cells").iterdir()) == sorted(p.name for p in written)
    monkeypatch.setattr(cells_module, "write_atomic", real)
    again = run("figure", "F2", "--out", str(tmp_path), "--device", "cpu", "--jobs", "1")
    assert again.exit_code == 0, again.output  # space again: the run resumes


@pytest.mark.slow
def test_sweep_workers_do_not_import_sympy():
    """A worker computing training and kernel cells of the default spec needs the spec and the
    committed generated code, not SymPy (whose import would cost every worker about a second)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from numerics.experiments.registry import REGISTRY\n"
            "for name in ('F3', 'F1'):\n"
            "    exp = REGISTRY.experiments[name]\n"
            "    REGISTRY.compute()(exp.cells(exp.config('tiny'))[:1], 'cpu')\n"
            "print('sympy' in sys.modules, 'distributed' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
