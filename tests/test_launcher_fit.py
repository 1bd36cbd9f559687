"""The fair launcher's CPU per launch: recovered from bursts the model itself produced with other
work draws, fitted to this host's fair-launcher runs (a subset, to stay fast), and reachable
from `measure predict --launcher` and a scenario's node group."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from measure.calibration.data import Burst
from measure.calibration.launcher_fit import (
    FIGURES,
    _Predictions,
    fair,
    fit_launch_cpu,
    measured_medians,
)
from sim.model.calibration import load_calibration
from sim.model.node_model import NodeModel, draw_work
from sim.model.ready_times import ready_times
from sim.model.units import seconds

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "calibration" / "firmware.json"
LAUNCHER_DATA = ROOT / "calibration" / "data" / "host-launchers-2026-12-01"
MODEL = NodeModel(cores=1.9, work_s=0.025, delay_s=0.017, work_cv=0.2)


def _fair_runs(model: NodeModel, launch_cpu_s: float, keys: list[tuple[int, float]],
               repeats: int, seed: int) -> list[Burst]:
    rng = np.random.default_rng(seed)
    runs = []
    for count, interval in keys:
        planned = np.array([seconds(i * interval) for i in range(count)])
        for r in range(repeats):
            ready = ready_times(fair(model, launch_cpu_s), planned,
                                work=draw_work(model, count, rng))
            runs.append(Burst(run_id=f"{count}-{interval}-{r}", count=count,
                              interval_ms=interval, first_ready_s=float(ready.min()),
                              all_ready_s=float(ready.max()), launch_s=planned, ready_s=ready,
                              launcher="fair"))
    return runs


@pytest.mark.parametrize("truth", [0.0004, 0.0016])
def test_the_fit_recovers_the_launch_cost_of_runs_drawn_from_the_model(truth: float) -> None:
    keys = [(60, 1.0), (150, 2.0), (300, 4.0)]
    measured = measured_medians(_fair_runs(MODEL, truth, keys, repeats=3, seed=7))
    predict = _Predictions(MODEL, draws=2, seed=11)  # other work draws than the runs'
    found = fit_launch_cpu(predict, measured)
    assert found == pytest.approx(truth, rel=0.25)


def test_a_fair_launcher_paces_a_dense_burst_and_changes_nothing_when_launches_keep_up() -> None:
    dense = _Predictions(MODEL, draws=2, seed=3)
    paced, on_time = dense(0.0008, (300, 1.0)), dense(0.0, (300, 1.0))
    # Launches slowed by the crowd: the first instances meet fewer rivals (docs/findings.md).
    assert paced["first_ready_s"] < on_time["first_ready_s"] / 2
    assert paced["p10_ready_s"] < on_time["p10_ready_s"]
    # 50 ms apart, each launch is done long before the next is due: the same burst.
    sparse_paced, sparse = dense(0.0008, (40, 50.0)), dense(0.0, (40, 50.0))
    for name in FIGURES:
        assert sparse_paced[name] == pytest.approx(sparse[name], rel=0.02)


def _subset(tmp_path: Path, count: int) -> Path:
    """The committed launcher dataset restricted to one count (both launchers), as a dataset."""
    out = tmp_path / f"launchers-{count}"
    (out / "runs").mkdir(parents=True)
    rows = pd.read_parquet(LAUNCHER_DATA / "instances.parquet")
    rows = rows[rows["count"] == count]
    rows.to_parquet(out / "instances.parquet")
    for run_id in rows["run_id"].unique():
        name = f"{run_id}.manifest.json"
        (out / "runs" / name).write_text((LAUNCHER_DATA / "runs" / name).read_text())
    return out


def measure(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "measure.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_calibrate_launcher_on_this_hosts_runs_and_predict_with_either_launcher(
        tmp_path: Path) -> None:
    data = _subset(tmp_path, 100)
    out = tmp_path / "with-launcher.json"
    done = measure("calibrate-launcher", data, "--calibration", FIRMWARE, "--out", out)
    assert done.returncode == 0, done.stderr
    cal = load_calibration(out)
    assert cal.model.launcher == "realtime"  # the calibration's own runs; fair on request
    assert 2e-5 < cal.model.launch_cpu_s < 2e-2
    assert cal.parameters["launch_cpu_s"].value == cal.model.launch_cpu_s
    fit = cal.launcher_fit
    assert fit is not None
    assert [(c.count, c.interval_ms, c.runs) for c in fit.configurations] == [
        (100, 1.0, 3), (100, 7.0, 3), (100, 19.0, 3)]
    # Everything but the launcher term is the calibration's.
    base = load_calibration(FIRMWARE)
    assert cal.model == base.model.model_copy(update={"launch_cpu_s": cal.model.launch_cpu_s})
    figures = {}
    for launcher in ("realtime", "fair", "reserved"):
        done = measure("predict", "--calibration", out, "--count", "100", "--interval-ms", "1",
                       "--launcher", launcher, "--json")
        assert done.returncode == 0, done.stderr
        figures[launcher] = json.loads(done.stdout)
        assert figures[launcher]["launcher"] == launcher
    # As measured on this host (docs/findings.md: first 0.15 s fair, 0.85 s realtime).
    assert figures["fair"]["first_ready_s"] < figures["realtime"]["first_ready_s"] / 2
    # A reserved core leaves the boots one of the two cores: the burst takes about twice as long.
    assert 1.7 < figures["reserved"]["all_ready_s"] / figures["realtime"]["all_ready_s"] < 2.3


def test_a_fair_launcher_without_a_fit_is_a_one_line_error() -> None:
    bios = FIRMWARE.parent / "bios.json"  # no launcher fit
    done = measure("predict", "--calibration", bios, "--count", "10", "--interval-ms", "1",
                   "--launcher", "fair")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "calibrate-launcher" in done.stderr, done.stderr
    done = measure("predict", "--calibration", FIRMWARE, "--count", "100", "--interval-ms", "1",
                   "--launcher", "fifo")
    assert done.returncode == 2 and "--launcher" in done.stderr, done.stderr


def test_calibrate_leaves_out_fair_runs_and_says_so(tmp_path: Path) -> None:
    data = _subset(tmp_path, 100)
    done = measure("calibrate", data, "--out", tmp_path / "c.json", "--families", "ps",
                   "--bootstrap", "0")
    assert "leaving out 9 fair- or reserved-launcher runs" in done.stderr, done.stderr


def _scenario(tmp_path: Path, group: str) -> Path:
    (tmp_path / "trace.csv").write_text("arrival_s,count\n0,50\n")
    path = tmp_path / "s.yaml"
    path.write_text(f"""\
name: launcher
seed: 1
replications: 1
cluster:
  nodes:
    - {group}
workload: {{kind: trace, path: trace.csv}}
policies: [{{name: immediate}}]
""")
    return path


def test_a_node_group_takes_a_launcher_and_refuses_fair_without_a_fit(tmp_path: Path) -> None:
    from sim.files import ScenarioError
    from sim.scenario import load_scenario

    cost = load_calibration(FIRMWARE).model.launch_cpu_s  # the shipped launcher fit
    assert cost > 0
    fair_group = f"{{count: 1, calibration: {FIRMWARE}, launcher: fair}}"
    group = load_scenario(_scenario(tmp_path, fair_group)).scenario.cluster.nodes[0]
    assert (group.node_model.launcher, group.node_model.launch_cpu_s) == ("fair", cost)
    plain = load_scenario(_scenario(tmp_path, f"{{count: 1, calibration: {FIRMWARE}}}")).scenario
    assert plain.cluster.nodes[0].node_model.launcher == "realtime"
    bios = FIRMWARE.parent / "bios.json"  # no launcher fit
    for launcher in ("fair", "reserved"):
        with pytest.raises(ScenarioError) as caught:
            load_scenario(_scenario(
                tmp_path, f"{{count: 1, calibration: {bios}, launcher: {launcher}}}"))
        assert "calibrate-launcher" in str(caught.value)
        assert f"launcher: {launcher}" in str(caught.value)
    kept = load_scenario(_scenario(
        tmp_path, f"{{count: 1, calibration: {FIRMWARE}, launcher: reserved}}"
    )).scenario.cluster.nodes[0].node_model
    assert (kept.launcher, kept.cores, kept.boot_cores) == ("reserved", 2.0, 1.0)


def test_a_probe_carries_the_launch_cost_like_the_work() -> None:
    from sim.model.probe import HostSpeed, transfer

    model = fair(MODEL, 0.002)
    reference = HostSpeed(boot_cpu_s=0.030, effective_cores=1.9, bursts=3)
    probed = HostSpeed(boot_cpu_s=0.021, effective_cores=1.9, bursts=3)
    carried = transfer(model, reference, probed)
    assert carried.launch_cpu_s / model.launch_cpu_s == pytest.approx(0.7)
    assert carried.work_s / model.work_s == pytest.approx(0.7)
    assert carried.launcher == "fair"
