"""The study's tables for people: ``trials.csv`` for spreadsheets and pandas, ``report.md`` to read.

Both take the trials DataFrame the plots take (one row per trial: ``number``, ``state``,
``pruner``, ``target_sparsity``, the metrics, ``on_front``; hyperparameters as a
``hyperparameters`` column of dicts or as ``hp.*`` / ``params_*`` columns). The report puts
the Pareto front next to the dense baseline, so "how much cheaper, for how much accuracy"
is answered on one page. Files are written through a temporary file and a rename.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from snnprune.engine import atomic_write_bytes
from snnprune.errors import UserError

from ._pareto import HypervolumeSummary, pareto_mask, study_hypervolume

__all__ = ["dense_of", "hyperparameters_of", "trials_view", "write_report_md", "write_trials_csv"]

HP_PREFIXES = ("hp.", "hp_", "params_")
FRONT_COLUMNS = (("trial", "number"), ("pruner", "pruner"), ("target sparsity", "target_sparsity"),
                 ("accuracy (val)", "accuracy"), ("test accuracy", "test_accuracy"), ("sparsity", "sparsity"),
                 ("MACs", "macs"), ("MACs / dense", "macs_ratio"), ("SOPs", "sops"), ("energy (uJ)", "energy"))


def trials_view(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with the plain columns reports read, filled from the results store's layout.

    `load_trials` keeps metrics as ``m_<name>`` (objective values under their own names, NULL
    for a trial stopped early) and the target as ``sparsity_target``; here ``accuracy``,
    ``sparsity``, ``macs``, ``test_accuracy``... hold the value, or the metric where the value is
    missing, so a stopped trial still shows where it stood, and ``target_sparsity`` the target.
    The ``m_*`` and ``sparsity_target`` columns they came from are dropped: kept, trials.csv
    showed every metric twice. A metric that is not a number (``firing_rates``, a dict) stays as
    its JSON text. Other columns pass through; a view passes through unchanged.
    """
    out = df.copy()
    if "target_sparsity" not in out and "sparsity_target" in out:
        out = out.rename(columns={"sparsity_target": "target_sparsity"})
    out = out.drop(columns=[c for c in ("sparsity_target",) if c in out])
    metrics = [c for c in out.columns if str(c).startswith("m_")]
    for col in metrics:
        name = str(col)[2:]
        metric = pd.to_numeric(out[col], errors="coerce")
        if name in out:
            out[name] = pd.to_numeric(out[name], errors="coerce").fillna(metric)
        else:
            out[name] = out[col] if (metric.isna() & out[col].notna()).any() else metric
    return out.drop(columns=metrics)


def dense_of(df: pd.DataFrame) -> dict[str, Any] | None:
    """The dense baseline recorded with the trials (``dense_<name>`` columns), if any."""
    cols = [c for c in df.columns if str(c).startswith("dense_")]
    for row in df[cols].to_dict("records") if cols else []:
        found = {str(k)[6:]: v for k, v in row.items() if _present(v)}
        if found.get("accuracy") is not None:
            return found
    return None


def write_trials_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """One row per trial; dict and list cells become JSON so the file reads back with pandas.

    A study with no trial gives the header alone (a plain loop: ``.map(...).any()`` of an empty
    datetime column raises)."""
    out = df.copy()
    for col in out.columns:
        if any(isinstance(v, (dict, list, tuple)) for v in out[col]):
            out[col] = out[col].map(lambda v: json.dumps(v, sort_keys=True, default=str)
                                    if isinstance(v, (dict, list, tuple)) else v)
    return atomic_write_bytes(path, out.to_csv(index=False).encode())


def hyperparameters_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters from whichever form the frame holds them in."""
    found: dict[str, Any] = {}
    for key in ("hyperparameters", "hp", "config"):
        value = row.get(key)
        if isinstance(value, str) and value.startswith("{"):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if isinstance(value, Mapping):
            hp = value.get("hyperparameters") if key == "config" else value
            if isinstance(hp, Mapping) and hp:
                return dict(hp)
    for key, value in row.items():
        for prefix in HP_PREFIXES:
            name = str(key)[len(prefix):]
            if str(key).startswith(prefix) and _present(value) and name not in ("pruner", "sparsity"):
                found[name] = value
    return found


def _present(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any, col: str = "") -> str:
    """Numbers as people read them: accuracies to 4 places, large counts with an SI suffix."""
    if not _present(value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value).replace("|", "\\|")
    v = float(value)
    if col in ("number", "trial"):
        return str(int(v))
    if abs(v) >= 1e4:
        for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return f"{v / div:.3g}{suffix}"
    return f"{v:.4g}" if col not in ("accuracy", "test_accuracy") else f"{v:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _states(df: pd.DataFrame) -> pd.Series:
    """Trial states as plain upper-case names ("COMPLETE"), whatever wrote them; all complete without a column."""
    if "state" not in df:
        return pd.Series(["COMPLETE"] * len(df), index=df.index)
    return df["state"].astype(str).str.upper().str.rsplit(".", n=1).str[-1]


def _state_counts(df: pd.DataFrame) -> pd.Series:
    """Trials per state, with failed trials that were run again (``retried`` 1: a dead or
    interrupted run, queued once more) and stopped trials that went on later (``paused`` 1:
    promote mode) counted apart, as `snnprune search` counts them."""
    states = _states(df)
    if "retried" in df:
        again = pd.to_numeric(df["retried"], errors="coerce").eq(1) & states.eq("FAIL")
        states = states.where(~again, "INTERRUPTED AND RUN AGAIN")
    if "paused" in df:
        later = pd.to_numeric(df["paused"], errors="coerce").eq(1) & states.eq("PRUNED")
        states = states.where(~later, "PAUSED AND RESUMED LATER")
    return states.value_counts()


def _infeasible(df: pd.DataFrame) -> pd.Series:
    """Complete trials marked ``feasible`` 0: they break the space's constraints."""
    if "feasible" not in df:
        return pd.Series(False, index=df.index)
    return _states(df).eq("COMPLETE") & pd.to_numeric(df["feasible"], errors="coerce").eq(0)


def _front(df: pd.DataFrame, metric_names: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """The front rows: the ``on_front`` column when present (the results store writes the
    search's own front there), else computed over complete trials that meet the constraints."""
    if "on_front" in df:
        front = df[df["on_front"].fillna(False).astype(bool).to_numpy()]
    elif not all(m in df for m in metric_names):
        front = df.iloc[0:0]
    else:
        done = df[(_states(df).eq("COMPLETE") & ~_infeasible(df)).to_numpy()].dropna(subset=list(metric_names))
        mask = pareto_mask(done[list(metric_names)].to_numpy(dtype=float).tolist(), directions) if len(done) else []
        front = done[list(mask)] if len(done) else done
    first, sign = metric_names[0], directions[0] == "maximize"
    return front.sort_values(first, ascending=not sign) if first in front else front


def _front_section(front: pd.DataFrame, dense: Mapping[str, Any] | None, empty: str) -> list[str]:
    rows = []
    for r in front.to_dict("records"):
        if not _present(r.get("macs_ratio")) and dense and _present(r.get("macs")) and dense.get("macs"):
            r["macs_ratio"] = float(r["macs"]) / float(dense["macs"])
        if not _present(r.get("target_sparsity")):
            r["target_sparsity"] = r.get("config_sparsity")
        rows.append([_fmt(r.get(col), col) for _, col in FRONT_COLUMNS])
    if not rows:
        return [empty]
    return _table([h for h, _ in FRONT_COLUMNS], rows)


def _top_section(front: pd.DataFrame, metric_names: Sequence[str], directions: Sequence[str],
                 top: int) -> list[str]:
    if front.empty or top <= 0:
        return ["None yet."]
    key = "accuracy" if "accuracy" in front else metric_names[0]
    ascending = key != "accuracy" and directions[list(metric_names).index(key)] == "minimize"
    lines = []
    for r in front.sort_values(key, ascending=ascending).head(top).to_dict("records"):
        hp = hyperparameters_of(r)
        settings = ", ".join(f"`{k}={_fmt(v)}`" for k, v in sorted(hp.items())) or "defaults"
        lines.append(f"- trial {_fmt(r.get('number'), 'number')} ({_fmt(r.get('pruner'))}, target sparsity "
                     f"{_fmt(r.get('target_sparsity'))}; {key} {_fmt(r.get(key), key)}): {settings}")
    return lines


def _dense_section(front: pd.DataFrame, dense: Mapping[str, Any] | None) -> list[str]:
    if not dense:
        return ["Dense baseline: not recorded."]
    line = (f"Dense baseline: test accuracy {_fmt(dense.get('accuracy'), 'accuracy')}, "
            f"MACs {_fmt(dense.get('macs'))}, parameters {_fmt(dense.get('params'))}, "
            f"weights {_fmt(dense.get('weights'))}.")
    out = [line]
    if not front.empty and "test_accuracy" in front and _present(dense.get("accuracy")):
        best = front.loc[pd.to_numeric(front["test_accuracy"], errors="coerce").idxmax()]
        ratio = (f" at {_fmt(float(best['macs']) / float(dense['macs']))}x its MACs"
                 if _present(best.get("macs")) and dense.get("macs") else "")
        out.append(f"Best front test accuracy {_fmt(best['test_accuracy'], 'accuracy')} (trial "
                   f"{_fmt(best.get('number'), 'number')}), "
                   f"{float(best['test_accuracy']) - float(dense['accuracy']):+.4f} against dense{ratio}.")
    return out


def _hv_section(hv: HypervolumeSummary | float | None, reference: Sequence[float] | None,
                metric_names: Sequence[str], infeasible: int) -> list[str]:
    if hv is None:
        return ["No complete trial meets the constraints, so no hypervolume." if infeasible else
                "No complete trial, so no hypervolume."]
    if isinstance(hv, HypervolumeSummary):
        ref = ", ".join(f"{n} = {_fmt(v)}" for n, v in zip(hv.objectives, hv.reference))
        return [f"Hypervolume {hv.hypervolume:.6g} (normalised: {hv.normalized:.4f} of the box between the "
                f"best values and the reference), reference point ({ref}), chosen as: {hv.reference_rule}."]
    ref = ", ".join(f"{n} = {_fmt(v)}" for n, v in zip(metric_names, reference or ()))
    return [f"Hypervolume {float(hv):.6g}, reference point ({ref or 'not given'})."]


def _plots_section(plots: Mapping[str, str | os.PathLike] | None, folder: Path) -> list[str]:
    if not plots:
        return ["No plots written."]
    lines = []
    for name, path in plots.items():  # in the order written: the front first
        if str(name).endswith(".png"):
            stem = str(name)[:-4]
            rel = os.path.relpath(Path(path), folder)
            html = plots.get(f"{stem}.html")
            link = f" ([interactive]({os.path.relpath(Path(html), folder)}))" if html else ""
            lines += [f"### {stem.replace('_', ' ')}", f"![{stem}]({rel}){link}", ""]
    return lines


def _constraints_line(constraints: Sequence[str], infeasible: int, complete: int) -> list[str]:
    """How many complete trials break the space's constraints (nothing without constraints)."""
    if not constraints and not infeasible:
        return []
    named = "; ".join(constraints) or "the space's"
    if not infeasible:
        return [f"- constraints: {named}; every complete trial meets them"]
    line = (f"- constraints: {named}; {infeasible} of {complete} complete trial(s) break them (infeasible: "
            "left off the front and the hypervolume)")
    return [line]


def _no_front(df: pd.DataFrame, infeasible: int) -> str:
    """Why the front is empty."""
    if df.empty:
        return "No trial yet, so no front."
    if infeasible:
        return "No complete trial meets the constraints, so no front."
    counts = _state_counts(df)
    if counts.get("FAIL", 0) == len(df):
        return "Every trial failed, so no front (each one's reason is in trials.csv, `fail_reason`)."
    return "No complete trial yet, so no front."


def write_report_md(df: pd.DataFrame, path: str | os.PathLike, *, study: str, metric_names: Sequence[str],
                    directions: Sequence[str], dense: Mapping[str, Any] | None = None,
                    reference: Sequence[float] | None = None,
                    hypervolume: HypervolumeSummary | float | None = None, top: int = 5,
                    plots: Mapping[str, str | os.PathLike] | None = None,
                    constraints: Sequence[str] = ()) -> Path:
    """Write the Markdown summary of a study (see the module docstring); returns its path.

    Without ``hypervolume`` it is computed over the objectives, from ``reference`` if given,
    else from the default rule (nadir of complete trials + 10% of each range). Without
    ``dense`` the baseline recorded in the frame (``dense_*`` columns) is used. Trials marked
    ``feasible`` 0 break the space's ``constraints`` (their text, e.g. ``macs >= 50000``): the
    report counts them and leaves them off the front and the hypervolume, as the search does.
    """
    names = [str(getattr(d, "name", d)).lower() for d in directions]
    if len(names) != len(metric_names):
        raise UserError(f"{len(metric_names)} metric names but {len(names)} directions")
    path = Path(path)
    df = trials_view(df)
    dense = dense if dense is not None else dense_of(df)
    counts = _state_counts(df)
    front = _front(df, metric_names, names)
    infeasible = int(_infeasible(df).sum())
    if hypervolume is None and all(m in df for m in metric_names):
        hypervolume = study_hypervolume(df.to_dict("records"), metric_names, names, reference=reference)
    states = ", ".join(f"{int(n)} {s.lower()}" for s, n in counts.items()) or "no trial yet"
    lines = [f"# Pruning search report: {study}", "",
             f"- trials: {len(df)} ({states})",
             "- objectives: " + ", ".join(f"{m} ({d})" for m, d in zip(metric_names, names)),
             *_constraints_line(constraints, infeasible, int(counts.get("COMPLETE", 0))),
             f"- Pareto front: {len(front)} trial(s)", "",
             "## Pareto front", "", *_front_section(front, dense, _no_front(df, infeasible)), "",
             f"## Top configurations (by {'accuracy' if 'accuracy' in front else metric_names[0]})", "",
             *_top_section(front, metric_names, names, top), "",
             "## Dense baseline", "", *_dense_section(front, dense), "",
             "## Hypervolume", "", *_hv_section(hypervolume, reference, metric_names, infeasible), "",
             "## Plots", "", *_plots_section(plots, path.parent)]
    return atomic_write_bytes(path, ("\n".join(lines).rstrip() + "\n").encode())
