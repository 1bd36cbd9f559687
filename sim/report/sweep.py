"""The sweep report: each headline metric against each axis (one line per policy, 95% confidence
band over replications) and heatmaps for pairs of axes, as report.md with PNG figures.

With several axes, a plot against one axis averages over the others within each replication
first, so the interval is still over independent replications.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.report import plots
from sim.report.comparison import fmt, provenance_lines, with_ci
from sim.report.facts import INCOMPLETE
from sim.report.statistics import t_interval
from sim.sweep.plan import SweepPlan
from sim.sweep.table import axis_column

MAX_HEATMAP_AXES = 4
"""Heatmaps for every pair among the first this many axes."""
MAX_POINT_ROWS = 300
"""The report's table of every point stops here; summary.csv has them all."""
ANNOTATE_CELLS = 100
"""Heatmap cells carry their value when the grid has at most this many."""


@dataclass(frozen=True)
class Headline:
    column: str
    label: str


@dataclass(frozen=True)
class SweepFigure:
    name: str
    caption: str
    png: bytes


def headlines(plan: SweepPlan) -> tuple[Headline, Headline]:
    """The scenario's objective (e.g. p95 time to first ready) and the same statistic of the
    other request metric (time to all ready, or to first when the objective is all-ready)."""
    objective = plan.loaded.scenario.metrics.objective
    other = "time_to_all_s" if objective.metric != "time_to_all_s" else "time_to_first_s"
    return (Headline(f"{objective.metric}_{objective.stat}", _label(objective.metric,
                                                                    objective.stat)),
            Headline(f"{other}_{objective.stat}", _label(other, objective.stat)))


def _label(metric: str, stat: str) -> str:
    return f"{stat} {metric.removesuffix('_s').replace('_', ' ')} (s)"


def aggregate(table: pd.DataFrame, by: Sequence[str], column: str) -> pd.DataFrame:
    """Per group of `by`: the mean of `column` and its Student-t 95% interval over
    replications, after averaging within each replication over the rows of the group."""
    per_rep = table.groupby([*by, "replication"], sort=False, dropna=False)[column].mean()
    rows = []
    for key, series in per_rep.groupby(level=list(range(len(by))), sort=False):
        mean, low, high = t_interval(series.to_numpy(dtype=float))
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, keys, strict=True)), "mean": mean, "ci_low": low,
                     "ci_high": high, "replications": int(series.notna().sum())})
    return pd.DataFrame(rows, columns=[*by, "mean", "ci_low", "ci_high", "replications"])


def _ticks(values: Sequence[Any]) -> tuple[np.ndarray, list[str], bool]:
    """x positions, labels and whether to use a log scale for an axis's values (as stored in
    the table): numbers at their value, anything else at its rank."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    labels = [str(v) for v in values]
    if not numeric:
        return np.arange(len(values), dtype=float), labels, False
    x = np.asarray(values, dtype=float)
    log = bool(np.all(x > 0) and x.max() / x.min() >= 10)
    return x, labels, log


def axis_figure(table: pd.DataFrame, axis: str, values: Sequence[Any],
                policies: Sequence[str], metrics: Sequence[Headline]) -> bytes:
    """One panel per metric: metric against the axis, a line per policy with its 95% band."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8),
                                squeeze=False)
    x, labels, log = _ticks(values)
    for ax, metric in zip(axes[0], metrics, strict=True):
        stats = aggregate(table, ["policy", axis], metric.column)
        for policy in policies:
            mine = stats[stats.policy == policy].set_index(axis)
            y = np.array([mine["mean"].get(v, math.nan) for v in values], dtype=float)
            low = np.array([mine["ci_low"].get(v, math.nan) for v in values], dtype=float)
            high = np.array([mine["ci_high"].get(v, math.nan) for v in values], dtype=float)
            (line,) = ax.plot(x, y, marker="o", markersize=3, label=policy)
            ax.fill_between(x, low, high, alpha=0.2, color=line.get_color(), linewidth=0)
        if log:
            ax.set_xscale("log")
        ax.set_xticks(x, labels, rotation=30 if max(map(len, labels)) > 6 else 0,
                      fontsize="small")
        ax.minorticks_off()
        ax.set_xlabel(axis)
        ax.set_ylabel(metric.label)
        ax.grid(alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, -1].legend(handles, names, fontsize="small")
    return plots.png(figure)


def heatmap_figure(table: pd.DataFrame, x_axis: str, y_axis: str, x_values: Sequence[Any],
                   y_values: Sequence[Any], policies: Sequence[str], metric: Headline) -> bytes:
    """A heatmap of the metric over two axes per policy (one colour scale for all)."""
    stats = aggregate(table, ["policy", x_axis, y_axis], metric.column)
    grids = []
    for policy in policies:
        mine = stats[stats.policy == policy].set_index([y_axis, x_axis])["mean"]
        grids.append(np.array([[mine.get((y, x), math.nan) for x in x_values]
                               for y in y_values], dtype=float))
    finite = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    columns = min(3, len(policies))
    rows = math.ceil(len(policies) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.6 * rows),
                                squeeze=False)
    image = None
    annotate = len(x_values) * len(y_values) <= ANNOTATE_CELLS
    for number, (ax, policy, grid) in enumerate(itertools.zip_longest(axes.flat, policies,
                                                                        grids)):
        if policy is None:
            ax.set_visible(False)
            continue
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=vmin,
                          vmax=vmax)
        ax.set_xticks(range(len(x_values)), [str(v) for v in x_values], fontsize="small")
        ax.set_yticks(range(len(y_values)), [str(v) for v in y_values], fontsize="small")
        ax.set_xlabel(x_axis, fontsize="small")
        if number % columns == 0:  # beside a neighbour's cells it would cover them
            ax.set_ylabel(y_axis, fontsize="small")
        ax.set_title(policy, fontsize="small")
        if annotate:
            middle = (vmin + vmax) / 2
            for (i, j), value in np.ndenumerate(grid):
                if math.isfinite(value):
                    ax.text(j, i, fmt(value), ha="center", va="center", fontsize="x-small",
                            color="black" if value > middle else "white")
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label=metric.label, shrink=0.9)
    return plots.png(figure)


def point_summary(plan: SweepPlan, table: pd.DataFrame) -> pd.DataFrame:
    """Per point and policy, every metric's mean over replications with its 95% interval."""
    keys = ["point", *plan.axes, "policy"]
    metrics = [c for c in table.columns
               if c not in (*keys, "replication", "seed", "unit")]
    frames = []
    for column in metrics:
        stats = aggregate(table, keys, column)
        stats.insert(len(keys), "metric", column)
        frames.append(stats)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _axis_values(plan: SweepPlan) -> dict[str, list[Any]]:
    """Each axis's values as the table stores them, in the order given."""
    return {axis: axis_column(values) for axis, values in plan.axes.items()}


def figures(plan: SweepPlan, table: pd.DataFrame) -> list[SweepFigure]:
    metrics = headlines(plan)
    values = _axis_values(plan)
    out = []
    for number, (axis, vals) in enumerate(values.items()):
        others = [a for a in values if a != axis]
        averaged = f"; averaged over {', '.join(others)}" if others else ""
        out.append(SweepFigure(
            f"sweep_axis_{number}",
            f"{' and '.join(m.label for m in metrics)} against {axis}: mean over replications, "
            f"band: 95% confidence interval{averaged}",
            axis_figure(table, axis, list(dict.fromkeys(vals)), plan.policies, metrics),
        ))
    names = list(values)[:MAX_HEATMAP_AXES]
    for i, j in itertools.combinations(range(len(names)), 2):
        x_axis, y_axis = names[i], names[j]
        others = [a for a in values if a not in (x_axis, y_axis)]
        averaged = f", averaged over {', '.join(others)}" if others else ""
        out.append(SweepFigure(
            f"sweep_heatmap_{i}_{j}",
            f"{metrics[0].label} over {x_axis} and {y_axis}, per policy (mean over "
            f"replications{averaged})",
            heatmap_figure(table, x_axis, y_axis, list(dict.fromkeys(values[x_axis])),
                           list(dict.fromkeys(values[y_axis])), plan.policies, metrics[0]),
        ))
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cell(stats: pd.DataFrame, incomplete: bool = False) -> str:
    if stats.empty:
        return "–"
    row = stats.iloc[0]
    cell = with_ci(float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]))
    return f"{cell} ({INCOMPLETE})" if incomplete else cell


def _unfinished(table: pd.DataFrame, keys: Sequence[str]) -> set[tuple[Any, ...]]:
    """Values of `keys` under which some replication left requests unfinished."""
    if "incomplete_requests" not in table or table.empty:
        return set()
    left = table[table.incomplete_requests > 0]
    return {tuple(row) for row in left[list(keys)].itertuples(index=False)}


def _unfinished_note(table: pd.DataFrame) -> list[str]:
    if not _unfinished(table, ["policy"]):
        return []
    return [f"Cells marked ({INCOMPLETE}): some requests did not finish in at least one "
            "replication, so the statistic covers only the instances that became ready and "
            "flatters the policy (`incomplete_requests` in summary.csv counts them).", ""]


def render_markdown(plan: SweepPlan, table: pd.DataFrame, figs: Sequence[SweepFigure],
                    provenance: Mapping[str, Any], figure_dir: str = "figures") -> str:
    sc = plan.loaded.scenario
    metrics = headlines(plan)
    reps = table.replication.nunique() if not table.empty else 0
    parts = [f"# Sweep of {sc.name}: {len(plan.points)} points x {len(plan.policies)} policies "
             f"x {sc.replications} replications", "", sc.description.strip(), "",
             f"Each cell is the mean over {reps} replications with a Student-t 95 % confidence "
             "interval in brackets. Against one axis, each replication is first averaged over "
             "the other axes' points, so the interval stays one over independent replications. "
             "Every point uses the same seed, so the points and the policies see common "
             "random numbers.", "",
             "## Axes", "",
             _md_table(["axis", "values"],
                       [[f"`{a}`", ", ".join(str(v) for v in vals)]
                        for a, vals in plan.axes.items()]), ""]
    parts += _unfinished_note(table)
    values = _axis_values(plan)
    for axis, vals in values.items():
        left = _unfinished(table, ["policy", axis])
        for metric in metrics:
            stats = aggregate(table, ["policy", axis], metric.column)
            rows = []
            for value in dict.fromkeys(vals):
                rows.append([str(value), *[
                    _cell(stats[(stats.policy == p) & (stats[axis] == value)],
                          (p, value) in left)
                    for p in plan.policies]])
            parts += [f"## {metric.label} against `{axis}`", "",
                      _md_table([axis, *plan.policies], rows), ""]
    parts += ["## Figures", ""]
    for figure in figs:
        parts += [f"![{figure.caption}]({figure_dir}/{figure.name}.png)", "",
                  f"*{figure.caption}*", ""]
    parts += _point_rows(plan, table, metrics)
    parts += ["## Provenance", ""] + [f"- {line}" for line in provenance_lines(provenance)]
    return "\n".join(parts) + "\n"


def _point_rows(plan: SweepPlan, table: pd.DataFrame, metrics: Sequence[Headline]
                ) -> list[str]:
    keys = ["point", *plan.axes, "policy"]
    stats = {m.column: aggregate(table, keys, m.column) for m in metrics}
    first = stats[metrics[0].column]
    left = _unfinished(table, keys)
    rows = []
    for i, record in enumerate(first.itertuples(index=False)):
        if i >= MAX_POINT_ROWS:
            break
        cells = [str(v) for v in record[:len(keys)]]
        if tuple(record[:len(keys)]) in left:
            cells[-1] += f" ({INCOMPLETE})"
        for metric in metrics:
            row = stats[metric.column].iloc[i]
            cells.append(with_ci(float(row["mean"]), float(row["ci_low"]),
                                 float(row["ci_high"])))
        rows.append(cells)
    note = (f" (the first {MAX_POINT_ROWS} of {len(first)}; summary.csv has all)"
            if len(first) > MAX_POINT_ROWS else "")
    return [f"## Every point{note}", "",
            _md_table([*keys, *[m.label for m in metrics]], rows), ""]


def write_sweep_report(plan: SweepPlan, table: pd.DataFrame, provenance: Mapping[str, Any],
                       out: Path) -> dict[str, Path]:
    """report.md with figures/*.png beside it, and summary.csv (every metric per point and
    policy, with its interval)."""
    figure_dir = out / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    figs = figures(plan, table)
    for figure in figs:
        (figure_dir / f"{figure.name}.png").write_bytes(figure.png)
    paths = {"markdown": out / "report.md", "summary": out / "summary.csv"}
    paths["markdown"].write_text(render_markdown(plan, table, figs, provenance),
                                 encoding="utf-8")
    point_summary(plan, table).to_csv(paths["summary"], index=False)
    return paths
