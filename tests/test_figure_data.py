"""The tidy rows read back from a drawn figure (numerics.figure_data): every kind of artist the
figures use, named as a reader would name it."""
import csv
import io

import numpy as np
import pytest
from matplotlib.lines import Line2D

from numerics import style
from numerics.figure_data import COLUMNS, tidy_rows, to_csv


@pytest.fixture()
def figure():
    fig, axes = style.figure(ncols=2)
    ax, right = axes[0]
    ax.plot([1, 2, 3], [1.0, 4.0, 9.0], label="$n=64$")
    ax.errorbar([1, 2], [2.0, 3.0], yerr=[0.5, 0.25], color=style.PALETTE[1], ls="none", marker="o")
    ax.plot([1, 3], [0, 0], color="0.5", ls="--")  # a guide, no legend entry
    ax.fill_between([1, 2, 3], [0, 1, 2], [1, 2, 3], color=style.PALETTE[2], alpha=0.3)
    ax.legend(handles=[Line2D([], [], color=style.PALETTE[1], marker="o", ls="none", label="seeds")])
    ax.set_xlabel(r"step $t$")
    ax.set_ylabel(r"loss ($\frac{1}{2}$MSE)")
    style.panel_label(ax, "a")
    right.bar([0, 1], [0.7, 0.9], label="accuracy")
    right.set_xticks([0, 1], ["digits", "tomita:3"])
    right.imshow(np.arange(6.0).reshape(2, 3), extent=(0, 3, 0, 2))
    style.panel_label(right, "b")
    yield fig
    style.close(fig)


def test_every_plotted_point_is_a_row(figure):
    rows = tidy_rows(figure, "X1")
    by = lambda **kw: [r for r in rows if all(r[k] == v for k, v in kw.items())]  # noqa: E731
    line = by(series="n=64")
    assert [(r["x"], r["y"]) for r in line] == [(1, 1), (2, 4), (3, 9)] and line[0]["panel"] == "a"
    assert line[0]["x_label"] == "step t" and line[0]["y_label"] == "loss (1/2MSE)"
    seeds = by(series="seeds")  # an error bar named by the legend entry drawn in its colour
    assert [(r["y"], r["y_error"]) for r in seeds] == [(2.0, 0.5), (3.0, 0.25)]
    assert len(by(kind="line", series="line 1 (no legend entry)")) == 2
    assert len(by(kind="band edge")) > 0
    bars = by(kind="bar")
    assert [(r["x_category"], r["y"]) for r in bars] == [("digits", 0.7), ("tomita:3", 0.9)]
    pixels = by(kind="map")
    assert len(pixels) == 6 and {r["value"] for r in pixels} == set(range(6))
    assert {r["panel"] for r in pixels} == {"b"}


def test_csv_round_trip(figure):
    rows = tidy_rows(figure, "X1")
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(table) == len(rows) and list(table[0]) == list(COLUMNS)
    assert float(table[0]["y"]) == rows[0]["y"]


def test_series_of_one_colour_are_told_apart_and_log_axes_name_no_categories():
    fig, axes = style.figure(ncols=2)
    ax, right = axes[0]
    colour = style.PALETTE[1]
    ax.semilogx([1, 10, 100], [3.0, 2.0, 1.0], color=colour, label="PLRNN")
    ax.semilogx([1, 10, 100], [4.0, 4.0, 4.0], color=colour, ls=":")  # its bound, same colour, no label
    ax.legend(handles=[Line2D([], [], color=colour, label="PLRNN"),
                       Line2D([], [], color="0.3", ls=":", label="stepwise bound")])
    right.errorbar([0, 1, 2], [1.0, 2.0, 3.0], yerr=[0.1, 0.2, 0.3], errorevery=2, color=colour, label="every other")
    right.bar([5, 6], [1.0, 2.0], yerr=[0.5, 0.25], color=style.PALETTE[2])  # the bars carry their errors
    right.errorbar([8, 9], [1.0, 2.0], yerr=[0.5, 0.25], fmt="none", ecolor="k")  # error bars without a data line
    rows = tidy_rows(fig, "X2")
    style.close(fig)
    named = {r["series"] for r in rows if r["panel"] == "1"}
    assert "PLRNN" in named and len(named) == 2  # the dotted bound is not filed under "PLRNN"
    assert all(r["x_category"] == "" for r in rows)  # powers of ten are not categories
    every = [r for r in rows if r["series"] == "every other"]
    assert [r["y_error"] for r in every] == [pytest.approx(0.1), "", pytest.approx(0.3)]  # on their own points
    loose = [r for r in rows if r["kind"] == "error bar"]
    assert [(r["x"], r["y"], r["y_error"]) for r in loose] == [(8, 1.0, 0.5), (9, 2.0, 0.25)]
    bars = [r for r in rows if r["kind"] == "bar"]
    assert [(r["x"], r["y"], r["y_error"]) for r in bars] == [(5, 1.0, 0.5), (6, 2.0, 0.25)]
