"""The report of a one-node scenario carries `measure predict`'s forecast of each burst the node
launched: the count and interval read off the simulated schedule agree with the policies' own
settings, and the figures and intervals are the forecast's for that calibration (carried to the
group's probe), count and interval. Where the calibration lacks a part of the interval, or the
model is inline, the report says so and gives none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim.model.calibration import load_calibration
from sim.model.forecast import forecast
from sim.model.intervals import FIGURES
from sim.model.predict import predict
from sim.model.probe import HostSpeed, ProbeFile, load_probe
from sim.report import node_forecast as node_forecast_module
from sim.report.comparison import FORECAST_TITLE
from sim.report.node_forecast import (
    INLINE,
    NodeForecast,
    launch_interval_ms,
    node_forecast,
)
from sim.report.run_outputs import write_run
from sim.scenario import load_scenario
from sim.sweep.runner import run_scenario

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "calibration" / "paper2016.json"
FIRMWARE = ROOT / "calibration" / "firmware.json"
POLICIES = """\
policies:
  - name: immediate
  - {name: fixed_interval, interval_ms: 7, label: interval 7 ms}
  - {name: concurrency_cap, max_in_flight: 4, label: cap 4}
"""


def scenario_file(tmp_path: Path, node: str, counts: tuple[int, ...] = (20, 40),
                  nodes: int = 1) -> Path:
    """A scenario of `nodes` nodes as `node` (YAML of the group's fields after `count`) given
    one burst of each of `counts`, a minute apart, under the three POLICIES, two replications."""
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,count\n" + "".join(f"{60 * i},{c}\n"
                                                   for i, c in enumerate(counts)))
    path = tmp_path / "one-node.yaml"
    path.write_text(f"""\
name: one-node
seed: 3
replications: 2
sample_period_s: null
cluster:
  nodes:
    - count: {nodes}
      {node}
workload:
  kind: trace
  path: {trace}
  lifetime_s: 5
{POLICIES}""")
    return path


def run(path: Path) -> NodeForecast | None:
    sc = load_scenario(path).scenario
    frames = {kind: table.to_pandas() for kind, table in run_scenario(sc).items()}
    return node_forecast(sc, frames, [])


def test_each_burst_is_forecast_as_measure_predict_forecasts_it(tmp_path: Path) -> None:
    made = run(scenario_file(tmp_path, f"calibration: {PAPER}"))
    assert made is not None
    # The schedule read back gives each policy's own interval: 0 at once, 7 ms as configured.
    assert [(b.policy, b.count, b.interval_ms, b.requests) for b in made.bursts] == [
        ("immediate", 20, 0.0, 2), ("immediate", 40, 0.0, 2),
        ("interval 7 ms", 20, 7.0, 2), ("interval 7 ms", 40, 7.0, 2)]
    # A cap launches as instances finish: no single interval, so no forecast, and it says so.
    assert made.uneven == {"cap 4": 4} and made.unfinished == {}
    calibration = load_calibration(PAPER)
    for burst in made.bursts:
        expected = forecast(calibration, burst.count, burst.interval_ms)
        assert burst.predicted.central == {n: getattr(expected, n) for n in FIGURES}
        assert burst.predicted.intervals == {n: getattr(expected, f"{n}_interval")
                                             for n in FIGURES}
        # 20 and 40 instances are below the study's 100 to 1000: the forecast says so.
        assert burst.predicted.extrapolation == expected.extrapolation != []
        for name in FIGURES:
            low, high = burst.predicted.intervals[name]
            assert low < burst.predicted.central[name] < high, (burst, name)
    assert made.interval_parts[0].startswith("run-to-run variability (210 runs")
    assert any("cap 4" in note and "unevenly" in note for note in made.notes())


def test_beyond_the_most_bursts_the_report_counts_those_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Four distinct bursts, each launched twice: with room for one, the smallest is kept.
    monkeypatch.setattr(node_forecast_module, "MAX_BURSTS", 1)
    made = run(scenario_file(tmp_path, f"calibration: {PAPER}"))
    assert made is not None
    assert [(b.policy, b.count, b.interval_ms) for b in made.bursts] == [("immediate", 20, 0.0)]
    assert made.left_out == 3
    assert "3 other bursts, launched less often, are not forecast (at most 1)." in made.notes()


@pytest.mark.parametrize("lack", ["run_noise", "parameters"])
def test_a_calibration_lacking_a_part_of_the_interval_gets_no_interval(
        tmp_path: Path, lack: str) -> None:
    data = json.loads(PAPER.read_text())
    if lack == "run_noise":
        data["run_noise"] = None
        reason = "no run-to-run variability: the calibration does not record it (refit)"
    else:
        for estimate in data["parameters"].values():
            estimate["low"] = estimate["high"] = estimate["value"]
        reason = ("no parameter uncertainty: the calibration has no fitted parameter with a "
                  "bootstrap interval")
    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps(data))
    made = run(scenario_file(tmp_path, f"calibration: {lacking}", counts=(20,)))
    assert made is not None and made.bursts
    assert made.interval_parts == [] and made.no_intervals == [reason]
    assert f"No intervals: {reason}." in made.notes()
    calibration = load_calibration(lacking)
    for burst in made.bursts:
        assert burst.predicted.intervals is None
        assert burst.to_json()["all_ready_s_interval"] is None
        expected = forecast(calibration, burst.count, burst.interval_ms)
        assert burst.predicted.central == {n: getattr(expected, n) for n in FIGURES}


def probe_file(tmp_path: Path, slower: float) -> Path:
    """A probe of a host whose boots take `slower` times the firmware calibration's CPU."""
    reference = load_calibration(FIRMWARE).host_reference
    assert reference is not None
    probe = ProbeFile(
        boot="firmware", accel="kvm", memory_mb=16, created_at="2026-11-30T00:00:00+00:00",
        host={"description": "a slower test host"}, qemu_version="test", duration_s=12.0,
        speed=HostSpeed(boot_cpu_s=slower * reference.boot_cpu_s,
                        effective_cores=reference.effective_cores, bursts=5),
        boot_cpu_quartiles_s=(0.04, 0.05), effective_cores_range=(1.8, 1.9),
        launch_lateness_p99_s=0.0001, runs=["r"])
    path = tmp_path / "probe.json"
    path.write_text(probe.model_dump_json())
    return path


def test_the_probe_of_the_node_group_carries_the_forecast_to_its_host(tmp_path: Path) -> None:
    probe = probe_file(tmp_path, slower=2.0)
    made = run(scenario_file(tmp_path, f"calibration: {FIRMWARE}\n      probe: {probe}",
                             counts=(60,)))
    assert made is not None and made.bursts
    assert made.host is not None and "a slower test host" in made.host
    calibration = load_calibration(FIRMWARE)
    for burst in made.bursts:
        carried = forecast(calibration, burst.count, burst.interval_ms, load_probe(probe),
                           str(probe))
        assert burst.to_json() == {
            "policy": burst.policy, "count": burst.count, "interval_ms": burst.interval_ms,
            "requests": 2, **{n: getattr(carried, n) for n in FIGURES},
            **{f"{n}_interval": list(getattr(carried, f"{n}_interval")) for n in FIGURES},
            "extrapolation": carried.extrapolation}
        # Twice the CPU per boot on the same cores (1.43 times once the probe is weighed
        # against the calibration, sim.model.probe.weighed): 60 instances take longer there.
        here = forecast(calibration, burst.count, burst.interval_ms)
        assert burst.predicted.central["all_ready_s"] > 1.3 * here.all_ready_s
    # The report names what the intervals hold as the forecast does: with the drift part.
    assert made.interval_parts == carried.interval_parts
    assert any("drift since the probe" in part for part in made.interval_parts)


def test_an_inline_model_gets_the_central_prediction_and_no_interval(tmp_path: Path) -> None:
    node = "model: {cores: 2.0, work_s: 0.031, delay_s: 0.007, work_cv: 0.05}"
    made = run(scenario_file(tmp_path, node, counts=(30,)))
    assert made is not None and made.bursts
    assert made.no_intervals == [INLINE] and made.interval_parts == [] and made.host is None
    sc = load_scenario(tmp_path / "one-node.yaml").scenario
    model = sc.cluster.nodes[0].node_model
    for burst in made.bursts:
        assert burst.predicted.intervals is None and burst.predicted.extrapolation == []
        assert burst.predicted.central == predict(model, burst.count,
                                                  burst.interval_ms).model_dump()


def test_a_platform_of_more_than_one_node_has_no_forecast(tmp_path: Path) -> None:
    node = "model: {cores: 2.0, work_s: 0.031, delay_s: 0.007, work_cv: 0.05}"
    assert run(scenario_file(tmp_path, node, counts=(10,), nodes=2)) is None


def test_launches_are_evenly_spaced_up_to_float_noise() -> None:
    start = 540.0  # late in a run, where start + i * step rounds
    assert launch_interval_ms(start + np.arange(200) * 0.013) == 13.0
    assert launch_interval_ms(np.array([3.0])) == 0.0
    assert launch_interval_ms(np.zeros(5)) == 0.0
    assert launch_interval_ms(np.array([0.0, 0.0, 0.01, 0.01])) is None


def test_the_run_writes_the_forecast_and_its_extrapolation_into_report_and_summary(
        tmp_path: Path) -> None:
    # A calibration whose data stop at 10 instances: a burst of 20 goes beyond them.
    data = json.loads(PAPER.read_text())
    for configuration in data["provenance"]["configurations"]:
        configuration["count"] = 10
    small = tmp_path / "small.json"
    small.write_text(json.dumps(data))
    loaded = load_scenario(scenario_file(tmp_path, f"calibration: {small}", counts=(20,)))
    summary = write_run(loaded, run_scenario(loaded.scenario), tmp_path / "out")
    written = json.loads(Path(summary["report"]["forecast"]).read_text())
    assert written == json.loads(json.dumps(summary["one_node_forecast"]))
    assert summary["extrapolation"] != [] and written["warnings"] == summary["extrapolation"]
    calibration = load_calibration(small)
    for burst in written["bursts"]:
        expected = forecast(calibration, burst["count"], burst["interval_ms"])
        assert burst["extrapolation"][0] == "count 20 is outside the calibration's data (10-10)"
        for name in FIGURES:
            assert burst[name] == getattr(expected, name)
            assert burst[f"{name}_interval"] == list(getattr(expected, f"{name}_interval"))
    markdown = Path(summary["report"]["markdown"]).read_text()
    assert f"## {FORECAST_TITLE}" in markdown
    assert "| immediate | 20 | 0 | 2 |" in markdown
    assert f"Extrapolation: {summary['extrapolation'][0]}." in markdown
