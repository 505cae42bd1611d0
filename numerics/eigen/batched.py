"""Several runs of one task and cell trained as one torch module.

    train_batched(task, cell, [(init, seed), …], *, hidden=32, …) → one result per run

K runs with the same task, cell and settings (different initializers and seeds) are packed into
one `nn.RNN` / `nn.LSTM` / `nn.GRU` of hidden size K·H whose weight_ih and weight_hh are
block-diagonal within every gate block: run k owns rows and columns k·H … (k+1)·H − 1 of each
gate and input channels k·C … (k+1)·C − 1. One call of torch's own kernel (cuDNN on a GPU) then
advances all K networks; each still reads its own minibatch (its seeded stream, packed side by side
along the channels), has its own readout, loss, gradient-norm clip and Adam state, and is scored
by unpacking it into the network `train_classifier` would train. Gradient hooks zero the
off-diagonal blocks, and Adam with a zero gradient and zero moments makes a zero update, so those
blocks stay exactly 0: the K runs never interact. The numbers equal K calls of `train_classifier`
up to the rounding of the larger matrix products (summing exact zeros in another order), which can
grow over a long training run; a batched run therefore records `"batched": K` in its config.

Where it pays: a K·H block-diagonal product costs K times the flops of K separate ones, so the
gain is in calls, not arithmetic — large on a GPU (one cuDNN call instead of K), on the CPU only
for small hidden sizes (`rnnmemory bench` measures the ratio).

A run whose loss (or gradient norm) is not finite stops there, as alone: its result is the
`diverged_result` of its `TrainingDiverged`, its block is zeroed and frozen (no NaN can leak
through the zero blocks into the others), and the remaining runs go on.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import NumericsError, TrainingDiverged
from ..train.runtime import check_seed, derived_seed, diverged_result, task_loss, torch_threads
from .model import SequenceClassifier, build_model
from .train import Run, Tracker


class Packed(nn.Module):
    """K SequenceClassifiers of one cell, input size C, hidden H and L layers as one module."""

    def __init__(self, models: list[SequenceClassifier]):
        super().__init__()
        first = models[0].rnn
        self.k, self.h, self.c = len(models), first.hidden_size, first.input_size
        self.gates = first.weight_hh_l0.shape[0] // self.h
        kind = type(first)
        extra = {"nonlinearity": first.nonlinearity} if isinstance(first, nn.RNN) else {}
        self.rnn = kind(self.k * self.c, self.k * self.h, first.num_layers, batch_first=True, **extra)
        outputs = models[0].readout.out_features
        self.readout_weight = nn.Parameter(torch.stack([m.readout.weight.detach() for m in models]))  # (K, O, H)
        self.readout_bias = nn.Parameter(torch.stack([m.readout.bias.detach() for m in models]))  # (K, O)
        self.outputs = outputs
        with torch.no_grad():
            for name, big in self.rnn.named_parameters():
                big.zero_()
                for k, model in enumerate(models):
                    self.block(big, name, k).copy_(self._small_view(getattr(model.rnn, name), name))
        for name, big in self.rnn.named_parameters():
            if name.startswith("weight"):
                mask = self.block(torch.zeros_like(big), name, None)
                # masked_fill, not a product: an overflowed off-diagonal entry (inf · 0 = NaN) must not survive
                big.register_hook(lambda grad, mask=mask: grad.masked_fill(mask == 0, 0))

    def _columns(self, name: str) -> int:
        return self.c if name.startswith("weight_ih_l0") else self.h

    def _small_view(self, small: torch.Tensor, name: str) -> torch.Tensor:
        return small.view(self.gates, self.h, -1) if name.startswith("weight") else small.view(self.gates, self.h)

    def block(self, big: torch.Tensor, name: str, k: int | None) -> torch.Tensor:
        """Run k's entries of a packed parameter as a (gates, H[, columns]) view; k=None: a view of
        `big` with ones written on every run's diagonal block (the gradient mask)."""
        if name.startswith("bias"):
            return big.view(self.gates, self.k, self.h)[:, k]
        view = big.view(self.gates, self.k, self.h, self.k, self._columns(name))
        if k is None:
            for j in range(self.k):
                view[:, j, :, j, :] = 1
            return big
        return view[:, k, :, k, :]

    def per_run(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """(K,) squared norm of each run's share of `tensors` (name → a packed tensor, e.g. the gradients)."""
        total = torch.zeros(self.k, dtype=torch.float64, device=self.readout_bias.device)
        for name, value in tensors.items():
            if name.startswith("readout"):
                total += value.double().pow(2).flatten(1).sum(1)
            elif name.startswith("bias"):
                total += value.view(self.gates, self.k, self.h).double().pow(2).sum((0, 2))
            else:
                view = value.view(self.gates, self.k, self.h, self.k, self._columns(name))
                total += torch.diagonal(view, dim1=1, dim2=3).double().pow(2).sum((0, 1, 2))
        return total

    def scale(self, tensors: dict[str, torch.Tensor], factors: torch.Tensor) -> None:
        """Multiply each run's share of `tensors` in place by factors[k] (rows of run k)."""
        f = factors.to(self.readout_bias.dtype)
        for name, value in tensors.items():
            if name.startswith("readout"):
                value.mul_(f.view(-1, *[1] * (value.dim() - 1)))
            elif name.startswith("bias"):
                value.view(self.gates, self.k, self.h).mul_(f.view(1, -1, 1))
            else:
                value.view(self.gates, self.k, self.h, self.k, self._columns(name)).mul_(f.view(1, -1, 1, 1, 1))

    def named_tensors(self) -> dict[str, nn.Parameter]:
        return {**dict(self.rnn.named_parameters()), "readout_weight": self.readout_weight,
                "readout_bias": self.readout_bias}

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """inputs (N, T, K·C), lengths (K, N) → outputs (N, K, O), each run read at its own last step."""
        states, _ = self.rnn(inputs)
        n, t, _ = states.shape
        states = states.view(n, t, self.k, self.h)
        index = (lengths.T - 1).clamp(min=0).view(n, 1, self.k, 1).expand(n, 1, self.k, self.h)
        last = states.gather(1, index).squeeze(1)  # (N, K, H)
        last = torch.where((lengths.T > 0).unsqueeze(-1), last, torch.zeros_like(last))
        return torch.einsum("nkh,koh->nko", last, self.readout_weight) + self.readout_bias

    @torch.no_grad()
    def unpack(self, k: int, model: SequenceClassifier) -> SequenceClassifier:
        """Copy run k's parameters into `model` (its own network, as train_classifier holds it)."""
        for name, small in model.rnn.named_parameters():
            small.copy_(self.block(getattr(self.rnn, name), name, k).reshape(small.shape))
        model.readout.weight.copy_(self.readout_weight[k])
        model.readout.bias.copy_(self.readout_bias[k])
        return model

    @torch.no_grad()
    def freeze(self, k: int, optimizer: torch.optim.Optimizer) -> None:
        """Zero run k's parameters and its optimizer moments: it stays 0 and never touches the others."""
        zero = torch.ones(self.k, device=self.readout_bias.device)
        zero[k] = 0
        tensors = self.named_tensors()
        self.scale(tensors, zero)
        for name, param in tensors.items():
            for moment in optimizer.state.get(param, {}).values():
                if torch.is_tensor(moment) and moment.shape == param.shape:
                    self.scale({name: moment}, zero)


def train_batched(task: str, cell: str, runs: list[tuple[str, int]], *, hidden: int = 32, layers: int = 1,
                  steps: int | None = None, batch: int | None = None, lr: float | None = None,
                  optimizer: str = "adam", clip: float | None = 1.0, track_every: int | None = None,
                  threshold: float | None = None, data_seed: int = 0, device: str = "cpu",
                  threads: int | None = 1, data_dir=None, train_subset: int | None = None) -> list[dict]:
    """Train the runs [(init, seed), …] of one task and cell together (module docstring).

    Options as `train_classifier`. Returns one result per run, in order: train_classifier's dict
    (its config with "batched": K), or `diverged_result` for a run whose loss was not finite.
    """
    if not runs:
        raise NumericsError("train_batched needs at least one (init, seed) run")
    run = Run.prepare(task, cell, hidden=hidden, layers=layers, steps=steps, batch=batch, lr=lr,
                      optimizer=optimizer, clip=clip, track_every=track_every, threshold=threshold,
                      data_seed=data_seed, device=device, data_dir=data_dir, train_subset=train_subset)
    seeds = [check_seed(seed) for _, seed in runs]
    with torch_threads(threads):
        models = [build_model(run.data, cell, init, seed, hidden, layers).to(run.device) for init, seed in runs]
        packed = Packed(models).to(run.device)
        opt = run.recipe.make_optimizer(packed.parameters())
        streams = [torch.Generator().manual_seed(derived_seed(seed, 2)) for seed in seeds]
        trackers = [Tracker(run, f"{cell} on {task}") for _ in runs]
        results: list[dict | None] = [None] * len(runs)

        def stop(k: int, error: TrainingDiverged) -> None:
            results[k] = diverged_result(error)
            packed.freeze(k, opt)

        def track(step: int) -> None:
            for k, tracker in enumerate(trackers):
                if results[k] is None:
                    try:
                        tracker.track(packed.unpack(k, models[k]), step)
                    except TrainingDiverged as error:
                        stop(k, error)

        def alone(k: int, rows: torch.Tensor, step: int) -> TrainingDiverged | None:
            """Run k's step on its own network: how it diverges there, or None when it does not."""
            model = packed.unpack(k, models[k])
            model.zero_grad()
            loss = task_loss(run.data.loss, model(inputs[rows], lengths[rows]), targets[rows])
            if not torch.isfinite(loss):
                return TrainingDiverged(trackers[k].what, step, float(loss.detach()), trackers[k].curve)
            loss.backward()
            if not torch.isfinite(nn.utils.get_total_norm([p.grad for p in model.parameters()])):
                # alone: NaN weights after this step, a NaN loss at the next
                return TrainingDiverged(trackers[k].what, step + 1, float("nan"), trackers[k].curve)
            return None

        track(0)
        inputs, lengths, targets = run.train
        for step in range(1, run.recipe.steps + 1):
            rows = [torch.randint(len(targets), (run.batch,), generator=g).to(run.device) for g in streams]
            while alive := [k for k in range(len(runs)) if results[k] is None]:
                # one forward and backward of every live run; a non-finite value leaks through the
                # zero blocks (0 · inf = NaN), so when one appears each run is retried alone to find
                # which diverge, those stop, and the step is redone with the others
                outputs = packed(torch.cat([inputs[r] for r in rows], dim=-1), torch.stack([lengths[r] for r in rows]))
                total = sum(task_loss(run.data.loss, outputs[:, k], targets[rows[k]]) for k in alive)
                opt.zero_grad()
                if torch.isfinite(total):
                    total.backward()
                    grads = {name: p.grad for name, p in packed.named_tensors().items() if p.grad is not None}
                    norms = packed.per_run(grads).sqrt()
                    if bool(torch.isfinite(norms[alive]).all()):
                        break
                failed = {k: alone(k, rows[k], step) for k in alive}
                failed = {k: error for k, error in failed.items() if error is not None} or {
                    k: TrainingDiverged(trackers[k].what, step, float("nan"), trackers[k].curve) for k in alive}
                for k, error in failed.items():
                    stop(k, error)
            if not alive:
                break
            factors = torch.zeros(len(runs), dtype=torch.float64, device=norms.device)
            for k in alive:  # as nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when that is below 1
                factors[k] = 1.0 if clip is None else min(1.0, clip / (float(norms[k]) + 1e-6))
            packed.scale(grads, factors)
            opt.step()
            if run.recipe.tracks(step):
                track(step)
    out = []
    for result, tracker, (init, seed) in zip(results, trackers, runs):
        if result is None:
            result = tracker.result(init, seed)
            result["config"]["batched"] = len(runs)
        out.append(result)
    return out
