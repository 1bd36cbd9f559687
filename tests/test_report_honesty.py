"""What `sim run` reports must not depend on how it was observed, nor flatter a policy that left
work unfinished (issue 14). Checked on the command's own output files (records Parquet and
report.md) against what theory says for scenarios simple enough to work out by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from fuzz_support import sim

WORK_S, DELAY_S, CORES = 0.03, 0.5, 2


def _scenario(folder: Path, *, sample: str, policies: str, count: int, replications: int = 1,
              until: str = "null") -> Path:
    (folder / "trace.csv").write_text(f"arrival_s,count\n0,{count}\n")
    path = folder / "scenario.yaml"
    path.write_text(f"""\
name: by-hand
description: one request on one node, simple enough to work out by hand
seed: 1
replications: {replications}
sample_period_s: {sample}
until_s: {until}
cluster:
  nodes:
    - count: 1
      model: {{cores: {CORES}, work_s: {WORK_S}, delay_s: {DELAY_S}, work_cv: 0}}
workload:
  kind: trace
  path: trace.csv
policies:
{policies}
""")
    return path


def _run(scenario: Path) -> Path:
    out = scenario.parent / "out"
    done = sim("run", scenario, "--out", out, timeout=180)
    assert done.code == 0, done.describe()
    return out


def _md_tables(report: str, section: str) -> list[dict[str, str]]:
    """Rows (header -> cell) of the first table under `## section` in report.md."""
    part = report.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in part.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=False))
            for line in lines[2:]]


@pytest.mark.parametrize("sample", ["0.1", "10", "null"])
def test_cpu_busy_of_the_whole_run_does_not_depend_on_the_sampling_period(
        tmp_path: Path, sample: str) -> None:
    # One instance alone on a node: a delay, then its work at full speed on one core. The node
    # was busy WORK_S core-seconds of CORES * (DELAY_S + WORK_S): observing it more or less
    # often cannot change that.
    out = _run(_scenario(tmp_path, sample=sample, policies="  - name: immediate", count=1))
    expected = WORK_S / (CORES * (DELAY_S + WORK_S))
    nodes = pd.read_parquet(out / "records" / "nodes.parquet")
    instances = pd.read_parquet(out / "records" / "instances.parquet")
    assert instances.ready_s.max() == pytest.approx(DELAY_S + WORK_S)
    assert nodes.cpu_busy_s.iloc[0] == pytest.approx(WORK_S)
    assert nodes.cpu_busy.iloc[0] == pytest.approx(expected, rel=1e-6), (
        f"sample_period_s={sample}")
    facts = _md_tables((out / "report.md").read_text(), "Run facts")
    (row,) = [r for r in facts if r["policy"] == "immediate"]
    assert float(row["mean CPU busy (whole run)"]) == pytest.approx(expected, abs=5e-4)


SLOW = "  - name: immediate\n  - {name: fixed_interval, interval_ms: 60000, label: every 60 s}"


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 instances asked at once; `every 60 s` starts one before the run stops at 10 s."""
    folder = tmp_path_factory.mktemp("unfinished")
    return _run(_scenario(folder, sample="null", policies=SLOW, count=20, replications=2,
                          until="10"))


def test_the_slow_policy_really_left_its_request_unfinished(unfinished: Path) -> None:
    requests = pd.read_parquet(unfinished / "records" / "requests.parquet")
    slow = requests[requests.policy == "every 60 s"]
    assert (~slow.complete).all() and (slow.ready_count == 1).all()
    assert requests[requests.policy == "immediate"].complete.all()


def test_node_launches_count_only_launches_that_started(unfinished: Path) -> None:
    nodes = pd.read_parquet(unfinished / "records" / "nodes.parquet")
    per_policy = nodes.groupby("policy").launches.unique().map(list).to_dict()
    # By 10 s the 60 s interval has started instance 0 only; the other 19 were never launched.
    assert per_policy == {"immediate": [20], "every 60 s": [1]}


def test_incomplete_requests_are_per_replication_like_their_neighbours(
        unfinished: Path) -> None:
    facts = _md_tables((unfinished / "report.md").read_text(), "Run facts")
    by_policy = {row["policy"]: row for row in facts}
    assert float(by_policy["every 60 s"]["requests per replication"]) == 1
    assert float(by_policy["every 60 s"]["incomplete requests"]) == 1  # 1 of 1, each replication
    assert float(by_policy["immediate"]["incomplete requests"]) == 0


def test_the_headline_never_crowns_a_policy_that_left_requests_unfinished_silently(
        unfinished: Path) -> None:
    report = (unfinished / "report.md").read_text()
    headline = _md_tables(report, "Headline")
    assert headline, "the report has no headline table"
    marked = re.compile(r"incomplete|unfinished|did not finish|not all|never ready", re.I)
    for row in headline:
        line = " | ".join(row.values())
        if "every 60 s" in line:
            assert marked.search(line), f"headline crowns an unfinished policy: {line}"


def test_a_sweep_report_marks_the_points_where_requests_did_not_finish(tmp_path: Path) -> None:
    # At a 100 ms interval the 20 instances all start within 2 s; at 60 s only one starts by
    # the 10 s cut: only that point's cells may be marked.
    scenario = _scenario(tmp_path, sample="null", count=20, replications=2, until="10",
                         policies="  - name: immediate\n"
                                  "  - {name: fixed_interval, interval_ms: 100}")
    with scenario.open("a") as f:
        f.write("sweep:\n  policies.fixed_interval.interval_ms: [100, 60000]\n")
    out = tmp_path / "sweep"
    done = sim("sweep", scenario, "--out", out, timeout=180)
    assert done.code == 0, done.describe()
    report = (out / "report.md").read_text()
    section = report.split("## ", 2)[2].split("\n## ", 1)[0]  # the first metric table
    rows = {row["policies.fixed_interval.interval_ms"]: row
            for row in _md_tables(report, section.splitlines()[0])}
    assert "incomplete" in rows["60000"]["fixed_interval"]
    assert "incomplete" not in rows["100"]["fixed_interval"]
    assert not any("incomplete" in cell for row in rows.values() for cell in
                   (row["immediate"],))
