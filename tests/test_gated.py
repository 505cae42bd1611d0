"""The gated cells' linearization at the origin against torch's own Jacobian of nn.GRUCell / nn.LSTMCell."""
import numpy as np
import pytest
import sympy as sp
import torch

from derivations.gated import GATES, effective_matrix, linearization


def _biases(cell, kind, n):
    b_ih, b_hh = cell.bias_ih.detach().numpy(), cell.bias_hh.detach().numpy()
    gates = GATES[kind]
    total = dict(zip(gates, np.split(b_ih + b_hh, len(gates))))
    if kind == "gru":  # b_hn sits inside r ⊙ (W_hn h + b_hn); b_in outside
        total["n"] = np.split(b_ih, 3)[2]
        total["hn"] = np.split(b_hh, 3)[2]
    return total


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("bias_scale", [0.0, 1.0])
def test_linearization_is_torchs_jacobian(kind, bias_scale):
    torch.manual_seed(0)
    n, n_x = 7, 3
    cell = (torch.nn.GRUCell if kind == "gru" else torch.nn.LSTMCell)(n_x, n).double()
    with torch.no_grad():
        cell.bias_ih.mul_(bias_scale * 3)
        cell.bias_hh.mul_(bias_scale * 3)
    x = torch.zeros(1, n_x, dtype=torch.float64)
    if kind == "gru":
        jac = torch.autograd.functional.jacobian(lambda h: cell(x, h[None])[0], torch.zeros(n, dtype=torch.float64))
    else:
        def step(state):
            h, c = cell(x, (state[None, :n], state[None, n:]))
            return torch.cat([h[0], c[0]])
        jac = torch.autograd.functional.jacobian(step, torch.zeros(2 * n, dtype=torch.float64))
    ours = effective_matrix(kind, cell.weight_hh.detach().numpy(), _biases(cell, kind, n))
    assert np.allclose(ours, jac.numpy(), atol=1e-12)


def test_zero_bias_forms():
    """All biases 0: GRU J = W_hn/4 + I/2; LSTM h-row W_hg/4, I/4 and c-row W_hg/2, I/2."""
    gru = linearization("gru")[("h", "h")]
    values = {k: sp.nsimplify(v.subs({s: 0 for s in v.free_symbols})) for k, v in gru.items()}
    assert {k: v for k, v in values.items() if v != 0} == {"W_n": sp.Rational(1, 4), "I": sp.Rational(1, 2)}
    lstm = linearization("lstm")
    at_zero = {blk: {k: sp.nsimplify(v.subs({s: 0 for s in v.free_symbols})) for k, v in t.items()}
               for blk, t in lstm.items()}
    at_zero = {blk: {k: v for k, v in t.items() if v != 0} for blk, t in at_zero.items()}
    assert at_zero == {("h", "h"): {"W_g": sp.Rational(1, 4)}, ("h", "c"): {"I": sp.Rational(1, 4)},
                       ("c", "h"): {"W_g": sp.Rational(1, 2)}, ("c", "c"): {"I": sp.Rational(1, 2)}}
