"""Names of the eigen benchmark's tasks and cells and the per-task training defaults: torch-free, so
that experiments and the command line can list and check them without loading torch."""
from __future__ import annotations

CELLS = ("rnn", "rnn-tanh", "rnn-relu", "lstm", "gru")  # rnn = rnn-tanh; torch's nn.RNN, nn.LSTM, nn.GRU
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
