"""The piecewise-linear RNN of the rPLRNN paper, its line-attractor regularizer, and the baselines it
is compared with (docs/theory.md, paper 3).

    z_t = A ⊙ z_{t−1} + W relu(z_{t−1}) + h + C s_t,   t = 1 … T,   output B z_T (or B z_t every step)

A is a vector (the diagonal), W's diagonal is masked to zero at every forward pass, h is a bias,
z₀ is learned, and the readout B is a bias-free linear map of z_T itself (not relu(z_T)), read at
the last step ('last', the ML benchmarks) or at every step ('every', for dynamical-system
reconstruction). The recurrence runs through `numerics.plrnn.recurrence.plrnn_states`, a
hand-written backward pass.

Regularizer (`PLRNN.regularizer`), on the first M_reg = ⌊M·p⌋ units:
    τ_A · mean_i (A_i − 1)² + τ_W · mean_{i,j} W_ij² + τ_W · mean_i h_i²,   i < M_reg, all j
with the means of the public code (`reduction='mean'`, default; W's mean is over all M_reg × M
entries of those rows of the masked W, its zero diagonal included) or the sums of the paper's EM
part (`reduction='sum'`). It pulls those units toward line attractors: A_i = 1, no recurrent
input, no bias. `regularized_at='last'` puts the regularized (and attractor) units at the end
instead, i ≥ M − M_reg: dynamical-system reconstruction (`numerics.plrnn.reconstruct`) forces the
first N units to the data, and a forced unit pulled toward z_i,t = z_i,t−1 could not follow it.

Initialization (one seeded generator, float64 draws copied into the parameters): the law of the
public code's `generate_random_params` (read for its facts, the notes on the public code in docs/theory.md):
    A + W jointly with entries N(0, 1/M), multiplied by 1/(1 + √M) while its spectral radius
    exceeds 1 (at M = 40 one shrink to radius ≈ 0.14); A its diagonal, W the rest;
    C ~ N(0, 1/M) · √2 · exp(1.2 / max(M, 6) − 2.4) (`C_SCALE`, ≈ 0.13 at M = 40), so that the
    attractor units, which sum the input over T steps, stay small; B, h ~ N(0, 1/M); z₀ ~ U[0, 1).
An earlier choice here, torch's nn.Linear law U(±1/√fan_in) with A ~ U[0, 1) and the free block
capped at spectral radius 0.9, left rplrnn at 0.27 correct on addition at T = 100 after 4000
steps; with this law it reaches 0.99 within 10 000 steps of batch 64.
Attractor units (rplrnn: the M_reg regularized ones; iplrnn: all) start at A_i = 1, W row i = 0,
h_i = 0. Their columns of W, their rows of C and the readout stay random: they must still be
read and driven. The raw diagonal of W starts at 0 and gets no gradient (the mask), so it stays 0.

Models by name (`MODELS`, `build_model`):
  rplrnn   PLRNN, regularized (p, τ_A, τ_W; released runs M = 40, p = 0.5, τ_A = τ_W = 5)
  plrnn    PLRNN, no regularizer, no attractor units
  iplrnn   PLRNN, every unit starts as an attractor, no regularizer
  rnn      nn.RNN(nonlinearity='relu') with torch's default law U(±1/√M) for every weight and bias
  irnn     the same, then W_hh = I and biases 0 (`initialize(…, 'identity')`)
  nprnn    the same, then W_hh = (I + RᵀR/M)/λ_max, biases 0 (`initialize(…, 'nprnn')`)
  ornn     the same, then W_hh Haar-orthogonal, biases 0 (`initialize(…, 'orthogonal')`), and W_hh
           kept orthogonal for real by `torch.nn.utils.parametrizations.orthogonal` (the public
           code's penalty read a detached W, so it had no gradient; a parametrization needs none)
  lstm     nn.LSTM with torch's default law, then the forget gate's bias 1 in total (bias_ih's f
           block 1, bias_hh's f block 0; the other biases keep the default law)
The baselines read a linear head (with bias, torch's nn.Linear law) on h_T. For irnn, nprnn and
ornn the input weights keep torch's default law (`input_init='keep'`): docs/theory.md names only W_hh
and the biases. torch's default law is drawn from the seeded generator, and the modules are built
inside `torch.random.fork_rng`, so nothing reads or advances torch's global generator.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import NumericsError, check_choice, check_int, check_number
from ..models.initializers import initialize
from .names import MODELS, PLRNN_MODELS
from .recurrence import plrnn_states

BASELINE_INITS = {"irnn": "identity", "nprnn": "nprnn", "ornn": "orthogonal"}
REDUCTIONS = ("mean", "sum")
READOUTS = ("last", "every")
UNIT_ENDS = ("first", "last")  # where the regularized and attractor units sit


def C_SCALE(M: int) -> float:
    """The input matrix's extra factor in the public code: √2 · exp(1.2 / max(M, 6) − 2.4) (≈ 0.13 at M = 40)."""
    return math.sqrt(2) * math.exp(1.2 / max(M, 6) - 2.4)


def end_units(hidden: int, count: int, at: str = "first") -> slice:
    """The first `count` of `hidden` units (at='first') or the last `count` (at='last')."""
    return slice(0, count) if at == "first" else slice(hidden - count, hidden)


def regularized_units(hidden: int, p: float) -> int:
    """M_reg = ⌊M·p⌋ (rounded to 9 digits first, so 0.29 · 100 gives 29, not 28)."""
    return math.floor(round(hidden * p, 9))


def model_generator(seed, generator) -> torch.Generator:
    """The generator a model draws from: exactly one of a seed and a generator, so the draw is reproducible."""
    if (seed is None) == (generator is None):
        raise NumericsError("a model needs exactly one of seed= and generator=, so the draw is reproducible")
    return generator if generator is not None else torch.Generator().manual_seed(int(seed))


def torch_default_law(params, hidden: int, generator: torch.Generator) -> None:
    """Every parameter U(±1/√hidden), drawn from `generator` in order: torch's own law for RNN, LSTM and
    GRU weights and biases, and nn.Linear's for a head whose fan-in is `hidden`."""
    bound = 1 / math.sqrt(hidden)
    with torch.no_grad():
        for param in params:
            param.copy_((2 * torch.rand(param.shape, generator=generator, dtype=torch.float64) - 1) * bound)


class PLRNN(nn.Module):
    """The PLRNN with its readout (see the module docstring).

    p: fraction of regularized units (M_reg = ⌊M·p⌋, the first ones); tau_a, tau_w: the
    regularizer's strengths; attractors: how many units (the first ones) start as line attractors
    (default M_reg); reduction: 'mean' or 'sum'; readout: 'last' or 'every'; regularized_at:
    'first' (default) or 'last', the end where the regularized and attractor units sit.
    """

    def __init__(self, input_size: int, hidden: int, outputs: int, *, seed: int | None = None,
                 generator: torch.Generator | None = None, p: float = 0.0, tau_a: float = 0.0,
                 tau_w: float = 0.0, attractors: int | None = None, reduction: str = "mean",
                 readout: str = "last", regularized_at: str = "first"):
        super().__init__()
        K, M, outputs = check_int(input_size, "input_size"), check_int(hidden, "hidden"), check_int(outputs, "outputs")
        p = check_number(p, "p", 0.0, 1.0)
        self.tau_a, self.tau_w = check_number(tau_a, "tau_a"), check_number(tau_w, "tau_w")
        if reduction not in REDUCTIONS:
            raise NumericsError(f"unknown reduction {reduction!r} (choose {', '.join(REDUCTIONS)})")
        if readout not in READOUTS:
            raise NumericsError(f"unknown readout {readout!r} (choose {', '.join(READOUTS)})")
        self.reduction, self.readout = reduction, readout
        if regularized_at not in UNIT_ENDS:
            raise NumericsError(f"unknown regularized_at {regularized_at!r} (choose {', '.join(UNIT_ENDS)})")
        self.regularized_at = regularized_at
        self.regularized = regularized_units(M, p)
        self.attractors = self.regularized if attractors is None else int(attractors)
        if not 0 <= self.attractors <= M:
            raise NumericsError(f"attractors must be between 0 and hidden = {M}, got {attractors!r}")
        g = model_generator(seed, generator)
        n = self.attractors
        # the public code's law (module docstring): A + W jointly N(0, 1/M), shrunk by 1/(1 + √M)
        # until its spectral radius is ≤ 1; a small C; B, h ~ N(0, 1/M); z₀ ~ U[0, 1)
        AW = torch.randn((M, M), generator=g, dtype=torch.float64) / math.sqrt(M)
        while float(torch.linalg.eigvals(AW).abs().max()) > 1:
            AW /= 1 + math.sqrt(M)
        A, W = AW.diagonal().clone(), AW.clone()
        W.fill_diagonal_(0.0)
        C = torch.randn((M, K), generator=g, dtype=torch.float64) / math.sqrt(M) * C_SCALE(M)
        B = torch.randn((outputs, M), generator=g, dtype=torch.float64) / math.sqrt(M)
        h = torch.randn(M, generator=g, dtype=torch.float64) / math.sqrt(M)
        z0 = torch.rand(M, generator=g, dtype=torch.float64)
        ends = end_units(M, n, regularized_at)
        A[ends], W[ends], h[ends] = 1.0, 0.0, 0.0
        dtype = torch.get_default_dtype()
        self.A, self.W, self.h, self.C = (nn.Parameter(x.to(dtype)) for x in (A, W, h, C))
        self.z0 = nn.Parameter(z0.to(dtype))
        self.B = nn.Parameter(B.to(dtype))
        self.register_buffer("off_diagonal", 1 - torch.eye(M, dtype=dtype), persistent=False)

    @property
    def hidden(self) -> int:
        return self.A.shape[0]

    def recurrent_matrix(self) -> torch.Tensor:
        """W with its diagonal masked to zero, the matrix the recurrence uses."""
        return self.W * self.off_diagonal

    def states(self, inputs: torch.Tensor) -> torch.Tensor:
        """z_1 … z_T for inputs (N, T, K): (N, T, M), batch-first."""
        return self._run(inputs, every_step=True).transpose(0, 1)

    def _run(self, inputs: torch.Tensor, every_step: bool) -> torch.Tensor:
        N, T, K = inputs.shape
        # the input drive C s_t + h of every step in one product, time-major
        drive = torch.addmm(self.h, inputs.transpose(0, 1).reshape(T * N, K), self.C.t()).view(T, N, -1)
        return plrnn_states(drive, self.A, self.recurrent_matrix(), self.z0, every_step=every_step)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """B z_T (N, outputs) for inputs (N, T, K); with readout='every', B z_t for every t: (N, T, outputs)."""
        if self.readout == "every":
            return self._run(inputs, every_step=True).transpose(0, 1) @ self.B.t()
        return self._run(inputs, every_step=False) @ self.B.t()

    def regularizer(self) -> torch.Tensor:
        """τ_A·Σ(A_reg − 1)² + τ_W·ΣW_reg² + τ_W·Σh_reg², each Σ a mean or a sum per `reduction`
        (0 when no unit is regularized)."""
        n = self.regularized
        if n == 0 or (self.tau_a == 0 and self.tau_w == 0):
            return self.A.new_zeros(())
        reduce = torch.mean if self.reduction == "mean" else torch.sum
        units = end_units(self.hidden, n, self.regularized_at)
        return (self.tau_a * reduce((self.A[units] - 1) ** 2)
                + self.tau_w * reduce(self.recurrent_matrix()[units] ** 2) + self.tau_w * reduce(self.h[units] ** 2))

    def dynamics(self) -> dict[str, torch.Tensor]:
        """{"A", "W" (masked), "h", "C", "z0"}: detached float64 CPU copies, for fixed-point analysis."""
        with torch.no_grad():
            values = {"A": self.A, "W": self.recurrent_matrix(), "h": self.h, "C": self.C, "z0": self.z0}
            return {k: v.detach().to("cpu", torch.float64).clone() for k, v in values.items()}


class TorchRNN(nn.Module):
    """A baseline: torch's nn.RNN(relu) or nn.LSTM (batch-first, one layer), linear head on h_T."""

    def __init__(self, cell: str, input_size: int, hidden: int, outputs: int):
        super().__init__()
        if cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden, batch_first=True)
        else:
            self.rnn = nn.RNN(input_size, hidden, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(hidden, outputs)
        self.readout = "last"

    def states(self, inputs: torch.Tensor) -> torch.Tensor:
        """h_1 … h_T: (N, T, hidden)."""
        return self.rnn(inputs)[0]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.states(inputs)[:, -1])

    def regularizer(self) -> torch.Tensor:
        return self.head.bias.new_zeros(())


def build_model(name: str, input_size: int, hidden: int, outputs: int, seed: int, *, p: float = 0.5,
                tau_a: float = 5.0, tau_w: float = 5.0, reduction: str = "mean", readout: str = "last") -> nn.Module:
    """The network `name` (one of `MODELS`, module docstring) before training, drawn from
    torch.Generator().manual_seed(seed) alone. p, tau_a, tau_w and reduction are the rplrnn's
    (checked for every model, used by rplrnn only); readout 'every' needs a PLRNN model.
    Every model has forward(inputs (N, T, K)), states(inputs) and regularizer()."""
    check_choice(name, "model", MODELS)
    p, tau_a, tau_w = check_number(p, "p", 0.0, 1.0), check_number(tau_a, "tau_a"), check_number(tau_w, "tau_w")
    check_int(seed, "seed", 0)
    check_choice(reduction, "reduction", REDUCTIONS)
    check_choice(readout, "readout", READOUTS)
    input_size, hidden, outputs = (check_int(v, w) for v, w in ((input_size, "input_size"), (hidden, "hidden"),
                                                              (outputs, "outputs")))
    generator = torch.Generator().manual_seed(int(seed))
    if name in PLRNN_MODELS:
        options = {"rplrnn": {"p": p, "tau_a": tau_a, "tau_w": tau_w}, "plrnn": {},
                   "iplrnn": {"attractors": hidden}}[name]
        return PLRNN(input_size, hidden, outputs, generator=generator, reduction=reduction, readout=readout, **options)
    if readout != "last":
        raise NumericsError(f"readout {readout!r} needs a PLRNN model; {name} reads h_T only")
    with torch.random.fork_rng(devices=[]):  # torch's constructors draw from the global generator
        model = TorchRNN("lstm" if name == "lstm" else "relu", input_size, hidden, outputs)
    torch_default_law((*model.rnn.parameters(), model.head.weight, model.head.bias), hidden, generator)
    if name in BASELINE_INITS:
        initialize(model.rnn, BASELINE_INITS[name], generator=generator, input_init="keep")
    if name == "ornn":
        nn.utils.parametrizations.orthogonal(model.rnn, "weight_hh_l0")
    if name == "lstm":
        with torch.no_grad():
            hidden_size = model.rnn.hidden_size
            forget = slice(hidden_size, 2 * hidden_size)  # gate order i, f, g, o
            model.rnn.bias_ih_l0[forget] = 1.0
            model.rnn.bias_hh_l0[forget] = 0.0
    return model
