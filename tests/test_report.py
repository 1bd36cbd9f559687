"""The comparison report: statistics against scipy on hand-made tables, and the HTML page
rendered by a real headless Chromium (tables present, every embedded image decoded)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.report.comparison import (
    Report,
    ReportInput,
    build_report,
    burst_to_show,
    headline_table,
    reference_table,
    size_class,
    size_table,
)
from sim.report.render import render_html, write_report
from sim.report.statistics import METRICS, Metric, policy_statistics, slo_attainment
from sim.scenario import Scenario
from sim.sweep.runner import run_scenario

FIRST = (Metric("time_to_first_s", "requests", "time_to_first_s", "first"),)


def hand_table() -> pd.DataFrame:
    """Policy A (baseline) and B, three replications of three requests each."""
    a = {0: [1.0, 2.0, 3.0], 1: [2.0, 3.0, 4.0], 2: [3.0, 4.0, 5.0]}
    b = {0: [0.0, 1.0, 2.0], 1: [1.0, 2.0, 3.0], 2: [1.0, 2.0, 3.0]}
    rows = [(p, rep, v) for p, table in (("A", a), ("B", b)) for rep, vs in table.items()
            for v in vs]
    return pd.DataFrame(rows, columns=["policy", "replication", "time_to_first_s"])


def scipy_interval(x: list[float]) -> tuple[float, float]:
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    return float(low), float(high)


def test_mean_and_its_interval_over_replications_match_scipy() -> None:
    summary = policy_statistics({"requests": hand_table()}, "A", FIRST, ["A", "B"])
    row = summary[(summary.policy == "A") & (summary.stat == "mean")].iloc[0]
    assert row.value == pytest.approx(3.0)
    assert (row.ci_low, row.ci_high) == pytest.approx(scipy_interval([2.0, 3.0, 4.0]))
    assert row.replications == 3


def test_percentiles_are_taken_within_each_replication() -> None:
    summary = policy_statistics({"requests": hand_table()}, "A", FIRST, ["A", "B"])
    p95 = summary[(summary.policy == "A") & (summary.stat == "p95")].iloc[0]
    # Linear interpolation: the 95th percentile of (x, x+1, x+2) is x + 1.9.
    assert p95.value == pytest.approx(np.mean([2.9, 3.9, 4.9]))


def test_the_difference_against_the_baseline_is_paired_by_replication() -> None:
    summary = policy_statistics({"requests": hand_table()}, "A", FIRST, ["A", "B"])
    row = summary[(summary.policy == "B") & (summary.stat == "mean")].iloc[0]
    diffs = [1.0 - 2.0, 2.0 - 3.0, 2.0 - 4.0]
    assert row["diff"] == pytest.approx(np.mean(diffs))
    assert (row.diff_low, row.diff_high) == pytest.approx(scipy_interval(diffs))
    baseline = summary[(summary.policy == "A") & (summary.stat == "mean")].iloc[0]
    assert np.isnan(baseline["diff"]), "the baseline has no difference with itself"


def test_one_replication_gives_a_value_without_an_interval() -> None:
    table = hand_table()
    summary = policy_statistics({"requests": table[table.replication == 0]}, "A", FIRST,
                                ["A", "B"])
    row = summary[(summary.policy == "B") & (summary.stat == "mean")].iloc[0]
    assert row.value == pytest.approx(1.0)
    assert np.isnan(row.ci_low) and np.isnan(row.diff_low)
    assert row["diff"] == pytest.approx(-1.0)


def test_slo_attainment_is_the_fraction_within_the_limit_per_replication() -> None:
    frame = slo_attainment(hand_table(), "time_to_first_s", 2.0)
    a = frame[frame.policy == "A"].iloc[0]
    assert a.value == pytest.approx(np.mean([2 / 3, 1 / 3, 0.0]))
    b = frame[frame.policy == "B"].iloc[0]
    assert b.value == pytest.approx(np.mean([1.0, 2 / 3, 2 / 3]))


SMALL = {
    "name": "report-test",
    "description": "two nodes, bursts of a few instances",
    "seed": 3,
    "replications": 2,
    "sample_period_s": 0.05,
    "cluster": {"nodes": [{"count": 2, "model": {"cores": 2, "work_s": 0.2, "work_cv": 0.3}}]},
    "workload": {"kind": "poisson", "rate_per_s": 4, "duration_s": 3,
                 "size": {"kind": "uniform", "low": 1, "high": 8}},
    "policies": [{"name": "immediate"}, {"name": "concurrency_cap", "max_in_flight": 2},
                 {"name": "fixed_interval", "interval_ms": 20}],
    "metrics": {"slo": {"time_to_first_s": 0.5, "time_to_all_s": 1.0}},
}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sc = Scenario.model_validate(SMALL)
    tables = {k: t.to_pandas() for k, t in run_scenario(sc).items()}
    report = build_report(ReportInput(
        title="Report test", description=sc.description, policies=sc.policy_names,
        baseline=sc.baseline_policy, tables=tables, slos=sc.metrics.slo.limits(),
        provenance={"scenario": {"name": sc.name, "seed": sc.seed}},
    ))
    out = tmp_path_factory.mktemp("report")
    write_report(report, out)
    return out


def test_the_markdown_report_links_figures_that_exist(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 4, "two CDFs, in flight over time, one burst's timeline"
    for link in links:
        assert (report_dir / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for policy in ("immediate", "concurrency_cap", "fixed_interval"):
        rows = [line for line in text.splitlines() if line.startswith(f"| {policy} |")]
        assert len(rows) == 5, "3 metrics, the SLO table and the facts"
    assert "- scenario.seed: 3" in text


def test_the_html_page_embeds_every_figure_as_a_png(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http://" not in page and "https://" not in page, "self-contained: nothing to fetch"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed: `apt-get install -y chromium` (make deps does)")
    return path


def test_the_html_page_renders_in_headless_chromium(report_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--dump-dom",
             (report_dir / "report.html").as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # The page's load handler counts images the browser actually decoded (naturalWidth > 0).
    decoded = re.search(r'data-images-decoded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert decoded and total, "the page's script did not run: " + dom[:500]
    assert int(total.group(1)) == 4
    assert decoded.group(1) == total.group(1)
    assert dom.count('<table class="metric">') == len(METRICS)
    for table in ("headline", "slo", "sizes", "facts"):
        assert f'<table class="{table}">' in dom, table


def test_the_headline_names_the_policy_with_the_lowest_value() -> None:
    summary = policy_statistics({"requests": hand_table()}, "A", FIRST, ["A", "B"])
    report = Report(ReportInput("t", "", ("A", "B"), "A", {}), summary, pd.DataFrame(),
                    pd.DataFrame(), ())
    header, rows = headline_table(report)
    assert header[-1] == "Δ vs A"
    mean_row = next(r for r in rows if r[1] == "mean")
    assert mean_row[2] == "B"
    # Paired differences -1, -1, -2 over three replications: the t interval still holds zero.
    assert not mean_row[4].endswith("*")
    assert mean_row[4].startswith("-1.333 [-2.768, 0.101]")


def test_request_sizes_are_grouped_in_powers_of_two_when_there_are_many() -> None:
    assert [size_class(n, exact=False)[1] for n in (1, 2, 3, 4, 7, 8, 1000)] == [
        "1", "2–3", "2–3", "4–7", "4–7", "8–15", "512–1023"]
    assert size_class(300, exact=True) == (300, "300")


def test_the_burst_shown_is_the_largest_request_of_the_first_replication() -> None:
    requests = pd.DataFrame({
        "policy": ["immediate"] * 4, "replication": [0, 0, 0, 1],
        "request_id": [0, 1, 2, 0], "count": [3, 9, 9, 50], "arrival_s": [0.0, 1.0, 2.0, 0.0],
    })
    assert burst_to_show(requests, "immediate") == (1, 0, 1.0)


def test_html_escapes_what_comes_from_the_scenario() -> None:
    requests = pd.DataFrame(columns=["policy", "replication", "request_id", "count", "arrival_s",
                                     "time_to_first_s", "time_to_all_s", "nodes_used",
                                     "complete"])
    instances = pd.DataFrame(columns=["policy", "replication", "request_id", "latency_s"])
    report = build_report(ReportInput(
        title="<script>alert(1)</script>", description="a & b", policies=(), baseline=None,
        tables={"requests": requests, "instances": instances},
    ))
    page = render_html(report)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page and "a &amp; b" in page


def test_the_reference_table_sets_measured_beside_simulated_by_size_and_interval() -> None:
    requests = pd.DataFrame({
        "policy": ["i7", "i7", "i7", "i13"], "replication": [0, 1, 0, 0],
        "request_id": [0, 0, 1, 0], "count": [100, 100, 800, 100],
        "arrival_s": [0.0, 0.0, 60.0, 0.0], "time_to_first_s": [4.0, 5.0, 9.0, 3.0],
        "time_to_all_s": [6.0, 6.0, 20.0, 5.0],
    })
    measured = pd.DataFrame({
        "count": [100, 100, 100], "interval_ms": [7, 7, 13], "memory_mb": [16, 128, 16],
        "first_ready_s": [4.0, 6.0, 3.0], "all_ready_s": [5.0, 5.0, 5.0],
    })
    data = ReportInput("t", "", ("i7", "i13"), None, {"requests": requests},
                       reference=measured, reference_intervals={"i7": 7, "i13": 13})
    report = Report(data, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ())
    table = reference_table(report)
    assert table is not None
    rows = {(r[0], r[1]): r[3:] for r in table[1]}
    # 100 at 7 ms: measured mean over memory sizes (4+6)/2 = 5, simulated mean (4+5)/2 = 4.5.
    assert rows[("100", "i7")] == ["5.000", "4.500", "-10%", "5.000", "6.000", "+20%"]
    assert rows[("100", "i13")] == ["3.000", "3.000", "+0%", "5.000", "5.000", "+0%"]
    # 800 is not in the measured table (held out): simulated only.
    assert rows[("800", "i7")] == ["–", "9.000", "–", "–", "20.000", "–"]


def p10_requests() -> pd.DataFrame:
    """Policy A: two requests of 10 and one of 20, with their arrival, first, p10, all ready."""
    frame = pd.DataFrame({
        "policy": ["A"] * 3, "replication": [0, 1, 0], "request_id": [0, 0, 1],
        "count": [10, 10, 20], "arrival_s": [0.0, 5.0, 10.0], "first_ready_s": [1.0, 6.5, 11.0],
        "p10_ready_s": [1.5, 7.0, 12.0], "all_ready_s": [3.0, 9.0, 15.0],
    })
    frame["time_to_first_s"] = frame.first_ready_s - frame.arrival_s
    frame["time_to_all_s"] = frame.all_ready_s - frame.arrival_s
    return frame


def test_the_size_table_gives_time_to_first_p10_and_all_ready_from_arrival() -> None:
    data = ReportInput("t", "", ("A",), None, {"requests": p10_requests()})
    table = size_table(Report(data, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ()))
    assert table is not None
    assert table[0] == ["instances", "A: first / p10 / all (s)"]
    # Size 10: first (1 + 1.5) / 2, p10 (1.5 + 2) / 2, all (3 + 4) / 2 seconds after arrival.
    assert table[1] == [["10", "1.250 / 1.750 / 3.500"], ["20", "1.000 / 2.000 / 5.000"]]


def test_a_reference_with_p10_is_compared_on_p10_too() -> None:
    measured = pd.DataFrame({"count": [10, 10], "interval_ms": [5, 5],
                             "first_ready_s": [1.0, 2.0], "p10_ready_s": [2.0, 2.0],
                             "all_ready_s": [4.0, 4.0]})
    data = ReportInput("t", "", ("A",), None, {"requests": p10_requests()},
                       reference=measured, reference_intervals={"A": 5})
    table = reference_table(Report(data, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ()))
    assert table is not None
    assert table[0][3:] == ["first: measured", "simulated", "error", "p10: measured",
                            "simulated", "error", "all: measured", "simulated", "error"]
    # Size 10 at 5 ms: measured p10 2 s, simulated 1.75 s: -12.5 %, shown as -12%.
    assert table[1][0] == ["10", "A", "5", "1.500", "1.250", "-17%", "2.000", "1.750", "-12%",
                           "4.000", "3.500", "-12%"]
