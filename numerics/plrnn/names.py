"""Names of the rPLRNN paper's tasks and models and the per-task training defaults: torch-free, so that
experiments and the command line can list and check them without loading torch."""
from __future__ import annotations

TASKS = ("addition", "multiplication", "digits", "mnist")
MARKER_TASKS = ("addition", "multiplication")
LENGTHS = {"digits": 64, "mnist": 784}  # fixed sequence lengths of the image tasks
DEFAULTS = {
    "addition": {"steps": 2000, "batch": 500, "track_every": 100,
                 "train_size": 10_000, "val_size": 1_000, "test_size": 1_000},
    "multiplication": {"steps": 2000, "batch": 500, "track_every": 100,
                       "train_size": 10_000, "val_size": 1_000, "test_size": 1_000},
    "digits": {"steps": 1500, "batch": 100, "track_every": 100},
    "mnist": {"steps": 3000, "batch": 500, "track_every": 250, "val_size": 5_000},
}
MODELS = ("rplrnn", "plrnn", "iplrnn", "rnn", "irnn", "nprnn", "ornn", "lstm")  # long-range problems
PLRNN_MODELS = ("rplrnn", "plrnn", "iplrnn")
RELU_MODELS = ("rnn", "irnn", "nprnn")  # nn.RNN(relu) baselines without a parametrization: packed like the PLRNNs
RECONSTRUCTION_MODELS = ("rplrnn", "plrnn", "lstm", "gru")  # generative models of a dynamical system
