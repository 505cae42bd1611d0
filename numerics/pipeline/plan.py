"""Sizing a reproduction before starting it: per figure, the cells it adds and what they will cost.

A cell kind may state its `work` (`Kind.work`: a cell's size in the kind's own units, e.g. training
steps × sequence length × batch × width²); a cell's seconds are taken as proportional to it (kinds
without it: the same per cell). The seconds per unit are measured: from the cells of a result
directory (each cell records its seconds and device), else from `costs.json` beside this module,
measured by a quick run on the project's 2-core CPU (`python -m numerics.experiments.costs OUT`
writes it from a run's cells). A rate is the median over a kind's measured cells, per device type; a device
type with no measured cells of a kind has no estimate for it ("not measured"), never a guess.

An estimate at a scale far from the one measured is an extrapolation, linear in work: it sizes a
cluster, it does not promise a time. Cells shared by figures count at the first figure needing them.
On a CPU the wall time is the core-seconds over the worker processes; on one GPU cells run one at a
time (the toolkit's --jobs 1 on CUDA).

    measure(records) → rates;  plan(registry, scale, rates, names) → rows;  plan_table(rows, jobs) → text
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .cells import cell_key
from .experiment import Registry

COSTS = Path(__file__).with_name("costs.json")


def _work(registry: Registry, cell: dict) -> float:
    work = registry.kinds[cell["kind"]].work
    return float(work(cell)) if work is not None else 1.0


def measure(registry: Registry, records) -> dict:
    """{device type: {kind: {"rate": seconds per unit of work, "cells": how many measured}}} from cell
    records ({"inputs", "seconds", "environment": {"device"}}), kinds the registry knows only."""
    ratios: dict = {}
    for r in records:
        inputs, seconds = r.get("inputs") or {}, r.get("seconds")
        if inputs.get("kind") not in registry.kinds or not seconds or seconds <= 0:
            continue
        device = str((r.get("environment") or {}).get("device", "cpu")).split(":")[0]
        ratios.setdefault(device, {}).setdefault(inputs["kind"], []).append(seconds / _work(registry, inputs))
    return {device: {kind: {"rate": statistics.median(v), "cells": len(v)} for kind, v in sorted(kinds.items())}
            for device, kinds in ratios.items()}


def cell_records(out: str | Path) -> list:
    """The cell records of a result directory (OUT/cells/*.json), unreadable ones skipped."""
    records = []
    for path in sorted((Path(out) / "cells").glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def rates_for(registry: Registry, out: str | Path | None = None) -> tuple[dict, str]:
    """The rates and where they come from: OUT's own cells when it has some, else `costs.json`."""
    if out is not None:
        measured = measure(registry, cell_records(out))
        if measured:
            return measured, f"measured from the cells in {out}"
    reference = json.loads(COSTS.read_text())
    return reference["rates"], f"measured on {reference['machine']} ({reference['source']})"


def plan(registry: Registry, scale: str, rates: dict, names=None) -> list[dict]:
    """Per figure: {"figure", "cells" (new ones), "kinds", device type → estimated seconds or None}."""
    from .reproduce import configs

    seen, rows = set(), []
    for name, config in configs(registry, scale, names).items():
        new = {}
        for cell in registry.experiment(name).cells(config):
            new.setdefault(cell_key(cell), cell)
        new = [c for k, c in new.items() if k not in seen]
        seen.update(cell_key(c) for c in new)
        row = {"figure": name, "cells": len(new), "kinds": sorted({c["kind"] for c in new})}
        for device, kinds in rates.items():
            known = all(c["kind"] in kinds for c in new)
            row[device] = sum(kinds[c["kind"]]["rate"] * _work(registry, c) for c in new) if known else None
        rows.append(row)
    return rows


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def plan_table(rows: list[dict], jobs: int, source: str) -> str:
    devices = sorted({k for r in rows for k in r} - {"figure", "cells", "kinds"}, key=lambda d: d != "cpu")
    header = f"{'figure':<7} {'cells':>6}  " + "  ".join(
        f"{'CPU core time':>14} {f'wall, {jobs} jobs':>13}" if d == "cpu" else f"{'one ' + d.upper() + ' GPU':>14}"
        for d in devices)
    lines = [header]
    for r in rows + [{"figure": "total", "cells": sum(r["cells"] for r in rows),
                      **{d: None if any(r.get(d) is None for r in rows) else sum(r[d] for r in rows) for d in devices}}]:
        parts = [f"{_time(r.get(d)):>14} {_time(None if r.get(d) is None else r[d] / jobs):>13}" if d == "cpu"
                 else f"{_time(r.get(d)):>14}" for d in devices]
        lines.append(f"{r['figure']:<7} {r['cells']:>6}  " + "  ".join(parts))
    if "cuda" not in devices:
        lines.append("GPU: not measured (no cells run on a GPU in the rates used: run a quick reproduction there "
                     "and plan with --out on its directory)")
    return "\n".join(lines) + f"\nRates: {source}; linear in each cell's work, so far from the measured scale an " \
                              "extrapolation."


def write_costs(registry: Registry, out: str | Path, machine: str | None = None) -> dict:
    """Write `costs.json` from the cells of OUT (`numerics.experiments.costs` runs it)."""
    import platform

    reference = {"machine": machine or f"a {platform.machine()} CPU", "rates": measure(registry, cell_records(out)),
                 "source": f"the cells of a reproduction in {Path(out).name}"}
    COSTS.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
    return reference
