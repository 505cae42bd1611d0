"""The eigen benchmark's network: torch's own nn.RNN / nn.LSTM / nn.GRU (batch-first, one layer by
default) and a linear readout of the hidden state at each sequence's last valid step (gathered at
length − 1; a length-0 string reads the zero initial state).

Seeds: the recurrent module is `initialize(module, init, seed=seed)` — the same recurrent weights
for a seed on every task with the same number of input channels (the input blocks are drawn
first: tomita's 2 channels give another W than digits' or recall's 1), for paired comparisons —
and the readout draws from a generator seeded by `derived_seed(seed, 1)`. Nothing reads torch's
global generator.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import NumericsError, check_int
from ..models.initializers import PARAMETERS, block_eigenvalues, initialize
from ..train.runtime import derived_seed
from .tasks import Task

CELLS = {"rnn": (nn.RNN, "tanh"), "rnn-tanh": (nn.RNN, "tanh"), "rnn-relu": (nn.RNN, "relu"),
         "lstm": (nn.LSTM, None), "gru": (nn.GRU, None)}


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
    check_int(hidden, "hidden")
    name, params = parse_init(init)
    model = SequenceClassifier(cell, task.input_size, hidden, task.outputs, layers)
    initialize(model.rnn, name, seed=int(seed), **params)
    generator = torch.Generator().manual_seed(derived_seed(seed, 1))
    with torch.no_grad():
        weight = torch.empty(model.readout.weight.shape, dtype=torch.float64)
        model.readout.weight.copy_(nn.init.xavier_uniform_(weight, generator=generator))
        model.readout.bias.zero_()
    return model


def spectra(model: SequenceClassifier) -> dict[str, list]:
    return {f"{layer}/{gate}": [[float(v.real), float(v.imag)] for v in values]
            for (layer, gate), values in block_eigenvalues(model.rnn).items()}


