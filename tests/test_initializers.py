"""Initializers of torch's recurrent modules, block by gate block (`numerics.models.initializers`):
each family's exact structure, the laws of the random ones within their sampling error, biases,
seeds, refusals, and a forward pass afterwards."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from numerics.errors import NumericsError
from numerics.models.initializers import block_eigenvalues, initialize, recurrent_blocks

INPUT, HIDDEN = 5, 32
MODULES = {
    "rnn-tanh": lambda h=HIDDEN: nn.RNN(INPUT, h, 2, nonlinearity="tanh", dtype=torch.float64),
    "rnn-relu": lambda h=HIDDEN: nn.RNN(INPUT, h, 2, nonlinearity="relu", dtype=torch.float64),
    "lstm": lambda h=HIDDEN: nn.LSTM(INPUT, h, 2, dtype=torch.float64),
    "gru": lambda h=HIDDEN: nn.GRU(INPUT, h, 2, dtype=torch.float64),
}
CELLS = {
    "rnn-cell": lambda: nn.RNNCell(INPUT, HIDDEN, nonlinearity="relu", dtype=torch.float64),
    "lstm-cell": lambda: nn.LSTMCell(INPUT, HIDDEN, dtype=torch.float64),
    "gru-cell": lambda: nn.GRUCell(INPUT, HIDDEN, dtype=torch.float64),
}
GATES = {"rnn-tanh": "h", "rnn-relu": "h", "lstm": "ifgo", "gru": "rzn"}
ALL = {**MODULES, **CELLS}


def runs_forward(module):
    """A forward pass on a short sequence (or one cell step) gives finite states of the right shape."""
    x = torch.randn(7, 3, INPUT, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = module(x) if not isinstance(module, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)) else module(x[0])
    first = out[0] if isinstance(out, tuple) else out
    assert first.shape[-1] == HIDDEN and torch.isfinite(first).all()


@pytest.mark.parametrize("kind", MODULES)
def test_every_gate_block_is_there(kind):
    module = initialize(MODULES[kind](), "orthogonal", seed=0)
    assert set(recurrent_blocks(module)) == {(layer, g) for layer in (0, 1) for g in GATES[kind]}
    # the blocks are views: writing into one writes into weight_hh
    recurrent_blocks(module)[(1, GATES[kind][-1])].fill_(3.0)
    assert (module.weight_hh_l1[-HIDDEN:] == 3.0).all()


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("gain", [1.0, 0.7])
def test_orthogonal_blocks(kind, gain):
    module = initialize(ALL[kind](), "orthogonal", gain=gain, seed=1)
    blocks = recurrent_blocks(module)
    for W in blocks.values():
        torch.testing.assert_close(W.T @ W, gain**2 * torch.eye(HIDDEN, dtype=torch.float64), atol=1e-12, rtol=0)
    first, *rest = blocks.values()
    assert all(not torch.equal(first, W) for W in rest)  # each block drawn on its own
    runs_forward(module)


@pytest.mark.parametrize("kind", ALL)
def test_identity_blocks_and_biases(kind):
    gain = 0.9
    module = initialize(ALL[kind](), "identity", gain=gain, seed=2)
    for W in recurrent_blocks(module).values():
        assert torch.equal(W, gain * torch.eye(HIDDEN, dtype=torch.float64))
    lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))
    for name, p in module.named_parameters():
        if name.startswith("bias_ih") and lstm:
            i, f, g, o = p.detach().chunk(4)
            assert (f == 1.0).all() and not torch.cat([i, g, o]).any()  # the LSTM keeps its forget bias
        elif name.startswith("bias"):
            assert not p.any()
        elif name.startswith("weight_ih"):
            # small Gaussian input weights, N(0, 1e-3²): far inside 10 standard deviations
            assert 0 < p.abs().max() < 1e-2
    runs_forward(module)


@pytest.mark.parametrize("kind", MODULES)
def test_nprnn_blocks(kind):
    """Talathi & Vartak: symmetric positive definite, largest eigenvalue exactly 1 (this matrix's own)."""
    module = initialize(MODULES[kind](), "nprnn", seed=3)
    for W in recurrent_blocks(module).values():
        torch.testing.assert_close(W, W.T, atol=1e-14, rtol=0)
        eigenvalues = torch.linalg.eigvalsh((W + W.T) / 2)
        assert abs(eigenvalues[-1].item() - 1) < 1e-10
        assert eigenvalues[0] > 0
    runs_forward(module)


@pytest.mark.parametrize("kind", MODULES)
def test_spectral_ring(kind):
    module = initialize(MODULES[kind](), "spectral", modulus="ring", radius=0.9, seed=4)
    for values in block_eigenvalues(module).values():
        assert values.dtype == np.complex128 and values.size == HIDDEN
        np.testing.assert_allclose(np.abs(values), 0.9, atol=1e-12, rtol=0)
    runs_forward(module)


def test_spectral_disk_follows_the_circular_law():
    """modulus=disk: r²/radius² ~ U(0, 1). Each block's H/2 conjugate pairs carry H/2 independent
    moduli; pooled over every block of every module, N of them. Tolerance from the
    Dvoretzky–Kiefer–Wolfowitz inequality (Massart's constant): P(sup|F_N − F| > ε) ≤ 2·exp(−2Nε²),
    so ε = √(ln(2/α)/(2N)) is exceeded with probability below α = 1e-6."""
    radius, hidden = 0.8, 64
    squares = []
    for seed, kind in enumerate(MODULES):
        module = initialize(MODULES[kind](hidden), "spectral", modulus="disk", radius=radius, seed=10 + seed)
        for values in block_eigenvalues(module).values():
            squares.append(np.sort(np.abs(values))[::2] ** 2 / radius**2)  # one modulus per conjugate pair
    s = np.sort(np.concatenate(squares))
    n = s.size
    ks = max(np.max(np.arange(1, n + 1) / n - s), np.max(s - np.arange(n) / n))
    epsilon = math.sqrt(math.log(2 / 1e-6) / (2 * n))
    assert n == 18 * hidden // 2 and ks < epsilon
    assert s[-1] <= 1 + 1e-12  # no eigenvalue outside the disk


def test_spectral_file(tmp_path):
    path = tmp_path / "spectrum.npy"
    np.save(path, np.array([0.5, 0.3 + 0.4j]))
    module = initialize(MODULES["gru"](), "spectral", file=str(path), radius=2.0, seed=5)
    allowed = 2.0 * np.array([0.5, 0.3 + 0.4j, 0.3 - 0.4j])
    for values in block_eigenvalues(module).values():
        assert np.min(np.abs(values[:, None] - allowed[None, :]), axis=1).max() < 1e-10


def _variance_bound(variance, kurtosis, m, sds=5.0):
    """The sample variance of m iid entries has standard deviation σ²·√((κ − 1)/m), κ = μ₄/σ⁴
    (9/5 uniform, 3 Gaussian); `sds` of them."""
    return sds * variance * math.sqrt((kurtosis - 1) / m)


@pytest.mark.parametrize("kind", MODULES)
def test_xavier_variance(kind):
    gain, hidden = 1.3, 64
    module = initialize(MODULES[kind](hidden), "xavier", gain=gain, seed=6)
    expected = gain**2 * 2 / (hidden + hidden)  # xavier: gain²·2/(fan_in + fan_out)
    for W in recurrent_blocks(module).values():
        assert abs(W.var().item() - expected) < _variance_bound(expected, 9 / 5, W.numel())
        assert W.abs().max() <= gain * math.sqrt(6 / (2 * hidden))
    runs_forward(initialize(MODULES[kind](), "xavier", seed=6))


@pytest.mark.parametrize("kind", MODULES)
def test_kaiming_variance(kind):
    hidden = 64
    module = initialize(MODULES[kind](hidden), "kaiming", seed=7)
    gain = math.sqrt(2) if kind == "rnn-relu" else 5 / 3  # the module's nonlinearity; gated: tanh
    expected = gain**2 / hidden  # kaiming normal, fan_in
    for W in recurrent_blocks(module).values():
        assert abs(W.var().item() - expected) < _variance_bound(expected, 3.0, W.numel())
    runs_forward(initialize(MODULES[kind](), "kaiming", seed=7))


@pytest.mark.parametrize("kind", ALL)
def test_forget_bias_only_on_the_lstm_f_block(kind):
    lstm = kind.startswith("lstm")
    module = initialize(ALL[kind](), "xavier", seed=8, **({"forget_bias": 2.5} if lstm else {}))
    for name, p in module.named_parameters():
        if not name.startswith("bias"):
            continue
        if lstm and name.startswith("bias_ih"):
            chunks = p.detach().chunk(4)
            assert (chunks[1] == 2.5).all() and not torch.cat([chunks[0], chunks[2], chunks[3]]).any()
        else:
            assert not p.any()  # bias_hh of the LSTM, and every bias elsewhere
    if not lstm:
        with pytest.raises(NumericsError):
            initialize(ALL[kind](), "xavier", seed=8, forget_bias=1.0)


@pytest.mark.parametrize("name", ["xavier", "kaiming", "orthogonal", "identity", "nprnn", "spectral"])
def test_determinism_by_seed(name):
    a = initialize(MODULES["lstm"](), name, seed=11).state_dict()
    b = initialize(MODULES["lstm"](), name, generator=torch.Generator().manual_seed(11)).state_dict()
    c = initialize(MODULES["lstm"](), name, seed=12).state_dict()
    single = initialize(nn.LSTM(INPUT, HIDDEN, 2), name, seed=11).state_dict()  # float32: the same draw, rounded
    for key in a:
        assert torch.equal(a[key], b[key])
        assert torch.equal(single[key], a[key].float())
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith("weight"))


@pytest.mark.parametrize("call", [
    lambda m: initialize(m, "glorot", seed=0),
    lambda m: initialize(m, "orthogonal", seed=0, scale=2.0),
    lambda m: initialize(m, "spectral", seed=0, modulus="annulus"),
    lambda m: initialize(m, "spectral", seed=0, phase=2.0),
    lambda m: initialize(m, "spectral", seed=0, file="x.npy", modulus="ring"),
    lambda m: initialize(m, "spectral", seed=0, file="/no/such/file.npy"),
    lambda m: initialize(m, "orthogonal", seed=0, gain=-1.0),
    lambda m: initialize(m, "orthogonal"),
    lambda m: initialize(m, "orthogonal", seed=0, generator=torch.Generator()),
    lambda m: initialize(m, "orthogonal", seed=0, input_init="uniform"),
    lambda m: initialize(nn.Linear(3, 3), "orthogonal", seed=0),
    lambda m: initialize(nn.LSTM(3, 8, proj_size=4), "orthogonal", seed=0),
    lambda m: initialize(nn.GRU(3, 8), "xavier", seed=0, forget_bias=1.0),
])
def test_bad_requests_are_refused_in_one_line(call):
    with pytest.raises(NumericsError) as error:
        call(MODULES["lstm"]())
    assert "\n" not in str(error.value)
