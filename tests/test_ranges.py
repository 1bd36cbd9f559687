"""Every prediction names the range of the calibration's data it leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_scenario import sim

from sim.files import ScenarioError
from sim.model.probe import HOST_DRIFT_SIGMA, HOST_SPREAD_SIGMA, HostSpeed, ProbeFile
from sim.model.ranges import DataRange, extrapolations
from sim.scenario import load_scenario

SEEN = DataRange(count=(50, 300), interval_ms=(1.0, 20.0), cores=2)


def test_inside_the_data_nothing_is_said() -> None:
    assert extrapolations(SEEN, count=300, interval_ms=1.0, cores=2) == []


def test_each_quantity_outside_is_named_with_the_range() -> None:
    said = extrapolations(SEEN, count=100_000, interval_ms=0.0, cores=8)
    assert said == [
        "count 100000 is outside the calibration's data (50-300)",
        "interval 0 ms is outside the calibration's data (1-20 ms)",
        "cores 8 is outside the calibration's data (2-2)",
    ]


def test_unknown_cores_are_not_judged() -> None:
    assert extrapolations(DataRange(count=(1, 2), interval_ms=(1, 2), cores=None), cores=64) == []


ROOT = Path(__file__).resolve().parents[1]
BIG_BURSTS = """\
name: big-bursts
seed: 3
replications: 1
cluster:
  nodes:
    - count: 1
      calibration: {calibration}
      {probe}
workload:
  kind: trace
  path: trace.csv
policies:
  - name: immediate
"""


def _scenario(tmp_path: Path, count: int, probe: str = "") -> Path:
    (tmp_path / "trace.csv").write_text(f"arrival_s,count\n0.0,{count}\n")
    path = tmp_path / "s.yaml"
    path.write_text(BIG_BURSTS.format(
        calibration=ROOT / "calibration" / "firmware-2026-11-26.json", probe=probe))
    return path


def test_sim_run_warns_when_a_node_boots_more_than_its_calibration_saw(tmp_path: Path) -> None:
    done = sim("run", str(_scenario(tmp_path, 400)), "--out", str(tmp_path / "out"), "--json",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert said == ["warning: extrapolation: node group firmware: up to 400 instances booting "
                    "at once on a node, beyond the calibration's data (bursts of 50-300 "
                    "instances)"]
    assert json.loads(done.stdout)["extrapolation"] == [said[0].split(": ", 2)[2]]
    assert "up to 400 instances" in (tmp_path / "out" / "report.md").read_text()


def test_sim_run_inside_the_data_warns_of_nothing(tmp_path: Path) -> None:
    done = sim("run", str(_scenario(tmp_path, 200)), "--out", str(tmp_path / "out"), "--json",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    assert json.loads(done.stdout)["extrapolation"] == []


def test_a_scenario_probe_carries_the_node_group_to_the_probed_host(tmp_path: Path) -> None:
    calibration = json.loads((ROOT / "calibration" / "firmware-2026-11-26.json").read_text())
    reference = HostSpeed.model_validate(calibration["host_reference"])
    probe = ProbeFile(
        boot="firmware", accel="kvm", memory_mb=16, created_at="2026-11-30T00:00:00+00:00",
        host={"description": "test"}, qemu_version="test", duration_s=12.0,
        speed=reference.model_copy(update={"boot_cpu_s": reference.boot_cpu_s * 0.5}),
        boot_cpu_quartiles_s=(0.01, 0.02), effective_cores_range=(1.8, 1.9),
        launch_lateness_p99_s=0.0, runs=["r"])
    (tmp_path / "probe.json").write_text(probe.model_dump_json())
    plain = load_scenario(_scenario(tmp_path, 100)).scenario.cluster.nodes[0].node_model
    probed = load_scenario(_scenario(tmp_path, 100, "probe: probe.json")).scenario
    carried = probed.cluster.nodes[0].node_model
    # Half the CPU per boot, weighed against the calibration's (sim.model.probe.weighed).
    weight = HOST_SPREAD_SIGMA ** 2 / (HOST_SPREAD_SIGMA ** 2 + HOST_DRIFT_SIGMA ** 2)
    assert carried.work_s == pytest.approx(plain.work_s * 0.5 ** weight)
    assert carried.cores == plain.cores
    (tmp_path / "probe.json").write_text("{}")
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, 100, "probe: probe.json"))
    assert "probe.json" in str(err.value)


def _probe(tmp_path: Path, scale: float) -> Path:
    calibration = json.loads((ROOT / "calibration" / "firmware.json").read_text())
    reference = HostSpeed.model_validate(calibration["host_reference"])
    probe = ProbeFile(
        boot="firmware", accel="kvm", memory_mb=16, created_at="2026-11-30T00:00:00+00:00",
        host={"description": "test"}, qemu_version="test", duration_s=12.0,
        speed=reference.model_copy(update={"boot_cpu_s": reference.boot_cpu_s * scale}),
        boot_cpu_quartiles_s=(0.01, 0.02), effective_cores_range=(1.8, 1.9),
        launch_lateness_p99_s=0.0, runs=["r"])
    path = tmp_path / "probe.json"
    path.write_text(probe.model_dump_json())
    return path


def test_sim_schedule_carries_only_the_groups_a_probe_can_carry(tmp_path: Path) -> None:
    # queueing.yaml mixes the study's table calibration (no host reference) and this host's.
    args = ["schedule", str(ROOT / "scenarios" / "queueing.yaml"), "--policy", "immediate",
            "--node", "11", "--out"]
    done = sim(*args, str(tmp_path / "s.json"), "--probe", str(_probe(tmp_path, 0.5)),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "carries node groups: firmware" in done.stderr
    replay = ROOT / "scenarios" / "replay-host.yaml"
    done = sim("schedule", str(replay), "--policy", "immediate", "--out",
               str(tmp_path / "r.json"), "--probe", str(_probe(tmp_path, 0.5)), cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no node group of replay-host.yaml" in lines[0]


def test_sim_schedule_warns_when_its_node_boots_more_than_its_calibration_saw(
        tmp_path: Path) -> None:
    big = sim("schedule", str(_scenario(tmp_path, 400)), "--policy", "immediate", "--out",
              str(tmp_path / "s.json"), cwd=tmp_path)
    assert big.returncode == 0, big.stderr
    assert [line for line in big.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: extrapolation: node group firmware: up to 400 instances booting at once on a "
        "node, beyond the calibration's data (bursts of 50-300 instances)"]
    small = sim("schedule", str(_scenario(tmp_path, 200)), "--policy", "immediate", "--out",
                str(tmp_path / "s.json"), cwd=tmp_path)
    assert small.returncode == 0 and "warning" not in small.stderr, small.stderr
