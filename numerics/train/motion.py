"""How far a trained linear RNN's lag kernel moves, by lag and width: where a 1/n expansion can hold.

    kernel_motion(source, widths, seeds, lags, sigma_w=…, steps=…) → a JSON-ready dict

Each network is built and trained as `compare_training` trains it (the same problem, step and
centering), and its tangent Gram's diagonal Θ_jj is measured before and after. A 1/n expansion of
the kernel's motion says Θ_jj(t)/Θ_jj(0) − 1 = κ_j(t)/n + O(1/n²) with κ_j independent of n, so
n·(Θ_jj(t)/Θ_jj(0) − 1) measured at two widths n < n' agrees where the expansion holds and grows
with 1/n where it does not (higher orders dominate). `holds_to` is the last lag up to which the
widest two widths agree within `AGREEMENT`; the derived first-step terms (`derive --order 1`) can
describe training only there. Also recorded per run: the spectral radius of W before and after, and
‖W(t) − W(0)‖₂ — training can push an eigenvalue out of the circular law's disk (an outlier), whose
powers no fixed order in 1/n captures.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.problem import WhiteNoise, stack_problems
from ..kernels.empirical import gram_diagonal, structured_tangent_gram
from .compare import Comparison, _prepare
from .members import train_members

AGREEMENT = 0.2  # |κ(n') / κ(n) − 1| at which two widths' n-scaled motions are called the same


def _radius(W: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(W).abs().max())


def kernel_motion(source: WhiteNoise, widths: list[int], seeds: int, lags: int, *, sigma_w: float = 0.5,
                  steps: int = 150, lr="theory", center: bool = True, dtype: str = "float64",
                  progress=None) -> dict:
    """n·(Θ_jj(steps)/Θ_jj(0) − 1) per width (mean and sd over seeds; seed s draws the network, the
    problem and its test set as `Comparison(seed=s)` does) and lag
    j < lags, with each run's spectral radius before and after and ‖ΔW‖₂ (module docstring)."""
    out = {"widths": list(widths), "lags": lags, "steps": steps, "seeds": seeds, "agreement": AGREEMENT,
           "motion": {}, "runs": {}}
    for n in widths:
        relative, runs = [], []
        for seed in range(seeds):
            member = _prepare(source, Comparison(width=n, sigma_w=sigma_w, steps=steps, lr=lr, center=center,
                                                  dtype=dtype, seed=seed))
            before = gram_diagonal(structured_tangent_gram(member.rnn, lags)).detach()
            W0 = member.rnn.matrices()[0].detach().squeeze().clone()
            [result] = train_members(member.rnn, stack_problems([member.problem]), lrs=[member.lr],
                                     seeds=[member.batch_seed], name="rnn", steps=steps, optimizer="gd",
                                     center=center, lazy_scale=1.0, batch_size=None, progress=None)
            if isinstance(result, Exception):
                raise result
            after = gram_diagonal(structured_tangent_gram(member.rnn, lags)).detach()
            W1 = member.rnn.matrices()[0].detach().squeeze()
            relative.append((after / before - 1).cpu().numpy())
            runs.append({"seed": seed, "radius_before": _radius(W0), "radius_after": _radius(W1),
                         "dW_norm": float(torch.linalg.matrix_norm(W1 - W0, 2))})
            if progress is not None:
                progress(1)
        scaled = n * np.array(relative)
        out["motion"][str(n)] = {"mean": scaled.mean(0).tolist(),
                                 "sd": (scaled.std(0, ddof=1) if seeds > 1 else 0 * scaled[0]).tolist()}
        out["runs"][str(n)] = runs
    out["holds_to"] = holds_to(out)
    out["verdicts"] = verdicts(out)
    return out


def holds_to(found: dict) -> int | None:
    """The last lag j such that at every lag ≤ j the widest two widths' n-scaled motions agree within
    AGREEMENT (None: not even lag 0, or only one width). Their seeds' spread grows like √n in these
    units, so a verdict needs seeds: the text gives each mean with its standard error."""
    widths = sorted(found["widths"])
    if len(widths) < 2:
        return None
    small, large = (np.array(found["motion"][str(n)]["mean"]) for n in widths[-2:])
    agree = np.abs(large - small) <= found["agreement"] * np.abs(small)
    last = None
    for j, ok in enumerate(agree):
        if not ok:
            break
        last = j
    return last


def verdicts(found: dict) -> list[str] | None:
    """Per lag, the widest two widths' n-scaled motions: 'agree' (within AGREEMENT), 'differ' (further
    apart, and by more than two standard errors of the difference over the seeds) or 'unresolved'
    (further apart, but within the seeds' spread). None with one width."""
    widths = sorted(found["widths"])
    if len(widths) < 2:
        return None
    rows = [found["motion"][str(n)] for n in widths[-2:]]
    (small, large), (small_sd, large_sd) = ([np.array(r[key]) for r in rows] for key in ("mean", "sd"))
    gap = np.abs(large - small)
    noise = 2 * np.hypot(small_sd, large_sd) / np.sqrt(found["seeds"])
    return ["agree" if g <= found["agreement"] * abs(s) else "differ" if g > e else "unresolved"
            for g, s, e in zip(gap, small, noise)]
