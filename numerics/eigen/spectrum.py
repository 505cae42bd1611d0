"""Eigenvalues of a recurrent module on the unit disk: every gate block of weight_hh, and for a
gated cell the Jacobian of its step at the origin (`derivations.gated`), which is the recurrent
matrix the cell actually has at initialization.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import style
from ..errors import NumericsError
from ..models.initializers import block_eigenvalues, initialize

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def fresh_module(cell: str, init: str, hidden: int, seed: int, **params) -> nn.Module:
    """One layer of torch's own cell (input size 1; ReLU for identity, the IRNN), initialized."""
    if cell not in CELLS:
        raise NumericsError(f"unknown cell {cell!r} (choose {', '.join(CELLS)})")
    if not 1 <= hidden <= 4096:
        raise NumericsError(f"hidden size must be from 1 to 4096, got {hidden}")
    extra = {"nonlinearity": "relu"} if cell == "rnn" and init == "identity" else {}
    module = CELLS[cell](1, hidden, batch_first=True, **extra).double()
    return initialize(module, init, seed=seed, **params)


def step_jacobian_eigenvalues(module: nn.Module) -> np.ndarray | None:
    """Eigenvalues of the step's Jacobian at x = 0, h = 0 (c = 0): for a vanilla tanh or ReLU RNN
    with zero bias that is W_hh itself (φ′(0) = 1 taken for ReLU's right derivative), so None."""
    kind = {nn.LSTM: "lstm", nn.GRU: "gru"}.get(type(module))
    if kind is None:
        return None
    from derivations.gated import GATES, effective_matrix

    gates = GATES[kind]
    b_ih = module.bias_ih_l0.detach().double().numpy()
    b_hh = module.bias_hh_l0.detach().double().numpy()
    biases = dict(zip(gates, np.split(b_ih + b_hh, len(gates))))
    if kind == "gru":  # b_hn sits inside r ⊙ (W_hn h + b_hn), b_in outside it
        biases["n"], biases["hn"] = np.split(b_ih, 3)[2], np.split(b_hh, 3)[2]
    J = effective_matrix(kind, module.weight_hh_l0.detach().double().numpy(), biases)
    return np.linalg.eigvals(J)


def spectrum(module: nn.Module) -> dict:
    """JSON-ready eigenvalues: per gate block, and of the step's Jacobian at the origin where it differs."""
    blocks = {f"{layer}/{gate}": np.column_stack([v.real, v.imag]).tolist()
              for (layer, gate), v in block_eigenvalues(module).items()}
    jac = step_jacobian_eigenvalues(module)
    return {"blocks": blocks, "step_jacobian": None if jac is None else np.column_stack([jac.real, jac.imag]).tolist()}


def spectrum_figure(data: dict, title: str):
    """Eigenvalues on the complex plane with the unit circle: gate blocks and the step's Jacobian."""
    panels = [("gate blocks of $W_{hh}$", data["blocks"])]
    if data["step_jacobian"] is not None:
        panels.append(("step Jacobian at the origin", {"J": data["step_jacobian"]}))
    fig, axes = style.figure(ncols=len(panels), height=3.2)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
    for k, (ax, (label, groups)) in enumerate(zip(axes[0], panels)):
        ax.plot(circle.real, circle.imag, color="0.4", lw=0.8, label="unit circle")
        for i, (name, points) in enumerate(groups.items()):
            z = np.array(points).reshape(-1, 2)
            ax.plot(z[:, 0], z[:, 1], style.MARKERS[i % len(style.MARKERS)], color=style.PALETTE[i % 8], ms=3,
                    ls="", label=name if name != "J" else "eigenvalues of J")
        ax.set_aspect("equal")
        ax.set_xlabel(r"Re $\lambda$")
        ax.set_ylabel(r"Im $\lambda$")
        ax.set_title(label, loc="left")
        ax.legend(fontsize="small", loc="center" if k == 0 else "upper left")  # where the points are not
    fig.suptitle(title, fontsize="medium")
    return fig


def fresh_spectrum(cell: str, init: str, hidden: int, seed: int, **params) -> tuple[dict, object]:
    torch.manual_seed(seed)  # nothing should draw from it; initialize takes its own generator
    module = fresh_module(cell, init, hidden, seed, **params)
    data = spectrum(module)
    return data, spectrum_figure(data, f"{cell.upper()}, init {init}, hidden {hidden}, seed {seed}")


def write_fresh_spectrum(cell: str, init: str, hidden: int, seed: int, out, *, force: bool = False,
                         command: str = "rnnmemory eigen spectrum") -> list:
    """`rnnmemory eigen spectrum`: `fresh_spectrum` into the result directory OUT (result.json,
    spectrum.png/pdf); returns the paths written."""
    from .. import io

    results = io.ResultDir(out, force)
    data, fig = fresh_spectrum(cell, init, hidden, seed)
    results.write_result(io.record(command, None, {"cell": cell, "init": init, "hidden": hidden}, "cpu", seed, data))
    return [results.path / "result.json", *results.save_figure(fig, "spectrum")]
