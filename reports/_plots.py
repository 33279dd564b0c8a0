"""Plots of a study: the Pareto front, accuracy against sparsity and MACs, hypervolume over trials.

Input is a pandas DataFrame with one row per trial (``number``, ``state``, ``pruner``, the
objective columns, ``sparsity``, ``macs``, ``accuracy``, ``test_accuracy``, ``on_front``);
the numbers come from `snnprune.reports._pareto`, this module only draws. "Pareto front" on a plot
is always the study's front (``on_front``, the trials search, report.md and ``export --pareto``
list), whatever the axes; a 2-D front over the axes, where it differs, is drawn under its own
name ("front in (MACs, validation accuracy)"). Each plot is written
twice: a PNG for papers and Markdown, and a self-contained HTML page (plotly.js inlined, no
CDN) to hover over trials offline. Matplotlib draws through ``Figure`` and the Agg canvas,
never pyplot, so no display is opened and the caller's backend is left alone.
Every file is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from snnprune.engine import atomic_write_bytes
from snnprune.errors import UserError

from ._pareto import HypervolumeSummary, pareto_mask, study_hypervolume
from ._summary import _front, _states, dense_of, trials_view

__all__ = ["DEFAULT_DIRECTIONS", "PLOT_STEMS", "check_axes", "front_line", "log_scale", "plottable", "pruner_colors",
           "study_front", "write_plots"]

#: Directions of the metrics a study can optimise (what "better" means on each axis).
DEFAULT_DIRECTIONS = {"accuracy": "maximize", "test_accuracy": "maximize", "sparsity": "maximize",
                      "macs": "minimize", "params": "minimize", "sops": "minimize", "energy": "minimize",
                      "energy_uj": "minimize", "macs_ratio": "minimize"}
#: The script every HTML plot loads from its own folder (`write_plotly_js`).
PLOTLY_JS = "plotly.min.js"
#: The plots `write_plots` may write, each as .png and .html.
PLOT_STEMS = ("pareto", "accuracy_vs_sparsity", "accuracy_vs_macs", "hypervolume")
#: Cost axes that span orders of magnitude between a dense and a heavily pruned network.
LOG_AXES = ("macs", "params", "sops", "energy", "energy_uj")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
LABELS = {"macs": "MACs", "sops": "SOPs", "energy": "energy (uJ)", "energy_uj": "energy (uJ)",
          "params": "non-zero parameters", "accuracy": "validation accuracy", "test_accuracy": "test accuracy",
          "sparsity": "sparsity", "macs_ratio": "MACs / dense MACs"}
#: The name of the study's own front on every plot; a 2-D front over other axes is named apart.
FRONT_LABEL = "Pareto front"


def log_scale(name: str, values: Sequence[float]) -> bool:
    """A log axis for a cost metric whose positive values span more than one decade."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    return name in LOG_AXES and len(vals) > 1 and max(vals) / min(vals) > 10.0


def pruner_colors(pruners: Sequence[Any]) -> dict[str, str]:
    """One stable colour per pruner name (sorted), the same in the PNG and the HTML."""
    names = sorted({str(p) for p in pruners})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _usable(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Finished trials (complete or stopped early) with finite x and y; ``_feasible`` is False
    for a trial marked ``feasible`` 0 (it breaks the space's constraints). A trial paused at a
    rung that went on later (``paused`` 1) is left out: the trial that resumed it stands for it."""
    if x not in df or y not in df:
        return df.iloc[0:0]
    went_on = pd.to_numeric(df["paused"], errors="coerce").eq(1) if "paused" in df else pd.Series(False, df.index)
    out = df[(_states(df).isin(["COMPLETE", "PRUNED"]) & ~went_on).to_numpy()].copy()
    for col in (x, y):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    out = out[np.isfinite(out[x].to_numpy(dtype=float)) & np.isfinite(out[y].to_numpy(dtype=float))]
    out["_complete"] = _states(out).eq("COMPLETE").to_numpy()
    mark = pd.to_numeric(out["feasible"], errors="coerce") if "feasible" in out else pd.Series(np.nan, out.index)
    out["_feasible"] = ~mark.eq(0).to_numpy()
    out["_pruner"] = out["pruner"].astype(str) if "pruner" in out else "trial"
    return out


def plottable(df: pd.DataFrame, objectives: Sequence[str] = ()) -> list[str]:
    """The columns an axis can take: a number (or nothing yet) in every trial.

    A column with no value yet (a study with no finished trial) counts only when it is a known
    metric or an objective; text, JSON (``firing_rates``, ``config``, ``hp``) and times never do.
    """
    known = [*DEFAULT_DIRECTIONS, *(o for o in objectives if o not in DEFAULT_DIRECTIONS)]
    if df.empty:
        return known
    out = []
    for col in df.columns:
        values = df[col].dropna()
        if values.empty:
            ok = col in known
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
            ok = False
        else:
            ok = bool(values.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool)).all())
        if ok and not str(col).startswith("_"):
            out.append(str(col))
    return out


def check_axes(df: pd.DataFrame, x: str, y: str, objectives: Sequence[str] = ()) -> None:
    """Refuse an axis that cannot be plotted, in one line naming what can, before anything is
    written (a text column used to give no front plot and no hypervolume, silently)."""
    columns = plottable(df, objectives)
    for name in (x, y):
        if name in columns:
            continue
        listed = [c for c in (*DEFAULT_DIRECTIONS, *objectives) if c in columns]
        known = ", ".join(dict.fromkeys(listed)) or "none"
        if name in df.columns:
            raise UserError(f"column {name!r} is not a number per trial, so it cannot be plotted; "
                            f"plottable: {known}")
        raise UserError(f"trials have no column {name!r}; plottable: {known}")


def front_line(df: pd.DataFrame, x: str, y: str, directions: Sequence[str]) -> pd.DataFrame:
    """The 2-D front of complete trials in (x, y), sorted by x: the staircase over a plot's axes.

    It is the study's front only where (x, y) are the study's two objectives; `write_plots`
    checks that before calling it "Pareto front" (`study_front` is the study's own).

    The steps follow the region the front attains: with x minimised each point holds its y until
    the next point's x ("post"), with x maximised it holds from the previous one ("pre").
    """
    done = _usable(df, x, y)
    done = done[done["_complete"] & done["_feasible"]]
    if done.empty:
        return done
    mask = pareto_mask(done[[x, y]].to_numpy(dtype=float).tolist(), directions)
    return done[np.asarray(mask)].sort_values([x, y])


def study_front(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """The study's own front rows (index kept): the non-dominated complete feasible trials over
    ``objectives``, as report.md takes them, so a plot cannot show another front than the report
    beside it; the frame's ``on_front`` when no objective is among its columns."""
    names = [n for n in objectives if n in df]
    if names:
        return _front(df, names, [d for n, d in zip(objectives, directions) if n in df])
    if "on_front" in df:  # objectives unknown (an empty mapping): `_front` needs one to sort by
        return df[df["on_front"].fillna(False).astype(bool).to_numpy()]
    return df.iloc[0:0]


def _hover(row: Mapping[str, Any]) -> str:
    parts = [f"trial {int(row['number'])}" if "number" in row else "trial", str(row.get("_pruner", ""))]
    if _num(row.get("target_sparsity")) is not None:
        parts.append(f"target sparsity {float(row['target_sparsity']):.3g}")
    for col in ("accuracy", "test_accuracy", "sparsity", "macs", "sops", "energy"):
        if _num(row.get(col)) is not None:
            parts.append(f"{col} {float(row[col]):.4g}")
    return "<br>".join(parts)


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _dense_point(dense: Mapping[str, Any] | None, x: str, y: str) -> tuple[float, float] | None:
    """Where the dense network sits (its sparsity is 0, its MACs ratio 1)."""
    if not dense:
        return None
    implied = {"sparsity": 0.0, "macs_ratio": 1.0}
    px, py = _num(dense.get(x, implied.get(x))), _num(dense.get(y, implied.get(y)))
    return None if px is None or py is None else (px, py)


def _joined(stairs: pd.DataFrame | None, stairs_label: str) -> bool:
    """Whether the staircase is the study's front itself, drawn as one "Pareto front" line."""
    return stairs is not None and not stairs.empty and stairs_label == FRONT_LABEL


def _png(df: pd.DataFrame, x: str, y: str, title: str, *, front: pd.DataFrame | None,
         stairs: pd.DataFrame | None, stairs_label: str, dense: tuple[float, float] | None, logx: bool,
         steps: str = "post") -> bytes:
    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = pruner_colors(df["_pruner"])
    for name, group in df.groupby("_pruner", sort=True):
        done, stopped = group[group["_complete"] & group["_feasible"]], group[~group["_complete"]]
        infeasible = group[group["_complete"] & ~group["_feasible"]]
        # the pruner is named on its first drawn part: an empty labelled scatter gave a legend
        # entry without a marker (every trial stopped early)
        label = {"label": name}
        for part, style in ((done, {"color": colors[name], "alpha": 0.75, "s": 22}),
                            (stopped, {"facecolors": "none", "edgecolors": colors[name], "alpha": 0.6, "s": 22}),
                            (infeasible, {"marker": "x", "color": colors[name], "alpha": 0.6, "s": 26})):
            if not part.empty:
                ax.scatter(part[x], part[y], **style, **label)
                label = {}
    joined = _joined(stairs, stairs_label)
    if stairs is not None and not stairs.empty:
        style = {"color": "black", "lw": 1.2, "zorder": 3} if joined else \
            {"color": "0.5", "lw": 1.0, "ls": "--", "zorder": 2}
        ax.step(stairs[x], stairs[y], where=steps, label=stairs_label, **style)
    if front is not None and not front.empty:
        ax.scatter(front[x], front[y], s=60, facecolors="none", edgecolors="black", lw=1.4, zorder=4,
                   **({} if joined else {"label": FRONT_LABEL}))
    if dense is not None:
        ax.scatter([dense[0]], [dense[1]], marker="*", s=180, color="gold", edgecolors="black", zorder=5,
                   label="dense baseline")
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # else matplotlib warns "No artists with labels found"
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _html(df: pd.DataFrame, x: str, y: str, title: str, *, front: pd.DataFrame | None,
          stairs: pd.DataFrame | None, stairs_label: str, dense: tuple[float, float] | None, logx: bool,
          steps: str = "post") -> bytes:
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = pruner_colors(df["_pruner"])
    kinds = {(True, True): ("", "circle"), (False, True): (" (stopped early)", "circle-open"),
             (False, False): (" (stopped early)", "circle-open"), (True, False): (" (breaks constraints)", "x")}
    for name, group in df.groupby("_pruner", sort=True):
        for (complete, feasible), part in group.groupby(["_complete", "_feasible"]):
            suffix, symbol = kinds[(bool(complete), bool(feasible))]
            fig.add_trace(go.Scatter(
                x=part[x].tolist(), y=part[y].tolist(), mode="markers", name=f"{name}{suffix}",
                marker={"color": colors[name], "size": 8, "symbol": symbol},
                text=[_hover(r) for r in part.to_dict("records")], hoverinfo="text"))
    shape = "hv" if steps == "post" else "vh"
    marker = {"size": 12, "symbol": "circle-open", "color": "black"}
    if _joined(stairs, stairs_label):
        fig.add_trace(go.Scatter(x=stairs[x].tolist(), y=stairs[y].tolist(), mode="lines+markers",
                                 line={"shape": shape, "color": "black"}, name=FRONT_LABEL, marker=marker,
                                 text=[_hover(r) for r in stairs.to_dict("records")], hoverinfo="text"))
    else:
        if stairs is not None and not stairs.empty:
            fig.add_trace(go.Scatter(x=stairs[x].tolist(), y=stairs[y].tolist(), mode="lines", name=stairs_label,
                                     line={"shape": shape, "color": "grey", "dash": "dash", "width": 1},
                                     text=[_hover(r) for r in stairs.to_dict("records")], hoverinfo="text"))
        if front is not None and not front.empty:
            fig.add_trace(go.Scatter(x=front[x].tolist(), y=front[y].tolist(), mode="markers", name=FRONT_LABEL,
                                     marker=marker, text=[_hover(r) for r in front.to_dict("records")],
                                     hoverinfo="text"))
    if dense is not None:
        fig.add_trace(go.Scatter(x=[dense[0]], y=[dense[1]], mode="markers", name="dense baseline",
                                 marker={"symbol": "star", "size": 16, "color": "gold"},
                                 text=["dense baseline"], hoverinfo="text+x+y"))
    fig.update_layout(title=title, xaxis_title=LABELS.get(x, x), yaxis_title=LABELS.get(y, y),
                      template="plotly_white")
    if logx:
        fig.update_xaxes(type="log")
    return fig.to_html(include_plotlyjs="directory", full_html=True).encode()


def _hv_png(hv: HypervolumeSummary, title: str) -> bytes:
    fig = Figure(figsize=(6.4, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.step(hv.numbers, hv.history, where="post", color=PALETTE[0])
    ax.set_xlabel("trial")
    ax.set_ylabel("normalised hypervolume")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _hv_html(hv: HypervolumeSummary, title: str) -> bytes:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=list(hv.numbers), y=list(hv.history), mode="lines+markers",
                               line={"shape": "hv"}, name="hypervolume",
                               text=[f"trial {n}" for n in hv.numbers], hoverinfo="text+y"))
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title="normalised hypervolume",
                      template="plotly_white")
    return fig.to_html(include_plotlyjs="directory", full_html=True).encode()


def _directions(directions: Mapping[str, str] | Sequence[str] | None, x: str, y: str) -> dict[str, str]:
    """Objective -> direction: a mapping as given, a pair read as (x, y), or the defaults."""
    if directions is None:
        missing = [n for n in (x, y) if n not in DEFAULT_DIRECTIONS]
        if missing:
            raise UserError(f"no default direction for {missing[0]!r}: pass directions={{name: 'maximize'|...}}")
        return {x: DEFAULT_DIRECTIONS[x], y: DEFAULT_DIRECTIONS[y]}
    if isinstance(directions, Mapping):
        out = {str(k): str(getattr(v, "name", v)).lower() for k, v in directions.items()}
    else:
        if len(directions) != 2:
            raise UserError("directions as a list must be the pair (x, y); pass a mapping for more objectives")
        out = {x: str(getattr(directions[0], "name", directions[0])).lower(),
               y: str(getattr(directions[1], "name", directions[1])).lower()}
    for name in (x, y):
        out.setdefault(name, DEFAULT_DIRECTIONS.get(name, "minimize"))
    return out


def write_plotly_js(out_dir: Path) -> Path:
    """plotly.js beside the HTML plots, which load it by a relative path (offline, as before).

    Each plot embedded its own copy: 4.8 MB per file, about 19 MB per report of four plots, most
    of a run folder's size. One shared copy keeps a report near 5 MB; the report folder is the
    unit to copy. Rewritten only when it differs (another plotly version)."""
    from plotly.offline import get_plotlyjs

    code = get_plotlyjs().encode()
    path = out_dir / PLOTLY_JS
    if path.is_file() and path.stat().st_size == len(code) and path.read_bytes() == code:
        return path
    return atomic_write_bytes(path, code)


def write_plots(df: pd.DataFrame, out_dir: str | Path, x: str = "macs", y: str = "accuracy",
                dense: Mapping[str, Any] | None = None,
                directions: Mapping[str, str] | Sequence[str] | None = None,
                reference: Sequence[float] | None = None) -> dict[str, Path]:
    """Write every plot the data allows, as PNG and offline HTML; returns file name -> path.
    The HTML plots share one plotly.js (`PLOTLY_JS`), written beside them.

    ``directions`` maps the study's objectives to "maximize"/"minimize" (the hypervolume is
    taken over those objectives only, whatever x and y are); a plain pair is read as (x, y),
    and is then what the hypervolume is over. Every plot marks the study's front as "Pareto
    front" (`study_front`: the front over those objectives), so it is the
    front report.md and ``export --pareto`` list; where it is the 2-D front of the plot's axes it
    is drawn as that staircase. Where it is not (one objective, three, or x/y another metric),
    pareto.* also draws the 2-D front of x and y, dashed and named "front in (x, y)", since
    that trade-off is what --x/--y asked to see; the accuracy plots only mark the front, to
    stay readable. An x or y that is not a number per trial is a `UserError` before anything is
    written (`check_axes`); a plot whose data is empty is skipped rather than drawn blank; a
    study with no trial gets none.
    The frame may be the results store's (`trials_view` fills the plain columns); without
    ``dense`` the baseline recorded in it is marked. Trials marked ``feasible`` 0 are drawn as
    crosses and left off the front and the hypervolume.
    """
    df = trials_view(df)
    dense = dense if dense is not None else dense_of(df)
    objectives = [str(k) for k in directions] if isinstance(directions, Mapping) else [x, y]
    check_axes(df, x, y, objectives)
    if df.empty:
        return {}
    out_dir = Path(out_dir)
    dirs = _directions(directions, x, y)
    front = study_front(df, objectives, [dirs[n] for n in objectives])
    written: dict[str, Path] = {}

    def save(stem: str, png: bytes, html: bytes) -> None:
        if PLOTLY_JS not in written:
            written[PLOTLY_JS] = write_plotly_js(out_dir)
        written[f"{stem}.png"] = atomic_write_bytes(out_dir / f"{stem}.png", png)
        written[f"{stem}.html"] = atomic_write_bytes(out_dir / f"{stem}.html", html)

    plots = [("pareto", x, y, f"Pareto front: {LABELS.get(y, y)} vs {LABELS.get(x, x)}", True)]
    plots += [(f"accuracy_vs_{c}", c, "accuracy", f"validation accuracy vs {LABELS[c]}", False)
              for c in ("sparsity", "macs")]
    for stem, px, py, title, chosen_axes in plots:
        data = _usable(df, px, py)
        if data.empty:
            continue
        pair = [dirs.get(px, DEFAULT_DIRECTIONS.get(px, "minimize")),
                dirs.get(py, DEFAULT_DIRECTIONS.get(py, "maximize"))]
        shown = data[data.index.isin(front.index)]
        stairs = front_line(df, px, py, pair)
        label = FRONT_LABEL if set(stairs.index) == set(shown.index) else \
            f"front in ({LABELS.get(px, px)}, {LABELS.get(py, py)})"
        if label != FRONT_LABEL and not chosen_axes:  # --x/--y: pareto.* only
            stairs = None
        kw = {"front": shown, "stairs": stairs, "stairs_label": label, "dense": _dense_point(dense, px, py),
              "logx": log_scale(px, data[px].tolist()), "steps": "post" if pair[0] == "minimize" else "pre"}
        save(stem, _png(data, px, py, title, **kw), _html(data, px, py, title, **kw))
    objectives = [name for name in objectives if name in df.columns]
    hv = study_hypervolume(df.to_dict("records"), objectives, [dirs[n] for n in objectives],
                           reference=reference) if len(objectives) >= 2 else None
    if hv is not None:
        ref = ", ".join(f"{n}={v:.4g}" for n, v in zip(hv.objectives, hv.reference))
        title = f"hypervolume over trials (reference {ref})"
        save("hypervolume", _hv_png(hv, title), _hv_html(hv, title))
    return written
