"""The policy comparison report: tables with confidence intervals and paired differences against
the baseline, figures, provenance; as report.md (+ PNGs) and one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.model.intervals import FIGURES, LEVEL
from sim.report import plots
from sim.report.facts import FACTS_NOTE, facts, marked, unfinished, unfinished_note
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


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    data = report.input
    parts = [f"# {data.title}", "", data.description.strip(), ""]
    parts += _legend(data)
    note = unfinished_note(report.facts)
    parts += ["## Headline", "", _md_table(*headline_table(report)), ""]
    parts += [note, ""] if note else []
    for title, header, rows in metric_tables(report):
        parts += [f"## {title}", "", _md_table(header, rows), ""]
    slo = slo_table(report)
    if slo is not None:
        parts += ["## Requests within their SLO (fraction)", "", _md_table(*slo), ""]
    reference = reference_table(report)
    if reference is not None:
        parts += ["## Measured against simulated", "", _reference_note(data), "",
                  _md_table(*reference), ""]
    sizes = size_table(report)
    if sizes is not None:
        parts += ["## By request size (mean over all requests of that size)", "",
                  _md_table(*sizes), ""]
    if data.forecast is not None:
        parts += [f"## {FORECAST_TITLE}", ""]
        for line in data.forecast.notes():
            parts += [line, ""]
        parts += [_md_table(*forecast_table(data.forecast)), ""]
    parts += ["## Run facts", "", FACTS_NOTE, "", _md_table(*facts_table(report)), ""]
    parts += ["## Figures", ""]
    for figure in report.figures:
        parts += [f"![{figure.caption}]({figure_dir}/{figure.name}.png)", "", f"*{figure.caption}*",
                  ""]
    parts += ["## Provenance", ""] + [f"- {line}" for line in provenance_lines(data.provenance)]
    return "\n".join(parts) + "\n"


def _reference_note(data: ReportInput) -> str:
    return (f"Measured: {data.reference_source or 'the scenario reference'} (mean of its rows "
            "per size and interval; – where it has none: sizes held out of the calibration). "
            "Simulated: mean over replications. Error: (simulated - measured) / measured.")


def _legend(data: ReportInput) -> list[str]:
    reps = data.tables["requests"].replication.nunique()
    text = (f"Statistics are computed within each replication, then averaged over {reps} "
            "replications with a Student-t 95 % confidence interval in brackets.")
    if data.baseline is not None:
        text += (f" Δ columns are paired differences against `{data.baseline}` in the same "
                 "replication (common random numbers); `*` marks an interval that excludes "
                 "zero. Negative is faster.")
    return [text, ""]


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f2f2f2}
figure{margin:1em 0}
.scroll{overflow-x:auto}
img{max-width:100%}
figcaption{font-style:italic;color:#555}
code{background:#f5f5f5}
"""

# Marks the page once every embedded image has decoded: a headless browser test reads it.
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-decoded', String(ok));
  document.body.setAttribute('data-images-total', String(imgs.length));
});
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], css_class: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return (f'<div class="scroll"><table class="{css_class}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS, figures as base64 PNG data URIs."""
    data = report.input
    esc = html.escape
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(data.title)}</title><style>{_CSS}</style>",
        f"<script>{_SCRIPT}</script></head><body>",
        f"<h1>{esc(data.title)}</h1>", f"<p>{esc(data.description.strip())}</p>",
        f"<p>{esc(_legend(data)[0])}</p>",
        "<h2>Headline</h2>", _html_table(*headline_table(report), "headline"),
    ]
    note = unfinished_note(report.facts)
    out += [f"<p>{esc(note)}</p>"] if note else []
    for title, header, rows in metric_tables(report):
        out += [f"<h2>{esc(title)}</h2>", _html_table(header, rows, "metric")]
    slo = slo_table(report)
    if slo is not None:
        out += ["<h2>Requests within their SLO (fraction)</h2>", _html_table(*slo, "slo")]
    reference = reference_table(report)
    if reference is not None:
        out += ["<h2>Measured against simulated</h2>", f"<p>{esc(_reference_note(data))}</p>",
                _html_table(*reference, "reference")]
    sizes = size_table(report)
    if sizes is not None:
        out += ["<h2>By request size (mean over all requests of that size)</h2>",
                _html_table(*sizes, "sizes")]
    if data.forecast is not None:
        out += [f"<h2>{esc(FORECAST_TITLE)}</h2>"]
        out += [f"<p>{esc(line)}</p>" for line in data.forecast.notes()]
        out += [_html_table(*forecast_table(data.forecast), "forecast")]
    out += ["<h2>Run facts</h2>", f"<p>{FACTS_NOTE}</p>",
            _html_table(*facts_table(report), "facts"), "<h2>Figures</h2>"]
    for figure in report.figures:
        encoded = base64.b64encode(figure.png).decode("ascii")
        out.append(f'<figure id="{figure.name}"><img alt="{esc(figure.caption)}" '
                   f'src="data:image/png;base64,{encoded}">'
                   f"<figcaption>{esc(figure.caption)}</figcaption></figure>")
    out.append('<h2>Provenance</h2><ul class="provenance">')
    out += [f"<li><code>{esc(line)}</code></li>" for line in provenance_lines(data.provenance)]
    out.append("</ul></body></html>")
    return "\n".join(out) + "\n"


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """report.md with figures/*.png beside it, report.html (self-contained), summary.csv, and
    for a one-node scenario forecast.json (its bursts as `measure predict --json` has them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    for figure in report.figures:
        (figure_dir / f"{figure.name}.png").write_bytes(figure.png)
    paths = {
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
        "summary": out_dir / "summary.csv",
    }
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    report.statistics.to_csv(paths["summary"], index=False)
    if report.input.forecast is not None:
        paths["forecast"] = out_dir / "forecast.json"
        paths["forecast"].write_text(json.dumps(report.input.forecast.to_json(), indent=2) + "\n",
                                     encoding="utf-8")
    return paths
