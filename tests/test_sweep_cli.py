"""`sim sweep` as a user runs it (a subprocess): a bad axis is one line and exit 2 with a
did-you-mean, located in the file when it comes from the YAML; a sweep writes its table with
provenance, its report with figures, and resumes into the same folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from tiny_scenario import TINY, TINY_SWEEP, at, sim

from sim.sweep.table import read_provenance


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SWEEP)
    return path


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_bad_axis_on_the_command_line_is_one_line_with_a_did_you_mean(tiny: Path) -> None:
    line = one_error_line(sim("sweep", str(tiny), "--axis", "workload.rate_pers=1,2",
                              cwd=tiny.parent))
    assert line == ("error: --axis workload.rate_pers: workload has no key 'rate_pers'; "
                    "did you mean 'rate_per_s'?")


def test_a_bad_axis_in_the_yaml_points_at_its_key(tiny: Path) -> None:
    text = TINY_SWEEP.replace("policies.concurrency_cap.max_in_flight:",
                        "policies.concurrency_cap.max_in_fligth:")
    tiny.write_text(text)
    line = one_error_line(sim("sweep", str(tiny), cwd=tiny.parent))
    assert line == (f"{tiny}:{at(text, 'policies.concurrency_cap.max_in_fligth')}: "
                    "sweep.policies.concurrency_cap.max_in_fligth: policies.1 has no key "
                    "'max_in_fligth'; did you mean 'max_in_flight'?")


def test_a_refused_value_and_a_malformed_axis_are_one_line_each(tiny: Path) -> None:
    line = one_error_line(sim("sweep", str(tiny), "--axis", "cluster.nodes.0.count=2,0",
                              cwd=tiny.parent))
    assert line.startswith("error: --axis cluster.nodes.0.count: the point ")
    assert "cluster.nodes.0.count: Input should be greater than or equal to 1" in line
    line = one_error_line(sim("sweep", str(tiny), "--axis", "workload.rate_per_s",
                              cwd=tiny.parent))
    assert "is not PATH=V1,V2,..." in line
    line = one_error_line(sim("sweep", str(tiny), "--executor", "serial", "--scheduler",
                              "tcp://127.0.0.1:9", cwd=tiny.parent))
    assert line.startswith("error: --scheduler needs --executor dask")


def test_a_scenario_without_axes_says_how_to_add_them(tiny: Path) -> None:
    tiny.write_text(TINY)
    line = one_error_line(sim("sweep", str(tiny), cwd=tiny.parent))
    assert "has no sweep axes; add a `sweep:` mapping" in line


def test_a_sweep_writes_table_report_and_resumes(tiny: Path) -> None:
    out = tiny.parent / "out"
    args = ("sweep", str(tiny), "--out", str(out), "--workers", "2", "--axis",
            "workload.rate_per_s=1,3", "--json")
    done = sim(*args, cwd=tiny.parent)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # stdout is one JSON document; progress went to stderr
    assert summary["points"] == 4 and summary["rows"] == 4 * 2 * 2
    assert summary["simulations"] == summary["run"] == 2 * 2 + 4 * 2
    assert summary["executor"] == "local (2 processes)"
    table = pd.read_parquet(summary["files"]["table"])
    assert sorted(set(table["workload.rate_per_s"])) == [1, 3]
    assert read_provenance(Path(summary["files"]["table"]))["executor"] == "local (2 processes)"
    report = Path(summary["files"]["markdown"]).read_text()
    for name in ("sweep_axis_0", "sweep_axis_1", "sweep_heatmap_0_1"):
        assert f"(figures/{name}.png)" in report
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    assert "## p95 time to first (s) against `workload.rate_per_s`" in report
    summary_csv = pd.read_csv(summary["files"]["summary"])
    assert {"metric", "mean", "ci_low", "ci_high"} <= set(summary_csv.columns)

    again = json.loads(sim(*args, cwd=tiny.parent).stdout)
    assert (again["run"], again["resumed"]) == (0, summary["simulations"])
    assert pd.read_parquet(again["files"]["table"]).equals(table)
