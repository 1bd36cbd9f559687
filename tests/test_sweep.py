"""Sweeps: every point is the scenario with the axis values set, its rows are what `sim run`
would report for that scenario, a local process pool gives exactly the serial table, and an
interrupted sweep resumes without redoing what it had finished."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from calibration_fixtures import synthetic_table
from tiny_scenario import TINY_SWEEP

import sim.sweep.units
from sim.model.node_model import NodeModel
from sim.report.statistics import METRICS, STATISTICS, policy_statistics
from sim.scenario import LoadedScenario, load_scenario
from sim.sweep.axes import AxisError, parse_axis
from sim.sweep.executors import ExecutorSpec
from sim.sweep.plan import distinct, plan_sweep
from sim.sweep.runner import metrics_task, run_scenario, run_sweep
from sim.sweep.table import read_provenance, sweep_provenance
from sim.sweep.units import Tables

SERIAL = ExecutorSpec("serial")


def scenario_file(tmp_path: Path, text: str = TINY_SWEEP, name: str = "tiny.yaml"
                  ) -> LoadedScenario:
    path = tmp_path / name
    path.write_text(text)
    return load_scenario(path)


@pytest.fixture
def tiny(tmp_path: Path) -> LoadedScenario:
    return scenario_file(tmp_path)


def test_points_cross_the_axes_first_axis_slowest(tiny: LoadedScenario) -> None:
    plan = plan_sweep(tiny)
    got = [dict(p.values) for p in plan.points]
    want = [{"workload.rate_per_s": r, "policies.concurrency_cap.max_in_flight": c}
            for r, c in itertools.product([1, 2.5, 4], [1, 4])]
    assert got == want
    assert len(plan.units) == len(want) * 2 * 2  # points x policies x replications


def test_a_point_is_the_scenario_file_written_with_those_values(tmp_path: Path,
                                                                tiny: LoadedScenario) -> None:
    plan = plan_sweep(tiny)
    point = plan.points[3]  # rate 2.5, cap 4
    by_hand = scenario_file(tmp_path, TINY_SWEEP.replace("rate_per_s: 3", "rate_per_s: 2.5")
                            .replace("max_in_flight: 2", "max_in_flight: 4"), "hand.yaml")
    assert point.scenario == by_hand.scenario.model_copy(update={"sweep": {}})


def test_each_row_is_what_sim_run_reports_for_its_point(tmp_path: Path,
                                                         tiny: LoadedScenario) -> None:
    """Second implementation: the report's policy_statistics() over run_scenario() of the
    point."""
    plan = plan_sweep(tiny)
    table = run_sweep(plan, tmp_path / "out", SERIAL).table
    for point in (plan.points[0], plan.points[5]):
        tables = run_scenario(point.scenario)
        frames = {kind: t.to_pandas() for kind, t in tables.items()}
        expected = policy_statistics(frames, None, METRICS, point.scenario.policy_names)
        mine = table[table.point == point.index]
        for metric, stat in itertools.product(METRICS, STATISTICS):
            for policy in point.scenario.policy_names:
                want = expected[(expected.metric == metric.name) & (expected.policy == policy)
                                & (expected.stat == stat)]["value"].item()
                got = mine[mine.policy == policy][f"{metric.name}_{stat}"].mean()
                assert got == pytest.approx(want, rel=1e-12), (point.index, policy, stat)
        requests = frames["requests"]
        for policy in point.scenario.policy_names:
            counted = requests[requests.policy == policy].groupby("replication").size()
            assert mine[mine.policy == policy].requests.tolist() == counted.tolist()


def test_a_policy_not_swept_runs_once_for_the_points_that_share_it(
        tmp_path: Path, tiny: LoadedScenario) -> None:
    plan = plan_sweep(tiny)
    # immediate does not depend on concurrency_cap's cap: 3 rates x 2 replications of it
    assert len(distinct(plan.units)) == 3 * 2 + 6 * 2
    table = run_sweep(plan, tmp_path / "out", SERIAL).table
    immediate = table[table.policy == "immediate"]
    cap1 = immediate[immediate["policies.concurrency_cap.max_in_flight"] == 1]
    cap4 = immediate[immediate["policies.concurrency_cap.max_in_flight"] == 4]
    metrics = [c for c in table.columns if c.startswith("time_to")]
    assert cap1[metrics].to_numpy().tolist() == cap4[metrics].to_numpy().tolist()
    capped = table[table.policy == "concurrency_cap"]
    assert (capped[capped["policies.concurrency_cap.max_in_flight"] == 1].peak_in_flight
            <= 1).all()


def test_the_table_is_tidy_and_carries_its_provenance(tmp_path: Path,
                                                       tiny: LoadedScenario) -> None:
    out = tmp_path / "out"
    run_sweep(plan_sweep(tiny), out, SERIAL)
    table = pd.read_parquet(out / "sweep.parquet")
    assert list(table.columns[:6]) == ["point", "workload.rate_per_s",
                                       "policies.concurrency_cap.max_in_flight", "policy",
                                       "replication", "seed"]
    assert table["workload.rate_per_s"].dtype == np.float64  # 1 and 4 widened beside 2.5
    assert len(table) == 6 * 2 * 2
    assert not table.duplicated(["point", "policy", "replication"]).any()
    provenance = read_provenance(out / "sweep.parquet")
    assert provenance["scenario"]["sha256"] == tiny.sha256
    assert provenance["executor"] == "serial"
    assert provenance["sweep"]["axes"] == {"workload.rate_per_s": [1, 2.5, 4],
                                           "policies.concurrency_cap.max_in_flight": [1, 4]}
    assert provenance["bootstorm_version"]


def test_a_local_pool_gives_exactly_the_serial_table(tmp_path: Path,
                                                     tiny: LoadedScenario) -> None:
    plan = plan_sweep(tiny)
    serial = run_sweep(plan, tmp_path / "serial", SERIAL)
    pooled = run_sweep(plan, tmp_path / "pool", ExecutorSpec("local", workers=2), batch=2)
    assert pooled.executor == "local (2 processes)"
    assert pooled.tasks == 9  # 18 simulations, 2 per task
    pd.testing.assert_frame_equal(pooled.table, serial.table, check_exact=True)


class Stop(Exception):
    """Stands for Ctrl-C in the middle of a sweep."""


def test_an_interrupted_sweep_resumes_without_redoing_finished_units(
        tmp_path: Path, tiny: LoadedScenario, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_sweep(tiny)
    total = len(distinct(plan.units))
    simulated: list[int] = []
    real_simulate_unit = sim.sweep.units.simulate_unit

    def counting_simulate_unit(*args: Any, **kwargs: Any) -> Tables:
        simulated.append(1)
        return real_simulate_unit(*args, **kwargs)

    monkeypatch.setattr(sim.sweep.units, "simulate_unit", counting_simulate_unit)
    finished: list[int] = []

    def stop_after_two_tasks(n: int) -> None:
        finished.append(n)
        if len(finished) == 2:
            raise Stop

    out = tmp_path / "out"
    with pytest.raises(Stop):
        run_sweep(plan, out, SERIAL, batch=3, on_units_done=stop_after_two_tasks)
    assert len(list((out / "parts").glob("*.parquet"))) == 2
    assert len(simulated) == 6
    (out / "parts" / ".half-written.123.tmp").write_bytes(b"PAR1 cut short")

    simulated.clear()
    resumed = run_sweep(plan, out, SERIAL, batch=3)
    assert len(simulated) == total - 6, "only the units not finished before are simulated"
    assert (resumed.units_reused, resumed.units_run) == (6, total - 6)
    assert not list((out / "parts").glob(".*.tmp"))

    simulated.clear()
    again = run_sweep(plan, out, SERIAL)
    assert simulated == [] and again.units_run == 0
    pd.testing.assert_frame_equal(resumed.table, run_sweep(plan, tmp_path / "fresh",
                                                           SERIAL).table, check_exact=True)


def test_more_replications_reuse_the_ones_done_and_a_new_seed_redoes_all(
        tmp_path: Path, tiny: LoadedScenario) -> None:
    out = tmp_path / "out"
    first = run_sweep(plan_sweep(tiny), out, SERIAL)
    more = run_sweep(plan_sweep(tiny, replications=3), out, SERIAL)
    assert more.units_reused == first.units_run
    assert more.units_run == 3 + 6  # replication 2: immediate per rate, cap per point
    reseeded = scenario_file(tmp_path, TINY_SWEEP.replace("seed: 11", "seed: 12"),
                             "reseeded.yaml")
    other = run_sweep(plan_sweep(reseeded), out, SERIAL)
    assert other.units_reused == 0
    assert set(other.table.seed) == {12}, "parts of the old seed stay out of the table"


def test_command_line_axes_replace_or_add_to_the_yaml_ones(tiny: LoadedScenario) -> None:
    plan = plan_sweep(tiny, {"policies.concurrency_cap.max_in_flight": (2,),
                             "cluster.nodes.0.count": (1, 3)})
    assert list(plan.axes) == ["workload.rate_per_s", "policies.concurrency_cap.max_in_flight",
                               "cluster.nodes.0.count"]
    assert len(plan.points) == 3 * 1 * 2
    assert {p.scenario.cluster.build().size for p in plan.points} == {1, 3}


def test_axis_values_are_read_as_yaml() -> None:
    assert parse_axis("workload.rate_per_s=1, 2.5,4") == ("workload.rate_per_s", (1, 2.5, 4))
    assert parse_axis("policies.0.placement=least_loaded,packing") == (
        "policies.0.placement", ("least_loaded", "packing"))
    assert parse_axis("workload.size=[{kind: fixed, count: 2}, {kind: fixed, count: 5}]")[1] \
        == ({"kind": "fixed", "count": 2}, {"kind": "fixed", "count": 5})
    with pytest.raises(AxisError, match="is not PATH=V1,V2"):
        parse_axis("workload.rate_per_s")


@pytest.mark.parametrize(("axis", "says"), [
    ("workload.rate", "workload has no key 'rate'; did you mean 'rate_per_s'?"),
    ("worklaod.rate_per_s", "the scenario has no key 'worklaod'; did you mean 'workload'?"),
    ("policies.batching.window_s", "'batching' names no entry of policies; use one of "
                                   "immediate, concurrency_cap or an index 0..1"),
    ("policies.concurency_cap.max_in_flight", "'concurency_cap' names no entry of policies; "
                                              "did you mean 'concurrency_cap'?"),
    ("policies.1.max_in_fligth", "policies.1 has no key 'max_in_fligth'; did you mean "
                                 "'max_in_flight'?"),
    ("cluster.nodes.2.count", "cluster.nodes has 1 entries (0..0); 2 is past the end"),
    ("seed.x", "seed is a value (11), not a mapping or a list; end the path at seed"),
])
def test_a_bad_axis_path_says_what_is_there(tiny: LoadedScenario, axis: str, says: str) -> None:
    with pytest.raises(AxisError) as caught:
        plan_sweep(tiny, {axis: (1,)})
    assert str(caught.value) == says
    assert caught.value.axis == axis


def test_a_value_the_scenario_refuses_names_the_point(tiny: LoadedScenario) -> None:
    with pytest.raises(AxisError) as caught:
        plan_sweep(tiny, {"workload.rate_per_s": (2, -1)})
    assert str(caught.value).startswith("the point workload.rate_per_s=-1, "
                                        "policies.concurrency_cap.max_in_flight=1 gives an "
                                        "invalid scenario: workload.rate_per_s: Input should "
                                        "be greater than 0")
    assert caught.value.axis == "workload.rate_per_s"


def test_units_carry_calibrated_nodes_inline_and_provenance_hashes_the_file(
        tmp_path: Path) -> None:
    """Workers on other hosts need no calibration file: the unit holds the fitted model."""
    from measure.calibration.data import load_calibration_data
    from measure.calibration.fit import CalibrateOptions, calibrate
    from sim.model.calibration import write_calibration
    from sim.scenario import sha256_file

    truth = NodeModel(cores=2, work_s=0.05, delay_s=0.3, work_cv=0.2)
    data = synthetic_table(tmp_path / "t.csv", truth, counts=(4, 8), intervals=(0.0, 50.0),
                           replicates=1)
    fitted = calibrate(load_calibration_data([data]), CalibrateOptions(
        name="fitted", work_draws=1, bootstrap=0, families=("ps_delay",), cores=2, max_nfev=15))
    calibration = tmp_path / "fitted.json"
    write_calibration(fitted, calibration)
    loaded = scenario_file(tmp_path, TINY_SWEEP.replace(
        "model: {cores: 2, work_s: 0.3, work_cv: 0.2}", "calibration: fitted.json"))
    plan = plan_sweep(loaded, {"workload.rate_per_s": (2,),
                               "policies.concurrency_cap.max_in_flight": (2,)})
    unit = plan.units[0]
    assert unit.scenario["cluster"]["nodes"] == [
        {"count": 2, "model": fitted.model.model_dump(mode="json"), "name": "fitted"}]
    provenance = sweep_provenance(plan, "serial", 0, 0)
    assert provenance["calibrations"] == [{"file": str(calibration),
                                           "sha256": sha256_file(calibration)}]
    before = metrics_task(plan.units)
    calibration.unlink()
    assert metrics_task(plan.units) == before


def test_a_units_row_does_not_depend_on_the_batch_it_ran_in(tiny: LoadedScenario) -> None:
    """A task's rows do not depend on which other units share its batch."""
    plan = plan_sweep(tiny)
    units = distinct(plan.units)
    whole = metrics_task(tuple(units[:4]))
    alone = [row for u in units[:4] for row in metrics_task((u,))]
    assert whole == alone
