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


def _look(artist) -> tuple:
    """What tells series apart in a legend: colour, line style and marker (hollow or filled)."""
    style = getattr(artist, "get_linestyle", lambda: None)()
    style = style if isinstance(style, str) else None  # collections and patches: not told apart by it
    marker = getattr(artist, "get_marker", lambda: None)()
    marker = marker if isinstance(marker, str) else None
    hollow = getattr(artist, "get_markerfacecolor", lambda: "")() == "none"
    return (_colour(artist), None if style in ("None", "", " ", "none") else style,
            None if marker in ("None", "", " ", "none", None) else marker, hollow)


def _legend_names(legends: list) -> dict:
    """{look: text} and {colour: (text, look)} over the given legends, for keys that name one entry only."""
    entries: dict = {}
    for legend in (lg for lg in legends if lg is not None):
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if handle is not None and _colour(handle) is not None:
                look = _look(handle)
                for key in (look, look[0]):
                    entries.setdefault(key, set()).add((_text(text.get_text()), look))
    return {key: next(iter(found)) for key, found in entries.items() if len({name for name, _ in found}) == 1}


STYLES = {":": "dotted", "--": "dashed", "-.": "dash-dot", "-": "solid"}


def _legend_name(look: tuple, legend: dict) -> str | None:
    """The legend entry drawn like this artist; failing that, the one entry of its colour, with what
    differs said (a dotted bound, open markers for released values)."""
    if look in legend:
        return legend[look][0]
    if look[0] in legend:
        name, entry = legend[look[0]]
        extra = ([STYLES.get(look[1], "line")] if look[1] != entry[1] and look[1] else []) + \
            (["open markers"] if look[3] and not entry[3] else [])
        return name + (f" ({', '.join(extra)})" if extra else "")
    return None


def _categories(ax):
    """x ↦ tick label, where a linear x axis has ticks placed by hand (or by category) and words for
    labels (None otherwise: numbers, log axes)."""
    from matplotlib.category import StrCategoryLocator
    from matplotlib.ticker import FixedLocator

    if ax.get_xscale() != "linear" or not isinstance(ax.xaxis.get_major_locator(), (FixedLocator, StrCategoryLocator)):
        return None
    ticks = np.asarray(ax.get_xticks(), dtype=float)
    labels = [_text(t.get_text()) for t in ax.get_xticklabels()]
    if len(ticks) != len(labels) or not any(re.search(r"[A-Za-z]", label) for label in labels):
        return None
    spacing = np.min(np.diff(np.sort(ticks))) if len(ticks) > 1 else 1.0

    def category(x):
        i = int(np.argmin(np.abs(ticks - x)))
        return labels[i] if abs(ticks[i] - x) <= spacing / 2 else ""
    return category


def _bar_errors(container) -> dict:
    """{x: half extent} of an error-bar container's vertical bars (empty for None)."""
    lines = getattr(container, "lines", None)
    if not (lines and lines[2]):
        return {}
    return {seg[0][0]: abs(seg[1][1] - seg[0][1]) / 2 for seg in lines[2][-1].get_segments() if len(seg) > 1}


def _errors(ax) -> tuple[dict, list]:
    """({id of an error bar's data line: {x: half the bar's extent}}, [(x, y centre, half extent) of
    error bars drawn without a data line (fmt='none', bar(yerr=…))])."""
    keyed, loose = {}, []
    on_bars = {id(getattr(c, "errorbar", None)) for c in ax.containers if getattr(c, "errorbar", None) is not None}
    for container in ax.containers:
        lines = getattr(container, "lines", None)
        if not (getattr(container, "has_yerr", False) and lines and lines[2]) or id(container) in on_bars:
            continue  # a bar chart's error bars go with its bars
        bars = [(s[0][0], (s[0][1] + s[1][1]) / 2, abs(s[1][1] - s[0][1]) / 2)
                for s in lines[2][-1].get_segments() if len(s) > 1]
        if lines[0] is not None:
            keyed[id(lines[0])] = {x: half for x, _, half in bars}
        else:
            loose.append((container.get_label(), bars))
    return keyed, loose


def axes_rows(ax, index: int, figure: str, figure_legend: dict | None = None) -> list[dict]:
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    caps = {id(cap) for c in ax.containers if hasattr(c, "has_yerr") for cap in (c.lines[1] or ())}
    base = {"figure": figure, "panel": _panel(ax, index), "panel_title": _text(ax.get_title()),
            "x_label": _text(ax.get_xlabel()), "y_label": _text(ax.get_ylabel())}
    (errors, loose), unnamed, category = _errors(ax), {}, _categories(ax)
    rows, legend = [], {**(figure_legend or {}), **_legend_names([ax.get_legend()])}  # the axes' own legend first
    container_labels = {id(c.lines[0]): c.get_label() for c in ax.containers if hasattr(c, "has_yerr")}

    def name(artist, kind: str) -> str:
        label = container_labels.get(id(artist)) or (artist.get_label() if hasattr(artist, "get_label") else "")
        if label and not label.startswith("_"):
            return _text(label)
        named = _legend_name(_look(artist), legend)
        if named:
            return named
        unnamed[kind] = unnamed.get(kind, 0) + 1
        return f"{kind} {unnamed[kind]} (no legend entry)"

    def add(series, kind, xs, ys, err=None, values=None):
        for i, (x, y) in enumerate(zip(xs, ys)):
            rows.append({**base, "series": series, "kind": kind, "x": x, "y": y,
                         "x_category": category(x) if category is not None and np.isfinite(x) else "",
                         "y_error": err[i] if err is not None and i < len(err) else "",
                         "value": values[i] if values is not None else ""})

    for line in ax.get_lines():
        if not line.get_visible() or id(line) in caps:  # error-bar caps are in y_error
            continue
        try:
            xs, ys = _numbers(line.get_xdata()), _numbers(line.get_ydata())
        except (TypeError, ValueError):  # categorical strings: their positions on the axis
            xs, ys = _numbers(line.get_xdata(orig=False)), _numbers(line.get_ydata(orig=False))
        if xs.size == 0:
            continue
        kind = "line" if line.get_linestyle() not in ("None", "", " ", "none") else "points"
        half = errors.get(id(line), {})
        add(name(line, kind), kind, xs, ys, [half.get(x, "") for x in xs] if half else None)
    for label, bars in loose:
        series = _text(label) if label and not str(label).startswith("_") else "error bars (no legend entry)"
        add(series, "error bar", [b[0] for b in bars], [b[1] for b in bars], [b[2] for b in bars])
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
            xs = [p.get_x() + p.get_width() / 2 for p in patches]
            half = _bar_errors(getattr(container, "errorbar", None))
            add(label, "bar", xs, [p.get_y() + p.get_height() for p in patches],
                [half.get(x, "") for x in xs] if half else None)
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
    legend = _legend_names(list(fig.legends))
    return [row for index, ax in enumerate(axes) for row in axes_rows(ax, index, figure, legend)]


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.10g}" if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
    return buffer.getvalue()
