"""Every experiment of the three papers, in report order: the registry the command line hands to the
pipeline (`numerics.pipeline`), which never imports an experiment itself. Adding a figure is one
module that builds an `Experiment` plus one line here; `reproduce`, `figure NAME` and the report
read this list."""
from __future__ import annotations

from derivations.spec import DEFAULT, DEFAULT_SIGMAS

from ..pipeline.experiment import Paper, Registry
from .eigen import bench as eigen_bench
from .eigen import memory, spectra
from .linear import bias_variance, curves, init_training, kernel, lag_kernels, regime, sunspots
from .plrnn import analysis, long_range, reconstruction, regularization, tau_sweep

PAPERS = {
    "linear": Paper("Implicit bias of linear RNNs", spec=DEFAULT, sigmas=DEFAULT_SIGMAS),
    "eigen": Paper("Eigen analysis and an eigen initializer for RNNs (reconstructed; Dou & Principe 2023)"),
    "plrnn": Paper("Regularized piecewise-linear RNNs for long-range dependencies (Schmidt et al. 2021)"),
}
REGISTRY = Registry([
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
    regularization.P2,
    analysis.P3,
    analysis.P4,
    reconstruction.R1,
    tau_sweep.R2,
    analysis.R3,
], PAPERS)
EXPERIMENTS = REGISTRY.experiments
