"""How E1's cells are computed (kinds 'eigen-train', 'eigen-translate'): the classifier runs of a
chunk (one task, cell and setting) trained as one pack (`numerics.eigen.packed.train_packed`; a
run's numbers do not depend on its pack, so a cell is one run however the chunks fall), or one
`numerics.eigen.translate.train_translation` run, each after checking that the spectrum file and the
MNIST files are the ones the cell was listed with. A diverged run is a result of the benchmark,
recorded, not raised.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ...eigen.names import DEFAULTS
from ...errors import NumericsError
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


def compute_runs(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'eigen-train' of one task, cell, setting and trainer (`run_group`): their runs trained
    as one pack, or one by one where the trainer is 'alone'."""
    from ...eigen.packed import train_packed
    from ...eigen.train import train_classifier
    from ...errors import TrainingDiverged
    from ...train.runtime import diverged_result

    for c in chunk:
        _check_data(c)
    settings = {k: v for k, v in chunk[0]["run"].items() if k not in ("init", "seed", "trainer")}
    task, cell = settings.pop("task"), settings.pop("cell")
    if chunk[0]["run"]["trainer"] == "packed":
        return train_packed(task, cell, [(_init(c), c["run"]["seed"]) for c in chunk], device=device, **settings)
    out = []
    for c in chunk:
        try:
            out.append(train_classifier(task, cell, _init(c), c["run"]["seed"], device=device, **settings))
        except TrainingDiverged as error:  # recorded, not raised: a divergence is a result of the benchmark
            out.append(diverged_result(error))
    return out


def compute_translations(chunk: list, device: str, context=None) -> list:
    """Cells of kind 'eigen-translate' (multi30k), one encoder–decoder trained each."""
    return [translation.train(c, _init(c), device) for c in chunk]


def run_group(cell: dict) -> tuple:
    """Runs that may share a pack: one task, trained cell and setting (the same data, shapes and recipe)."""
    if "run" not in cell:
        return (cell["kind"], cell["task"], cell["cell"])
    return (cell["kind"], *sorted((k, str(v)) for k, v in cell["run"].items() if k not in ("init", "seed")))


GATES = {"lstm": 4, "gru": 3}  # matrix products per step against a vanilla cell's one
LENGTHS = {"digits": 64, "mnist": 784, "pmnist": 784, "tomita": 12}  # a sequence's steps (tomita: at most)


def run_work(cell: dict) -> float:
    """Training steps × sequence length × hidden² × gates: what a run's time grows with (`plan`)."""
    run, kind = cell.get("run", {}), cell["task"].split(":")[0]
    steps = run.get("steps") or DEFAULTS.get(kind, {}).get("steps", 1)
    length = int(cell["task"].split(":")[1]) + 1 if kind == "recall" else LENGTHS.get(kind, 1)
    return steps * length * (run.get("hidden") or 1) ** 2 * GATES.get(cell.get("cell"), 1)


# Cells whose runs train in packs. An LSTM's runs train alone: its step is dominated by the gates'
# elementwise work, which torch's fused LSTM kernel (oneDNN on a CPU) does about twice as fast as the
# packed cell's separate operations (`rnnmemory bench`: 8 LSTM runs on digits 0.46×, rnn 2.3×, gru 1.5×)
PACKED_CELLS = ("rnn", "rnn-tanh", "rnn-relu", "gru")
PACK = 8  # classifier runs of one group train as packs of at most this many (each pack one worker's chunk)
TRAIN, TRANSLATE = Kind(compute_runs, run_group, chunk=PACK, work=run_work), Kind(compute_translations, run_group)


