"""E1's figure, table and words (the numbers are `bench.analyze`'s `Bench`)."""
from __future__ import annotations

import numpy as np

from ... import style
from ...pipeline.experiment import fmt

# one colour per initializer whatever subset a run uses (Okabe–Ito; eigen in black)
COLORS = {"xavier": style.PALETTE[0], "kaiming": style.PALETTE[4], "orthogonal": style.PALETTE[2],
          "irnn": style.PALETTE[3], "nprnn": style.PALETTE[1], "eigen": style.PALETTE[7]}
UNIT_METRICS = ("accuracy", "r2")  # at most 1; other metrics (BLEU, 0–100) are scaled to the data


def label(init: str) -> str:
    return {"xavier": "Xavier", "kaiming": "Kaiming", "orthogonal": "orthogonal", "irnn": "IRNN (ReLU)",
            "nprnn": "np-RNN", "eigen": "eigen"}.get(init, init)


def metric_name(metric: str | None) -> str:
    return {"bleu": "BLEU", None: "metric"}.get(metric, metric)


def plot(config, n):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tasks = n.tasks
    fig, axes = style.figure(ncols=1 + len(n.cells), nrows=len(tasks), height=2.2)
    width = 0.8 / len(n.inits)
    for r, task in enumerate(tasks):
        ax = axes[r, 0]
        lows, highs = [], []
        for k, init in enumerate(n.inits):
            for x, cell in enumerate(n.cells):
                row = n.rows[task][cell].get(init)
                if row is None or row["final_mean"] is None:
                    continue
                ax.bar(x + (k - (len(n.inits) - 1) / 2) * width, row["final_mean"], width * 0.92,
                       yerr=row["final_sd"], color=COLORS.get(init, "0.5"), ecolor="0.25",
                       error_kw={"lw": 0.8, "capsize": 1.5})
                lows.append(row["final_mean"] - row["final_sd"])
                highs.append(row["final_mean"] + row["final_sd"])
        if n.threshold.get(task) is not None:
            ax.axhline(n.threshold[task], color="0.4", ls="--", lw=0.8)
        floor = 0.5 if n.metric.get(task) == "accuracy" and task.startswith("tomita") else 0.0
        if lows and n.metric.get(task) in UNIT_METRICS:
            ax.set_ylim(max(0.0, min(floor, min(lows) - 0.05)), 1.0)
        elif highs:  # BLEU (0–100): from 0 to just above the highest bar
            ax.set_ylim(0.0, max(1.0, 1.1 * max(highs)))
        ax.set_xticks(range(len(n.cells)), n.cells)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(f"final test {metric_name(n.metric.get(task))}")
        ax.set_title(task, loc="right")
        style.panel_label(ax, chr(ord("a") + r * (1 + len(n.cells))))
        for c, cell in enumerate(n.cells):
            ax = axes[r, 1 + c]
            if not any(row["curve_step"] for row in n.rows[task][cell].values()):
                ax.text(0.5, 0.5, "no runs (see the skipped list)", transform=ax.transAxes, ha="center", color="0.4")
            for init in n.inits:
                row = n.rows[task][cell].get(init)
                if row is None or not row["curve_step"]:
                    continue
                steps, mean, sd = (np.array(row[k]) for k in ("curve_step", "curve_mean", "curve_sd"))
                ax.plot(steps, mean, color=COLORS.get(init, "0.5"), lw=1.1)
                ax.fill_between(steps, mean - sd, mean + sd, color=COLORS.get(init, "0.5"), alpha=0.12, lw=0)
            if n.threshold.get(task) is not None:
                ax.axhline(n.threshold[task], color="0.4", ls="--", lw=0.8)
            ax.set_xlabel("training step")
            ax.set_ylabel(n.curve.get(task, f"test {metric_name(n.metric.get(task))}"))
            ax.set_title(f"{task}, {cell}", loc="right")
            style.panel_label(ax, chr(ord("a") + r * (1 + len(n.cells)) + 1 + c))
    handles = [Patch(color=COLORS.get(i, "0.5"), label=label(i)) for i in n.inits]
    handles.append(Line2D([], [], color="0.4", ls="--", lw=0.8, label="threshold"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
               title=f"mean ± sd over {n.seeds} seeds")
    return fig


def table(n) -> str:
    """The benchmark as plain text: final test metric mean ± sd, steps to threshold and how many seeds
    reached it (n/a where no test metric is tracked: multi30k)."""
    lines = [f"{'task':<10} {'cell':<5} {'init':<11} {'metric':<8} {'final (mean ± sd)':<19} "
             f"{'steps to threshold':<22} diverged"]
    for task in n.tasks:
        for cell in n.cells:
            for init, row in n.rows[task][cell].items():
                final = ("n/a" if row["final_mean"] is None
                         else f"{row['final_mean']:.3f} ± {row['final_sd']:.3f}")
                steps = ("never" if row["steps_mean"] is None else f"{row['steps_mean']:.0f}") + \
                    f" ({row['reached']}/{row['runs']} reached)"
                if n.threshold.get(task) is None:
                    steps = "n/a (no test curve)"
                lines.append(f"{task:<10} {cell:<5} {init:<11} {metric_name(n.metric.get(task)):<8} {final:<19} "
                             f"{steps:<22} {row['runs'] - row['finished']}")
    lines += [f"skipped: {s}" for s in _skips(n)]
    if n.paired:
        lines += ["", "eigen − other, paired by seed: mean [95% interval] (p of the paired t-test) verdict, "
                  "each pair on its own (the claims correct for the comparisons they range over, Holm)",
                  f"{'task':<10} {'cell':<5} {'other':<11} {'eigen − other':<28} {'p':>6}  verdict"]
        for task, cells in n.paired.items():
            for cell, per in cells.items():
                for init, v in per.items():
                    text = "fewer than 2 pairs" if v is None else \
                        f"{v['mean']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]"
                    lines.append(f"{task:<10} {cell:<5} {init:<11} {text:<28} "
                                 f"{'' if v is None else format(v['p'], '.3f'):>6}  {'' if v is None else v['verdict']}")
    return "\n".join(lines)


def _skips(n) -> list:
    """The pairs without runs in words; a task's own skips grouped by cell."""
    out, own = [], {}
    for s in n.skipped:
        if "task" in s:
            own.setdefault((s["task"], s["cell"], s["why"]), []).append(s["init"])
        else:
            out.append(f"{s['init']} on {s['cell']}: {s['why']}")
    return out + [f"{cell} on {task} ({', '.join(inits)}): {why}" for (task, cell, why), inits in own.items()]


def describe(n) -> str:
    text = (f"Final test metric of each initializer on each task and cell ({n.setting}), mean ± sd over seeds "
            "(bars; dashed: the threshold for 'steps to threshold'), and the mean test-metric curves (± sd shaded). ")
    for task in n.tasks:
        parts = []
        for cell in n.cells:
            here = {i: r for i, r in n.rows[task][cell].items() if r["final_mean"] is not None}
            order = sorted(here, key=lambda i: -here[i]["final_mean"])
            parts.append(f"{cell}: " + " > ".join(f"{label(i)} {fmt(here[i]['final_mean'], 3)}" for i in order))
        text += f"{task}: " + "; ".join(parts) + ". "
    if n.paired:
        verdicts = {}
        for task, cells in n.paired.items():
            for cell, per in cells.items():
                v = per.get("xavier")
                verdicts.setdefault("fewer than 2 pairs" if v is None else v["verdict"], []).append(f"{task}/{cell}")
        text += (f"Eigen against Xavier, seed by seed (paired 95% interval over {n.seeds} seeds, each pair on its "
                 "own): " + "; ".join(f"{verdict} on {', '.join(where)}" for verdict, where in verdicts.items())
                 + " (every initializer in the table under the figure; the claims correct for the number of "
                 "comparisons, Holm). ")
    if "bleu" in n.metric.values():
        text += ("multi30k's metric is test BLEU (0–100) of greedy translations; its curves are the training "
                 "loss and its steps to threshold n/a, as its trainer tracks no test metric. ")
    for s in _skips(n):
        text += f"Skipped: {s}. "
    text += (f"{len(n.diverged)} runs diverged." if n.diverged else "Every run finished.")
    return text


