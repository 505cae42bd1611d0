"""Generative models of a multivariate time series x_1 … x_T (T × N, z-scored by the caller) for
reconstructing a dynamical system: the PLRNN and its LSTM/GRU baselines, run under sparse teacher
forcing and freely (`reconstruct.train_reconstruction` trains them).

    z_t = A ⊙ z_{t−1} + W relu(z_{t−1}) + h,     x̂_t = B z_t

The toolkit's method is BPTT with sparse teacher forcing (Mikhaeil, Monfared & Durstewitz 2022);
the rPLRNN paper fitted its dynamical-system models by EM instead (a Gaussian state-space model,
readout B φ(z_t)). No external input: the model's C is zero and frozen.

Observation model: linear in z_t, as the public ML code's readout, with B = [I_N, 0] fixed
(`observation='identity'`, the default): the first N units are the observed variables themselves,
so replacing them by the data (teacher forcing) puts the model exactly where the data are, and
there is no separate readout to co-adapt. `observation='learned'` makes B a parameter, started at
[I_N, 0]; forcing still replaces the first N units, which is consistent only while B stays near
that start — it is there for comparison.

Teacher forcing (`forced_states`): a window x_0 … x_{L−1} starts at z_0 = [x_0, z̄] — the data on
the N observed units and a learned vector z̄ on the M − N latent ones (the PLRNN's z0 beyond N;
its first N entries are unused and stay 0). Then for k = 1 … L−1

    z̃_k = A ⊙ z_{k−1} + W relu(z_{k−1}) + h                       (the model's prediction)
    z_k  = [x_k, z̃_k[N:]]  when k ≡ 0 (mod τ_tf),  else z̃_k         (forcing)

so the data replace the observed units every τ_tf steps and the gradient does not flow back
through the replaced values (they are constants); the latent units are never replaced. M ≥ N.
Loss: the MSE of B z̃_k against x_k over every step k = 1 … L−1 and every variable — forced steps
included, scored with the prediction made before the replacement, so every step measures a
1- to τ_tf-step-ahead prediction and none is trivially zero — plus the regularizer.

Regularizer (rplrnn): `PLRNN.regularizer` on M_reg = ⌊M·p⌋ units with τ_A = τ_W = τ (means), on
the LAST M_reg units (`regularized_at='last'`), which also start as line attractors: a forced,
observed unit pulled toward z_i,t = z_i,t−1 could not follow the data, so M_reg ≤ M − N is
required. rplrnn with τ = 0 or p = 0 is exactly plrnn (the same initial draw too).

Baselines (lstm, gru): nn.LSTMCell / nn.GRUCell of width `hidden` with a linear head to N, and
the same forcing read for a network whose state is not the observation: the input at step k is
the previous observation — the data x_{k−1} when k − 1 ≡ 0 (mod τ_tf) (k = 1 included), else the
network's own x̂_{k−1} — so both kinds see the data exactly at the same steps and run on their
own predictions in between. Their initial state is learned (h̄, and c̄ for the LSTM), as the
PLRNN's z̄; torch's default law U(±1/√hidden) for every weight, drawn from the seeded generator,
and the LSTM's forget gate bias 1 in total, as in `model.build_model`. Free-running they feed
back their own output.

    build_reconstruction_model(name, observed, hidden, seed, *, p, tau, observation)
    forced_states(model, x_window, tau_tf) → ForcedRun(states, predicted)
    generate(model, start, steps) → {"states", "observations"}
    jacobians(model, states) → J_t = diag(A) + W diag(1[z_t > 0]) for each z_t
    model_from_result(result) → the trained model of a `reconstruct.train_reconstruction` result
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..errors import NumericsError, check_choice, check_int, check_number
from ..train.runtime import check_seed
from .model import PLRNN, model_generator, regularized_units, torch_default_law
from .names import PLRNN_MODELS, RECONSTRUCTION_MODELS

OBSERVATIONS = ("identity", "learned")


class PLRNNGenerator(nn.Module):
    """The PLRNN as a generative model of N observed variables (module docstring): `plrnn` holds
    A, W, h, z0 (z̄ = z0[N:]) and B; C is zero and frozen; B = [I_N, 0] is frozen unless
    observation='learned'."""

    def __init__(self, observed: int, hidden: int, *, seed: int | None = None,
                 generator: torch.Generator | None = None, p: float = 0.0, tau: float = 0.0,
                 observation: str = "identity"):
        super().__init__()
        N, M = check_int(observed, "observed dimension N"), check_int(hidden, "hidden")
        if M < N:
            raise NumericsError(f"hidden M = {M} is smaller than the observed dimension N = {N}; "
                                "teacher forcing replaces the first N units, so M ≥ N is needed")
        check_choice(observation, "observation", OBSERVATIONS)
        p, tau = check_number(p, "p", 0.0, 1.0), check_number(tau, "tau")
        if tau == 0 or regularized_units(M, p) == 0:
            p, tau = 0.0, 0.0  # no penalty: the plain PLRNN, no attractor units either
        if regularized_units(M, p) > M - N:
            raise NumericsError(f"p = {p:g} regularizes ⌊M·p⌋ = {regularized_units(M, p)} units, more than the "
                                f"M − N = {M - N} latent ones; the {N} forced units must stay free")
        self.observation = observation
        self.plrnn = PLRNN(1, M, N, generator=model_generator(seed, generator), p=p, tau_a=tau, tau_w=tau,
                           readout="every", regularized_at="last")
        with torch.no_grad():
            self.plrnn.C.zero_()
            self.plrnn.z0[:N] = 0.0
            self.plrnn.B.copy_(torch.eye(N, M))
        self.plrnn.C.requires_grad_(False)
        self.plrnn.B.requires_grad_(observation == "learned")

    @property
    def observed(self) -> int:
        return self.plrnn.B.shape[0]

    @property
    def hidden(self) -> int:
        return self.plrnn.hidden

    def initial_state(self, x0: torch.Tensor) -> torch.Tensor:
        """z_0 = [x_0, z̄] for x0 (batch, N): (batch, M)."""
        N = self.observed
        return torch.cat([x0, self.plrnn.z0[N:].expand(len(x0), self.hidden - N)], 1)

    def step(self, z: torch.Tensor, W_t: torch.Tensor | None = None) -> torch.Tensor:
        """A ⊙ z + W relu(z) + h for z (batch, M); W_t: the masked W transposed, when already at hand."""
        if W_t is None:
            W_t = self.plrnn.recurrent_matrix().t()
        return torch.addcmul(torch.addmm(self.plrnn.h, z.clamp_min(0), W_t), z, self.plrnn.A)

    def observe(self, z: torch.Tensor) -> torch.Tensor:
        """x̂ = B z for z (…, M): (…, N); with the identity observation the first N units themselves."""
        if self.observation == "identity":
            return z[..., :self.observed]
        return z @ self.plrnn.B.t()

    def regularizer(self) -> torch.Tensor:
        return self.plrnn.regularizer()

    def parameters_dict(self) -> dict:
        """{"A", "W" (masked), "h", "z0", "B"} as float64 lists."""
        values = {k: v for k, v in self.plrnn.dynamics().items() if k != "C"}
        values["B"] = self.plrnn.B.detach().to("cpu", torch.float64)
        return {k: v.tolist() for k, v in values.items()}


class GatedGenerator(nn.Module):
    """An LSTM or GRU cell with a linear head to N, driven by the previous observation (module docstring)."""

    def __init__(self, cell: str, observed: int, hidden: int, *, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        N, M = check_int(observed, "observed dimension N"), check_int(hidden, "hidden")
        g = model_generator(seed, generator)
        with torch.random.fork_rng(devices=[]):  # torch's constructors draw from the global generator
            self.cell = nn.LSTMCell(N, M) if cell == "lstm" else nn.GRUCell(N, M)
            self.head = nn.Linear(M, N)
        self.kind = cell
        torch_default_law(self.parameters(), M, g)
        with torch.no_grad():
            if cell == "lstm":  # gate order i, f, g, o: forget bias 1 in total
                self.cell.bias_ih[M:2 * M] = 1.0
                self.cell.bias_hh[M:2 * M] = 0.0
        self.h0 = nn.Parameter(torch.zeros(M))
        self.c0 = nn.Parameter(torch.zeros(M)) if cell == "lstm" else None

    @property
    def observed(self) -> int:
        return self.head.out_features

    @property
    def hidden(self) -> int:
        return self.head.in_features

    def initial_state(self, batch: int):
        h = self.h0.expand(batch, -1)
        return (h, self.c0.expand(batch, -1)) if self.kind == "lstm" else h

    def step(self, inputs: torch.Tensor, state):
        """The next state and its output x̂."""
        state = self.cell(inputs, state)
        return state, self.head(state[0] if self.kind == "lstm" else state)

    @staticmethod
    def hidden_state(state) -> torch.Tensor:
        return state[0] if isinstance(state, tuple) else state

    def regularizer(self) -> torch.Tensor:
        return self.h0.new_zeros(())


def build_reconstruction_model(name: str, observed: int, hidden: int, seed: int, *, p: float = 0.5,
                               tau: float = 5.0, observation: str = "identity") -> nn.Module:
    """The untrained model `name` (one of `MODELS`) for N = `observed` variables, drawn from
    torch.Generator().manual_seed(seed) alone. p, tau: rplrnn's regularizer (checked, unused by the
    others); observation: the PLRNNs' ('identity' or 'learned')."""
    check_choice(name, "model", RECONSTRUCTION_MODELS)
    seed = check_seed(seed)
    p, tau = check_number(p, "p", 0.0, 1.0), check_number(tau, "tau")
    check_choice(observation, "observation", OBSERVATIONS)
    generator = torch.Generator().manual_seed(seed)
    if name in PLRNN_MODELS:
        p, tau = (p, tau) if name == "rplrnn" else (0.0, 0.0)
        return PLRNNGenerator(observed, hidden, generator=generator, p=p, tau=tau, observation=observation)
    return GatedGenerator(name, observed, hidden, generator=generator)


class ForcedRun(NamedTuple):
    """states: z_0 … z_{L−1} as propagated (batch, L, M) — the data on the first N units at every
    forced step; predicted: z̃_1 … z̃_{L−1} (batch, L−1, M), the model's own values before any
    replacement (the loss scores B z̃_k)."""
    states: torch.Tensor
    predicted: torch.Tensor


def _windows(x: torch.Tensor, observed: int) -> tuple[torch.Tensor, bool]:
    if x.dim() not in (2, 3) or x.shape[-1] != observed or x.shape[-2] < 1:
        raise NumericsError(f"a window must be (L, {observed}) or (batch, L, {observed}), got {tuple(x.shape)}")
    return (x[None], True) if x.dim() == 2 else (x, False)


def check_forcing(tau_tf) -> int:
    return check_int(tau_tf, "tau_tf (teacher-forcing interval)")


def forced_states(model: PLRNNGenerator, x_window: torch.Tensor, tau_tf: int) -> ForcedRun:
    """The PLRNN run along a data window x_0 … x_{L−1} ((L, N) or (batch, L, N)) with its observed
    units replaced by the data every τ_tf steps (module docstring); unbatched input gives unbatched
    output."""
    if not isinstance(model, PLRNNGenerator):
        raise NumericsError("forced_states needs a PLRNN model; the LSTM and GRU are forced through their input")
    tau_tf = check_forcing(tau_tf)
    x, single = _windows(x_window, model.observed)
    N, L = model.observed, x.shape[1]
    W_t = model.plrnn.recurrent_matrix().t()
    z = model.initial_state(x[:, 0])
    states, predicted = [z], []
    for k in range(1, L):
        z = model.step(z, W_t)
        predicted.append(z)
        if k % tau_tf == 0:
            z = torch.cat([x[:, k], z[:, N:]], 1)  # the data replace the observed units: a cut for the gradient
        states.append(z)
    states = torch.stack(states, 1)
    predicted = torch.stack(predicted, 1) if predicted else states[:, :0]
    return ForcedRun(states[0], predicted[0]) if single else ForcedRun(states, predicted)


def forced_observations(model: nn.Module, x_window: torch.Tensor, tau_tf: int) -> torch.Tensor:
    """x̂_1 … x̂_{L−1} (batch, L−1, N): each model's predictions along the window under teacher
    forcing every τ_tf steps, the quantity the training loss compares with x_1 … x_{L−1}."""
    tau_tf = check_forcing(tau_tf)
    x, _ = _windows(x_window, model.observed)
    if isinstance(model, PLRNNGenerator):
        return model.observe(forced_states(model, x, tau_tf).predicted)
    state, inputs, outputs = model.initial_state(len(x)), x[:, 0], []
    for k in range(1, x.shape[1]):
        state, out = model.step(inputs, state)
        outputs.append(out)
        inputs = x[:, k] if k % tau_tf == 0 else out
    return torch.stack(outputs, 1)


def forced_loss(model: nn.Module, windows: torch.Tensor, tau_tf: int) -> torch.Tensor:
    """The data term of the training loss: MSE of the forced predictions against x_1 … x_{L−1}."""
    x, _ = _windows(windows, model.observed)
    return nn.functional.mse_loss(forced_observations(model, x, tau_tf), x[:, 1:])


def generate(model: nn.Module, start, steps: int) -> dict[str, torch.Tensor]:
    """Free-running trajectories: {"states", "observations"} at t = 0 … steps.

    PLRNN: start is a state z_0 (M,) or an observation x_0 (N,) (then z_0 = [x_0, z̄]); the
    observations are B z_t. LSTM/GRU: start is x_0 (N,), the state starts at the learned h̄ (c̄),
    and each output is fed back as the next input; states are the hidden states h_t and the
    observations x_0 followed by the outputs. A batch of starts (batch, ·) gives (batch, steps + 1, ·);
    a single start (steps + 1, ·). No gradients."""
    steps = check_int(steps, "steps", 0)
    reference = next(model.parameters())
    start = torch.as_tensor(start, dtype=reference.dtype, device=reference.device)
    single = start.dim() == 1
    start = start[None] if single else start
    N = model.observed
    if start.dim() != 2 or start.shape[1] not in (N, model.hidden if isinstance(model, PLRNNGenerator) else N):
        raise NumericsError(f"start must be an observation ({N},) or a state ({model.hidden},) (or a batch of "
                            f"either), got {tuple(start.shape)}")
    if not torch.isfinite(start).all():
        raise NumericsError("start must be finite")
    with torch.no_grad():
        if isinstance(model, PLRNNGenerator):
            z = start if start.shape[1] == model.hidden else model.initial_state(start)
            W_t = model.plrnn.recurrent_matrix().t()
            states = [z]
            for _ in range(steps):
                z = model.step(z, W_t)
                states.append(z)
            states = torch.stack(states, 1)
            observations = model.observe(states)
        else:
            state, inputs = model.initial_state(len(start)), start
            states, observations = [model.hidden_state(state)], [start]
            for _ in range(steps):
                state, inputs = model.step(inputs, state)
                states.append(model.hidden_state(state))
                observations.append(inputs)
            states, observations = torch.stack(states, 1), torch.stack(observations, 1)
    if single:
        return {"states": states[0], "observations": observations[0]}
    return {"states": states, "observations": observations}


def jacobians(model: PLRNNGenerator, states: torch.Tensor) -> torch.Tensor:
    """J_t = ∂z_{t+1}/∂z_t = diag(A) + W diag(1[z_t > 0]) for each state of `states` (T, M): (T, M, M)
    (relu′(0) = 0, as torch's relu); their products along a generated trajectory give Lyapunov exponents."""
    if not isinstance(model, PLRNNGenerator):
        raise NumericsError("jacobians needs a PLRNN model")
    states = torch.as_tensor(states)
    if states.dim() != 2 or states.shape[1] != model.hidden:
        raise NumericsError(f"states must be (T, {model.hidden}), got {tuple(states.shape)}")
    with torch.no_grad():
        A, W = model.plrnn.A, model.plrnn.recurrent_matrix()
        states = states.to(A)
        return torch.diag(A) + W * (states > 0).to(A.dtype)[:, None, :]


def model_from_result(result: dict) -> nn.Module:
    """The trained model of a `train_reconstruction` result, rebuilt from its config and parameters
    (on the CPU, in torch's default dtype)."""
    config, parameters = result["config"], result["parameters"]
    name, N, M = config["model"], config["observed"], config["hidden"]
    reg = config["regularizer"] or {"p": 0.0, "tau_a": 0.0}
    net = build_reconstruction_model(name, N, M, 0, p=reg["p"], tau=reg["tau_a"],
                                     observation=config["observation"] or "identity")
    dtype = torch.get_default_dtype()
    with torch.no_grad():
        if isinstance(net, PLRNNGenerator):
            for key in ("A", "W", "h", "z0", "B"):
                getattr(net.plrnn, key).copy_(torch.tensor(parameters[key], dtype=dtype))
        else:
            net.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in parameters.items()})
    return net


