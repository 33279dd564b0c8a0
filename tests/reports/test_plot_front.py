"""What the plots draw as "Pareto front": the study's own front (``on_front``), in every plot.

The figures are caught as `write_plots` renders them (matplotlib's ``savefig``, plotly's
``to_html``), so the tests read the drawn artists and traces rather than pixels or HTML text.
"""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib.figure
import pandas as pd
import plotly.graph_objects as go
import pytest

from snnprune.reports._plots import write_plots

# (accuracy, macs, sparsity). Maximising accuracy alone, trial 0 is the front; in (macs, accuracy)
# trial 2 is on the 2-D front too (fewest MACs), trials 1 and 3 are dominated by it.
POINTS = ((0.90, 80_000.0, 0.2), (0.80, 90_000.0, 0.1), (0.85, 40_000.0, 0.6), (0.70, 95_000.0, 0.05))


def _frame(on_front: set[int] | None, states: tuple[str, ...] = ("COMPLETE",) * 4) -> pd.DataFrame:
    """The frame `build_report` passes, with the study's front in ``on_front`` (None: no column)."""
    rows = [{"number": i, "state": s, "pruner": ("gmp", "sca")[i % 2], "accuracy": a, "macs": m, "sparsity": sp}
            for i, ((a, m, sp), s) in enumerate(zip(POINTS, states))]
    df = pd.DataFrame(rows)
    if on_front is not None:
        df["on_front"] = df["number"].isin(on_front).astype(int)
    return df


class Drawn:
    """Every figure `write_plots` rendered, found by how its title starts: matplotlib axes and
    plotly figures."""

    def __init__(self) -> None:
        self.png: dict[str, Any] = {}
        self.html: dict[str, go.Figure] = {}

    def axes(self, stem: str) -> Any:
        return next(ax for title, ax in self.png.items() if title.startswith(stem))

    def figure(self, stem: str) -> go.Figure:
        return next(fig for title, fig in self.html.items() if title.startswith(stem))


@pytest.fixture
def drawn(monkeypatch) -> Drawn:
    seen = Drawn()
    savefig, to_html = matplotlib.figure.Figure.savefig, go.Figure.to_html

    def spy_savefig(fig, *args, **kwargs):
        ax = fig.axes[0]
        seen.png[ax.get_title()] = ax
        return savefig(fig, *args, **kwargs)

    def spy_to_html(fig, *args, **kwargs):
        seen.html[fig.layout.title.text] = fig
        return to_html(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy_savefig)
    monkeypatch.setattr(go.Figure, "to_html", spy_to_html)
    return seen


def _png_labelled(ax, label: str) -> set[tuple[float, float]]:
    """Points of the matplotlib artists carrying ``label`` (lines and scatter collections)."""
    points: set[tuple[float, float]] = set()
    for line in ax.get_lines():
        if line.get_label() == label:
            points |= {(float(a), float(b)) for a, b in zip(line.get_xdata(), line.get_ydata())}
    for coll in ax.collections:
        if coll.get_label() == label:
            points |= {(float(a), float(b)) for a, b in coll.get_offsets()}
    return points


def _html_labelled(fig: go.Figure, label: str) -> set[tuple[float, float]]:
    return {(float(a), float(b)) for t in fig.data if t.name == label for a, b in zip(t.x, t.y)}


def _at(numbers, x: str, y: str) -> set[tuple[float, float]]:
    cols = {"accuracy": 0, "macs": 1, "sparsity": 2}
    return {(POINTS[n][cols[x]], POINTS[n][cols[y]]) for n in numbers}


def test_one_objective_study_draws_its_own_front_not_the_2d_one(drawn, tmp_path):
    # bug: pareto.png/html drew a "Pareto front" of trials 0 and 2 (the 2-D front over macs and
    # accuracy) while report.md and export --pareto showed the study's front, trial 0 alone
    write_plots(_frame({0}), tmp_path, directions={"accuracy": "maximize"})
    ax, fig = drawn.axes("Pareto front"), drawn.figure("Pareto front")
    assert _png_labelled(ax, "Pareto front") == _at([0], "macs", "accuracy")
    assert _html_labelled(fig, "Pareto front") == _at([0], "macs", "accuracy")
    # the staircase over the plot's own axes is still there, under a name that says what it is
    other = "front in (MACs, validation accuracy)"
    assert _png_labelled(ax, other) == _at([0, 2], "macs", "accuracy")
    assert _html_labelled(fig, other) == _at([0, 2], "macs", "accuracy")
    assert [t.get_text() for t in ax.get_legend().get_texts()].count("Pareto front") == 1


@pytest.mark.parametrize("stem", ["accuracy_vs_sparsity", "accuracy_vs_macs"])
def test_every_plot_highlights_the_study_front(drawn, tmp_path, stem):
    # the accuracy plots showed no front at all, so the study's best trials could not be picked out
    write_plots(_frame({0}), tmp_path, directions={"accuracy": "maximize"})
    title = {"accuracy_vs_sparsity": "vs sparsity", "accuracy_vs_macs": "vs MACs"}[stem]
    x = stem.rsplit("_", 1)[1]
    ax, fig = drawn.axes(f"validation accuracy {title}"), drawn.figure(f"validation accuracy {title}")
    assert _png_labelled(ax, "Pareto front") == _at([0], x, "accuracy")
    assert _html_labelled(fig, "Pareto front") == _at([0], x, "accuracy")
    # no second staircase there: the plot stays a scatter with the front picked out
    assert not [t for t in fig.data if str(t.name).startswith("front in")]
    assert not [ln for ln in ax.get_lines() if ln.get_label().startswith("front in")]


def test_axes_that_are_the_two_objectives_draw_one_staircase_as_before(drawn, tmp_path):
    front = {0, 2}  # the study's front over (accuracy max, macs min)
    write_plots(_frame(front), tmp_path, directions={"accuracy": "maximize", "macs": "minimize"})
    ax, fig = drawn.axes("Pareto front"), drawn.figure("Pareto front")
    lines = [ln for ln in ax.get_lines() if ln.get_label() == "Pareto front"]
    assert len(lines) == 1 and set(zip(lines[0].get_xdata(), lines[0].get_ydata())) == _at(front, "macs", "accuracy")
    traces = [t for t in fig.data if t.name == "Pareto front"]
    assert len(traces) == 1 and traces[0].mode == "lines+markers"
    assert set(zip(traces[0].x, traces[0].y)) == _at(front, "macs", "accuracy")
    assert not [t for t in fig.data if str(t.name).startswith("front in")]


def test_without_on_front_the_front_is_taken_over_the_study_objectives(drawn, tmp_path):
    # a hand-made frame: the front is computed over the objectives `directions` names, as report.md does
    write_plots(_frame(None), tmp_path, directions={"accuracy": "maximize"})
    assert _html_labelled(drawn.figure("Pareto front"), "Pareto front") == _at([0], "macs", "accuracy")


def test_a_study_whose_trials_were_all_stopped_has_a_legend_of_what_is_drawn(drawn, tmp_path):
    # bug: each pruner was labelled on its (empty) scatter of complete trials, so the legend named
    # pruners without a marker; with nothing else labelled matplotlib warned "No artists with
    # labels found to put in legend" on stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = write_plots(_frame(set(), states=("PRUNED",) * 4), tmp_path, directions={"accuracy": "maximize"})
    assert "pareto.png" in written
    for ax in drawn.png.values():
        handles, labels = ax.get_legend_handles_labels()
        assert sorted(labels) == ["gmp", "sca"]
        assert all(len(h.get_offsets()) for h in handles), "a legend entry for an artist that draws nothing"
