"""What the linear-RNN experiments share: the spec, the σ's, and the training cell.

A training cell (kind 'train') is one `compare_training` run on a white-noise problem. Its inputs
keep the flat layout of earlier versions (so cached cells keep their keys): the fields of
`WhiteNoise` and of `Comparison` side by side; a spec with another initializer family of W
(`Spec.init`) adds `init` to the cell's spec, so the Gaussian's cells are as before. Every run of
a figure uses lr 'theory', the automatic step of the infinite-width kernel, so that widths and
theory share one clock.
"""
from __future__ import annotations

import numpy as np

from derivations.spec import DEFAULT, DEFAULT_SIGMAS, Spec

from ...data.problem import WhiteNoise
from ...errors import TrainingDiverged
from ...pipeline.experiment import Kind
from ...train.compare import Comparison, compare_training_many

SPEC = DEFAULT
CELL_VERSION = 1  # part of every cell's key: bump it when a cell's meaning changes, to recompute


def sigmas(sigma_w: float) -> dict:
    return {"W": float(sigma_w), **DEFAULT_SIGMAS}


def training_cell(*, teacher: str, width: int, sigma_w: float, length: int, samples: int, steps: int, center: bool,
                  seed: int, dtype: str = "float64", spec: Spec = SPEC) -> dict:
    config = {"teacher": teacher, "width": width, "spec": spec.to_dict(), "sigma_w": sigma_w,
              "sigma_f": DEFAULT_SIGMAS["F"], "sigma_c": DEFAULT_SIGMAS["C"], "sigma_d": DEFAULT_SIGMAS["D"],
              "steps": steps, "samples": samples, "length": length, "task": "seq2one", "optimizer": "gd",
              "lr": "theory", "center": center, "test_samples": 500, "dtype": dtype, "seed": seed}
    return {"kind": "train", "version": CELL_VERSION, "config": config}


def training_run(cell: dict, device: str = "cpu") -> tuple[WhiteNoise, Comparison]:
    """The problem and the run a training cell describes."""
    return WhiteNoise.from_dict(cell["config"]), Comparison.from_dict({**cell["config"], "device": device})


def training_group(cell: dict) -> tuple:
    """Cells that `compare_training_many` trains as one ensemble share this."""
    source, config = training_run(cell)
    return ("train", *config.shape(), *source.shape())


def diverged(error: TrainingDiverged) -> dict:
    """What the cell of a diverged run records: who diverged, where, at what loss."""
    return {"status": "diverged", "diverged": {"trainer": error.trainer, "step": error.step, "loss": error.loss}}


def compute_training(cells: list, device: str, context=None) -> list:
    """Cells of kind 'train' as batched ensembles; a diverged run is recorded, not raised."""
    outcomes = compare_training_many([training_run(c, device) for c in cells])
    return [diverged(o) if isinstance(o, TrainingDiverged) else o for o in outcomes]


TRAIN = Kind(compute_training, training_group,
             work=lambda c: c["config"]["steps"] * c["config"]["width"] * c["config"]["length"] * c["config"]["samples"])


def sigma_grid(grid, points: int) -> list:
    """`points` σ_W values evenly over the range of `grid`, rounded so that cell keys are stable."""
    return np.round(np.linspace(min(grid), max(grid), points), 6).tolist()


def teacher_label(teacher: str) -> str:
    kind, _, value = teacher.partition(":")
    return {"decay": rf"$L^*_j={value}^j$", "delay": rf"delay $L^*_j=\delta_{{j,{value}}}$"}.get(kind, teacher)


def teacher_norm(teacher: str, length: int) -> float:
    from ...data.teachers import parse_teacher

    return float(np.sum(parse_teacher(teacher, length) ** 2))
