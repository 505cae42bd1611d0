"""R1's figure, table and text (numbers from `reconstruction.analyze`): attractors on the truth's axes,
amplitude spectra, a strip of every seed's key measure, and the per-seed measures with their medians."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ... import style
from ...pipeline.experiment import fmt
from .long_range import COLORS, LABELS
from .reconstruction_run import BINS, BURN_IN, HORIZON_ERROR, WITHIN, settings

if TYPE_CHECKING:
    from .reconstruction import Config, Reconstruction


def plot(c: Config, n: Reconstruction):
    columns = 3 + len(n.models)
    fig, axes = style.figure(ncols=columns, nrows=len(n.systems), height=2.3)
    for r, system in enumerate(n.systems):
        shown = n.show.get(system, {})
        i, j = settings(system)["plot"]
        names = shown.get("variables", ["x", "y", "z"])
        true = np.array(shown.get("true", []))
        panels = [("true", true, "0.3")] + [
            (f"{LABELS[m]}, seed 0", np.array(shown[m]["generated"]) if m in shown else np.zeros((0, 3)), COLORS[m])
            for m in n.models]
        # one frame for the truth and every model (the truth's range and a margin): a small limit cycle
        # cannot pass for the attractor, and a trajectory that leaves the data shows as leaving
        limits = [(lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo)) for lo, hi in
                  ((true[:, k].min(), true[:, k].max()) for k in (i, j))] if len(true) else None
        for k, (title, traj, color) in enumerate(panels):
            ax = axes[r, k]
            if len(traj):
                ax.plot(traj[:, i], traj[:, j], color=color, lw=0.4)
            if limits:
                ax.set_xlim(*limits[0])
                ax.set_ylim(*limits[1])
            ax.set_xlabel(names[i] if i < len(names) else f"x{i}")
            ax.set_ylabel(names[j] if j < len(names) else f"x{j}")
            ax.set_title(f"{shown_name(system)}: {title}", loc="right", fontsize=8)
            style.panel_label(ax, chr(ord("a") + r * columns + k))
        ax = axes[r, columns - 2]
        if "spectrum_true" in shown:
            ax.loglog(*shown["spectrum_true"], color="0.6", lw=2.0, label="true")
            for m in n.models:
                if m in shown and shown[m]["spectrum_generated"]:
                    ax.loglog(*shown[m]["spectrum_generated"], color=COLORS[m], lw=0.8, label=LABELS[m])
        for edge in {b for band in n.bands[system].values() if band for b in band if 0 < b < np.inf}:
            ax.axvline(edge, color="0.5", ls="--", lw=0.6)
        ax.set_xlabel("frequency (cycles per time unit)")
        ax.set_ylabel(f"amplitude of {names[0] if names else 'x0'}")
        ax.set_title(f"{shown_name(system)}: spectra (seed 0)", loc="right", fontsize=8)
        ax.legend(fontsize=6, loc="lower left")
        style.panel_label(ax, chr(ord("a") + r * columns + columns - 2))
        _seed_strip(axes[r, columns - 1], n, system)
        style.panel_label(axes[r, columns - 1], chr(ord("a") + r * columns + columns - 1))
    return fig


def _seed_strip(ax, n: Reconstruction, system: str) -> None:
    """Every seed's key measure per model: λ_max against the true one for a chaotic system, else the
    low-band spectrum error; escaped or diverged seeds are marked on the axis."""
    true = n.true_lyapunov.get(system)
    key = "lyapunov" if true and true > 0.05 else ("spectrum_low" if "low" in n.bands[system] else "kl")
    labels = []
    for k, model in enumerate(n.models):
        seeds = n.rows[system][model]["seeds"]
        values = seeds[key]
        xs = k + np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [k]
        for x, v, state in zip(xs, values, seeds["kl"]):
            if state is None:  # no state-space measure: the run escaped or diverged
                ax.plot(x, 0, "x", color=COLORS[model], ms=5, clip_on=False)
            elif v is not None:  # else not measured for this model (λ_max needs the PLRNN's derived Jacobian)
                ax.plot(x, v, "o", color=COLORS[model], mfc="none")
        unmeasured = all(v is None for v, state in zip(values, seeds["kl"]) if state is not None)
        labels.append(LABELS[model] + ("\n(not computed)" if unmeasured and any(s is not None for s in seeds["kl"]) else ""))
        median = n.rows[system][model][key]
        if median is not None:
            ax.plot([k - 0.3, k + 0.3], [median] * 2, color=COLORS[model], lw=2)
    if key == "lyapunov":
        ax.axhspan(true / WITHIN, true * WITHIN, color="0.9", zorder=0)
        ax.axhline(true, color="0.4", ls="--", lw=0.8)
        ax.set_ylabel(r"$\lambda_{\max}$ per time unit (band: ×½ to ×2 of true)")
    else:
        ax.set_ylabel({"spectrum_low": "low-band spectrum MSE", "kl": r"$D_{\mathrm{stsp}}$"}[key])
    ax.set_xticks(range(len(n.models)), labels)
    ax.set_xlim(-0.6, len(n.models) - 0.4)
    ax.set_title(f"{shown_name(system)}: seeds (×: escaped)", loc="right", fontsize=8)


def shown_name(system: str) -> str:
    """A system as figures and tables show it: a data file by its file name (result.json keeps the path)."""
    return Path(system[len("data:"):]).name if system.startswith("data:") else system


def table(n: Reconstruction) -> str:
    """Every seed's measures and, per system and model, their median (the row the claims read)."""
    lines = [f"{'system':<10} {'model':<7} {'seed':>6} {'D_stsp':>7} {'Hellinger':>9} {'MSE all':>8} {'low':>8} "
             f"{'high':>8} {'λ_max':>7} {'horizon':>7}"]

    def line(s, m, seed, r):
        return (f"{s:<10} {m:<7} {seed:>6} {fmt(r['kl'], 3):>7} {fmt(r['hellinger'], 3):>9} "
                f"{fmt(r['spectrum_all'], 2):>8} {fmt(r['spectrum_low'], 2):>8} {fmt(r['spectrum_high'], 2):>8} "
                f"{fmt(r['lyapunov'], 3):>7} {fmt(r['horizon'], 3):>7}")
    for system in n.systems:
        s = shown_name(system)
        for m in n.models:
            r = n.rows[system][m]
            for seed in range(r["runs"]):
                lines.append(line(s, m, seed, {key: values[seed] for key, values in r["seeds"].items()}))
            lines.append(line(s, m, "median", r) + f"  escaped or diverged {r['escaped'] + r['diverged']}/{r['runs']}"
                         + (f", λ_max within ×{WITHIN:g} {fmt(r['lyapunov_reproduced'], 2)}"
                            if "lyapunov_reproduced" in r else ""))
        lines.append(f"{s:<10} true λ_max {fmt(n.true_lyapunov.get(system), 3)}")
    return "\n".join(lines)


def describe(n: Reconstruction) -> str:
    return (f"Free-running trajectories of models trained on each system ({n.setting}), against the "
            f"held-out data after a burn-in of {BURN_IN} samples (which drives a PLRNN's latent units): attractor "
            "projections of seed 0 on the truth's axes, amplitude spectra of the first variable (dashed: band edges), "
            "every seed's key measure (bar: the median), and the measures per seed and their median (D_stsp: binned "
            f"KL, {BINS} bins per variable; spectrum MSE over all bins and the low and high bands; λ_max per time unit "
            f"from the PLRNN's Jacobians; horizon: steps until the normalized error exceeds {HORIZON_ERROR:g}):\n\n"
            "```\n" + table(n) + "\n```\n")
