"""The main job: derivation → emission → every cell → every figure → result.json and the report.

Every function takes the `Registry` of experiments it runs (`numerics.experiments.registry.REGISTRY`
for the papers' figures), so the pipeline knows no experiment by name.

Every cell is cached under OUT/cells (see `cells`), so a rerun on the same directory computes only
what is missing: an interrupted run resumes, and `rnnmemory figure NAME` computes only the cells of
its figure. Cells run in-process (jobs = 1), on an embedded Dask LocalCluster (jobs > 1) or on an
existing Dask cluster (scheduler address); see `runner`. A directory keeps the scale it was made
with (OUT/scale.json), so quick and full cells never mix in one report.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Callable

from derivations.spec import DEFAULT, DEFAULT_SIGMAS

from ..errors import NumericsError
from ..io import ResultDir, record, to_json, write_atomic
from .cells import CellCache, cell_key
from .experiment import Claim, Context, Registry, config_dict
from .report import write_report
from .runner import run_cells

SCALES = ("quick", "full", "tiny")  # tiny: seconds, every code path, numbers without meaning (tests, smoke runs)


def configs(registry: Registry, scale: str, names=None) -> dict:
    if scale not in SCALES:
        raise NumericsError(f"unknown scale {scale!r} (choose {', '.join(SCALES)})")
    return {name: registry.experiment(name).config(scale) for name in (names or registry.experiments)}


def all_cells(registry: Registry, scale: str, names=None) -> list:
    return [c for name, config in configs(registry, scale, names).items()
            for c in registry.experiment(name).cells(config)]


def count_cells(registry: Registry, scale: str, names=None) -> int:
    """Distinct cells the named figures need (figures share some)."""
    return len({cell_key(c) for c in all_cells(registry, scale, names)})


def load_scale(out: str | Path) -> str | None:
    """The scale a result directory was made with (OUT/scale.json), or None for a new directory."""
    path = Path(out) / "scale.json"
    return json.loads(path.read_text())["name"] if path.exists() else None


def keep_scale(registry: Registry, out: str | Path, scale: str) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NumericsError(f"output path {out} is a file, not a directory")
    recorded = load_scale(out)
    if recorded is not None and recorded != scale:
        raise NumericsError(f"{out} holds a {recorded} run; use another --out for {scale}")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "scale.json", to_json({"name": scale, "configs": {
        name: config_dict(config) for name, config in configs(registry, scale).items()}}))


def compute(registry: Registry, scale: str, out: str | Path, names=None, *, device: str = "cpu", jobs: int = 1,
            scheduler: str | None = None, progress: Callable[[int], None] | None = None,
            context: Context | None = None) -> CellCache:
    """Compute (or reuse) every cell the named figures need."""
    cache = CellCache(out)
    run_cells(all_cells(registry, scale, names), registry.compute(), cache, device=device, jobs=jobs,
              scheduler=scheduler, group=registry.group, group_size=registry.chunk_size(_group_size(device)),
              progress=progress, context=context)
    return cache


def _group_size(device: str) -> int:
    return 64 if str(device).startswith("cuda") else 16


def draw(registry: Registry, name: str, scale: str, out: str | Path, device: str = "cpu") -> Path:
    """Analyze one figure's cached cells, plot it into OUT/NAME/ (PNG, PDF) and write its result.json."""
    exp = registry.experiment(name)
    config = exp.config(scale)
    cache = CellCache(out)
    todo = exp.cells(config)
    records = {cell_key(c): cache.load(c) for c in todo}
    missing = sum(r is None for r in records.values())
    if missing:
        raise NumericsError(f"{name} needs {missing} cells that are not computed yet")
    found = {key: r["result"] for key, r in records.items()}
    results = ResultDir(Path(out) / name, force=True)  # derived from the cells; redrawn freely
    write_figure(registry, exp, config, found, results, f"figure {name}", {"scale": scale}, device)
    return results.path


def draw_all(registry: Registry, scale: str, out: str | Path, device: str = "cpu", workers: int = 1) -> None:
    """`draw` every figure; with workers > 1 in that many fresh processes (drawing and saving 19
    figures is about half a minute of one core), each figure whole in one of them."""
    names = list(registry.experiments)
    if workers <= 1 or registry.source is None:
        for name in names:
            draw(registry, name, scale, out, device)
        return
    import concurrent.futures
    import multiprocessing

    # spawn, not fork: the parent holds torch's and Dask's threads, which a forked child must not inherit
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(names)),
                                                mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in pool.map(functools.partial(_draw_in_process, registry.source, scale=scale, out=out, device=device),
                          names):
            pass


def _draw_in_process(source: str, name: str, scale: str, out: str | Path, device: str) -> Path:
    """`draw` in a fresh process, the registry found by its "module:name"."""
    import importlib

    module, _, attribute = source.partition(":")
    return draw(getattr(importlib.import_module(module), attribute), name, scale, out, device)


def write_figure(registry: Registry, exp, config, found: dict, results: ResultDir, command: str, inputs: dict,
                 device: str, stem: str | None = None, extra: dict | None = None) -> dict:
    """Analyze an experiment's results (cell key → result), save its plot and its result.json; returns the record."""
    numbers = exp.analyze(config, lambda cell: found[cell_key(cell)])
    claims = [c.to_dict() if isinstance(c, Claim) else c for c in exp.claims(config, numbers)]
    results.save_figure(exp.plot(config, numbers), stem or exp.name)
    paper = registry.papers[exp.paper]
    rec = record(command, paper.spec, {**inputs, "config": config_dict(config),
                                       **({"sigmas": paper.sigmas} if paper.sigmas is not None else {})},
                 device, 0, {"figure": exp.name, "title": exp.title, "paper": exp.paper,
                             "numbers": dataclasses.asdict(numbers), "claims": claims,
                             "cells": sorted(f"{key}.json" for key in found), **(extra or {})})
    results.write_result(rec)
    return rec


def run_config(registry: Registry, name: str, config, out: str | Path, *, command: str, stem: str | None = None,
               device: str = "cpu", jobs: int = 1, scheduler: str | None = None,
               progress: Callable[[int], None] | None = None, context: Context | None = None) -> dict:
    """One experiment at a config of the caller's (a command's own sizes, not a named scale): its cells
    computed or reused in OUT/cells, then its figure and result.json in OUT, its `table` in
    OUT/table.txt and its `files`. Returns the record, with the cell counts, the wall time, the
    table's text and the files written."""
    exp = registry.experiment(name)
    start = time.perf_counter()
    cache = CellCache(out)
    todo = exp.cells(config)
    reused = sum(cache.load(c) is not None for c in todo)
    records = run_cells(todo, registry.compute(), cache, device=device, jobs=jobs, scheduler=scheduler,
                        group=registry.group, group_size=registry.chunk_size(_group_size(device)), progress=progress,
                        context=context)
    found = {cell_key(c): r["result"] for c, r in zip(todo, records)}
    counts = {"total": len(todo), "computed": len(todo) - reused, "reused": reused, "folder": "cells"}
    stem = stem or exp.name
    rec = write_figure(registry, exp, config, found, ResultDir(out, force=True), command, {}, device, stem,
                       {"counts": counts, "jobs": jobs, "scheduler": scheduler,
                        "wall_seconds": time.perf_counter() - start})
    written = [Path(out) / "result.json"]
    for file, data in (exp.files(config, lambda cell: found[cell_key(cell)]) if exp.files else {}).items():
        write_atomic(Path(out) / file, data)
        written.append(Path(out) / file)
    written += [Path(out) / f"{stem}.png", Path(out) / f"{stem}.pdf"]
    text = exp.table(exp.numbers(**rec["numbers"])) if exp.table else None
    if text is not None:
        write_atomic(Path(out) / "table.txt", text + "\n")
        written.append(Path(out) / "table.txt")
    return {**rec, "table": text, "written": [str(p) for p in written]}


def make_figure(registry: Registry, name: str, scale: str, out: str | Path, *, device: str = "cpu", jobs: int = 1,
                scheduler: str | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """One figure alone: compute the cells it lacks (reusing the rest), then draw it."""
    registry.experiment(name)
    keep_scale(registry, out, scale)
    compute(registry, scale, out, [name], device=device, jobs=jobs, scheduler=scheduler, progress=progress)
    return draw(registry, name, scale, out, device)


def derivation_step(out: str | Path) -> Path:
    """Derive α_j for the default spec, emit every committed module (the lag weights' numpy and torch,
    the PLRNN's numpy) into OUT/derivation/generated, and record whether each equals the module
    committed in derivations/generated that the numbers use (freshness)."""
    from derivations import derive, describe, emit

    results = ResultDir(Path(out) / "derivation", force=True)
    derivation = derive(DEFAULT)
    data = describe.summary(derivation)
    data.pop("_props")
    folder = results.path / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    fresh = {}
    for name, text in emit.committed().items():
        write_atomic(folder / name, text)
        fresh[name] = (emit.GENERATED / name).exists() and (emit.GENERATED / name).read_text() == text
    point = {"sigma_W": 0.8, **{f"sigma_{b}": v for b, v in DEFAULT_SIGMAS.items()}}
    claims = [Claim("generated_code_is_fresh", "the code emitted now equals the committed derivations/generated "
                    "modules that every theory value in this report uses", sum(fresh.values()),
                    f"{len(fresh)} of {len(fresh)} files", all(fresh.values()), "derivation/result.json: fresh").to_dict()]
    results.write_result(record("derive", DEFAULT, {"sigmas": DEFAULT_SIGMAS}, "cpu", 0,
                                {"derivation": data, "values_at_sigma_w_0.8": describe.evaluate(derivation, point, range(6)),
                                 "fresh": fresh, "claims": claims}))
    return results.path


def paper_times(registry: Registry, scale: str, cache: CellCache) -> dict:
    """Per paper: its distinct cells and the seconds they took to compute, summed (worker time: the
    cells of all papers run interleaved on the workers, so a paper has no wall time of its own)."""
    times = {}
    for paper in registry.papers:
        names = [n for n, e in registry.experiments.items() if e.paper == paper]
        cells = {cell_key(c): c for c in all_cells(registry, scale, names)}
        records = [cache.load(c) for c in cells.values()]
        times[paper] = {"cells": len(cells),
                        "cell_seconds": sum(r.get("seconds") or 0.0 for r in records if r is not None)}
    return times


def reproduce(registry: Registry, out: str | Path, scale: str = "quick", *, device: str = "cpu", jobs: int = 1,
              scheduler: str | None = None, progress: Callable[[int], None] | None = None,
              command: str | None = None) -> dict:
    """Everything, into OUT: the derivation, every cell, every figure, result.json, report.md and report.html."""
    start = time.perf_counter()
    out = Path(out)
    keep_scale(registry, out, scale)
    derivation_step(out)
    cache = CellCache(out)
    unique = {cell_key(c): c for c in all_cells(registry, scale)}
    reused = sum(1 for c in unique.values() if cache.load(c) is not None)
    compute(registry, scale, out, device=device, jobs=jobs, scheduler=scheduler, progress=progress)
    draw_all(registry, scale, out, device, workers=jobs if scheduler is None else 1)
    summary = {"scale": scale, "device": device, "jobs": jobs, "scheduler": scheduler, "command": command,
               "cells": {"total": len(unique), "computed": len(unique) - reused, "reused": reused, "folder": "cells"},
               "papers": paper_times(registry, scale, cache), "figures": list(registry.experiments),
               "wall_seconds": time.perf_counter() - start}
    ResultDir(out, force=True).write_result(record("reproduce", DEFAULT, {"scale": scale}, device, 0, summary))
    paths = write_report(registry, out)
    summary["wall_seconds"] = time.perf_counter() - start
    return {**summary, "report": [str(p) for p in paths]}
