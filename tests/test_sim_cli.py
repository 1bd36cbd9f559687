"""The `sim` command as a user runs it (a subprocess): mistakes are located one line each with
exit 2, --json keeps stdout pure JSON, and a tiny scenario runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tiny_scenario import TINY, at, sim

from sim.model.schedule import load_schedule


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_a_bad_scenario_is_one_located_line_per_mistake_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(TINY.replace("max_in_flight: 2", "max_in_fligth: 2").replace(
        "seed: 11", "seed: five"))
    done = sim("run", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    text = path.read_text()
    assert lines == [
        f"{path}:{at(text, 'five')}: seed: Input should be a valid integer, unable to parse "
        "string as an integer",
        f"{path}:{at(text, 'name: concurrency_cap')}: policies.1: required key 'max_in_flight' "
        "is missing; add it",
        f"{path}:{at(text, 'max_in_fligth')}: policies.1.max_in_fligth: unknown key "
        "'max_in_fligth'; did you mean 'max_in_flight'?",
    ]


def test_a_missing_scenario_file_is_exit_2_without_a_traceback(tmp_path: Path) -> None:
    done = sim("run", str(tmp_path / "none.yaml"), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "cannot read the file" in done.stderr


def test_a_bad_option_is_one_line_and_exit_2(tiny: Path) -> None:
    done = sim("run", str(tiny), "--bogus", cwd=tiny.parent)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


def test_run_writes_records_and_reports_and_json_is_all_stdout_holds(tiny: Path) -> None:
    out = tiny.parent / "out"
    done = sim("run", str(tiny), "--out", str(out), "--json", cwd=tiny.parent)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert summary["policies"] == ["immediate", "concurrency_cap"]
    assert summary["baseline"] == "immediate"
    first = summary["metrics"]["time_to_first_s"]
    assert first["immediate"]["mean"]["diff_vs_baseline"] is None
    assert isinstance(first["concurrency_cap"]["p95"]["diff_vs_baseline"], float)
    for name in ("report.md", "report.html", "summary.csv", "figures/cdf_time_to_first.png"):
        assert (out / name).is_file(), name
    requests = pq.read_table(out / "records" / "requests.parquet").to_pandas()
    assert set(requests.policy) == {"immediate", "concurrency_cap"}
    assert set(requests.replication) == {0, 1}
    # Common random numbers: both policies saw exactly the same requests.
    per_policy = [g.sort_values(["replication", "request_id"])[["replication", "arrival_s",
                                                               "count"]].to_numpy().tolist()
                  for _, g in requests.groupby("policy")]
    assert per_policy[0] == per_policy[1]
    assert (out / "records" / "requests.csv").is_file()


def test_run_prints_a_table_for_people_without_json(tiny: Path) -> None:
    done = sim("run", str(tiny), "--out", str(tiny.parent / "o"), cwd=tiny.parent)
    assert done.returncode == 0, done.stderr
    assert "concurrency_cap" in done.stdout and "report.html" in done.stdout


def test_tune_picks_the_best_feasible_setting(tiny: Path) -> None:
    done = sim("tune", str(tiny), "--policy", "concurrency_cap", "--grid",
               "max_in_flight=1,2,4,64", "--grid", "order=fifo", "--json", cwd=tiny.parent)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    candidates = result["candidates"]
    assert len(candidates) == 4
    feasible = [c for c in candidates if c["feasible"]]
    assert result["best"]["objective"] == min(c["objective"] for c in feasible)
    fastest = min(c["all_ready"] for c in candidates)
    assert all(c["all_ready"] <= 1.1 * fastest for c in feasible)
    assert all(c["all_ready"] > 1.1 * fastest for c in candidates if not c["feasible"])
    assert result["best"]["config"]["name"] == "concurrency_cap"


def test_tune_suggests_the_policy_or_parameter_meant(tiny: Path) -> None:
    done = sim("tune", str(tiny), "--policy", "concurency_cap", cwd=tiny.parent)
    assert done.returncode == 2
    assert "did you mean 'concurrency_cap'?" in done.stderr
    done = sim("tune", str(tiny), "--policy", "batching", "--grid", "windows=1", cwd=tiny.parent)
    assert done.returncode == 2
    assert "did you mean 'window_s'?" in done.stderr


@pytest.mark.parametrize("launcher", ["", ", launcher: fair, launch_cpu_s: 0.02"])
def test_schedule_holds_the_launches_sim_run_records_on_that_node(tiny: Path,
                                                                  launcher: str) -> None:
    # The schedule is the policy's plan: under a fair launcher, whose launches end later than
    # planned (launch_s), it still holds the planned times, for the host that replays it.
    tiny.write_text(TINY.replace("work_cv: 0.2}", f"work_cv: 0.2{launcher}}}"))
    out = tiny.parent / "run"
    assert sim("run", str(tiny), "--out", str(out), "--json", cwd=tiny.parent).returncode == 0
    path = tiny.parent / "schedule.json"
    done = sim("schedule", str(tiny), "--policy", "immediate", "--node", "1",
               "--replication", "1", "--out", str(path), cwd=tiny.parent)
    assert done.returncode == 0, done.stderr
    schedule = load_schedule(path)
    instances = pq.read_table(out / "records" / "instances.parquet").to_pandas()
    mine = instances[(instances.policy == "immediate") & (instances.replication == 1)
                     & (instances.node == 1)].sort_values(["planned_s", "request_id",
                                                           "instance_id"])
    start = mine.planned_s.min()
    assert [(s.request_id, s.instance_id) for s in schedule.launches] == list(
        zip(mine.request_id, mine.instance_id, strict=True))
    assert [s.at_s for s in schedule.launches] == (mine.planned_s - start).tolist()
    assert [s.predicted_ready_s for s in schedule.launches] == (mine.ready_s - start).tolist()
    assert (schedule.node, schedule.replication, schedule.policy) == (1, 1, "immediate")
    late = mine.launch_s - mine.planned_s
    assert (late.max() > 0.02) if launcher else (late.abs().max() == 0.0)


def test_schedule_of_a_policy_the_scenario_lacks_is_one_line(tiny: Path) -> None:
    done = sim("schedule", str(tiny), "--policy", "batching", "--out", "s.json",
               cwd=tiny.parent)
    assert done.returncode == 2
    assert done.stderr.startswith("error: policy 'batching' is not in ")
    assert done.stderr.count("\n") == 1 and "immediate, concurrency_cap" in done.stderr
