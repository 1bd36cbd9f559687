"""The calibrations shipped in calibration/: valid, pinned to the data they came from, and
`measure predict` reproduces the fitted values they record."""

from __future__ import annotations

from pathlib import Path

import pytest

from measure.calibration.data import sha256_of
from sim.model.calibration import load_calibration
from sim.model.predict import predict

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "calibration").glob("*.json"))


def test_the_three_calibrations_are_shipped() -> None:
    assert {path.stem for path in SHIPPED} >= {"paper2016", "firmware", "bios"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_each_file_is_pinned_to_committed_data(path: Path) -> None:
    calibration = load_calibration(path)
    for data_file in calibration.provenance.data_files:
        # A changed dataset means the calibration must be refitted (docs/calibration.md).
        assert sha256_of(ROOT / data_file.path) == data_file.sha256, data_file.path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_regression_predict_gives_back_the_recorded_fit(path: Path) -> None:
    calibration = load_calibration(path)
    configs = calibration.fit.configurations
    for config in (configs[0], configs[len(configs) // 2], configs[-1]):
        prediction = predict(calibration, config.count, config.interval_ms)
        assert prediction.first_ready_s == pytest.approx(config.fitted_first_ready_s, rel=1e-12)
        assert prediction.all_ready_s == pytest.approx(config.fitted_all_ready_s, rel=1e-12)


def test_regression_the_study_calibration_meets_its_held_out_targets() -> None:
    """Regression guard on the shipped file (the figures docs/calibration.md reports)."""
    fit = load_calibration(ROOT / "calibration" / "paper2016.json").fit
    model, line = fit.model.leave_one_count_out, fit.baseline.leave_one_count_out
    assert model.all_ready <= 0.02
    assert model.first_ready <= 0.10
    assert model.first_ready < line.first_ready
    assert model.all_ready < line.all_ready
