"""Multi30k English→German as a task of E1 (`bench.py`): cells of kind 'eigen-translate', each one
`numerics.eigen.translate.train_translation` run (a GRU or LSTM encoder–decoder with Luong attention
whose encoder and decoder both take the initializer; eigen:FILE included).

How the task differs from the classification tasks, and how E1 reads it:
  cells    gru and lstm: the translation model has no vanilla-RNN form, so `rnn` (and with it irnn)
           is skipped on multi30k with that reason, listed in the numbers like IRNN on gated cells.
  metric   test BLEU of greedy decoding (sacrebleu's 0–100 scale), scored once, after training; the
           val BLEU stays in the cell. E1's claims compare initializers in pooled seed sd, which
           is scale-free, so they read BLEU as they read accuracy.
  curves   the mean training loss over each `track_every` steps. The trainer tracks no test metric
           (BLEU along the way would cost a greedy decoding of a split per point), so "steps to
           threshold" is n/a for multi30k, and the table says so instead of "never".
  sizes    Config.translation_hidden and translation_embed (default 256 and 128, the trainer's),
           the steps of Config.steps under the kind "multi30k" (default the trainer's 3000), and
           Config.translation_subset training pairs (a seeded choice by data seed 0; None: all).

Data: Config.multi30k_dir (`--multi30k-dir`), a local copy of the standard text files
(`numerics.data.multi30k`; nothing is downloaded). A cell carries the resolved directory and the
`fingerprint` of its six files, so cells of different copies never mix, and a run refuses files
that changed since its cells were listed. The full scale adds multi30k only when the environment
variable RNNMEMORY_MULTI30K_DIR names such a directory; quick and tiny never read Multi30k.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from ...errors import NumericsError, TrainingDiverged

TASK = "multi30k"
KIND = "eigen-translate"
ENV = "RNNMEMORY_MULTI30K_DIR"  # the full scale's Multi30k directory, when set
CELLS = ("gru", "lstm")  # = translate.CELLS (not imported: torch loads lazily)


def skip_reason(cell: str) -> str | None:
    """Why a cell has no multi30k runs, or None when it runs."""
    if cell not in CELLS:
        return "the translation model is a GRU or LSTM encoder–decoder; it has no vanilla-RNN form"
    return None


@functools.lru_cache(maxsize=16)
def _digest(stats: tuple) -> str:
    digest = hashlib.sha256()
    for path, size, _ in stats:
        digest.update(f"{Path(path).name}:{size}\n".encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def fingerprint(data_dir) -> dict:
    """{"data_dir": the resolved directory, "fingerprint": SHA-256 over each of the six files' name,
    size and bytes} (a few MB, remembered while sizes and mtimes stay). A missing directory or file
    raises NumericsError in one line, naming it."""
    from ...data.multi30k import LANGUAGES, SPLITS, _find  # the reader's own file lookup (plain or .gz)

    directory = Path(data_dir).expanduser().resolve()
    if not directory.is_dir():
        raise NumericsError(f"Multi30k directory {directory} does not exist")
    files = [_find(directory, f"{stem}.{language}") for stem in SPLITS.values() for language in LANGUAGES]
    stats = tuple((str(f), s.st_size, (s.st_mtime_ns, s.st_ctime_ns, s.st_ino)) for f in files for s in [f.stat()])
    return {"data_dir": str(directory), "fingerprint": _digest(stats)}


def source(config) -> dict:
    """`fingerprint` of the config's Multi30k directory."""
    if config.multi30k_dir is None:
        raise NumericsError("the task multi30k needs the directory of the Multi30k text files (--multi30k-dir DIR)")
    return fingerprint(config.multi30k_dir)


def _steps(steps: int | None) -> int:
    from ...eigen.translate import DEFAULTS

    return DEFAULTS["steps"] if steps is None else steps


def run_cell(config, cell: str, init: str, seed: int, steps: int | None) -> dict:
    """A multi30k cell, less what every E1 cell adds (version, spectrum): `run` holds the trainer's
    arguments (steps None: the trainer's default), `data` the files' fingerprint."""
    data = source(config)
    run = {"cell": cell, "init": init, "seed": seed, "hidden": config.translation_hidden,
           "embed": config.translation_embed, "steps": _steps(steps),
           "train_subset": config.translation_subset, "data_dir": data["data_dir"]}
    return {"kind": KIND, "task": TASK, "cell": cell, "init": init, "seed": seed, "run": run, "data": data}


def train(inputs: dict, init: str, device: str) -> dict:
    """One cell's run with the initializer string `init` (eigen:FILE resolved by the caller): its test
    BLEU as E1's final metric, no threshold; a divergence is recorded as a result, not raised."""
    from ...eigen.translate import train_translation
    from ...train.runtime import diverged_result

    data = inputs["data"]
    if fingerprint(data["data_dir"]) != data:
        raise NumericsError(f"the Multi30k files in {data['data_dir']} changed since their cells were listed")
    run = {k: v for k, v in inputs["run"].items() if k not in ("init", "cell", "seed", "data_dir")}
    try:
        result = train_translation(data["data_dir"], inputs["run"]["cell"], init, inputs["run"]["seed"],
                                   device=device, **run)
    except TrainingDiverged as error:
        return diverged_result(error)
    return {**result, "metric": "bleu", "final_metric": result["bleu"]["test"], "threshold": None,
            "steps_to_threshold": None}


def check(config) -> None:
    """Refuse, before any run, in one line: no directory, missing or mismatched files, an empty
    split, a train subset beyond the training pairs, or no sacrebleu to score BLEU."""
    from ...data.multi30k import SPLITS, read_split

    if importlib.util.find_spec("sacrebleu") is None:
        raise NumericsError("the task multi30k scores BLEU with sacrebleu: pip install 'sacrebleu>=2.3'")
    source(config)
    pairs = {split: len(read_split(config.multi30k_dir, split)[0]) for split in SPLITS}
    for split, count in pairs.items():
        if not count:
            raise NumericsError(f"the Multi30k {split} split in {config.multi30k_dir} has no sentence pairs")
    subset = config.translation_subset
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int)
                               or not 1 <= subset <= pairs["train"]):
        raise NumericsError(f"the multi30k train subset must be an integer from 1 to the {pairs['train']} "
                            f"training pairs, got {subset!r}")


def setting(config, steps: int | None) -> str:
    """The sizes of the multi30k runs, for E1's setting line."""
    pairs = "all training pairs" if config.translation_subset is None else f"{config.translation_subset} training pairs"
    return (f"multi30k: encoder–decoder hidden {config.translation_hidden}, embedding {config.translation_embed}, "
            f"{_steps(steps)} steps on {pairs}")
