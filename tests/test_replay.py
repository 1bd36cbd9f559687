"""Closing the loop: a simulated schedule replayed on the real host, and real ready times
compared with the model's prediction for the same launches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from measure.calibration.validate import validate_run
from measure.harness.burst import run_burst
from measure.harness.dataset import load_instances, load_manifests
from measure.harness.replay import replay_spec
from sim.errors import UserError
from sim.model.calibration import load_calibration
from sim.model.predict import burst_ready_times
from sim.model.ready_times import ready_times
from sim.model.schedule import LaunchSchedule, ScheduledLaunch, load_schedule, write_schedule

FIRMWARE = Path(__file__).resolve().parent.parent / "calibration" / "firmware.json"


def _schedule(times: list[float]) -> LaunchSchedule:
    return LaunchSchedule(scenario="test.yaml", scenario_sha256="0" * 64, policy="fixed_interval",
                          node=0, replication=0,
                          launches=[ScheduledLaunch(request_id=0, instance_id=i, at_s=t)
                                    for i, t in enumerate(times)])


def test_a_schedule_round_trips_and_rejects_disorder(tmp_path: Path) -> None:
    plan = _schedule([0.0, 0.01, 0.5])
    write_schedule(plan, tmp_path / "s.json")
    assert load_schedule(tmp_path / "s.json") == plan
    bad = json.loads((tmp_path / "s.json").read_text())
    bad["launches"].reverse()
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match=r"bad.json:1:1: \(top\): launches must be in order"):
        load_schedule(tmp_path / "bad.json")
    with pytest.raises(UserError, match=r"missing\.json: cannot read the file"):
        load_schedule(tmp_path / "missing.json")


@pytest.mark.boots
@pytest.mark.usefixtures("qemu_installed")
def test_replay_launches_each_instance_at_its_scheduled_time(tmp_path: Path, accel: str) -> None:
    times = [0.0, 0.0, 0.03, 0.2, 0.21]
    plan = _schedule(times)
    spec = replay_spec(plan, tmp_path / "s.json", "firmware", accel)  # type: ignore[arg-type]
    result = run_burst(spec, tmp_path / "ds")
    rows = load_instances(tmp_path / "ds").sort_values("instance")
    assert list(rows.planned_launch_s) == times
    assert (rows.status == "ready").all()
    assert ((rows.launch_s - rows.planned_launch_s) < 0.05).all()
    manifest = load_manifests(tmp_path / "ds")[0]
    assert manifest.schedule is not None and "fixed_interval" in manifest.schedule
    assert result.manifest.outcome == "complete"


def test_validation_measures_the_gap_between_reality_and_the_model() -> None:
    calibration = load_calibration(FIRMWARE)
    launch = np.arange(50) * 0.01
    draws = burst_ready_times(calibration.model, launch, 10.0, calibration.settings.work_draws,
                              calibration.settings.seed)
    # "Reality" that is exactly the model's mean prediction per instance...
    truth = draws.mean(axis=0)
    rows = pd.DataFrame({"run_id": "r", "instance": np.arange(50), "launch_s": launch,
                         "ready_s": truth, "status": "ready", "interval_ms": 10.0})
    close, _, _ = validate_run(rows, calibration)
    assert abs(close.relative_error["all_ready_s"]) < 0.05
    # ...and the same reality one second later: every statistic is off by exactly that.
    late, real, _ = validate_run(rows.assign(ready_s=truth + 1.0), calibration)
    for key in ("first_ready_s", "median_ready_s", "all_ready_s"):
        expected = (close.predicted[key] - (close.real[key] + 1.0)) / (close.real[key] + 1.0)
        assert late.relative_error[key] == pytest.approx(expected)
    # Triangle inequality for W1: a shift of 1 s moves the distance by at most 1 s either way.
    assert 1.0 - close.wasserstein_s <= late.wasserstein_s <= 1.0 + close.wasserstein_s
    assert real.max() == pytest.approx(truth.max() + 1.0)


def test_with_measured_work_a_reality_that_follows_the_model_has_zero_error() -> None:
    calibration = load_calibration(FIRMWARE)
    rng = np.random.default_rng([7, 0, 1])
    launch = np.sort(rng.uniform(0, 0.5, 40))
    work = rng.uniform(0.02, 0.04, 40)
    truth = ready_times(calibration.model, launch, work=work)
    # The CPU a boot really gets holds the model's growth with the instances started before it.
    cpu = work * (1 + calibration.model.work_growth * np.arange(40))
    rows = pd.DataFrame({"run_id": "r", "instance": np.arange(40), "launch_s": launch,
                         "ready_s": truth, "cpu_s": cpu, "status": "ready", "interval_ms": 12.5})
    exact, _, _ = validate_run(rows, calibration, work="measured")
    assert all(abs(e) < 1e-9 for e in exact.relative_error.values())
    assert exact.wasserstein_s == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(UserError, match="work must be"):
        validate_run(rows, calibration, work="guessed")


def test_measure_validate_reports_each_run_with_linear_quantiles(tmp_path: Path) -> None:
    # Four instances ready at 1, 2, 3 and 4 s: median 2.5 and p95 3 + 0.85 (numpy's linear
    # quantile at virtual index 0.95 * 3), first 1 and all-ready 4, whatever the model says.
    rows = pd.DataFrame({"run_id": "r", "instance": np.arange(4), "launch_s": np.arange(4) * 0.01,
                         "ready_s": [1.0, 2.0, 3.0, 4.0], "status": "ready", "interval_ms": 10.0,
                         "cpu_s": 0.03})
    rows.to_parquet(tmp_path / "four.parquet")
    done = subprocess.run([sys.executable, "-m", "measure.cli", "validate",
                           str(tmp_path / "four.parquet"), "--calibration", str(FIRMWARE),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["run_id"] == "r" and result["count"] == 4
    assert result["real"] == pytest.approx({"first_ready_s": 1.0, "median_ready_s": 2.5,
                                            "p95_ready_s": 3.85, "all_ready_s": 4.0})
    for key, real in result["real"].items():
        assert result["relative_error"][key] == pytest.approx(
            (result["predicted"][key] - real) / real)
