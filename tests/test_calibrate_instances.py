"""Per-instance datasets: measured CPU time is the work, the fit finds the effective cores and
delay that replay every run exactly, and the file reports ready-time distribution errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from calibration_fixtures import synthetic_instances

from measure.calibration.data import CalibrationInputError, load_calibration_data
from measure.calibration.families import FAMILY_BY_NAME
from measure.calibration.family_fit import fit_family
from measure.calibration.fit import CalibrateOptions, calibrate
from measure.calibration.objective import Evaluator, replicate_noise
from sim.model.node_model import NodeModel

TRUE = NodeModel(cores=1.6, work_s=0.03, work_cv=0.15, delay_s=0.05)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_instances(tmp_path_factory.mktemp("inst") / "instances.parquet", TRUE)


def test_measured_work_and_replays_recover_cores_and_delay(dataset: Path) -> None:
    bursts = list(load_calibration_data([dataset]).bursts)
    options = CalibrateOptions(name="t", bootstrap=0)
    fit = fit_family(
        FAMILY_BY_NAME["cpu_ps_delay"], NodeModel(cores=2, work_s=1.0), bursts,
        Evaluator(1, 1), replicate_noise(bursts), options, refine=2,
    )
    # Replays use each instance's true work, so the fit can be exact.
    assert fit.model.cores == pytest.approx(1.6, rel=1e-3)
    assert fit.model.delay_s == pytest.approx(0.05, rel=1e-3)
    # Work is what was measured: no growth with residents in these data, so the mean CPU time.
    cpu = np.concatenate([b.cpu_s for b in bursts if b.cpu_s is not None])
    assert fit.model.work_growth == 0.0
    assert fit.model.work_s == pytest.approx(cpu.mean())
    assert fit.model.work_cv == pytest.approx(cpu.std() / cpu.mean())


def test_a_calibration_of_instances_reports_distribution_errors(dataset: Path) -> None:
    data = load_calibration_data([dataset])
    options = CalibrateOptions(
        name="t", bootstrap=2, families=("cpu_ps", "cpu_ps_delay"), cores=2, max_nfev=20
    )
    calibration = calibrate(data, options)
    assert calibration.family == "cpu_ps_delay"
    assert calibration.parameters["work_s"].source == "measured"
    assert calibration.parameters["cores"].source == "fitted"
    assert calibration.provenance.boot == "firmware"
    loco = calibration.fit.model.leave_one_count_out
    assert loco.ready_w1 is not None and loco.ready_w1 < 0.05
    assert calibration.fit.baseline.leave_one_count_out.ready_w1 is None
    for config in calibration.fit.configurations:
        assert config.count_heldout_quantiles_s is not None
        assert len(config.count_heldout_quantiles_s) == 50


def test_summary_tables_cannot_use_measured_work_families(tmp_path: Path) -> None:
    from calibration_fixtures import synthetic_table

    table = synthetic_table(tmp_path / "t.csv", TRUE)
    options = CalibrateOptions(name="t", families=("cpu_ps_delay",), cores=2)
    with pytest.raises(CalibrationInputError, match="no per-instance CPU time"):
        calibrate(load_calibration_data([table]), options)
