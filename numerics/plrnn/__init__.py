"""The rPLRNN paper's numerics (THEORY.md, "PLRNN (paper 3)"): the piecewise-linear RNN with its
line-attractor regularizer and the baselines (`model`), its recurrence with a hand-written backward
pass (`recurrence`), one training run on a long-range task (`train`), and the training-step timing
against torch's nn.RNN (`speed`). The tasks themselves are in `numerics.data.long_range`.

    build_model(name, input_size, hidden, outputs, seed, *, p, tau_a, tau_w, …)   names in MODELS
    train_long_range(task, T, model, seed, *, hidden=40, …) → JSON-ready dict     tasks in TASKS
"""
from .model import MODELS, PLRNN, build_model, regularized_units
from .recurrence import plrnn_states
from .train import TASKS, load_long_range, train_long_range

__all__ = ["MODELS", "PLRNN", "TASKS", "build_model", "load_long_range", "plrnn_states", "regularized_units",
           "train_long_range"]
