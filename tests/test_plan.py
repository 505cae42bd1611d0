"""Sizing a run before starting it (numerics/pipeline/plan.py, `rnnmemory reproduce --plan`)."""
import json

import pytest
from click.testing import CliRunner

from cli import main
from numerics.experiments.registry import REGISTRY
from numerics.pipeline import plan as planner
from numerics.pipeline.cells import cell_key
from numerics.pipeline.reproduce import all_cells

QUICK_GOAL_S = 600.0  # the quick reproduction on the project's 2-core CPU with 2 workers


def test_rates_are_medians_of_seconds_per_unit_of_work_per_device():
    cell = {"kind": "plrnn-train", "steps": 10, "T": 5, "batch": 2, "hidden": 3}  # work 10·5·2·9 = 900
    records = [{"inputs": cell, "seconds": s, "environment": {"device": "cpu"}} for s in (9.0, 18.0, 90.0)]
    records += [{"inputs": cell, "seconds": 0.9, "environment": {"device": "cuda:0"}},
                {"inputs": {"kind": "unknown"}, "seconds": 1.0}, {"inputs": cell, "seconds": None}]
    rates = planner.measure(REGISTRY, records)
    assert rates["cpu"]["plrnn-train"] == {"rate": pytest.approx(18.0 / 900), "cells": 3}
    assert rates["cuda"]["plrnn-train"]["rate"] == pytest.approx(0.001) and "unknown" not in rates["cpu"]


def test_a_plan_counts_each_cell_once_and_says_what_it_cannot_estimate():
    rates = {"cpu": {kind: {"rate": 1.0, "cells": 1} for kind in REGISTRY.kinds},
             "cuda": {"plrnn-train": {"rate": 1.0, "cells": 1}}}
    rows = planner.plan(REGISTRY, "tiny", rates)
    assert sum(r["cells"] for r in rows) == len({cell_key(c) for c in all_cells(REGISTRY, "tiny")})
    p1 = next(r for r in rows if r["figure"] == "P1")
    assert p1["cpu"] == pytest.approx(sum(REGISTRY.kinds[c["kind"]].work(c) for c in
                                          REGISTRY.experiment("P1").cells(REGISTRY.experiment("P1").config("tiny"))))
    assert next(r for r in rows if r["figure"] == "F1")["cuda"] is None  # no GPU rate for its kind: no guess
    table = planner.plan_table(rows, 2, "test rates")
    assert "not measured" in table and "wall, 2 jobs" in table and "test rates" in table


def test_the_quick_reproduction_is_planned_within_its_goal():
    """The guard against growing the quick scale by accident: its cells, at the rates measured on the
    project's CPU (numerics/pipeline/costs.json), fit 10 minutes on 2 workers."""
    rates, _ = planner.rates_for(REGISTRY)
    rows = planner.plan(REGISTRY, "quick", rates)
    assert all(r["cpu"] is not None for r in rows), [r["figure"] for r in rows if r["cpu"] is None]
    assert sum(r["cpu"] for r in rows) / 2 <= QUICK_GOAL_S
    assert set(rates["cpu"]) >= {c["kind"] for c in all_cells(REGISTRY, "quick")}


def test_cli_plan_runs_nothing_and_needs_no_directory(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "--full", "--plan", "--jobs", "4"])
    assert result.exit_code == 0, result.output
    assert "total" in result.output and "wall, 4 jobs" in result.output and "P1" in result.output
    missing = CliRunner().invoke(main, ["reproduce", "--quick"])
    assert missing.exit_code == 2 and "--out" in missing.output
    # a directory with cells: its own rates
    (tmp_path / "cells").mkdir()
    cell = {"kind": "plrnn-train", "steps": 1, "T": 1, "batch": 1, "hidden": 1}
    (tmp_path / "cells" / "x.json").write_text(json.dumps({"inputs": cell, "seconds": 2.0,
                                                           "environment": {"device": "cpu"}}))
    own = CliRunner().invoke(main, ["reproduce", "--plan", "--out", str(tmp_path)])
    assert own.exit_code == 0 and f"measured from the cells in {tmp_path}" in own.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells"]  # nothing written
