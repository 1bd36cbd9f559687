"""The fitter recovers a node model's parameters from bursts the model itself produced, and the
straight-line baseline and predictions agree with closed forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from calibration_fixtures import synthetic_table

from measure.calibration.baseline import fit_baseline
from measure.calibration.data import Burst, load_calibration_data
from measure.calibration.families import FAMILY_BY_NAME
from measure.calibration.family_fit import fit_family
from measure.calibration.objective import Evaluator, replicate_noise
from measure.calibration.options import CalibrateOptions
from sim.model.node_model import NodeModel
from sim.model.predict import predict

TRUE = NodeModel(cores=2, work_s=0.05, delay_s=0.3, work_cv=0.2)


def _fit(tmp_path: Path, name: str, true: NodeModel, family: str, refine: int) -> NodeModel:
    """Fit `family` to a summary table that `true` itself produced."""
    table = synthetic_table(tmp_path / f"{name}.csv", true)
    bursts = list(load_calibration_data([table]).bursts)
    options = CalibrateOptions(name=name, work_draws=2, bootstrap=0)
    return fit_family(
        FAMILY_BY_NAME[family], NodeModel(cores=2, work_s=1.0), bursts,
        Evaluator(options.work_draws, options.seed), replicate_noise(bursts), options,
        refine=refine,
    ).model


def test_fitting_recovers_work_delay_and_variation(tmp_path: Path) -> None:
    fit = _fit(tmp_path, "known", TRUE, "ps_delay_cv", refine=2)
    assert fit.work_s == pytest.approx(TRUE.work_s, rel=0.05)
    assert fit.delay_s == pytest.approx(TRUE.delay_s, rel=0.05)
    # The spread of works only shows in first vs all-ready: a looser but real check.
    assert fit.work_cv == pytest.approx(TRUE.work_cv, abs=0.08)


def test_fitting_recovers_a_warmup_window(tmp_path: Path) -> None:
    true = NodeModel(cores=2, work_s=0.05, delay_s=0.1, work_cv=0.2, warmup_s=0.8)
    fit = _fit(tmp_path, "warm", true, "warmup_ps_delay_cv", refine=3)
    assert fit.warmup_s == pytest.approx(0.8, rel=0.05)
    assert fit.work_s == pytest.approx(0.05, rel=0.05)


def test_a_fair_launcher_family_recovers_the_cpu_of_a_launch(tmp_path: Path) -> None:
    # Equal works: with varying ones, two stratified draws leave first-ready noisy under a fair
    # launcher (which instance launches first with little work differs between draws).
    true = NodeModel(cores=2, work_s=0.05, delay_s=0.1, launcher="fair", launch_cpu_s=0.004)
    fit = _fit(tmp_path, "launcher", true, "fair_launcher_ps_delay_cv_idle", refine=2)
    assert fit.launcher == "fair"
    assert fit.launch_cpu_s == pytest.approx(0.004, rel=0.05)
    assert fit.work_s == pytest.approx(0.05, rel=0.05)
    assert fit.delay_s == pytest.approx(0.1, rel=0.05)


def test_the_lock_family_recovers_how_long_the_lock_is_held(tmp_path: Path) -> None:
    # A hold of 8 ms in 50 ms boots, on a table of first and all-ready only (the study's
    # kind): in dense bursts the instances leave the lock one by one, which moves first-ready
    # and all-ready. First and all-ready alone leave the hold and the spread of the works partly
    # interchangeable (a longer hold with less varied works), hence the 30 % tolerance; no lock
    # or twice the hold is still far outside it.
    true = NodeModel(cores=2, work_s=0.05, delay_s=0.1, work_cv=0.2, lock_s=0.008,
                     lock_at=FAMILY_BY_NAME["lock_ps_delay_cv"].lock_at)
    table = synthetic_table(tmp_path / "lock.csv", true, counts=(16, 64, 160),
                            intervals=(0.0, 10.0, 40.0))
    bursts = list(load_calibration_data([table]).bursts)
    options = CalibrateOptions(name="lock", work_draws=2, bootstrap=0)
    fit = fit_family(FAMILY_BY_NAME["lock_ps_delay_cv"], NodeModel(cores=2, work_s=1.0), bursts,
                     Evaluator(options.work_draws, options.seed), replicate_noise(bursts),
                     options, refine=2).model
    assert fit.lock_at == true.lock_at
    assert fit.lock_s == pytest.approx(0.008, rel=0.3)
    assert fit.work_s == pytest.approx(0.05, rel=0.1)
    assert fit.delay_s == pytest.approx(0.1, rel=0.1)


def test_replicate_noise_is_the_median_relative_difference_over_root_two() -> None:
    runs = [
        Burst("a", 10, 1.0, first_ready_s=1.0, all_ready_s=2.0),
        Burst("b", 10, 1.0, first_ready_s=1.1, all_ready_s=2.02),
        Burst("c", 20, 1.0, first_ready_s=2.0, all_ready_s=4.0),
        Burst("d", 20, 1.0, first_ready_s=2.0, all_ready_s=4.04),
        Burst("e", 30, 1.0, first_ready_s=3.0, all_ready_s=6.0),
        Burst("f", 30, 1.0, first_ready_s=3.3, all_ready_s=6.06),
    ]
    noise = replicate_noise(runs)
    assert noise.first == pytest.approx((0.1 / 1.05) / np.sqrt(2))
    assert noise.last == pytest.approx((0.02 / 2.01) / np.sqrt(2), rel=1e-3)


def test_the_baseline_is_exact_on_data_from_a_bilinear_law() -> None:
    def law(count: int, interval: float) -> float:
        return 1.5 + 0.02 * count - 0.01 * interval + 0.0005 * count * interval

    runs = [
        Burst(f"{n}-{i}", n, i, first_ready_s=law(n, i) / 2, all_ready_s=law(n, i))
        for n in (100, 200, 400)
        for i in (1.0, 5.0, 13.0)
    ]
    first, last = fit_baseline(runs).predict([(300, 7.0), (900, 19.0)])
    np.testing.assert_allclose(last, [law(300, 7.0), law(900, 19.0)], rtol=1e-9)
    np.testing.assert_allclose(first, [law(300, 7.0) / 2, law(900, 19.0) / 2], rtol=1e-9)


def test_a_burst_launched_at_once_is_ready_after_the_delay_plus_its_share_of_the_work() -> None:
    model = NodeModel(cores=4, work_s=0.2, delay_s=1.0)
    prediction = predict(model, count=40, interval_ms=0.0)
    expected = 1.0 + 40 * 0.2 / 4  # processor sharing: everybody finishes together
    assert prediction.first_ready_s == pytest.approx(expected)
    assert prediction.median_ready_s == pytest.approx(expected)
    assert prediction.all_ready_s == pytest.approx(expected)


def test_well_spaced_instances_never_meet_and_take_delay_plus_work_each() -> None:
    model = NodeModel(cores=1, work_s=0.1, delay_s=0.5)
    prediction = predict(model, count=5, interval_ms=200.0)
    assert prediction.first_ready_s == pytest.approx(0.6)
    assert prediction.all_ready_s == pytest.approx(4 * 0.2 + 0.6)
    assert prediction.p95_ready_s == pytest.approx(np.quantile([0.6, 0.8, 1.0, 1.2, 1.4], 0.95))
