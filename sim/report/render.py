"""The comparison report rendered: its sections once, then as report.md (+ PNGs) and as one
self-contained HTML page, and the files a run writes."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.report.comparison import (
    FORECAST_TITLE,
    Report,
    facts_table,
    forecast_table,
    headline_table,
    legend,
    metric_tables,
    provenance_lines,
    reference_note,
    reference_table,
    size_table,
    slo_table,
)
from sim.report.facts import FACTS_NOTE, unfinished_note

Table = tuple[Sequence[str], Sequence[Sequence[str]]]


@dataclass(frozen=True)
class Section:
    """A titled table with its notes, the same in both renderings."""

    title: str
    table: Table
    css_class: str
    before: tuple[str, ...] = ()
    """Paragraphs between the title and the table."""
    after: tuple[str, ...] = ()
    """Paragraphs after the table."""


def sections(report: Report) -> list[Section]:
    """Every table of the report, in order, from the headline to the run facts."""
    data = report.input
    note = unfinished_note(report.facts)
    out = [Section("Headline", headline_table(report), "headline",
                   after=(note,) if note else ())]
    out += [Section(title, (header, rows), "metric")
            for title, header, rows in metric_tables(report)]
    slo = slo_table(report)
    if slo is not None:
        out.append(Section("Requests within their SLO (fraction)", slo, "slo"))
    reference = reference_table(report)
    if reference is not None:
        out.append(Section("Measured against simulated", reference, "reference",
                           before=(reference_note(data),)))
    sizes = size_table(report)
    if sizes is not None:
        out.append(Section("By request size (mean over all requests of that size)", sizes,
                           "sizes"))
    if data.forecast is not None:
        out.append(Section(FORECAST_TITLE, forecast_table(data.forecast), "forecast",
                           before=tuple(data.forecast.notes())))
    out.append(Section("Run facts", facts_table(report), "facts", before=(FACTS_NOTE,)))
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    data = report.input
    parts = [f"# {data.title}", "", data.description.strip(), ""]
    parts += legend(data)
    for section in sections(report):
        parts += [f"## {section.title}", ""]
        for line in section.before:
            parts += [line, ""]
        parts += [_md_table(*section.table), ""]
        for line in section.after:
            parts += [line, ""]
    parts += ["## Figures", ""]
    for figure in report.figures:
        parts += [f"![{figure.caption}]({figure_dir}/{figure.name}.png)", "", f"*{figure.caption}*",
                  ""]
    parts += ["## Provenance", ""] + [f"- {line}" for line in provenance_lines(data.provenance)]
    return "\n".join(parts) + "\n"


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
        f"<p>{esc(legend(data)[0])}</p>",
    ]
    for section in sections(report):
        out.append(f"<h2>{esc(section.title)}</h2>")
        out += [f"<p>{esc(line)}</p>" for line in section.before]
        out.append(_html_table(*section.table, section.css_class))
        out += [f"<p>{esc(line)}</p>" for line in section.after]
    out.append("<h2>Figures</h2>")
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
