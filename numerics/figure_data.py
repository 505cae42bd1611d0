"""The data behind a figure as tidy rows, read from the drawn figure itself.

Every figure is saved with a CSV beside it, one row per plotted point, so a reader can load any
result into pandas or R without opening cell files. The rows are read back from the matplotlib
artists after `plot` has drawn them, not from a second description of the data, so the CSV holds
exactly what is drawn: lines and markers (error bars attached to their points), scatter points,
bars, shaded bands (their edges) and image maps (one row per pixel, its value in `value`).

Columns: figure, panel (its letter, else its position), panel_title, x_label, y_label, series
(the artist's label, else the legend entry drawn in its colour, else its kind and number), kind,
x, x_category (the tick label where the x axis names categories), y, y_error, value.
"""
from __future__ import annotations

import csv
import io
import re

import numpy as np

COLUMNS = ("figure", "panel", "panel_title", "x_label", "y_label", "series", "kind", "x", "x_category", "y", "y_error",
           "value")


def _text(label) -> str:
    """A label without mathtext's $ and backslashes (\\frac{1}{2} → 1/2, \\alpha → alpha)."""
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", str(label or ""))
    return re.sub(r"\\(mathrm|text|rm)\{([^{}]*)\}", r"\2", text).replace("$", "").replace("\\", "").strip()


def _panel(ax, index: int) -> str:
    letter = ax.get_title(loc="left").strip()
    return letter.strip("()") if letter else str(index + 1)


def _numbers(values) -> np.ndarray:
    return np.ma.filled(np.ma.masked_invalid(np.asarray(values, dtype=float).ravel()), np.nan)


def _colour(artist):
    """The artist's colour as rounded RGB (its face colour for patches and collections), or None."""
    from matplotlib.colors import to_rgb

    for getter in ("get_color", "get_markerfacecolor", "get_facecolor", "get_edgecolor"):
        if hasattr(artist, getter):
            try:
                value = getattr(artist, getter)()
                value = value[0] if hasattr(value, "ndim") and getattr(value, "ndim", 0) == 2 and len(value) else value
                return tuple(round(c, 2) for c in to_rgb(value))
            except (ValueError, TypeError, IndexError):
                continue
    return None


def _legend_names(fig) -> dict:
    """{colour: text} over every legend of the figure, for colours that name one entry only."""
    entries: dict = {}
    legends = [ax.get_legend() for ax in fig.get_axes()] + list(fig.legends)
    for legend in (lg for lg in legends if lg is not None):
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            colour = _colour(handle) if handle is not None else None
            if colour is not None:
                entries.setdefault(colour, set()).add(_text(text.get_text()))
    return {colour: names.pop() for colour, names in entries.items() if len(names) == 1}


def _categories(ax):
    """x ↦ tick label, where the x axis labels categories with words (None otherwise)."""
    ticks = np.asarray(ax.get_xticks(), dtype=float)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    if len(ticks) != len(labels) or not any(re.search(r"[A-Za-z]", label) for label in labels):
        return None
    spacing = np.min(np.diff(np.sort(ticks))) if len(ticks) > 1 else 1.0

    def category(x):
        i = int(np.argmin(np.abs(ticks - x)))
        return _text(labels[i]) if abs(ticks[i] - x) <= spacing / 2 else ""
    return category


def _errors(ax) -> dict:
    """{id of an error bar's data line: half the vertical extent of each of its bars}."""
    out = {}
    for container in ax.containers:
        lines = getattr(container, "lines", None)
        if not (getattr(container, "has_yerr", False) and lines and lines[0] is not None and lines[2]):
            continue
        segments = lines[2][-1].get_segments()
        out[id(lines[0])] = [abs(s[1][1] - s[0][1]) / 2 if len(s) > 1 else np.nan for s in segments]
    return out


def axes_rows(ax, index: int, figure: str, legend: dict | None = None) -> list[dict]:
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    caps = {id(cap) for c in ax.containers if hasattr(c, "has_yerr") for cap in (c.lines[1] or ())}
    base = {"figure": figure, "panel": _panel(ax, index), "panel_title": _text(ax.get_title()),
            "x_label": _text(ax.get_xlabel()), "y_label": _text(ax.get_ylabel())}
    rows, errors, unnamed, legend, category = [], _errors(ax), {}, legend or {}, _categories(ax)
    container_labels = {id(c.lines[0]): c.get_label() for c in ax.containers if hasattr(c, "has_yerr")}

    def name(artist, kind: str) -> str:
        label = container_labels.get(id(artist)) or (artist.get_label() if hasattr(artist, "get_label") else "")
        if label and not label.startswith("_"):
            return _text(label)
        colour = _colour(artist)
        if colour in legend:
            hollow = getattr(artist, "get_markerfacecolor", lambda: "")() == "none"
            return legend[colour] + (" (open markers)" if hollow else "")
        unnamed[kind] = unnamed.get(kind, 0) + 1
        return f"{kind} {unnamed[kind]} (no legend entry)"

    def add(series, kind, xs, ys, err=None, values=None):
        for i, (x, y) in enumerate(zip(xs, ys)):
            rows.append({**base, "series": series, "kind": kind, "x": x, "y": y,
                         "x_category": category(x) if category is not None and np.isfinite(x) else "",
                         "y_error": err[i] if err is not None and i < len(err) else "",
                         "value": values[i] if values is not None else ""})

    for line in ax.get_lines():
        xs, ys = _numbers(line.get_xdata()), _numbers(line.get_ydata())
        if xs.size == 0 or not line.get_visible() or id(line) in caps:  # error-bar caps are in y_error
            continue
        kind = "line" if line.get_linestyle() not in ("None", "", " ", "none") else "points"
        add(name(line, kind), kind, xs, ys, errors.get(id(line)))
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        if isinstance(coll, PathCollection):
            offsets = np.asarray(coll.get_offsets(), dtype=float).reshape(-1, 2)
            add(name(coll, "points"), "points", offsets[:, 0], offsets[:, 1])
        elif isinstance(coll, PolyCollection):
            for path in coll.get_paths():
                vertices = path.vertices
                add(name(coll, "band"), "band edge", vertices[:, 0], vertices[:, 1])
        elif isinstance(coll, LineCollection) and not any(coll in (c.lines[2] if hasattr(c, "lines") else ())
                                                          for c in ax.containers):
            label = name(coll, "segments")
            for segment in coll.get_segments():
                add(label, "segment", segment[:, 0], segment[:, 1])
    for container in ax.containers:
        patches = [p for p in container if isinstance(p, Rectangle)] if hasattr(container, "patches") else []
        if patches:
            label = (_text(container.get_label()) if not str(container.get_label()).startswith("_")
                     else name(patches[0], "bars"))
            add(label, "bar", [p.get_x() + p.get_width() / 2 for p in patches], [p.get_y() + p.get_height() for p in patches])
    for image in ax.get_images():
        if isinstance(image, AxesImage):
            array = np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), np.nan)
            if array.ndim != 2:
                continue
            left, right, bottom, top = image.get_extent()
            rows_, cols = array.shape
            xs = left + (np.arange(cols) + 0.5) * (right - left) / cols
            ys = bottom + (np.arange(rows_) + 0.5) * (top - bottom) / rows_
            if image.origin == "upper":
                ys = ys[::-1]
            grid_x, grid_y = np.meshgrid(xs, ys)
            add(name(image, "map"), "map", grid_x.ravel(), grid_y.ravel(), values=array.ravel())
    return rows


def tidy_rows(fig, figure: str) -> list[dict]:
    """Every plotted point of a drawn figure, one dict per row (`COLUMNS`); colour bars are left out
    (their values are the map's)."""
    axes = [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]
    legend = _legend_names(fig)
    return [row for index, ax in enumerate(axes) for row in axes_rows(ax, index, figure, legend)]


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.10g}" if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
    return buffer.getvalue()
