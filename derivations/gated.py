"""Gated cells linearized at the origin: the recurrent matrix a GRU or an LSTM has at initialization.

The cell equations are written as torch defines them (`nn.GRUCell`, `nn.LSTMCell`), for a hidden
size of 2 with every weight and bias a symbol; SymPy differentiates the step with respect to the
state at x = 0, h = 0 (c = 0). Each unit's gates act elementwise, so the Jacobian has the form
    J = Σ_blocks diag(a_block) W_h,block + diag(d)
with per-unit coefficients a, d that depend only on that unit's biases. The coefficients are read
off the symbolic Jacobian (not typed in) and evaluated for any hidden size by `effective_matrix`.

GRU:  r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
      n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h.
LSTM: i, f, o = σ(W_i· x + b_i· + W_h· h + b_h·),  g = tanh(W_ig x + b_ig + W_hg h + b_hg),
      c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c'); the state is (h, c), so J is 2n × 2n.
With all biases 0: GRU J = W_hn/4 + I/2; LSTM J = [[W_hg/4, I/4], [W_hg/2, I/2]].
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

SIZE = 2  # hidden units in the symbolic cell; the structure is per unit, so 2 shows every term
GATES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}  # torch's order of the blocks in weight_hh


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def _cell(kind: str):
    """Symbols and the step of a cell at x = 0: (state, next state, weights per gate, biases per gate)."""
    h = sp.Matrix(sp.symbols(f"h0:{SIZE}"))
    W = {g: sp.Matrix(SIZE, SIZE, lambda i, j, g=g: sp.Symbol(f"W_{g}{i}{j}")) for g in GATES[kind]}
    b = {g: sp.Matrix(sp.symbols(f"b_{g}0:{SIZE}")) for g in GATES[kind]}  # b_i· + b_h· (x = 0: only their sum enters)
    if kind == "gru":
        bhn = sp.Matrix(sp.symbols(f"bh_n0:{SIZE}"))  # b_hn sits inside r ⊙ (…), apart from b_in
        r = (W["r"] * h + b["r"]).applyfunc(_sigmoid)
        z = (W["z"] * h + b["z"]).applyfunc(_sigmoid)
        n = (b["n"] + r.multiply_elementwise(W["n"] * h + bhn)).applyfunc(sp.tanh)
        step = (sp.ones(SIZE, 1) - z).multiply_elementwise(n) + z.multiply_elementwise(h)
        return h, step, W, {**b, "hn": bhn}
    c = sp.Matrix(sp.symbols(f"c0:{SIZE}"))
    gate = {g: (W[g] * h + b[g]).applyfunc(sp.tanh if g == "g" else _sigmoid) for g in GATES[kind]}
    c_next = gate["f"].multiply_elementwise(c) + gate["i"].multiply_elementwise(gate["g"])
    h_next = gate["o"].multiply_elementwise(c_next.applyfunc(sp.tanh))
    return sp.Matrix.vstack(h, c), sp.Matrix.vstack(h_next, c_next), W, b


@functools.lru_cache(maxsize=None)
def linearization(kind: str) -> dict:
    """Per-unit coefficients of the Jacobian at the origin, as functions of unit 0's biases.

    Returns {(row block, column block): {"W_<gate>" or "I": coefficient}} where a block is "h" or "c":
    J[row, col] = Σ_gate diag(coefficient) W_h,gate + diag(coefficient of I).
    """
    if kind not in GATES:
        raise ValueError(f"unknown cell {kind!r} (choose gru or lstm)")
    state, step, W, _ = _cell(kind)
    origin = {s: 0 for s in state}
    J = step.jacobian(state).subs(origin)
    blocks = ("h",) if kind == "gru" else ("h", "c")
    out = {}
    for bi, row_block in enumerate(blocks):
        for bj, col_block in enumerate(blocks):
            row, col = bi * SIZE, bj * SIZE  # unit 0 of each block
            entry = sp.expand(J[row, col + 1])  # off-diagonal: only the W terms (W_g01)
            diagonal = sp.expand(J[row, col])
            weights = {w: 0 for g in W for w in W[g]}
            terms = {}
            if col_block == "h":
                for g in W:
                    coefficient = entry.coeff(W[g][0, 1])
                    if coefficient != 0:
                        # the same unit's diagonal entry must carry the same coefficient on W_g00
                        check = (diagonal.coeff(W[g][0, 0]) - coefficient).subs(weights)
                        if abs(complex(check.subs({x: 0.37 * (k + 1) for k, x in enumerate(sorted(
                                check.free_symbols, key=str))}).evalf())) > 1e-12:
                            raise ArithmeticError(f"{kind}: W_{g} enters unit 0's row unevenly in block {row_block}{col_block}")
                        terms[f"W_{g}"] = coefficient
            rest = diagonal.subs(weights)
            if rest != 0:
                terms["I"] = rest
            out[(row_block, col_block)] = terms
    return out


def _unit_symbols(kind: str) -> list[sp.Symbol]:
    names = [f"b_{g}0" for g in GATES[kind]] + (["bh_n0"] if kind == "gru" else [])
    return [sp.Symbol(n) for n in names]


def effective_matrix(kind: str, weight_hh: np.ndarray, biases: dict[str, np.ndarray]) -> np.ndarray:
    """The Jacobian at the origin for torch's weight_hh (gate blocks stacked in torch's order) and
    per-gate bias sums b_i· + b_h· (for a GRU also b_hn alone, key "hn"), any hidden size."""
    n = weight_hh.shape[1]
    blocks = dict(zip(GATES[kind], np.split(weight_hh, len(GATES[kind]))))
    args = _unit_symbols(kind)
    values = [biases[g] for g in GATES[kind]] + ([biases["hn"]] if kind == "gru" else [])
    names = ("h",) if kind == "gru" else ("h", "c")
    out = np.zeros((n * len(names), n * len(names)))
    for (row, col), terms in linearization(kind).items():
        i, j = names.index(row) * n, names.index(col) * n
        for name, coefficient in terms.items():
            a = np.broadcast_to(sp.lambdify(args, coefficient, "numpy")(*values), (n,))
            out[i:i + n, j:j + n] += a[:, None] * (blocks[name[2:]] if name != "I" else np.eye(n))
    return out
