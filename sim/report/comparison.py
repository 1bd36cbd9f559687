"""The policy comparison report: tables with confidence intervals and paired differences against
the baseline, figures, provenance; as report.md (+ PNGs) and one self-contained HTML page."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.model.intervals import FIGURES, LEVEL
from sim.report import plots
from sim.report.facts import facts, marked, unfinished
from sim.report.node_forecast import NodeForecast
from sim.report.statistics import METRICS, STATISTICS, policy_statistics, slo_attainment

FORECAST_TITLE = "The one node's bursts as `measure predict` forecasts them (s)"
SLO_COLUMNS: dict[str, str] = {
    "time_to_first_s": "time to first ready",
    "time_to_all_s": "time to all ready",
}


@dataclass(frozen=True)
class ReportInput:
    """Everything a report shows: the records of a run of all policies and where they came from."""

    title: str
    description: str
    policies: tuple[str, ...]
    """Policies in the scenario's order (the baseline first when present)."""
    baseline: str | None
    tables: Mapping[str, pd.DataFrame]
    """Record tables by kind: requests, instances, node_samples, nodes."""
    slos: Mapping[str, float] = field(default_factory=dict)
    """Request column -> limit (s): the report gives the fraction of requests within it."""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    reference: pd.DataFrame | None = None
    """Measured bursts: count, interval_ms, first_ready_s, all_ready_s (p10_ready_s too, when
    measured)."""
    reference_intervals: Mapping[str, float] = field(default_factory=dict)
    """Policy -> the reference interval_ms it is compared with."""
    reference_source: str = ""
    forecast: NodeForecast | None = None
    """One-node scenarios: `measure predict`'s forecast of each burst the node launched."""


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Report:
    input: ReportInput
    statistics: pd.DataFrame
    """policy_statistics(): one row per (metric, policy, stat)."""
    slo: pd.DataFrame
    facts: pd.DataFrame
    """facts.facts(): per policy and replication, requests, incomplete ones, nodes, CPU busy."""
    figures: tuple[Figure, ...]


def build_report(data: ReportInput) -> Report:
    """Compute the tables and draw the figures."""
    requests = data.tables["requests"]
    statistics = policy_statistics(dict(data.tables), data.baseline, METRICS, data.policies)
    slo_frames = [slo_attainment(requests, column, limit) for column, limit in data.slos.items()]
    slo = pd.concat(slo_frames, ignore_index=True) if slo_frames else pd.DataFrame()
    return Report(data, statistics, slo, facts(data.policies, data.tables),
                  tuple(_figures(data)))


def burst_to_show(requests: pd.DataFrame, baseline: str | None) -> tuple[int, int, float] | None:
    """(request id, replication, arrival) of the largest request of the first replication
    (earliest among equals): the burst drawn instance by instance."""
    if requests.empty:
        return None
    policy = baseline if baseline in set(requests.policy) else requests.policy.iloc[0]
    first_rep = int(requests.replication.min())
    mine = requests[(requests.policy == policy) & (requests.replication == first_rep)]
    best = mine.sort_values(["count", "arrival_s"], ascending=[False, True]).iloc[0]
    return int(best.request_id), first_rep, float(best.arrival_s)


def _figures(data: ReportInput) -> list[Figure]:
    requests = data.tables["requests"]
    figures = [
        Figure("cdf_time_to_first", "Time from arrival to the request's first instance ready",
               plots.cdf_figure(requests, "time_to_first_s", data.policies,
                                "CDF of time to first ready")),
        Figure("cdf_time_to_all", "Time from arrival to the request's last instance ready",
               plots.cdf_figure(requests, "time_to_all_s", data.policies,
                                "CDF of time to all ready")),
    ]
    samples = data.tables.get("node_samples")
    if samples is not None and not samples.empty:
        rep = int(samples.replication.min())
        figures.append(Figure("in_flight", "Instances initialising, summed over the nodes",
                              plots.in_flight_figure(samples, data.policies, rep)))
    burst = burst_to_show(requests, data.baseline)
    if burst is not None:
        request_id, rep, arrival = burst
        figures.append(Figure(
            "burst_timeline",
            f"The largest request ({request_id}) of replication {rep} under each policy",
            plots.burst_timeline_figure(data.tables["instances"], arrival, request_id, rep,
                                        data.policies),
        ))
    return figures


# --- formatting ----------------------------------------------------------------------------

def fmt(value: float) -> str:
    """Seconds or fractions for a table cell; an en dash for undefined."""
    if value is None or not math.isfinite(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3f}"


def with_ci(value: float, low: float, high: float) -> str:
    if not math.isfinite(low):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def diff_cell(diff: float, low: float, high: float) -> str:
    """A paired difference; `*` when its 95 % interval excludes zero."""
    if not math.isfinite(diff):
        return "–"
    mark = "*" if math.isfinite(low) and (low > 0 or high < 0) else ""
    return f"{with_ci(diff, low, high)}{mark}"


def _floats(frame: pd.DataFrame, row: str, *columns: str) -> tuple[float, float, float]:
    a, b, c = (float(frame.loc[row, list(columns)].to_numpy(dtype=float)[i]) for i in range(3))
    return a, b, c


def metric_tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per metric: value with CI and difference vs the baseline."""
    baseline = report.input.baseline
    left = unfinished(report.facts)
    out = []
    for metric in METRICS:
        frame = report.statistics[report.statistics.metric == metric.name]
        header = ["policy", *[f"{s} [95% CI]" for s in STATISTICS]]
        if baseline is not None:
            header += [f"Δ{s} vs {baseline}" for s in STATISTICS]
        rows = []
        for policy in report.input.policies:
            mine = frame[frame.policy == policy].set_index("stat")
            if mine.empty:
                continue
            row = [marked(policy, left)] + [with_ci(*_floats(mine, s, "value", "ci_low", "ci_high"))
                              for s in STATISTICS]
            if baseline is not None:
                row += [diff_cell(*_floats(mine, s, "diff", "diff_low", "diff_high"))
                        for s in STATISTICS]
            rows.append(row)
        out.append((metric.label, header, rows))
    return out


def headline_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """The lowest mean and p95 of each metric: which policy, its value, its difference against
    the baseline (`*`: the interval excludes zero). A policy that left requests unfinished wins
    only when every policy did, and is then marked."""
    baseline = report.input.baseline
    left = unfinished(report.facts)
    header = ["metric", "statistic", "lowest", "value [95% CI]"]
    if baseline is not None:
        header.append(f"Δ vs {baseline}")
    rows = []
    for metric in METRICS:
        for stat in ("mean", "p95"):
            chosen = (report.statistics.metric == metric.name) & (report.statistics.stat == stat)
            frame = report.statistics[chosen].dropna(subset=["value"])
            finished = frame[~frame.policy.isin(left)]
            frame = finished if not finished.empty else frame
            if frame.empty:
                continue
            best = frame.iloc[int(np.argmin(frame.value.to_numpy(dtype=float)))]
            row = [metric.label, stat, marked(str(best.policy), left),
                   with_ci(float(best.value), float(best.ci_low), float(best.ci_high))]
            if baseline is not None:
                row.append(diff_cell(float(best["diff"]), float(best.diff_low),
                                     float(best.diff_high)))
            rows.append(row)
    return header, rows


def size_class(count: int, exact: bool) -> tuple[int, str]:
    """(sort key, label) of a request size: itself, or its power-of-two bin."""
    if exact:
        return count, str(count)
    low = 1 << (int(count).bit_length() - 1)
    high = 2 * low - 1
    return low, str(low) if low == high else f"{low}–{high}"


def time_to_p10(requests: pd.DataFrame) -> pd.Series:
    """Seconds from each request's arrival until 10 % of its instances were ready (the
    records keep the time itself, p10_ready_s, as they keep first_ready_s)."""
    return requests.p10_ready_s - requests.arrival_s


def size_table(report: Report, max_exact: int = 12) -> tuple[list[str], list[list[str]]] | None:
    """Mean time to first / to 10 % / to all ready by request size (pooled over replications):
    the study's table when each size is one burst."""
    requests = report.input.tables["requests"]
    if requests.empty:
        return None
    exact = requests["count"].nunique() <= max_exact
    classes = requests["count"].map(lambda c: size_class(int(c), exact))
    header = ["instances", *[f"{p}: first / p10 / all (s)" for p in report.input.policies]]
    rows = []
    for key in sorted(set(classes)):
        mine = requests[classes == key]
        row = [key[1]]
        for policy in report.input.policies:
            sel = mine[mine.policy == policy]
            row.append(f"{fmt(float(sel.time_to_first_s.mean()))} / "
                       f"{fmt(float(time_to_p10(sel).mean()))} / "
                       f"{fmt(float(sel.time_to_all_s.mean()))}" if len(sel) else "–")
        rows.append(row)
    return header, rows


def _rel(simulated: float, measured: float) -> str:
    if not (math.isfinite(simulated) and math.isfinite(measured)) or measured == 0:
        return "–"
    return f"{(simulated - measured) / measured:+.0%}"


def reference_table(report: Report) -> tuple[list[str], list[list[str]]] | None:
    """Measured against simulated first, p10 (when the reference has p10_ready_s) and all
    ready, by request size and interval."""
    data = report.input
    if data.reference is None or not data.reference_intervals:
        return None
    figures = [f for f in ("first_ready_s", "p10_ready_s", "all_ready_s")
               if f in data.reference.columns]
    means = data.reference.groupby(["count", "interval_ms"], as_index=False)[figures].mean()
    measured = {(int(row["count"]), float(row["interval_ms"])): row for row in
                means.to_dict("records")}
    requests = data.tables["requests"]
    simulated = {"first_ready_s": requests.time_to_first_s, "all_ready_s": requests.time_to_all_s}
    if "p10_ready_s" in figures:
        simulated["p10_ready_s"] = time_to_p10(requests)
    header = ["instances", "policy", "interval (ms)"]
    for figure in figures:
        header += [f"{figure.removesuffix('_ready_s')}: measured", "simulated", "error"]
    rows = []
    for count in sorted(int(c) for c in requests["count"].unique()):
        for policy, interval in data.reference_intervals.items():
            chosen = (requests.policy == policy) & (requests["count"] == count)
            key = (count, float(interval))
            row = [str(count), policy, f"{interval:g}"]
            for figure in figures:
                sim = float(simulated[figure][chosen].mean()) if chosen.any() else math.nan
                seen = float(measured[key][figure]) if key in measured else math.nan
                row += [fmt(seen), fmt(sim), _rel(sim, seen)]
            rows.append(row)
    return header, rows


def forecast_table(forecast: NodeForecast) -> tuple[list[str], list[list[str]]]:
    """Each burst's five forecast figures (s), with their intervals when there are any."""
    band = f" [{LEVEL:.0%}]" if forecast.interval_parts else ""
    header = ["policy", "instances", "interval (ms)", "requests",
              *[f"{name.removesuffix('_ready_s')}{band}" for name in FIGURES],
              "outside the data"]
    rows = []
    for burst in forecast.bursts:
        central, bands = burst.predicted.central, burst.predicted.intervals
        cells = [with_ci(central[name], *(bands[name] if bands else (math.nan, math.nan)))
                 for name in FIGURES]
        rows.append([burst.policy, str(burst.count), f"{burst.interval_ms:g}",
                     str(burst.requests), *cells,
                     "; ".join(burst.predicted.extrapolation) or "–"])
    return header, rows


def slo_table(report: Report) -> tuple[list[str], list[list[str]]] | None:
    if report.slo.empty:
        return None
    header = ["policy", *[f"{SLO_COLUMNS.get(column, column)} ≤ {fmt(limit)} s"
                          for column, limit in report.input.slos.items()]]
    rows = []
    for policy in report.input.policies:
        row = [policy]
        for column in report.input.slos:
            hit = report.slo[(report.slo.policy == policy) & (report.slo.metric == column)]
            row.append(with_ci(*hit[["value", "ci_low", "ci_high"]].iloc[0].tolist())
                       if not hit.empty else "–")
        rows.append(row)
    return header, rows


def facts_table(report: Report) -> tuple[list[str], list[list[str]]]:
    header = list(report.facts.columns)
    rows = [[str(v) if isinstance(v, str | int) else fmt(float(v)) for v in record]
            for record in report.facts.itertuples(index=False)]
    return header, rows


def provenance_lines(provenance: Mapping[str, Any]) -> list[str]:
    """Provenance flattened to `key: value` lines (nested keys dotted)."""
    lines: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        else:
            lines.append(f"{prefix}: {value if isinstance(value, str) else json.dumps(value)}")

    walk("", provenance)
    return lines


def reference_note(data: ReportInput) -> str:
    return (f"Measured: {data.reference_source or 'the scenario reference'} (mean of its rows "
            "per size and interval; – where it has none: sizes held out of the calibration). "
            "Simulated: mean over replications. Error: (simulated - measured) / measured.")


def legend(data: ReportInput) -> list[str]:
    reps = data.tables["requests"].replication.nunique()
    text = (f"Statistics are computed within each replication, then averaged over {reps} "
            "replications with a Student-t 95 % confidence interval in brackets.")
    if data.baseline is not None:
        text += (f" Δ columns are paired differences against `{data.baseline}` in the same "
                 "replication (common random numbers); `*` marks an interval that excludes "
                 "zero. Negative is faster.")
    return [text, ""]
