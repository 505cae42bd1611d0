"""The eigen benchmark's training core: one run of a torch recurrent network on one task, with the
eigenvalues of every recurrent gate block recorded along the way (THEORY.md, "Eigen view (paper 2)").

    train_classifier(task, cell, init, seed, *, hidden=32, steps=…, …) → a JSON-ready dict

Tasks (`TASKS`; nothing is downloaded):
  tomita:N   Tomita grammar N (1–7), binary: train on lengths 1–12, test on the longer lengths 13–24
             (even and odd, so grammars 2 and 5, which accept nothing of odd length, have both
             classes in the test set); 64 strings per length, balanced within each length where
             both classes exist (`numerics.data.tomita.dataset`). Inputs one-hot (2 channels).
             Metric: accuracy of the sign of one logit; loss binary cross-entropy.
  digits     scikit-learn's 8×8 digits as 64 steps of one pixel (`numerics.data.digits`), 10 classes,
             the 60% train split for training and the 20% test split for the metric (the validation
             split is not used). Metric: accuracy; loss cross-entropy.
  recall:D   regression: a value v ~ U(−1, 1) is the input at step 0, followed by D steps of zero
             input; the target, read at the last step (D + 1 steps in all), is v itself. A network
             that solves it holds v in a mode with |λ| ≈ 1 (or in a fixed point of its dynamics).
             1024 training and 512 test values. Metric: R² = 1 − MSE / Var(v) on the test values;
             loss MSE.
  mnist      pixel-by-pixel MNIST (Le et al. 2015): the standard IDX files in a directory the caller
             names (`data_dir`; `numerics.data.digits.mnist_sequences`, nothing downloaded) as 784
             steps of one pixel in [0, 1], row-major; the 60 000 training images for training (or a
             seeded `train_subset` of them) and the 10 000 test images for the metric. 10 classes,
             accuracy, cross-entropy. Without `data_dir` the task is refused in one line.
  pmnist     permuted MNIST: the same, every image read in one fixed pixel order,
             `pixel_permutation(784, data_seed)`, so the order depends on `data_seed` only.
The data depend on `data_seed` only (default 0), so every cell, initializer and seed of a
benchmark sees the same strings, images and values; `seed` sets the network and the batches.
`train_subset` (any task; default all) trains on that many training sequences, a seeded choice
by `data_seed`, e.g. to run MNIST on a CPU. A run on MNIST records the resolved directory and
`mnist_fingerprint` of its files in its config, so results from different files never pass as one.

Cells (`CELLS`): rnn (= rnn-tanh), rnn-relu, lstm, gru — torch's own nn.RNN / nn.LSTM / nn.GRU,
batch-first, one layer by default, and a linear readout of the hidden state at each sequence's last
valid step (gathered at length − 1; a length-0 string reads the zero initial state).

Seeds: the recurrent module is `initialize(module, init, seed=seed)` — the same recurrent weights
for a seed on every task with the same number of input channels (the input blocks are drawn
first: tomita's 2 channels give another W than digits' or recall's 1), for paired comparisons — and the readout
and the minibatch stream draw from generators seeded by `SeedSequence([seed, 1])` and
`SeedSequence([seed, 2])`. Nothing reads torch's global generator, so a seed gives the same numbers
on the CPU (on a GPU, cuDNN's RNN kernels may differ in the last bits).

Threads: by default a run sets torch to one intra-op thread (and restores the old count after),
because the benchmark runs one cell per Dask worker: one thread per run is the fastest use of the
cores across runs, and the numbers do not depend on how many cores a worker has.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import math
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import tomita
from ..data.digits import MNIST_FILES, find_idx_file, digits_sequences, mnist_sequences
from ..device import resolve_device
from ..errors import NumericsError, TrainingDiverged
from ..models.initializers import PARAMETERS, block_eigenvalues, initialize

CELLS = {"rnn": (nn.RNN, "tanh"), "rnn-tanh": (nn.RNN, "tanh"), "rnn-relu": (nn.RNN, "relu"),
         "lstm": (nn.LSTM, None), "gru": (nn.GRU, None)}
OPTIMIZERS = ("adam", "sgd")
TASKS = ("tomita:N", "digits", "recall:D", "mnist", "pmnist")
MNIST_TASKS = ("mnist", "pmnist")
# per task kind: steps, batch, lr, track_every, threshold of the metric (accuracy or R²)
DEFAULTS = {
    "tomita": {"steps": 600, "batch": 64, "lr": 3e-3, "track_every": 50, "threshold": 0.95},
    "digits": {"steps": 1500, "batch": 64, "lr": 3e-3, "track_every": 100, "threshold": 0.8},
    "recall": {"steps": 600, "batch": 64, "lr": 3e-3, "track_every": 50, "threshold": 0.9},
    # 784-step sequences: a smaller rate (long products of Jacobians), a curve every 250 steps (each
    # point reads the whole train and test sets), and thresholds a tuned IRNN or LSTM passes within
    # a few thousand steps (Le et al. 2015 report ≈ 0.97 and ≈ 0.82 after far longer training)
    "mnist": {"steps": 3000, "batch": 64, "lr": 1e-3, "track_every": 250, "threshold": 0.9},
    "pmnist": {"steps": 3000, "batch": 64, "lr": 1e-3, "track_every": 250, "threshold": 0.8},
}
TOMITA_TRAIN, TOMITA_TEST, TOMITA_PER_LENGTH = range(1, 13), range(13, 25), 64
RECALL_TRAIN, RECALL_TEST, RECALL_MAX_DELAY = 1024, 512, 10_000
EVAL_CHUNK = 2048  # sequences per forward pass when a whole split is scored (MNIST's 60 000 at once
# would hold 60 000 × 784 hidden states); the small tasks are scored in one pass
FINGERPRINT_BYTES = 1 << 20  # mnist_fingerprint hashes each file's first and last MiB


class Task:
    """A task's tensors and how it is scored: inputs (N, T, C), lengths (N,), targets, per split."""

    def __init__(self, name: str, kind: str, outputs: int, loss: str, metric: str, train: tuple, test: tuple):
        self.name, self.kind, self.outputs, self.loss, self.metric = name, kind, outputs, loss, metric
        self.train, self.test = train, test  # (inputs, lengths, targets)

    @property
    def input_size(self) -> int:
        return self.train[0].shape[-1]

    def sizes(self) -> dict:
        return {"train": len(self.train[2]), "test": len(self.test[2]),
                "train_steps": int(self.train[0].shape[1]), "test_steps": int(self.test[0].shape[1])}


def _positive_int(text: str, what: str, task: str) -> int:
    if not re.fullmatch(r"\d+", text or ""):
        raise NumericsError(f"task {task!r}: {what} must be a whole number, got {text!r}")
    return int(text)


def _mnist_files(data_dir) -> tuple[Path, list[Path]]:
    directory = Path(os.path.expanduser(str(data_dir))).resolve()
    if not directory.is_dir():
        raise NumericsError(f"MNIST directory not found: {directory}")
    return directory, [find_idx_file(directory, name) for pair in MNIST_FILES.values() for name in pair]


@functools.lru_cache(maxsize=16)
def _fingerprint(stats: tuple) -> str:
    digest = hashlib.sha256()
    for path, size, _ in stats:
        digest.update(f"{Path(path).name}:{size}\n".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            if size > FINGERPRINT_BYTES:
                handle.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
                digest.update(handle.read())
    return digest.hexdigest()


def mnist_fingerprint(data_dir) -> dict:
    """{"data_dir": the resolved absolute directory, "fingerprint": SHA-256 over each of the four
    files' name, size, first and last MiB} — the whole label files, the header and the first and
    last images of the image files: cheap (≤ 8 MiB read, remembered while sizes and mtimes stay),
    and different for any other data set or subset. Raises NumericsError when a file is missing."""
    directory, files = _mnist_files(data_dir)
    stats = tuple((str(f), s.st_size, (s.st_mtime_ns, s.st_ctime_ns, s.st_ino)) for f in files for s in [f.stat()])
    return {"data_dir": str(directory), "fingerprint": _fingerprint(stats)}


def _subset(split: tuple, count: int | None, data_seed: int, task: str) -> tuple:
    if count is None:
        return split
    count = check_int(count, "train_subset")
    if count > len(split[2]):
        raise NumericsError(f"task {task!r}: train_subset {count} exceeds its {len(split[2])} training sequences")
    rows = np.sort(np.random.default_rng(np.random.SeedSequence([data_seed, 3])).choice(len(split[2]), count,
                                                                                          replace=False))
    rows = torch.as_tensor(rows)
    return tuple(t[rows] for t in split)


def load_task(task: str, data_seed: int = 0, *, data_dir=None, train_subset: int | None = None) -> Task:
    """The data of a task string (see the module docstring), on the CPU in the default dtype.

    data_dir: the MNIST directory (mnist and pmnist need it; the other tasks ignore it).
    train_subset: train on that many training sequences, a seeded choice by data_seed (None: all).
    """
    data = _load_task(task, data_seed, data_dir)
    data.train = _subset(data.train, train_subset, data_seed, task)
    return data


def _load_task(task: str, data_seed: int, data_dir) -> Task:
    if not isinstance(task, str):
        raise NumericsError(f"a task is a string ({', '.join(TASKS)}), got {task!r}")
    kind, _, arg = task.partition(":")
    if kind in MNIST_TASKS and not arg:
        if data_dir is None:
            raise NumericsError(f"task {task!r} needs the directory of the MNIST IDX files (data_dir; "
                                "--data-dir DIR on the command line)")
        data = mnist_sequences(data_dir, permuted=kind == "pmnist", seed=data_seed)
        train, test = ((x, torch.full((len(y),), x.shape[1], dtype=torch.long), y)
                       for x, y in (data["train"], data["test"]))
        return Task(task, kind, 10, "ce", "accuracy", train, test)
    if kind == "tomita":
        grammar = _positive_int(arg, "the grammar number", task)
        data = tomita.dataset(grammar, TOMITA_TRAIN, TOMITA_TEST, TOMITA_PER_LENGTH, data_seed)
        train, test = ((b.inputs, b.lengths, b.labels) for b in (data["train"], data["test"]))
        return Task(task, kind, 1, "bce", "accuracy", train, test)
    if kind == "digits" and not arg:
        data = digits_sequences(data_seed)
        train, test = ((x, torch.full((len(y),), x.shape[1], dtype=torch.long), y)
                       for x, y in (data["train"], data["test"]))
        return Task(task, kind, 10, "ce", "accuracy", train, test)
    if kind == "recall":
        delay = _positive_int(arg, "the delay D", task)
        if not 1 <= delay <= RECALL_MAX_DELAY:
            raise NumericsError(f"task {task!r}: the delay must be 1 to {RECALL_MAX_DELAY}, got {delay}")
        rng = np.random.default_rng(np.random.SeedSequence([data_seed, delay]))

        def split(count):
            values = torch.as_tensor(rng.uniform(-1, 1, count), dtype=torch.get_default_dtype())
            inputs = torch.zeros(count, delay + 1, 1)
            inputs[:, 0, 0] = values
            return inputs, torch.full((count,), delay + 1, dtype=torch.long), values.unsqueeze(-1)
        return Task(task, kind, 1, "mse", "r2", split(RECALL_TRAIN), split(RECALL_TEST))
    raise NumericsError(f"unknown task {task!r} (choose {', '.join(TASKS)})")


class SequenceClassifier(nn.Module):
    """A torch recurrent module (batch-first) and a linear readout of the last valid hidden state."""

    def __init__(self, cell: str, input_size: int, hidden: int, outputs: int, layers: int = 1):
        super().__init__()
        if cell not in CELLS:
            raise NumericsError(f"unknown cell {cell!r} (choose {', '.join(CELLS)})")
        kind, nonlinearity = CELLS[cell]
        extra = {"nonlinearity": nonlinearity} if nonlinearity else {}
        self.cell = cell
        self.rnn = kind(input_size, hidden, layers, batch_first=True, **extra)
        self.readout = nn.Linear(hidden, outputs)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(inputs)  # (N, T, H): the last layer's state at every step
        index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, states.shape[-1])
        last = states.gather(1, index).squeeze(1)
        last = torch.where((lengths > 0).unsqueeze(-1), last, torch.zeros_like(last))
        return self.readout(last)


def parse_init(init: str) -> tuple[str, dict]:
    """'name' or 'name:key=value,…' → (name, params); numbers become floats, 'eigen:FILE' is
    spectral with file=FILE."""
    if not isinstance(init, str) or not init:
        raise NumericsError(f"an initializer is a name ({', '.join(PARAMETERS)}), got {init!r}")
    name, _, rest = init.partition(":")
    if name == "eigen":
        if not rest:
            raise NumericsError("the eigen initializer needs a spectrum file: eigen:FILE")
        return "spectral", {"file": rest}
    if name not in PARAMETERS:
        raise NumericsError(f"unknown initializer {name!r} (choose {', '.join(PARAMETERS)} or eigen:FILE)")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise NumericsError(f"initializer {init!r}: expected key=value, got {item!r}")
        try:
            params[key] = float(value)
        except ValueError:
            params[key] = value
    return name, params


def build_model(task: Task, cell: str, init: str, seed: int, hidden: int = 32, layers: int = 1) -> SequenceClassifier:
    """The network of a run before training: recurrent module by `initialize(…, seed=seed)`, readout
    xavier-uniform with zero bias from `SeedSequence([seed, 1])` (torch's default readout would read
    the global generator)."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise NumericsError(f"hidden must be an integer ≥ 1, got {hidden!r}")
    name, params = parse_init(init)
    model = SequenceClassifier(cell, task.input_size, hidden, task.outputs, layers)
    initialize(model.rnn, name, seed=int(seed), **params)
    generator = torch.Generator().manual_seed(derived_seed(seed, 1))
    with torch.no_grad():
        weight = torch.empty(model.readout.weight.shape, dtype=torch.float64)
        model.readout.weight.copy_(nn.init.xavier_uniform_(weight, generator=generator))
        model.readout.bias.zero_()
    return model


def descend(model: nn.Module, opt, loss: torch.Tensor, clip: float | None, what: str, step: int, curve: dict) -> None:
    """One optimizer step on `loss` (gradient norm clipped to `clip`); a non-finite loss ends the run."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(what, step, float(loss.detach()), curve)
    opt.zero_grad()
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def diverged_result(error: TrainingDiverged) -> dict:
    """A diverged run as a benchmark records it: a result, not an error."""
    return {"status": "diverged", "diverged": {"step": error.step, "loss": error.loss}, "curve": error.curves}


def derived_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0] >> 1)


def _loss(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if task.loss == "bce":
        return nn.functional.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets)
    if task.loss == "ce":
        return nn.functional.cross_entropy(outputs, targets)
    return nn.functional.mse_loss(outputs, targets)


def _metric(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    if task.metric == "r2":
        return float(1 - ((outputs - targets) ** 2).mean() / targets.var(unbiased=False))
    predicted = (outputs.squeeze(-1) > 0).to(targets.dtype) if task.loss == "bce" else outputs.argmax(-1)
    return float((predicted == targets).to(torch.float64).mean())


def _outputs(model: SequenceClassifier, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The model on a whole split, in chunks of EVAL_CHUNK sequences when it is larger."""
    if len(inputs) <= EVAL_CHUNK:
        return model(inputs, lengths)
    return torch.cat([model(inputs[i:i + EVAL_CHUNK], lengths[i:i + EVAL_CHUNK])
                      for i in range(0, len(inputs), EVAL_CHUNK)])


def _spectra(model: SequenceClassifier) -> dict[str, list]:
    return {f"{layer}/{gate}": [[float(v.real), float(v.imag)] for v in values]
            for (layer, gate), values in block_eigenvalues(model.rnn).items()}


def check_int(value, what: str, low: int = 1) -> int:
    """An integer option ≥ low, or a one-line NumericsError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise NumericsError(f"{what} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def train_classifier(task: str, cell: str, init: str, seed: int, *, hidden: int = 32, layers: int = 1,
                     steps: int | None = None, batch: int | None = None, lr: float | None = None,
                     optimizer: str = "adam", clip: float | None = 1.0, track_every: int | None = None,
                     threshold: float | None = None, data_seed: int = 0, device: str = "cpu",
                     threads: int | None = 1, data_dir=None, train_subset: int | None = None) -> dict:
    """Train one network on one task; its learning curve, spectra and config as JSON-ready numbers.

    task: tomita:N, digits, recall:D, mnist or pmnist (module docstring); cell: rnn, rnn-tanh, rnn-relu, lstm, gru;
    init: an initializer of `numerics.models.initializers` as 'name' or 'name:key=value,…', or
    eigen:FILE. steps, batch, lr, track_every, threshold default per task kind (`DEFAULTS`).
    Each step draws `batch` training sequences uniformly with replacement from the seeded stream.
    clip: the gradient-norm clip (None: none). threads: torch's intra-op threads during the run
    (None leaves the setting alone). data_dir: the MNIST directory, needed by mnist and pmnist;
    train_subset: train on that many training sequences (a seeded choice by data_seed; None: all).

    Returns {"config", "curve": {"step", "train_loss", "test_metric"} (the whole train and test sets,
    at steps 0, track_every, 2·track_every, …, and the last step), "metric" ("accuracy" or "r2"),
    "final_metric", "threshold", "steps_to_threshold" (the first tracked step whose test metric is
    ≥ threshold, so its resolution is track_every; None if never), "eigenvalues": {"layer/gate":
    [one list of [real, imag] per tracked step]}}.
    Raises NumericsError for an unknown task, cell, initializer or option, TrainingDiverged (a
    NumericsError) when a training loss is not finite.
    """
    run = Run.prepare(task, cell, hidden=hidden, layers=layers, steps=steps, batch=batch, lr=lr,
                      optimizer=optimizer, clip=clip, track_every=track_every, threshold=threshold,
                      data_seed=data_seed, device=device, data_dir=data_dir, train_subset=train_subset)
    check_seed(seed)
    with torch_threads(threads):
        model = build_model(run.data, cell, init, seed, hidden, layers).to(run.device)
        opt = run.optimizer(model.parameters())
        batches = torch.Generator().manual_seed(derived_seed(seed, 2))
        tracker = Tracker(run, f"{cell} on {task}")
        tracker.track(model, 0)
        for step in range(1, run.steps + 1):
            rows = torch.randint(len(run.train[2]), (run.batch,), generator=batches).to(run.device)
            loss = _loss(run.data, model(run.train[0][rows], run.train[1][rows]), run.train[2][rows])
            descend(model, opt, loss, clip, tracker.what, step, tracker.curve)
            if run.tracks(step):
                tracker.track(model, step)
    return tracker.result(init, seed)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NumericsError(f"seed must be an integer ≥ 0, got {seed!r}")
    return int(seed)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op threads set to `threads` for the block (None: left alone), restored after."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads"))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclasses.dataclass
class Run:
    """The checked settings and data of a training run, shared by every network trained with them."""
    data: Task
    cell: str
    hidden: int
    layers: int
    steps: int
    batch: int
    lr: float
    optimizer_name: str
    clip: float | None
    track_every: int
    threshold: float
    data_seed: int
    train_subset: int | None
    source: dict
    device: torch.device
    train: tuple
    test: tuple

    @classmethod
    def prepare(cls, task: str, cell: str, *, hidden: int = 32, layers: int = 1, steps=None, batch=None, lr=None,
                optimizer: str = "adam", clip: float | None = 1.0, track_every=None, threshold=None,
                data_seed: int = 0, device: str = "cpu", data_dir=None, train_subset: int | None = None) -> "Run":
        """Check the options (one-line NumericsError for a bad one) and load the task's data."""
        data = load_task(task, data_seed, data_dir=data_dir, train_subset=train_subset)
        source = mnist_fingerprint(data_dir) if data.kind in MNIST_TASKS else {}
        settings = dict(DEFAULTS[data.kind])
        for key, value in (("steps", steps), ("batch", batch), ("lr", lr), ("track_every", track_every),
                           ("threshold", threshold)):
            if value is not None:
                settings[key] = value
        lr = settings["lr"]
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
            raise NumericsError(f"lr must be a finite number > 0, got {lr!r}")
        if optimizer not in OPTIMIZERS:
            raise NumericsError(f"unknown optimizer {optimizer!r} (choose {', '.join(OPTIMIZERS)})")
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise NumericsError(f"clip must be a number > 0 or None, got {clip!r}")
        if cell not in CELLS:
            raise NumericsError(f"unknown cell {cell!r} (choose {', '.join(CELLS)})")
        target = resolve_device(device)
        return cls(data, cell, hidden, layers, check_int(settings["steps"], "steps", 0),
                   check_int(settings["batch"], "batch"), float(lr), optimizer, clip,
                   check_int(settings["track_every"], "track_every"), settings["threshold"], data_seed, train_subset,
                   source, target, tuple(t.to(target) for t in data.train), tuple(t.to(target) for t in data.test))

    def optimizer(self, params):
        return (torch.optim.Adam if self.optimizer_name == "adam" else torch.optim.SGD)(params, lr=self.lr)

    def tracks(self, step: int) -> bool:
        return step % self.track_every == 0 or step == self.steps

    def config(self, init: str, seed: int) -> dict:
        config = {"task": self.data.name, "cell": self.cell, "init": init, "seed": int(seed), "hidden": self.hidden,
                  "layers": self.layers, "steps": self.steps, "batch": self.batch, "lr": self.lr,
                  "optimizer": self.optimizer_name, "clip": None if self.clip is None else float(self.clip),
                  "track_every": self.track_every, "data_seed": self.data_seed, "data": self.data.sizes(),
                  "dtype": str(torch.get_default_dtype()).removeprefix("torch."), "torch": torch.__version__,
                  **self.source}
        if self.train_subset is not None:
            config["train_subset"] = int(self.train_subset)
        return config


class Tracker:
    """A run's learning curve and spectra: the whole train and test sets scored at tracked steps."""

    def __init__(self, run: Run, what: str):
        self.run, self.what = run, what
        self.curve = {"step": [], "train_loss": [], "test_metric": []}
        self.spectra: dict[str, list] = {}

    def track(self, model: SequenceClassifier, step: int) -> None:
        run = self.run
        model.eval()
        with torch.no_grad():
            train_loss = float(_loss(run.data, _outputs(model, *run.train[:2]), run.train[2]))
            metric = _metric(run.data, _outputs(model, *run.test[:2]), run.test[2])
        model.train()
        if not math.isfinite(train_loss):
            raise TrainingDiverged(self.what, step, train_loss, self.curve)
        self.curve["step"].append(step)
        self.curve["train_loss"].append(train_loss)
        self.curve["test_metric"].append(metric)
        for key, values in _spectra(model).items():
            self.spectra.setdefault(key, []).append(values)

    def result(self, init: str, seed: int) -> dict:
        curve, threshold = self.curve, float(self.run.threshold)
        reached = [s for s, m in zip(curve["step"], curve["test_metric"]) if m >= threshold]
        return {"config": self.run.config(init, seed), "curve": curve, "metric": self.run.data.metric,
                "final_metric": curve["test_metric"][-1], "threshold": threshold,
                "steps_to_threshold": reached[0] if reached else None, "eigenvalues": self.spectra}
