"""The `check` commands: theory against finite-width networks, with their text and figures.

`check ntk` measures the kernel at initialization through the same cached cells as figures F1 and
F2 (`kernels.ntk_cells`), so its networks land in OUT/cells, are computed on a Dask cluster when
asked, and a rerun resumes. `check train` is one `compare_training` run. `check motion` measures how
far training moves the kernel, by lag and width (`train.motion`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from derivations.spec import DEFAULT_SIGMAS, Spec

from . import io
from . import style as figures
from .device import resolve_device
from .errors import NumericsError, TrainingDiverged
from .kernels.ntk_cells import compute_ntk, ntk_cell, summarize_cells
from .models.families import check_init
from .pipeline.cells import CellCache
from .pipeline.runner import run_cells


def check_ntk(spec: Spec, widths: list[int], sigma_ws: list[float], lags: int, seeds: int, out: str | Path, *,
              sigmas: dict = DEFAULT_SIGMAS, device: str = "auto", dtype: str = "float64", seed: int = 0,
              jobs: int = 1, scheduler: str | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Empirical lag weights α̂_j (diagonal of the tangent Gram of the Markov parameters) over
    theory, per width, σ_W and lag, over `seeds` random networks; cells cached under out/cells.

    error(n, σ_W) is the root mean square of α̂_j/α_j − 1 over lags and seeds; the kernel
    concentrates like n^{-1/2}, so its log-log slope against width should be about -1/2.
    Off the Gaussian family (spec.init) every entry Θ̂_jk of the lag Gram is compared with the
    derived `kernel_matrix` instead (`kernels.ntk_cells.summarize_lag_kernel`).
    """
    if not widths or min(widths) < 1:
        raise NumericsError(f"widths must be positive integers, got {widths}")
    if lags < 1 or seeds < 1:
        raise NumericsError("lags and seeds must be at least 1")
    if any(not s >= 0 for s in list(sigma_ws) + list(sigmas.values())):
        raise NumericsError("every σ must be ≥ 0")
    if seeds < 2:
        raise NumericsError("at least 2 seeds are needed for a standard deviation")
    check_init(spec, widths, sigma_ws)
    if scheduler is None:  # a bad device fails before any work; on a cluster the workers resolve it
        device = resolve_device(device).type
    cells = [ntk_cell(spec, w, sw, lags, r, sigmas=sigmas, seed=seed, dtype=dtype)
             for w in widths for sw in sigma_ws for r in range(seeds)]
    records = run_cells(cells, compute_ntk, CellCache(out), device=device, jobs=jobs, scheduler=scheduler,
                        group=lambda c: c["width"], progress=progress)
    return summarize_cells(cells, [r["result"] for r in records])


MAX_NETWORKS = 100_000  # random networks in one check ntk (widths × σ_W × seeds): more is a typo, not a request


def ntk_command(spec: Spec, widths: list[int], sigma_ws: list[float], lags: int, seeds: int, out: str | Path, *,
                force: bool = False, sigmas: dict = DEFAULT_SIGMAS, device: str = "auto", dtype: str = "float64",
                seed: int = 0, jobs: int = 1, scheduler: str | None = None,
                progress: Callable[[int], None] | None = None, command: str = "rnnmemory check ntk") -> tuple[dict, Path]:
    """`rnnmemory check ntk`: `check_ntk` into the result directory OUT (result.json, ntk.png/pdf);
    returns the record and the directory. Bad input fails before any network is drawn."""
    from .models.linear import check_width

    for width in widths:
        check_width(width)
    networks = len(set(widths)) * len(set(sigma_ws)) * seeds
    if networks > MAX_NETWORKS:
        raise NumericsError(f"{len(set(widths))} widths × {len(set(sigma_ws))} σ_W × {seeds} seeds ask for {networks:,} "
                            f"random networks; at most {MAX_NETWORKS:,} in one run")
    results = io.ResultDir(out, force)
    inputs = dict(widths=widths, sigma_ws=sigma_ws, lags=lags, seeds=seeds, sigma_f=sigmas["F"], sigma_c=sigmas["C"],
                  sigma_d=sigmas["D"], device=device, dtype=dtype, seed=seed)
    result = check_ntk(spec, widths, sigma_ws, lags, seeds, out, sigmas=sigmas, device=device, dtype=dtype, seed=seed,
                       jobs=jobs, scheduler=scheduler, progress=progress)
    record = io.record(command, spec, inputs, device, seed, result)
    results.write_result(record)
    results.save_figure(ntk_figure(result), "ntk")
    return record, results.path


def train_command(spec: Spec, options: dict, out: str | Path, *, force: bool = False,
                  progress: Callable | None = None, command: str = "rnnmemory check train",
                  warn: Callable[[str], None] = print) -> tuple[dict, Path]:
    """`rnnmemory check train`: one `compare_training` run (options: the command's, teacher to seed)
    into the result directory OUT (result.json, loss and response figures); returns the record and
    the directory. A run that diverges leaves its partial curves in result.json and raises."""
    from .data.problem import WhiteNoise
    from .models.linear import check_width
    from .train.compare import Comparison, compare_training, meaningful
    from .train.runtime import diverged_result

    o = options
    check_width(o["width"])
    source = WhiteNoise(o["teacher"], o["samples"], o["length"], o["task"])
    config = Comparison(o["width"], spec, o["sigma_w"], o["sigma_f"], o["sigma_c"], o["sigma_d"], steps=o["steps"],
                        optimizer=o["optimizer"], lr=o["lr"], center=o["center"], lazy_scale=o["lazy_scale"],
                        kernel=o["kernel"], device=o["device"], dtype=o["dtype"], seed=o["seed"])
    for warning in meaningful(source, config):
        warn(warning)
    results = io.ResultDir(out, force)
    try:
        result = compare_training(source, config, progress=progress)
    except TrainingDiverged as error:  # keep what was computed before the divergence, then report it
        results.write_result(io.record(command, spec, o, o["device"], o["seed"], diverged_result(error)))
        raise
    record = io.record(command, spec, o, o["device"], o["seed"], result)
    results.write_result(record)
    for name, fig in train_figures(result).items():
        results.save_figure(fig, name)
    return record, results.path


def ntk_figure(result: dict):
    """Left: α̂_j/α_j per lag per width (one σ_W per line style). Right: error against width.
    Off the Gaussian family, `lag_kernel_figure`."""
    if "entries" in result:
        return lag_kernel_figure(result)
    rows = result["rows"]
    widths = sorted({r["width"] for r in rows})
    sigma_ws = sorted({r["sigma_w"] for r in rows})
    fig, axes = figures.figure(ncols=2)
    left, right = axes[0]
    markers = ["o", "s", "^", "D", "v"]
    for i, w in enumerate(widths):
        for k, sw in enumerate(sigma_ws):
            sel = [r for r in rows if r["width"] == w and r["sigma_w"] == sw and r["ratio_mean"] is not None
                   and np.isfinite(r["ratio_mean"])]
            lags = np.array([r["lag"] for r in sel]) + (k - (len(sigma_ws) - 1) / 2) * 0.12
            left.errorbar(lags, [r["ratio_mean"] for r in sel], yerr=[r["ratio_std"] for r in sel],
                          fmt=markers[k % len(markers)], color=figures.PALETTE[i % 8], ms=3, lw=0.8, capsize=0,
                          label=f"$n={w}$" if k == 0 else None)
    left.axhline(1, color="0.3", lw=0.8)
    left.set_xlabel("lag $j$")
    left.set_ylabel(r"$\hat\alpha_j / \alpha_j$ (mean ± sd over seeds)")
    handles, labels = left.get_legend_handles_labels()
    if len(sigma_ws) > 1:  # widths by colour, σ_W by marker
        for k, sw in enumerate(sigma_ws):
            handles.append(Line2D([], [], ls="", marker=markers[k % len(markers)], color="0.35", ms=4))
            labels.append(rf"$\sigma_W={sw:g}$")
    left.legend(handles, labels, ncols=2)
    _error_panel(right, result, widths, sigma_ws, r"rms of $\hat\alpha_j/\alpha_j - 1$")
    return fig


def lag_kernel_figure(result: dict):
    """Left: rows Θ_jk against k, theory (lines) and the largest width's mean ± standard error
    (markers), at the first σ_W. Right: rms of (Θ̂_jk − Θ_jk)/√(Θ_jj Θ_kk) against width."""
    entries = result["entries"]
    widths = sorted({e["width"] for e in entries})
    sigma_ws = sorted({e["sigma_w"] for e in entries})
    top = [e for e in entries if e["width"] == widths[-1] and e["sigma_w"] == sigma_ws[0]]
    value = {}
    for e in top:  # the Gram is symmetric: fill both triangles
        value[(e["lag"], e["other_lag"])] = value[(e["other_lag"], e["lag"])] = e
    lags = max(e["other_lag"] for e in top) + 1
    shown = sorted({min(lag, lags - 1) for lag in (0, 1, lags // 2, lags - 1)})
    fig, axes = figures.figure(ncols=2)
    left, right = axes[0]
    for i, j in enumerate(shown):
        ks = [k for k in range(lags) if (j, k) in value]
        row = [value[(j, k)] for k in ks]
        color = figures.PALETTE[i % 8]
        left.plot(ks, [e["theta_theory"] for e in row], "-", color=color, lw=1, label=f"$j={j}$")
        left.errorbar(ks, [e["theta_mean"] for e in row], yerr=[e["theta_standard_error"] for e in row],
                      fmt=figures.MARKERS[i % len(figures.MARKERS)], color=color, ms=3, lw=0.8, capsize=0)
    left.set_xlabel("lag $k$")
    left.set_ylabel(rf"$\Theta_{{jk}}$ (lines: theory; markers: $n={widths[-1]}$)")
    left.set_title(f"{result['init']}, $\\sigma_W={sigma_ws[0]:g}$", loc="right")
    left.legend(ncols=2)
    _error_panel(right, result, widths, sigma_ws, r"rms of $(\hat\Theta_{jk} - \Theta_{jk})/\sqrt{\Theta_{jj}\Theta_{kk}}$")
    return fig


def _error_panel(ax, result: dict, widths: list, sigma_ws: list, ylabel: str) -> None:
    """The rms error against width per σ_W, with its slope and the n^{-1/2} guide."""
    for k, sw in enumerate(sigma_ws):
        err = [e["rms_relative_error"] for e in result["error"] if e["sigma_w"] == sw]
        slope = result["slopes"][str(sw)]
        ax.loglog(widths, err, figures.MARKERS[k % len(figures.MARKERS)] + "-", color=figures.PALETTE[k % 8],
                  label=rf"$\sigma_W={sw:g}$" + (f" (slope {slope:.2f})" if slope is not None else ""))
    first = [e["rms_relative_error"] for e in result["error"] if e["sigma_w"] == sigma_ws[0]]
    figures.width_guide(ax, widths, widths[0], first[0])
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("width $n$")
    ax.set_ylabel(ylabel)
    figures.plain_log_ticks(ax)
    ax.legend()


def train_figures(result: dict) -> dict:
    """loss: train and test loss of the three trainers against step; response: learned impulse
    responses against the teacher."""
    steps = np.array(result["step"])
    names = {"rnn": "RNN", "convolution": "scaled convolution", "closed_form": "closed form (kernel GD)"}
    styles = {"rnn": dict(color=figures.PALETTE[0], lw=1.6), "convolution": dict(color=figures.PALETTE[1], ls="--"),
              "closed_form": dict(color=figures.PALETTE[2], ls=":", lw=1.8)}
    fig, axes = figures.figure(ncols=2)
    for ax, key, label in zip(axes[0], ("train_loss", "test_loss"), ("train loss", "test loss")):
        for name in names:
            ax.semilogy(steps, result[name][key], label=names[name], **styles[name])
        ax.set_xlabel("step $t$")
        ax.set_ylabel(label + r" ($\frac{1}{2}$MSE)")
    axes[0][0].legend()
    loss = fig
    fig, axes = figures.figure(ncols=1)
    ax = axes[0][0]
    r = result["response"]
    lags = np.arange(len(r["teacher"]))
    ax.plot(lags, r["teacher"], "k-", lw=2.2, alpha=0.35, label=r"teacher $L^*_j$")
    ax.plot(lags, r["initial"], color="0.6", lw=0.8, label=r"initial $L_j(0)$")
    for name in names:
        ax.plot(lags, r[name], label=names[name], **styles[name])
    ax.set_xlabel("lag $j$")
    ax.set_ylabel("impulse response $L_j$")
    ax.legend()
    return {"loss": loss, "response": fig}


def _verdict_lines(verdict: dict) -> list[str]:
    lines = []
    for name, claim in verdict["claims"].items():
        worst = claim["worst"]
        lines.append(f"  {'PASS' if claim['passed'] else 'FAIL'}  {name.replace('_', ' ')}: worst {worst:.3g} "
                     f"(tolerance {claim['tolerance']:g})")
    return lines


def ntk_text(rec: dict, path: Path) -> str:
    if "entries" in rec:
        return lag_kernel_text(rec, path)
    rows = rec["rows"]
    widths = sorted({r["width"] for r in rows})
    lines = [f"check ntk — {rec['environment']['device_name']}, {rec['inputs']['seeds']} seeds per cell",
             "alpha_hat_j / alpha_j: mean ± sd over seeds"]
    for sw in sorted({r["sigma_w"] for r in rows}):
        lines.append(f"\nsigma_W = {sw:g}")
        lines.append(f"{'lag':>4} {'alpha_j':>11} " + " ".join(f"{'n=' + str(w):>17}" for w in widths))
        for j in sorted({r["lag"] for r in rows}):
            cells = {r["width"]: r for r in rows if r["sigma_w"] == sw and r["lag"] == j}
            theory = cells[widths[0]]["alpha_theory"]
            lines.append(f"{j:>4} {theory:>11.4g} " + " ".join(
                f"{cells[w]['ratio_mean']:>8.4f} ± {cells[w]['ratio_std']:<6.4f}" if cells[w]["ratio_mean"] is not None
                and np.isfinite(cells[w]["ratio_mean"]) else f"{'(α_j = 0)':>17}" for w in widths))
    lines.append("\nrms relative error and largest relative cross-lag term by width:")
    for e in rec["error"]:
        lines.append(f"  n={e['width']:<6} sigma_W={e['sigma_w']:<5g} error {e['rms_relative_error']:.4f}  "
                     f"cross {e['largest_cross_term']:.4f}")
    lines.append("slope of log(error) vs log(width) (theory -1/2): " +
                 ", ".join(f"sigma_W={k}: {v:.3f}" if v is not None else f"sigma_W={k}: n/a" for k, v in rec["slopes"].items()))
    lines.append(f"\nverdict at n = {rec['verdict']['width']}: {'PASS' if rec['verdict']['passed'] else 'FAIL'}")
    lines += _verdict_lines(rec["verdict"])
    lines.append(f"\nwritten: {path / 'result.json'}, {path / 'ntk.png'}, {path / 'ntk.pdf'}")
    return "\n".join(lines)


def lag_kernel_text(rec: dict, path: Path) -> str:
    """Theory Θ_jk and the largest width's relative error per entry, rms error by width, slope, verdict."""
    entries = rec["entries"]
    widths = sorted({e["width"] for e in entries})
    lines = [f"check ntk — {rec['environment']['device_name']}, {rec['inputs']['seeds']} seeds per cell, W from {rec['init']}",
             "full lag kernel: relative error (mean Θ̂_jk − Θ_jk)/√(Θ_jj Θ_kk), in %, j ≤ k"]
    for sw in sorted({e["sigma_w"] for e in entries}):
        top = {(e["lag"], e["other_lag"]): e for e in entries if e["sigma_w"] == sw and e["width"] == widths[-1]}
        lags = max(k for _, k in top) + 1
        for title, cell in (("theory Θ_jk", lambda e: f"{e['theta_theory']:>8.4g}"),
                            (f"relative error at n = {widths[-1]} (%)", lambda e: f"{100 * e['relative_error']:>8.2f}")):
            lines.append(f"\nsigma_W = {sw:g}: {title}")
            lines.append("j\\k".rjust(4) + " " + " ".join(f"{k:>8}" for k in range(lags)))
            for j in range(lags):
                lines.append(f"{j:>4} " + " ".join(cell(top[(j, k)]) if (j, k) in top else f"{'':>8}" for k in range(lags)))
    lines.append("\nrms relative error by width:")
    for e in rec["error"]:
        lines.append(f"  n={e['width']:<6} sigma_W={e['sigma_w']:<5g} error {e['rms_relative_error']:.4f}")
    lines.append("slope of log(error) vs log(width) (theory -1/2): " +
                 ", ".join(f"sigma_W={k}: {v:.3f}" if v is not None else f"sigma_W={k}: n/a" for k, v in rec["slopes"].items()))
    lines.append(f"\nverdict at n = {rec['verdict']['width']}: {'PASS' if rec['verdict']['passed'] else 'FAIL'}")
    lines += _verdict_lines(rec["verdict"])
    entry = rec["verdict"]["claims"]["entries_within_3_standard_errors_or_5_percent"]["entry"]
    if entry:
        lines.append(f"  (worst entry: sigma_W={entry[0]:g}, j={entry[1]}, k={entry[2]})")
    lines.append(f"\nwritten: {path / 'result.json'}, {path / 'ntk.png'}, {path / 'ntk.pdf'}")
    return "\n".join(lines)


def train_text(rec: dict, path: Path) -> str:
    f = rec["final"]
    i = rec["inputs"]
    lines = [
        f"check train — {rec['environment']['device_name']}",
        f"teacher {i['teacher']}, width {i['width']}, sigma_W {i['sigma_w']}, {i['samples']} {i['task']} samples of "
        f"length {i['length']}, {i['steps']} {i['optimizer']} steps at lr {rec['lr']:.4g}"
        + (", centered" if i["center"] else "") + (f", lazy scale {i['lazy_scale']:g}" if i["lazy_scale"] != 1 else ""),
        f"deviation ||L_rnn - L_conv|| / ||L_conv - L_0|| at the end: {f['deviation']:.4g}",
        f"test excess error ||L - L*||^2:  rnn {f['test_error_rnn']:.6g}   scaled convolution {f['test_error_conv']:.6g}"
        f"   closed form {f['test_error_closed_form']:.6g}",
        f"rnn vs closed form: {100 * (f['test_error_rnn'] / f['test_error_closed_form'] - 1):+.2f}%"
        if f["test_error_closed_form"] else "",
        f"written: {path / 'result.json'}, loss.png/pdf, response.png/pdf",
    ]
    return "\n".join(line for line in lines if line)


def motion_command(options: dict, out: str | Path, *, force: bool = False,
                   progress: Callable | None = None, command: str = "rnnmemory check motion") -> tuple[dict, Path]:
    """`rnnmemory check motion`: `kernel_motion` of the default spec into OUT (result.json,
    motion.png/pdf/csv)."""
    from .data.problem import WhiteNoise
    from .models.linear import check_width
    from .train.motion import kernel_motion

    o = options
    for width in o["widths"]:
        check_width(width)
    if len(set(o["widths"])) != len(o["widths"]):
        raise NumericsError(f"--width lists a width twice: {o['widths']}")
    if o["sigma_w"] <= 0:
        raise NumericsError(f"--sigma-w must be positive (at 0 the kernel has no lag beyond 0), got {o['sigma_w']}")
    if o["seeds"] < 2:
        raise NumericsError("check motion needs at least 2 seeds (the verdict needs their spread)")
    results = io.ResultDir(out, force)
    source = WhiteNoise(o["teacher"], o["samples"], o["length"], "seq2one")
    found = kernel_motion(source, o["widths"], o["seeds"], o["lags"], sigma_w=o["sigma_w"], steps=o["steps"],
                          progress=progress)
    record = io.record(command, Spec(), o, "cpu", 0, found)
    results.write_result(record)
    results.save_figure(motion_figure(found, o), "motion")
    return record, results.path


def motion_figure(found: dict, options: dict):
    """n·(Θ_jj(t)/Θ_jj(0) − 1) against the lag, one line per width (mean ± standard error over seeds)."""
    fig, axes = figures.figure()
    ax = axes[0][0]
    means = []
    for i, n in enumerate(found["widths"]):
        row = found["motion"][str(n)]
        means += row["mean"]
        ax.errorbar(np.arange(found["lags"]) + (i - (len(found["widths"]) - 1) / 2) * 0.1, row["mean"],
                    yerr=np.array(row["sd"]) / np.sqrt(found["seeds"]), fmt="o-", ms=3, lw=1, capsize=0,
                    color=figures.PALETTE[i % 8], label=f"$n={n}$")
    # log where every mean is positive (the usual case: training grows the kernel), else symlog, which shows all
    ax.set_yscale("log") if min(means) > 0 else ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("lag $j$")
    ax.set_ylabel(r"$n\,(\Theta_{jj}(t)/\Theta_{jj}(0) - 1)$, mean ± s.e.")
    ax.set_title(f"teacher {options['teacher']}, $\\sigma_W={options['sigma_w']:g}$, {found['steps']} gd steps", fontsize=9)
    if found["holds_to"] is not None:
        ax.axvspan(-0.5, found["holds_to"] + 0.5, color="0.9", zorder=0, label=f"widest two agree within {found['agreement']:.0%}")
    ax.legend()
    return fig


def motion_text(rec: dict, path: Path) -> str:
    found, i = rec, rec["inputs"]
    lines = [f"check motion — teacher {i['teacher']}, sigma_W {i['sigma_w']}, {i['steps']} gd steps, centered, "
             f"{i['seeds']} seeds per width",
             "n·(Θ_jj(t)/Θ_jj(0) − 1), mean ± standard error over seeds (a 1/n expansion makes it the same at "
             "every width):",
             "  lag " + "".join(f"{n:>20d}" for n in found["widths"])]
    root = np.sqrt(found["seeds"])
    for j in range(found["lags"]):
        lines.append(f"  {j:3d} " + "".join(
            f"{found['motion'][str(n)]['mean'][j]:11.4g} ± {found['motion'][str(n)]['sd'][j] / root:<6.2g}"
            for n in found["widths"]))
    holds = found["holds_to"]
    lines.append("the widest two widths agree within {:.0%} ".format(found["agreement"])
                 + (f"up to lag {holds}" if holds is not None else "at no lag (from lag 0)"))
    for verdict in ("differ", "unresolved"):
        lags = [j for j, v in enumerate(found["verdicts"]) if v == verdict]
        if lags:
            lines.append(f"  {verdict}" + (" (apart, but within two standard errors)" if verdict == "unresolved"
                                            else " (apart by more than two standard errors)") + f" at lags {lags}")
    for n in found["widths"]:
        runs = found["runs"][str(n)]
        lines.append(f"  n = {n}: spectral radius of W " + ", ".join(
            f"{r['radius_before']:.3f} → {r['radius_after']:.3f}" for r in runs) + "; ‖ΔW‖₂ " + ", ".join(
            f"{r['dW_norm']:.3f}" for r in runs))
    lines.append(f"written: {path / 'result.json'}, motion.png/pdf/csv")
    return "\n".join(lines)
