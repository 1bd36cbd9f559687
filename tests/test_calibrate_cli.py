"""`measure calibrate` and `measure predict` from the command line: mistakes are one line on
stderr with exit 2, and `predict --json` prints exactly the documented keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from calibration_fixtures import synthetic_table

from sim.model.node_model import NodeModel

TRUE = NodeModel(cores=2, work_s=0.05, delay_s=0.3, work_cv=0.2)


def measure(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "measure.cli", *map(str, args)],
        capture_output=True, text=True, timeout=240,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    table = synthetic_table(root / "tiny.csv", TRUE)
    out = root / "tiny.json"
    result = measure(
        "calibrate", table, "--out", out, "--cores", "2", "--families", "ps_delay",
        "--bootstrap", "2", "--draws", "1", "--host", "synthetic: a known model",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return out


def test_predict_json_has_exactly_the_documented_keys(calibration: Path) -> None:
    result = measure(
        "predict", "--calibration", calibration, "--count", "20", "--interval-ms", "5", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    figures = ["first_ready_s", "p10_ready_s", "median_ready_s", "p95_ready_s", "all_ready_s"]
    assert set(data) == {*figures, *(f"{f}_interval" for f in figures), "calibration", "count",
                         "interval_ms", "interval_level", "interval_parts", "host", "work_s",
                         "cores", "extrapolation", "launcher", "cold_memory"}
    assert data["cold_memory"] is None  # (no probe: no memory price)
    values = [data[f] for f in figures]
    assert values[0] > 0 and values == sorted(values)
    for f in figures:
        low, high = data[f"{f}_interval"]
        assert low < data[f] < high


def test_calibrate_records_the_stated_host(calibration: Path) -> None:
    host = json.loads(calibration.read_text())["provenance"]["host"]
    assert host == {**host, "source": "stated", "description": "synthetic: a known model"}


def test_a_missing_dataset_is_one_line(tmp_path: Path) -> None:
    result = measure("calibrate", tmp_path / "none.csv", "--out", tmp_path / "x.json")
    assert_user_error(result, "none.csv")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("wrong.csv", "count,interval_ms\n100,1\n", ("missing columns", "first_ready_s")),
        # A row whose first instance is ready after its last: the error names its line.
        ("bad.csv", "count,interval_ms,memory_mb,first_ready_s,all_ready_s\n100,1,16,4.0,4.5\n"
         "200,1,16,7.0,6.4\n", ("bad.csv:3",)),
        # One count only: nothing to hold out.
        ("one.csv", "count,interval_ms,memory_mb,first_ready_s,all_ready_s\n100,1,16,4.0,4.5\n"
         "100,5,16,3.9,4.4\n", ("at least two",)),
    ],
)
def test_a_table_that_cannot_be_calibrated_is_one_line(
    tmp_path: Path, name: str, text: str, expected: tuple[str, ...]
) -> None:
    table = tmp_path / name
    table.write_text(text)
    result = measure("calibrate", table, "--out", tmp_path / "x.json", "--cores", "2")
    assert_user_error(result, *expected)


def test_an_unknown_family_lists_the_known_ones(tmp_path: Path) -> None:
    result = measure("calibrate", "x.csv", "--out", tmp_path / "x.json", "--families", "magic")
    assert_user_error(result, "magic", "ps_delay")


def test_predict_without_a_calibration_file_is_one_line(tmp_path: Path) -> None:
    result = measure(
        "predict", "--calibration", tmp_path / "none.json", "--count", "5", "--interval-ms", "1"
    )
    assert_user_error(result, "none.json")


def test_predict_refuses_a_zero_count(calibration: Path) -> None:
    result = measure("predict", "--calibration", calibration, "--count", "0", "--interval-ms", "1")
    assert_user_error(result, "--count")


def test_an_interrupted_run_in_a_dataset_is_one_line(tmp_path: Path) -> None:
    import pandas as pd
    from calibration_fixtures import synthetic_instances

    dataset = synthetic_instances(tmp_path / "instances.parquet", TRUE)
    rows = pd.read_parquet(dataset)
    rows = rows[~((rows["run_id"] == "n20-i10-r0") & (rows["instance"] >= 15))]
    rows.to_parquet(dataset)
    result = measure("calibrate", dataset, "--out", tmp_path / "x.json", "--cores", "2")
    assert_user_error(result, "n20-i10-r0", "15 instance rows for count 20")


def test_measured_work_families_on_a_table_are_one_line(tmp_path: Path) -> None:
    table = synthetic_table(tmp_path / "t.csv", TRUE)
    result = measure(
        "calibrate", table, "--out", tmp_path / "x.json", "--cores", "2", "--families", "cpu_ps"
    )
    assert_user_error(result, "no per-instance CPU time")


@pytest.mark.parametrize(("cores", "fragment"), [
    ("effective", "100 instances at 1 ms"),  # a table has no per-instance runs of the probe's
    ("two", "a number or `effective`"),
    ("0", "positive"),
    ("nan", "positive"),
])
def test_a_bad_cores_is_one_line(tmp_path: Path, cores: str, fragment: str) -> None:
    table = synthetic_table(tmp_path / "t.csv", TRUE)
    result = measure("calibrate", table, "--out", tmp_path / "x.json", "--cores", cores)
    assert_user_error(result, fragment)
    assert not (tmp_path / "x.json").exists()


def test_effective_cores_are_what_the_probe_configuration_got() -> None:
    # The CPU the instances of the 100-at-1-ms runs got: the calibration's host reference, which
    # `measure calibrate --cores effective` fixes as the model's cores.
    from measure.calibration.data import load_calibration_data
    from measure.calibration.host_costs import host_reference
    from measure.cli.calibrate import _cores
    from sim.model.calibration import load_calibration

    root = Path(__file__).resolve().parents[1] / "calibration"
    data = load_calibration_data([root / "data" / "host-firmware-2026-11-30"])
    reference = host_reference(data.bursts)
    assert reference is not None
    assert _cores("effective", data) == reference.effective_cores
    assert load_calibration(root / "firmware.json").host_reference == reference
    assert 1.5 < reference.effective_cores < 2.0  # two vCPUs, less what the instances did not get
