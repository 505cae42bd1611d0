"""Initializers of torch's own recurrent modules (`nn.RNN`, `nn.LSTM`, `nn.GRU` and their cells),
applied gate block by gate block, for the eigen view (docs/theory.md, paper 2).

torch stacks a layer's gate blocks along dim 0 of `weight_hh_l{k}` and `weight_ih_l{k}`: LSTM
i, f, g, o; GRU r, z, n; a vanilla RNN has the one block h. Every recurrent block is hidden×hidden
and is drawn on its own, so each gate's matrix has the family's law (not the stacked 4H×H matrix).

    initialize(module, name, *, seed=… or generator=…, **params)   names in `PARAMETERS`
    recurrent_blocks(module)  → {(layer, gate): view of that block of weight_hh}
    block_eigenvalues(module) → {(layer, gate): its eigenvalues, numpy complex}

The square families (orthogonal, identity, nprnn, spectral) are drawn by `numerics.models.families`,
the linear RNN's samplers, so a family means the same matrix law in both networks. Everything is
drawn on the CPU in float64 from one generator, in the module's parameter order, then copied into
the parameters (any dtype or device): a seed gives the same module everywhere.

Choices made here:
  biases    all set to zero (torch's defaults are drawn from the global generator, which would
            break reproducibility by seed), then the LSTM forget gate's total bias is `forget_bias`
            (default 1.0, Gers et al. 2000; Jozefowicz et al. 2015): bias_ih's f block holds it,
            bias_hh's f block 0. `forget_bias` is refused on any other module.
  input     weight_ih blocks are xavier-uniform (gain 1) unless `input_init` says otherwise
            ("normal": N(0, input_std²) entries; "keep": left as they are); identity's default is
            "normal" with input_std 1e-3, the small Gaussian of the IRNN.
  layers    a layer's key is its index k; a bidirectional module's reverse direction is
            "{k}_reverse"; a cell is layer 0.
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch
from torch import nn

from derivations.families import MODULI, FamilyError
from derivations.spec import Spec, SpecError

from ..errors import NumericsError
from .families import unit_recurrent_matrix

GATES = {nn.RNN: ("h",), nn.RNNCell: ("h",), nn.LSTM: ("i", "f", "g", "o"), nn.LSTMCell: ("i", "f", "g", "o"),
         nn.GRU: ("r", "z", "n"), nn.GRUCell: ("r", "z", "n")}
LSTMS = (nn.LSTM, nn.LSTMCell)
# name → its parameters and their defaults (None: optional, no default)
PARAMETERS = {
    "xavier": {"gain": 1.0},
    "kaiming": {},
    "orthogonal": {"gain": 1.0},
    "identity": {"gain": 1.0},
    "nprnn": {"gain": 1.0},
    "spectral": {"modulus": "disk", "radius": 1.0, "phase": 1.0, "file": None},
}
INPUT_INITS = ("xavier", "normal", "keep")
_WEIGHT = re.compile(r"weight_(hh|ih)(?:_l(\d+)(_reverse)?)?$")


def _gates(module: nn.Module) -> tuple[str, ...]:
    for kind, gates in GATES.items():
        if isinstance(module, kind):
            return gates
    raise NumericsError(f"not a torch recurrent module: {type(module).__name__} (use nn.RNN, nn.LSTM, nn.GRU or their cells)")


def _weights(module: nn.Module, which: str) -> list[tuple[object, str, nn.Parameter]]:
    """(layer key, parameter suffix, parameter) of each weight_{which}, in the module's order."""
    found = []
    for name, param in module.named_parameters():
        match = _WEIGHT.match(name)
        if match and match.group(1) == which:
            layer = int(match.group(2) or 0)
            found.append((f"{layer}_reverse" if match.group(3) else layer, name[len("weight_" + which):], param))
    return found


def recurrent_blocks(module: nn.Module) -> dict[tuple[object, str], torch.Tensor]:
    """{(layer, gate): the gate's hidden×hidden block of weight_hh}, views sharing the parameters'
    storage (detached, so writing into them is not recorded by autograd)."""
    gates = _gates(module)
    blocks = {}
    for layer, _, weight in _weights(module, "hh"):
        for gate, block in zip(gates, weight.detach().chunk(len(gates), dim=0)):
            blocks[(layer, gate)] = block
    return blocks


def block_eigenvalues(module: nn.Module) -> dict[tuple[object, str], np.ndarray]:
    """{(layer, gate): eigenvalues of that recurrent block}, numpy complex128, for spectrum tracking."""
    _square(module, "block_eigenvalues")
    return {key: np.linalg.eigvals(block.to("cpu", torch.float64).numpy()).astype(np.complex128)
            for key, block in recurrent_blocks(module).items()}


def _square(module: nn.Module, what: str) -> None:
    if getattr(module, "proj_size", 0):
        raise NumericsError(f"{what} needs square recurrent blocks; an LSTM with proj_size={module.proj_size} has hidden×proj blocks")


def _nonlinearity(module: nn.Module) -> str:
    """relu or tanh: a vanilla RNN's own; a gated cell's candidate (g or n) is tanh."""
    return getattr(module, "nonlinearity", "tanh")


def _params(name: str, given: dict) -> dict:
    if name not in PARAMETERS:
        raise NumericsError(f"unknown initializer {name!r} (choose {', '.join(PARAMETERS)})")
    allowed = PARAMETERS[name]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise NumericsError(f"{name}: unknown parameter {unknown[0]!r} (its parameters: {', '.join(allowed) or 'none'})")
    params = {k: v for k, v in allowed.items() if v is not None}
    params.update(given)
    if "file" in given:
        if {"modulus", "phase"} & set(given):
            raise NumericsError(f"{name}: give either file=… or modulus/phase, not both")
        params = {k: params[k] for k in ("file", "radius")}
    for key in ("gain", "radius"):
        if key in params and not (isinstance(params[key], (int, float)) and math.isfinite(params[key]) and params[key] >= 0):
            raise NumericsError(f"{name}: {key} must be a finite number ≥ 0, got {params[key]!r}")
    return params


def _square_spec(name: str, params: dict) -> Spec:
    """The linear RNN's spec of this family; its sampler draws the unit-scale block."""
    init = name
    if name == "spectral":
        if "file" in params:
            init = f"spectral:file={params['file']}"
        else:
            if params["modulus"] not in MODULI:
                raise NumericsError(f"spectral: unknown modulus {params['modulus']!r} (choose {', '.join(MODULI)})")
            init = f"spectral:modulus={params['modulus']},phase={params['phase']}"
    try:
        return Spec(init=init)
    except (SpecError, FamilyError) as error:
        raise NumericsError(str(error)) from None


def _recurrent_block(name: str, params: dict, spec: Spec | None, module: nn.Module, size: int,
                     generator: torch.Generator) -> torch.Tensor:
    """One hidden×hidden recurrent block, float64 on the CPU."""
    block = torch.empty(size, size, dtype=torch.float64)
    if name == "xavier":
        return nn.init.xavier_uniform_(block, gain=params["gain"], generator=generator)
    if name == "kaiming":
        return nn.init.kaiming_normal_(block, nonlinearity=_nonlinearity(module), generator=generator)
    scale = params["radius"] if name == "spectral" else params["gain"]
    return scale * unit_recurrent_matrix(spec, size, generator, sigma_w=1.0)


def _input_block(how: str, std: float, rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    block = torch.empty(rows, cols, dtype=torch.float64)
    if how == "xavier":
        return nn.init.xavier_uniform_(block, generator=generator)
    return nn.init.normal_(block, std=std, generator=generator)


def initialize(module: nn.Module, name: str, *, seed: int | None = None, generator: torch.Generator | None = None,
               input_init: str | None = None, input_std: float = 1e-3, forget_bias: float | None = None,
               **params) -> nn.Module:
    """Initialize a torch recurrent module in place, each gate block of weight_hh on its own; returns it.

    name (parameters, defaults):
      xavier      (gain=1)  xavier-uniform on each block: U(±gain·√(6/2H)), variance gain²/H
      kaiming     ()        kaiming-normal (fan_in) on each block, N(0, g²/H) with g the gain of the
                            module's nonlinearity (√2 relu, 5/3 tanh; tanh for LSTM and GRU)
      orthogonal  (gain=1)  gain × a Haar-random orthogonal matrix per block
      identity    (gain=1)  every recurrent block gain·I, input weights N(0, input_std²), biases 0.
                            The IRNN of Le et al. 2015 is this on a ReLU vanilla RNN
                            (nn.RNN(nonlinearity="relu")); on a gated cell it only sets the blocks.
      nprnn       (gain=1)  gain·(I + RᵀR/H)/λ_max(I + RᵀR/H), R with N(0, 1) entries (Talathi &
                            Vartak 2016): symmetric, positive definite, largest eigenvalue gain
      spectral    (modulus=disk|ring|uniform, radius=1, phase=1; or file=PATH)  a normal matrix
                            whose eigenvalues follow the law (`derivations.families`): modulus
                            radius·√U (disk, the circular law), radius (ring) or radius·U (uniform),
                            phases uniform on (−phase·π, phase·π); file: a .npy vector of
                            eigenvalues, scaled by radius
    seed or generator (exactly one): the source of every draw, so a seed reproduces the module.
    input_init: xavier (default), normal (N(0, input_std²); identity's default) or keep.
    forget_bias: an LSTM's total forget-gate bias (default 1.0); refused on other modules.
    All biases are set to zero first (see the module docstring). Unknown names or parameters raise
    NumericsError.
    """
    gates = _gates(module)
    is_lstm = isinstance(module, LSTMS)
    params = _params(name, params)
    if name not in ("xavier", "kaiming"):
        _square(module, f"the {name} initializer")
    if (seed is None) == (generator is None):
        raise NumericsError("initialize needs exactly one of seed= and generator=, so the draw is reproducible")
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    if input_init is None:
        input_init = "normal" if name == "identity" else "xavier"
    if input_init not in INPUT_INITS:
        raise NumericsError(f"unknown input_init {input_init!r} (choose {', '.join(INPUT_INITS)})")
    if forget_bias is not None and not is_lstm:
        raise NumericsError(f"forget_bias is an LSTM's; {type(module).__name__} has no forget gate")
    if forget_bias is None:
        forget_bias = 1.0
    spec = None if name in ("xavier", "kaiming") else _square_spec(name, params)

    size = module.hidden_size
    inputs = {layer: w for layer, _, w in _weights(module, "ih")}
    with torch.no_grad():
        for layer, suffix, weight_hh in _weights(module, "hh"):
            if input_init != "keep":
                weight_ih = inputs[layer]
                for rows in weight_ih.chunk(len(gates), dim=0):
                    rows.copy_(_input_block(input_init, input_std, size, weight_ih.shape[1], generator))
            for rows in weight_hh.chunk(len(gates), dim=0):
                rows.copy_(_recurrent_block(name, params, spec, module, size, generator))
            for kind in ("ih", "hh"):
                bias = getattr(module, f"bias_{kind}{suffix}", None)
                if bias is None:
                    continue
                bias.zero_()
                if is_lstm and kind == "ih":
                    bias.chunk(len(gates), dim=0)[gates.index("f")].fill_(forget_bias)
    return module
