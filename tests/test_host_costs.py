"""What per-instance runs measure directly is taken, not fitted: a host whose ready guests keep
using a little CPU and whose boots get dearer with every instance already running gives back
those two numbers, and a calibration built on them says they were measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from calibration_fixtures import POST_READY_CPU_S, synthetic_instances

from measure.calibration.data import Burst, load_calibration_data
from measure.calibration.families import FAMILY_BY_NAME
from measure.calibration.family_fit import fit_family
from measure.calibration.fit import CalibrateOptions, calibrate
from measure.calibration.host_costs import measure_host_costs, residents_at_launch
from measure.calibration.objective import Evaluator, replicate_noise
from sim.model.node_model import NodeModel
from sim.model.ready_times import ready_times

HOST = NodeModel(
    cores=1.7, work_s=0.03, work_cv=0.1, delay_s=0.02, idle_load=0.004, work_growth=0.01
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_instances(tmp_path_factory.mktemp("costs") / "instances.parquet", HOST)


def test_the_idle_cost_and_the_growth_of_work_are_read_off_the_runs(dataset: Path) -> None:
    costs = measure_host_costs(load_calibration_data([dataset]).bursts)
    # The post-ready CPU is a line in the time an instance stayed ready: slope and intercept.
    assert costs.idle_load == pytest.approx(HOST.idle_load, rel=1e-6)
    assert costs.post_ready_cpu_s == pytest.approx(POST_READY_CPU_S, rel=1e-4)
    # CPU time grows by 1 % per resident around lognormal noise of CV 0.1: a regression finds it.
    assert costs.work_growth == pytest.approx(HOST.work_growth, rel=0.1)
    assert costs.work_s == pytest.approx(HOST.work_s, rel=0.05)
    assert costs.work_cv == pytest.approx(HOST.work_cv, rel=0.25)


def test_replays_with_measured_costs_recover_the_cores_exactly(dataset: Path) -> None:
    bursts = list(load_calibration_data([dataset]).bursts)
    fit = fit_family(
        FAMILY_BY_NAME["cpu_ps_delay"], NodeModel(cores=2, work_s=1.0), bursts,
        Evaluator(1, 1), replicate_noise(bursts), CalibrateOptions(name="t", bootstrap=0),
        refine=2,
    )
    # The replay takes the growth back out of each measured CPU time, the node model puts it in
    # again: the runs are reproduced exactly, so the only free terms come out exact.
    assert fit.model.cores == pytest.approx(HOST.cores, rel=1e-3)
    assert fit.model.delay_s == pytest.approx(HOST.delay_s, rel=1e-3)
    assert fit.model.idle_load == pytest.approx(HOST.idle_load, rel=1e-6)


def test_a_calibration_says_which_terms_were_measured(dataset: Path) -> None:
    options = CalibrateOptions(
        name="t", bootstrap=2, families=("cpu_ps_delay", "ps_delay_cv"), cores=2, max_nfev=20
    )
    calibration = calibrate(load_calibration_data([dataset]), options)
    sources = {name: p.source for name, p in calibration.parameters.items()}
    assert sources["idle_load"] == "measured"
    assert sources["work_growth"] == "measured"
    assert calibration.model.idle_load == pytest.approx(HOST.idle_load, rel=1e-6)


def test_a_node_charges_each_boot_for_the_instances_already_there() -> None:
    # Launched far apart, each boot runs alone: its ready time is its grown work exactly.
    model = NodeModel(cores=1, work_s=0.01, work_growth=0.5)
    launches = np.arange(4) * 10.0
    ready = ready_times(model, launches)
    np.testing.assert_allclose(ready - launches, 0.01 * (1 + 0.5 * np.arange(4)))


def test_residents_count_earlier_starts_and_skip_failed_spawns() -> None:
    burst = Burst(
        run_id="r", count=4, interval_ms=1.0, first_ready_s=0.1, all_ready_s=0.2,
        launch_s=np.array([0.002, 0.0, np.nan, 0.002]), ready_s=np.full(4, 0.1),
    )
    residents = residents_at_launch(burst)
    assert residents[1] == 0 and residents[0] == 1 and residents[3] == 2
    assert np.isnan(residents[2])

