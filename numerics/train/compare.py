"""A linear RNN trained beside its infinite-width equivalent, from the same initial function.

Three trainers see the same problem, the same step size and the same initial function:
  rnn           a `LinearRNN`, trained by the linear RNN's trainer (`train.members`);
  convolution   its `ScaledConvolution` (the impulse response under the lag kernel), the same loop;
  closed_form   `kernel_gradient_descent`, the exact gradient-descent trajectory of the convolution.

The lag kernel is diag(α_j) for Gaussian W and the full Θ_jk for the other initializer families
(`Spec.init`), whose wide limit couples the lags.

`compare_training(problem, config)` is the one entry point, for any `Problem` (the sunspot
windows, a user's data) or a `WhiteNoise` description, whose problem is drawn from the run's data
seed. `compare_training_many` trains runs of one shape as batched ensembles (`LinearRNN.stack`, a
stacked `ScaledConvolution`, `stack_problems`), and each member's numbers equal its own
`compare_training` to rounding.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Union

import numpy as np
import torch

from derivations.spec import DEFAULT, DEFAULT_SIGMAS, Spec

from ..data.problem import Problem, WhiteNoise, split_seed, stack_problems
from ..device import resolve_device, resolve_dtype
from ..errors import NumericsError, TrainingDiverged
from ..kernels.empirical import gram_diagonal, largest_cross_term, structured_tangent_gram
from ..kernels.theory import kernel_gradient_descent, stable_lr, theory_lag_kernel, theory_lag_weights, theory_step
from ..models.convolution import ScaledConvolution
from ..models.linear import LinearRNN
from .members import OPTIMIZERS, member_curves, train_members

KERNELS = ("theory", "empirical")
LAZY_SCALES = (1e-6, 1e6)  # beyond these A (or 1/A²) overflows the loss or its gradient: a typo, not a request
LAZY_UNCENTERED = 1e3  # uncentered, A multiplies the random initial function: test errors of order A²
MIN_PROGRESS = 1e-8  # lr·steps below this fraction of one stable step (or of 1, for Adam) moves nothing
# Ensemble size limits. On the CPU a stack pays while the members' matrices stay in cache together
# (measured: 32 networks of width 64 run ~7× faster as a stack, width 1024 ~1.5× slower) and only
# for small networks (one torch thread, 2-core x86_64: 16 runs at width 128 take 0.95 s stacked
# against 1.7 s apart, 8 sunspot runs at width 256 take 2.7 s stacked against 1.9 s apart); on a
# GPU while they fit in a quarter of the free memory.
ENSEMBLE_CPU_BYTES = 2 ** 22
ENSEMBLE_CPU_NETWORK_BYTES = 2 ** 17  # one network's W; wider ones (width > 128 in float64) run apart
ENSEMBLE_GPU_FRACTION = 0.25


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How one network is built and trained beside its kernel.

    lr: a step size; 'auto', N/λ_max of the larger of the network's and the convolution's kernels;
    or 'theory', the automatic step of the infinite-width kernel alone (`theory_step`), which is the
    same at every width, so that sweeps over width share one clock.
    kernel: where the convolution's kernel comes from, 'theory' (the derived one) or 'empirical'
    (this network's tangent Gram at initialization). For Gaussian W it is the diagonal α_j (the
    generated code, or the Gram's diagonal); for other families of W the full lag kernel Θ_jk
    (`theory_lag_kernel`, or the Gram's lag × lag block averaged over output and input entries).
    The closed form is gradient descent's trajectory; with sgd or adam it is still the gd prediction.
    """

    width: int
    spec: Spec = DEFAULT
    sigma_w: float = 0.5
    sigma_f: float = DEFAULT_SIGMAS["F"]
    sigma_c: float = DEFAULT_SIGMAS["C"]
    sigma_d: float = DEFAULT_SIGMAS["D"]
    steps: int = 200
    optimizer: str = "gd"
    lr: float | str = "auto"
    center: bool = False
    lazy_scale: float = 1.0
    kernel: str = "theory"
    batch_size: int | None = None
    device: str = "cpu"
    dtype: str = "float64"
    seed: int = 0

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise NumericsError(f"unknown kernel {self.kernel!r} (choose {' or '.join(KERNELS)})")
        if self.optimizer not in OPTIMIZERS:
            raise NumericsError(f"unknown optimizer {self.optimizer!r} (choose {', '.join(OPTIMIZERS)})")
        if self.width < 1:
            raise NumericsError(f"the width must be positive, got {self.width}")
        if self.steps < 1:
            raise NumericsError(f"steps must be at least 1 (a comparison needs a training step), got {self.steps}")
        if not LAZY_SCALES[0] <= self.lazy_scale <= LAZY_SCALES[1]:
            raise NumericsError(f"lazy_scale must be from {LAZY_SCALES[0]:g} to {LAZY_SCALES[1]:g}, got {self.lazy_scale:g} "
                                "(it multiplies the output and divides the loss by its square)")
        if not self.center and self.lazy_scale > LAZY_UNCENTERED:
            raise NumericsError(f"lazy_scale {self.lazy_scale:g} without centering multiplies the random initial function "
                                f"by {self.lazy_scale:g}, so test errors grow like its square ({self.lazy_scale ** 2:.1e}); "
                                "center the run (--center) to train in the lazy regime")
        if not all(s >= 0 and math.isfinite(s) for s in self.sigmas.values()):
            raise NumericsError(f"every σ must be a finite number ≥ 0, got {self.sigmas}")
        if isinstance(self.lr, str) and self.lr not in ("auto", "theory"):
            raise NumericsError(f"lr must be a number, auto or theory, got {self.lr!r}")
        if not isinstance(self.lr, str) and not (self.lr > 0 and math.isfinite(self.lr)):
            raise NumericsError(f"lr must be positive and finite, got {self.lr}")

    @property
    def sigmas(self) -> dict:
        return {"W": self.sigma_w, "F": self.sigma_f, "C": self.sigma_c, "D": self.sigma_d}

    @classmethod
    def from_dict(cls, data: dict) -> "Comparison":
        """The fields of `data` that describe the run (a cell's config holds the problem's too)."""
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        if isinstance(fields.get("spec"), dict):
            fields["spec"] = Spec.from_dict(fields["spec"])
        return cls(**fields)

    def shape(self) -> tuple:
        """What runs must share to be trained as one ensemble (σ's, seeds and steps sizes may differ)."""
        return (self.width, self.steps, self.optimizer, self.batch_size, self.spec, self.center, self.lazy_scale,
                self.kernel, resolve_device(self.device), resolve_dtype(self.dtype))


Source = Union[Problem, WhiteNoise]


@dataclasses.dataclass
class _Member:
    """One run set up: everything before the two training runs."""

    problem: Problem
    rnn: LinearRNN
    rnn_gram: torch.Tensor
    empirical: torch.Tensor
    alpha: torch.Tensor  # α_j (lags,), or Θ (lags, lags) for non-Gaussian W
    initial: torch.Tensor
    lr: float
    start: torch.Tensor
    closed: torch.Tensor
    batch_seed: int


def lag_gram(gram: torch.Tensor) -> torch.Tensor:
    """The lag × lag block of a tangent Gram, G[j, a, c, k, a, c] averaged over the (a, c) entries:
    the finite-width estimate of Θ_jk (its diagonal is `gram_diagonal`)."""
    return torch.einsum("jackac->jk", gram) / gram.shape[1:3].numel()


def _problem(source: Source, config: Comparison) -> Problem:
    if isinstance(source, WhiteNoise):
        return source.problem(config.seed, config.dtype, config.device)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    return Problem(**{f.name: None if getattr(source, f.name) is None else getattr(source, f.name).to(device, dtype)
                      for f in dataclasses.fields(Problem)})


def _prepare(source: Source, config: Comparison) -> _Member:
    problem = _problem(source, config)
    lags = problem.teacher.shape[-3]
    seeds = split_seed(config.seed)
    rnn = LinearRNN(config.spec, config.width, sigmas=config.sigmas, dtype=problem.X.dtype, device=problem.X.device,
                    seed=seeds.model)
    rnn_gram = structured_tangent_gram(rnn, lags)
    empirical = gram_diagonal(rnn_gram)
    if config.spec.family == "gaussian":
        theory = torch.as_tensor(theory_lag_weights(config.spec, lags, config.sigmas)).to(empirical)
        alpha = empirical if config.kernel == "empirical" else theory
    else:  # the wide limit couples the lags: the full lag kernel
        theory = torch.as_tensor(theory_lag_kernel(config.spec, lags, config.sigmas)).to(empirical)
        alpha = lag_gram(rnn_gram) if config.kernel == "empirical" else theory
    initial = rnn.markov_parameters(lags).detach()
    if config.lr == "auto":
        lr = stable_lr(problem.X, [rnn_gram, ScaledConvolution(alpha, initial).tangent_gram(lags)], config.optimizer)
    elif config.lr == "theory":
        lr = theory_step(problem.X, theory)
    else:
        lr = float(config.lr)
        scale = 1.0 if config.optimizer == "adam" else theory_step(problem.X, theory)  # Adam steps by lr itself
        if lr * config.steps < MIN_PROGRESS * scale:
            raise NumericsError(f"lr {lr:g} moves the function by at most {lr * config.steps / scale:.1e} of one stable step "
                                f"in {config.steps} steps (the kernel's stable step here is {scale:.3g}): nothing would "
                                "train; use --lr auto or a larger step")
    start = torch.zeros_like(initial) if config.center else config.lazy_scale * initial
    closed = kernel_gradient_descent(problem.X, problem.y, alpha, start, lr, config.steps)
    return _Member(problem, rnn, rnn_gram, empirical, alpha, initial, lr, start, closed, seeds.batch)


def _ensemble(runs: list[tuple[Source, Comparison]], progress) -> list[dict | TrainingDiverged]:
    """Runs of one shape as one ensemble: the convolutions train as one stack, then the RNNs whose
    convolution did not diverge (the order of a single run, which stops at the first divergence)."""
    members = [_prepare(source, config) for source, config in runs]
    shared = runs[0][1]
    options = dict(steps=shared.steps, optimizer=shared.optimizer, center=shared.center,
                   lazy_scale=shared.lazy_scale, batch_size=shared.batch_size, progress=progress)
    closed = member_curves(stack_problems([m.problem for m in members]), torch.stack([m.closed for m in members], 1))
    trained = [{"closed_form": {"responses": m.closed, **c}} for m, c in zip(members, closed)]
    outcomes: list = [None] * len(members)
    alive = list(range(len(members)))
    for name in ("convolution", "rnn"):
        if not alive:
            break
        group = [members[k] for k in alive]
        if len(group) == 1:  # a lone run takes the single-network path, faster than a stack of one
            model = ScaledConvolution(group[0].alpha, group[0].initial) if name == "convolution" else group[0].rnn
        elif name == "convolution":
            model = ScaledConvolution(torch.stack([m.alpha for m in group]), torch.stack([m.initial for m in group]))
        else:
            model = LinearRNN.stack([m.rnn for m in group])
        results = train_members(model, stack_problems([m.problem for m in group]), lrs=[m.lr for m in group],
                                seeds=[m.batch_seed for m in group], name=name, **options)
        for k, run in zip(alive, results):
            if isinstance(run, TrainingDiverged):
                run.curves = {**trained[k], name: run.curves}
                outcomes[k] = run
            else:
                trained[k][name] = run
        alive = [k for k in alive if outcomes[k] is None]
    for k in alive:
        outcomes[k] = _result(members[k], trained[k], shared.steps)
    return outcomes


def _result(member: _Member, runs: dict, steps: int) -> dict:
    """The JSON-ready record of one comparison from the three finished runs."""
    L_rnn, L_conv = runs["rnn"].pop("responses"), runs["convolution"].pop("responses")
    closed = runs["closed_form"].pop("responses")
    norms = lambda L: L.flatten(1).norm(dim=1)  # noqa: E731 - per-step Frobenius norm
    deviation = (norms(L_rnn - L_conv) / norms(L_conv - L_conv[0])).tolist()
    deviation[0] = math.nan  # 0/0: both start from the same function (up to the rounding of two computations of it)
    flat = lambda L: L.flatten().tolist()  # noqa: E731
    names = ("rnn", "convolution", "closed_form")
    return {
        "lr": float(member.lr),
        "step": list(range(steps + 1)),
        **{name: runs[name] for name in ("closed_form", "convolution", "rnn")},
        "deviation": deviation,
        "lag_weights": flat(member.alpha if member.alpha.dim() == 1 else member.alpha.diagonal()),
        "empirical_lag_weights": flat(member.empirical),
        **({} if member.alpha.dim() == 1 else {"lag_kernel": member.alpha.tolist()}),
        "largest_cross_term": largest_cross_term(member.rnn_gram),
        "response": {"teacher": flat(member.problem.teacher), "initial": flat(member.start), "rnn": flat(L_rnn[-1]),
                     "convolution": flat(L_conv[-1]), "closed_form": flat(closed[-1])},
        "final": {"deviation": deviation[-1], "test_error_rnn": runs["rnn"]["test_error"][-1],
                  "test_error_conv": runs["convolution"]["test_error"][-1],
                  "test_error_closed_form": runs["closed_form"]["test_error"][-1],
                  **{f"{kind}_loss_{name}": runs[name][f"{kind}_loss"][-1] for kind in ("test", "train")
                     for name in names}},
    }


# Lag weights that grow by more than this from the first weighted lag to the largest (σ_W > 1 over
# long sequences) leave the first lags frozen at any stable step, and the initial function is
# astronomically large: such a run is refused. Above WARN_GROWTH it is run with a warning.
REFUSE_GROWTH = 1e12
WARN_GROWTH = 1e6


def meaningful(source: Source, config: Comparison) -> list[str]:
    """Refuse (NumericsError) a run whose numbers could not mean anything; return warnings for doubtful ones."""
    lags = source.length if isinstance(source, WhiteNoise) else source.teacher.shape[-3]
    alpha = theory_lag_weights(config.spec, lags, config.sigmas)
    weighted = np.flatnonzero(alpha > 0)
    if weighted.size == 0:
        return []
    growth = float(alpha[weighted].max() / alpha[weighted[0]])
    said = (f"σ_W = {config.sigma_w:g} makes the lag weights grow {growth:.1e}-fold from lag {weighted[0]} to their "
            f"largest over {lags} lags (like σ_W^(2j) for Gaussian W)")
    if not np.isfinite(growth) or growth > REFUSE_GROWTH:
        raise NumericsError(f"{said}: a step stable for the long lags freezes the short ones and the initial "
                            "function is astronomically large, so the run would mean nothing; use σ_W near or "
                            "below 1, or a shorter --length")
    return [f"{said}: the short lags barely move in {config.steps} steps"] if growth > WARN_GROWTH else []


def ensemble_size(width: int, dtype: torch.dtype, device: torch.device) -> int:
    """How many networks of this width `compare_training_many` trains as one stack."""
    per_network = width * width * torch.empty(0, dtype=dtype).element_size()
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(1, int(ENSEMBLE_GPU_FRACTION * free) // (8 * per_network))  # W, its gradient, Adam, powers
    return max(1, ENSEMBLE_CPU_BYTES // per_network) if per_network <= ENSEMBLE_CPU_NETWORK_BYTES else 1


def _shape(source: Source, config: Comparison) -> tuple:
    data = source.shape() if isinstance(source, WhiteNoise) else tuple(
        None if getattr(source, f.name) is None else tuple(getattr(source, f.name).shape) for f in dataclasses.fields(Problem))
    return config.shape() + data


def compare_training_many(runs: list[tuple[Source, Comparison]],
                          progress: Callable[[str, int, int], None] | None = None) -> list[dict | TrainingDiverged]:
    """`compare_training` for many (problem, config) runs; per run, its result or its `TrainingDiverged`.

    Runs of one shape (`Comparison.shape` and the problem's shape) train as batched ensembles of up
    to `ensemble_size` networks; each keeps its own problem, σ's, seeds, step size and minibatches.
    A diverging member stops and the others finish.
    """
    groups: dict[tuple, list[int]] = {}
    for index, (source, config) in enumerate(runs):
        groups.setdefault(_shape(source, config), []).append(index)
    outcomes: list = [None] * len(runs)
    for indices in groups.values():
        config = runs[indices[0]][1]
        size = ensemble_size(config.width, resolve_dtype(config.dtype), resolve_device(config.device))
        for start in range(0, len(indices), size):
            chunk = indices[start:start + size]
            for index, outcome in zip(chunk, _ensemble([runs[i] for i in chunk], progress)):
                outcomes[index] = outcome
    return outcomes


def compare_training(source: Source, config: Comparison,
                     progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train an RNN, its scaled convolution and the closed form on one problem from one initial function.

    Returns JSON-ready lists: per-trainer curves (rnn, convolution, closed_form: train_loss,
    test_loss, test_error), 'deviation' ‖L_rnn − L_conv‖ / ‖L_conv − L_conv(0)‖ per step (NaN at
    step 0, where it is 0/0), the lag weights, the final responses, and 'final' with the deviation,
    the three test excess errors and the three final train and test losses.
    Raises `TrainingDiverged` (its `curves` hold every run up to there) when a trainer diverges.
    """
    [outcome] = compare_training_many([(source, config)], progress)
    if isinstance(outcome, TrainingDiverged):
        raise outcome
    return outcome
