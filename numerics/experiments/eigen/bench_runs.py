"""How E1's cells are computed (kinds 'eigen-train', 'eigen-train-batch', 'eigen-translate'): one
`numerics.eigen.train.train_classifier` run, a batch of them packed into one module
(`numerics.eigen.batched.train_batched`), or one `numerics.eigen.translate.train_translation` run,
each after checking that the spectrum file and the MNIST files are the ones the cell was listed with.
A diverged run is a result of the benchmark, recorded, not raised.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ...eigen.names import DEFAULTS
from ...errors import NumericsError, TrainingDiverged
from ...pipeline.experiment import Kind
from . import translation

ROOT = Path(__file__).resolve().parents[3]
SPECTRA = "numerics/eigen/spectra"  # the committed laws, relative to the repository root (`fit_initializer`)
EIGEN = {"eigen": None, "eigen-moduli": "moduli", "eigen-phases": "phases"}  # initializer → the law's ablation
LAW_CELL = {"rnn": "rnn", "rnn-tanh": "rnn", "rnn-relu": "rnn", "lstm": "lstm", "gru": "gru"}


def default_spectrum(cell: str, init: str = "eigen") -> str:
    """The committed spectrum file of a cell's eigen initializer (or of its ablation)."""
    ablation = EIGEN[init]
    return f"{SPECTRA}/{LAW_CELL[cell]}" + (f"-{ablation}" if ablation else "") + ".npy"


def spectrum_path(spectrum: str) -> Path:
    path = Path(spectrum)
    return path if path.is_absolute() else ROOT / path


def spectrum_digest(spectrum: str) -> str | None:
    """SHA-256 of the spectrum file, or None when it is absent."""
    path = spectrum_path(spectrum)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _init(inputs: dict) -> str:
    """The initializer a run trains with: eigen:FILE once the spectrum file is checked unchanged."""
    spectrum = inputs.get("spectrum")
    if spectrum is None:
        return inputs["run"]["init"]
    if spectrum_digest(spectrum["file"]) != spectrum["sha256"]:
        raise NumericsError(f"the spectrum file {spectrum['file']} changed or vanished since its cells were listed")
    return f"eigen:{spectrum_path(spectrum['file'])}"


def _check_data(inputs: dict) -> None:
    if "data" in inputs:
        from ...data.digits import mnist_fingerprint

        if mnist_fingerprint(inputs["data"]["data_dir"]) != inputs["data"]:
            raise NumericsError(f"the MNIST files in {inputs['data']['data_dir']} changed since their cells were listed")


def _train(inputs: dict, device: str) -> dict:
    from ...eigen.train import train_classifier
    from ...train.runtime import diverged_result

    run = dict(inputs["run"], init=_init(inputs))
    _check_data(inputs)
    try:
        return train_classifier(run.pop("task"), run.pop("cell"), run.pop("init"), run.pop("seed"), device=device,
                                **run)
    except TrainingDiverged as error:  # recorded, not raised: a divergence is a result of the benchmark
        return diverged_result(error)


def compute_runs(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'eigen-train', one training run each (one torch thread per run)."""
    return [_train(c, device) for c in chunk]


def compute_batches(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'eigen-train-batch': each one packed training of its runs (a list of their results)."""
    from ...eigen.batched import train_batched

    out = []
    for batch in chunk:
        runs = [dict(c["run"], init=_init(c)) for c in batch["runs"]]
        for c in batch["runs"]:
            _check_data(c)
        first = dict(runs[0])
        task, cell = first.pop("task"), first.pop("cell")
        for key in ("init", "seed"):
            first.pop(key)
        out.append(train_batched(task, cell, [(r["init"], r["seed"]) for r in runs], device=device, **first))
    return out


def compute_translations(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'eigen-translate' (multi30k), one encoder–decoder trained each."""
    return [translation.train(c, _init(c), device) for c in chunk]


def run_group(cell: dict) -> tuple:
    """Runs of one task and cell share a chunk (the same data and the same shapes)."""
    return (cell["kind"], cell["task"], cell["cell"])


GATES = {"lstm": 4, "gru": 3}  # matrix products per step against a vanilla cell's one
LENGTHS = {"digits": 64, "mnist": 784, "pmnist": 784, "tomita": 12}  # a sequence's steps (tomita: at most)


def run_work(cell: dict) -> float:
    """Training steps × sequence length × hidden² × gates: what a run's time grows with (`plan`)."""
    run, kind = cell.get("run", {}), cell["task"].split(":")[0]
    steps = run.get("steps") or DEFAULTS.get(kind, {}).get("steps", 1)
    length = int(cell["task"].split(":")[1]) + 1 if kind == "recall" else LENGTHS.get(kind, 1)
    return steps * length * (run.get("hidden") or 1) ** 2 * GATES.get(cell.get("cell"), 1)


BATCH = "eigen-train-batch"
TRAIN, TRANSLATE, BATCHES = (Kind(compute_runs, run_group, work=run_work), Kind(compute_translations, run_group),
                             Kind(compute_batches, run_group, work=run_work))


