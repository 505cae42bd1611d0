"""The one figure style: column-width panels, labelled axes with the text's symbols, a
colour-blind-safe palette (Okabe–Ito), and markers for finite-width data beside theory lines."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P"]
SEQUENTIAL = "viridis"  # perceptually uniform and colour-blind safe, for maps
COLUMN = 3.4  # inches: one column of a two-column paper
STYLE = {
    "figure.figsize": (COLUMN, 2.6), "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.3,
    "lines.markersize": 4, "axes.prop_cycle": matplotlib.cycler(color=PALETTE), "axes.grid": True,
    "grid.alpha": 0.3, "legend.frameon": False, "savefig.dpi": 200, "pdf.fonttype": 42,
}


plt.rcParams.update(STYLE)  # importing this module is choosing the style


def figure(ncols: int = 1, nrows: int = 1, height: float = 2.6):
    """A grid of column-width panels."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(COLUMN * ncols, height * nrows), squeeze=False, layout="constrained")
    return fig, axes


def mosaic(layout: list[list[str]], heights: list[float]):
    """Named panels on a grid of columns (`plt.subplot_mosaic`), one height in inches per row."""
    fig, axes = plt.subplot_mosaic(layout, figsize=(COLUMN * len(layout[0]), sum(heights)), height_ratios=heights,
                                   layout="constrained")
    return fig, axes


def width_guide(ax, widths, anchor_width, anchor_value, slope=-0.5, label=r"$\propto n^{-1/2}$"):
    """A dashed power-law guide through one point, for error-against-width plots."""
    widths = np.asarray(widths, dtype=float)
    ax.plot(widths, anchor_value * (widths / anchor_width) ** slope, ls="--", color="0.4", lw=1, label=label)


def plain_log_ticks(ax, axis: str = "y"):
    """Tick labels like 0.2, 0.3 rather than 2×10⁻¹ on a log axis spanning less than a decade
    (call after the data are drawn); wider axes keep matplotlib's powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    target.set_major_formatter(plain)
    target.set_minor_formatter(plain if high / low < 10 else NullFormatter())


def sequential_colors(count: int) -> list:
    """Ordered colours for an ordered quantity (widths): viridis without its palest end."""
    cmap = matplotlib.colormaps[SEQUENTIAL]
    return [cmap(x) for x in np.linspace(0.0, 0.82, count)] if count > 1 else [cmap(0.0)]


def panel_label(ax, letter: str):
    """(a), (b), … in the top-left corner, outside the data."""
    ax.set_title(f"({letter})", loc="left", fontsize=8, fontweight="bold")


def close(fig):
    plt.close(fig)
