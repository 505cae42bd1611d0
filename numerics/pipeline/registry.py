"""Every experiment the pipeline knows, in report order. Adding a figure is one module that builds
an `Experiment` plus one line here; the CLI (`figure NAME`, `reproduce`) and the report read this."""
from __future__ import annotations

from ..errors import NumericsError
from ..experiments.eigen import bench as eigen_bench
from ..experiments.eigen import memory, spectra
from ..experiments.linear import (
    bias_variance,
    curves,
    init_training,
    kernel,
    lag_kernels,
    regime,
    sunspots,
)
from ..experiments.plrnn import analysis, long_range, reconstruction, tau_sweep
from .experiment import Experiment, Kind

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    kernel.F1,
    kernel.F2,
    curves.F3,
    bias_variance.F4,
    bias_variance.F5,
    sunspots.F6,
    regime.F7,
    lag_kernels.F8,
    init_training.F9,
    eigen_bench.E1,
    spectra.E2,
    memory.E3,
    long_range.P1,
    long_range.P2,
    analysis.P3,
    analysis.P4,
    reconstruction.R1,
    tau_sweep.R2,
    analysis.R3,
)}
PAPERS = {"linear": "Implicit bias of linear RNNs",
          "eigen": "Eigen analysis and an eigen initializer for RNNs (reconstructed; Dou & Principe 2023)",
          "plrnn": "Regularized piecewise-linear RNNs for long-range dependencies (Schmidt et al. 2021)"}


def _kinds() -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for experiment in EXPERIMENTS.values():
        for name, kind in experiment.kinds.items():
            if kinds.setdefault(name, kind) != kind:
                raise RuntimeError(f"cell kind {name!r} is defined twice")
    return kinds


KINDS = _kinds()


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise NumericsError(f"unknown figure {name!r} (choose {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]


def compute_cells(cells: list, device: str) -> list:
    """Compute a chunk of cells of one kind: the `compute` that sweeps hand to `runner.run_cells`."""
    return KINDS[cells[0]["kind"]].compute(cells, device)


def cell_group(cell: dict):
    """Cells that one compute call may take together (a batched ensemble takes cells of one shape)."""
    return KINDS[cell["kind"]].group(cell)
