"""The calibration file: a real calibration round-trips byte for byte, refits reproduce it, and
every kind of damage is reported as one line naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from calibration_fixtures import synthetic_table

from measure.calibration.data import load_calibration_data
from measure.calibration.families import FAMILY_BY_NAME, default_families
from measure.calibration.fit import CalibrateOptions, calibrate
from sim.model.calibration import (
    Calibration,
    CalibrationFileError,
    InputKind,
    calibration_json,
    load_calibration,
    write_calibration,
)
from sim.model.node_model import NodeModel

TRUE = NodeModel(cores=2, work_s=0.05, delay_s=0.3, work_cv=0.2)
OPTIONS = CalibrateOptions(
    name="tiny", work_draws=1, bootstrap=3, families=("ps_delay", "ps_delay_cv"), cores=2,
    max_nfev=15,
)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_table(tmp_path_factory.mktemp("data") / "tiny.csv", TRUE)


@pytest.fixture(scope="module")
def fitted(table: Path) -> Calibration:
    return calibrate(load_calibration_data([table]), OPTIONS)


def test_a_calibration_round_trips_through_its_file(fitted: Calibration, tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    write_calibration(fitted, path)
    assert load_calibration(path) == fitted
    assert calibration_json(load_calibration(path)) == path.read_text()


def test_refitting_the_same_data_gives_the_same_bytes(fitted: Calibration, table: Path) -> None:
    again = calibrate(load_calibration_data([table]), OPTIONS)
    assert calibration_json(again) == calibration_json(fitted)


def test_parallel_fits_give_the_same_file_as_serial_ones(
    fitted: Calibration, table: Path
) -> None:
    options = CalibrateOptions(**{**OPTIONS.__dict__, "jobs": 2})
    assert calibration_json(calibrate(load_calibration_data([table]), options)) == (
        calibration_json(fitted)
    )


def test_the_file_records_provenance_and_held_out_quality(fitted: Calibration) -> None:
    assert fitted.provenance.data_files[0].kind == "summary_table"
    assert len(fitted.provenance.data_files[0].sha256) == 64
    assert {(c.count, c.interval_ms) for c in fitted.provenance.configurations} == {
        (c.count, c.interval_ms) for c in fitted.fit.configurations
    }
    assert [f.family for f in fitted.fit.families] == ["ps_delay", "ps_delay_cv"]
    chosen = min(fitted.fit.families, key=lambda f: (f.heldout_loss, len(f.free)))
    assert fitted.family == chosen.family
    for name, estimate in fitted.parameters.items():
        assert estimate.value == getattr(fitted.model, name)
        assert (estimate.source == "fitted") == (name in chosen.free)


def _damaged(fitted: Calibration, tmp_path: Path, damage: object) -> Path:
    data = json.loads(calibration_json(fitted))
    damage(data)  # type: ignore[operator]
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(data))
    return path


def test_a_missing_field_names_its_path(fitted: Calibration, tmp_path: Path) -> None:
    path = _damaged(fitted, tmp_path, lambda d: d["model"].pop("work_s"))
    with pytest.raises(CalibrationFileError,
                       match=r"damaged.json:1:\d+: model: required key 'work_s' is missing"):
        load_calibration(path)


def test_an_unknown_field_is_refused(fitted: Calibration, tmp_path: Path) -> None:
    path = _damaged(fitted, tmp_path, lambda d: d["model"].update(turbo=1.0))
    with pytest.raises(CalibrationFileError, match=r"model\.turbo: unknown key 'turbo'"):
        load_calibration(path)


def test_parameters_must_agree_with_the_model(fitted: Calibration, tmp_path: Path) -> None:
    path = _damaged(fitted, tmp_path, lambda d: d["parameters"]["work_s"].update(value=99.0))
    with pytest.raises(CalibrationFileError, match=r"differs from model\.work_s"):
        load_calibration(path)


def test_an_inverted_interval_is_refused(fitted: Calibration, tmp_path: Path) -> None:
    def invert(d: dict) -> None:
        d["parameters"]["delay_s"].update(low=2.0, high=1.0)

    with pytest.raises(CalibrationFileError, match=r"parameters\.delay_s"):
        load_calibration(_damaged(fitted, tmp_path, invert))


def test_text_that_is_not_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": oops\n}\n')
    with pytest.raises(CalibrationFileError, match=r"broken.json:2:11: invalid JSON"):
        load_calibration(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CalibrationFileError, match=r"nowhere\.json: cannot read the file"):
        load_calibration(tmp_path / "nowhere.json")


def test_a_fair_launcher_family_writes_its_launch_cost_and_launcher(tmp_path: Path) -> None:
    true = NodeModel(cores=2, work_s=0.05, delay_s=0.1, launcher="fair", launch_cpu_s=0.004)
    table = synthetic_table(tmp_path / "fair.csv", true)
    options = CalibrateOptions(**{**OPTIONS.__dict__, "name": "fair",
                                  "families": ("fair_launcher_ps_delay_cv_idle",)})
    fitted = calibrate(load_calibration_data([table]), options)
    assert fitted.model.launcher == "fair"
    launch = fitted.parameters["launch_cpu_s"]
    assert (launch.source, launch.unit) == ("fitted", "CPU s")
    assert launch.value == fitted.model.launch_cpu_s > 0
    assert launch.low < launch.high  # bootstrapped (3 quick refits: it need not hold the value)
    assert "launcher" not in fitted.parameters  # a string the family fixes: the model has it
    path = tmp_path / "fair.json"
    write_calibration(fitted, path)
    assert json.loads(path.read_text())["model"]["launcher"] == "fair"
    assert load_calibration(path) == fitted


def test_realtime_families_write_no_launcher_fields(fitted: Calibration) -> None:
    assert fitted.model.launcher == "realtime"
    assert "launch_cpu_s" not in fitted.parameters
    assert "launcher" not in fitted.model.model_dump()


def test_only_summary_tables_try_the_fair_launcher_families() -> None:
    # The study's launcher ran at normal priority; this host's datasets are of realtime runs.
    def fair(kind: InputKind) -> set[str]:
        return {n for n in default_families(kind) if FAMILY_BY_NAME[n].launcher == "fair"}

    assert fair("summary_table") == {
        "fair_launcher_ps_delay_cv_idle", "warmup_fair_launcher_ps_delay_cv_idle"}
    assert fair("instances") == set()
