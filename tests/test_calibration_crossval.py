"""Cross-validation folds by configuration: every configuration is held out exactly once per
scheme, and a fold's fit never sees any run of a held-out configuration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from calibration_fixtures import synthetic_table

from measure.calibration.crossval import SCHEMES, folds
from measure.calibration.data import ConfigKey, load_calibration_data
from measure.calibration.families import FAMILY_BY_NAME
from measure.calibration.fit import CalibrateOptions, _run_task, _Task
from measure.calibration.objective import Evaluator, Forecast
from sim.model.node_model import NodeModel

KEYS = [(n, i) for n in (100, 200, 300, 500) for i in (1.0, 5.0, 9.0)]


def test_each_configuration_is_tested_once_per_scheme_and_never_trained_on() -> None:
    for scheme in SCHEMES:
        tested: list[ConfigKey] = []
        for fold in folds(KEYS, scheme):
            assert not fold.train & fold.test
            assert fold.train | fold.test == set(KEYS)
            tested.extend(fold.test)
        assert sorted(tested) == sorted(KEYS)


def test_leave_one_count_out_holds_out_every_interval_of_that_count() -> None:
    by_count = {fold.heldout_value: fold for fold in folds(KEYS, "leave_one_count_out")}
    assert sorted(by_count) == [100, 200, 300, 500]
    assert by_count[300].test == {(300, 1.0), (300, 5.0), (300, 9.0)}
    assert all(key[0] != 300 for key in by_count[300].train)


def test_leave_one_interval_out_holds_out_every_count_at_that_interval() -> None:
    by_interval = {fold.heldout_value: fold for fold in folds(KEYS, "leave_one_interval_out")}
    assert by_interval[5.0].test == {(n, 5.0) for n in (100, 200, 300, 500)}


def test_one_value_gives_no_fold() -> None:
    assert folds([(100, 1.0), (100, 5.0)], "leave_one_count_out") == []


class RecordingEvaluator(Evaluator):
    """The real evaluator, remembering which configurations each prediction asked for."""

    def __init__(self, draws: int, seed: int) -> None:
        super().__init__(draws, seed)
        self.calls: list[set[ConfigKey]] = []

    def forecast(self, model: NodeModel, keys: Sequence[ConfigKey]) -> dict[ConfigKey, Forecast]:
        self.calls.append(set(keys))
        return super().forecast(model, keys)


def test_a_fold_fit_only_ever_evaluates_training_configurations(tmp_path: Path) -> None:
    model = NodeModel(cores=2, work_s=0.05, delay_s=0.3)
    bursts = list(load_calibration_data([synthetic_table(tmp_path / "t.csv", model)]).bursts)
    fold = folds(sorted({b.key for b in bursts}), "leave_one_count_out")[1]
    evaluator = RecordingEvaluator(1, 3)
    options = CalibrateOptions(name="t", work_draws=1, bootstrap=0, max_nfev=5)
    _, heldout = _run_task(
        _Task(FAMILY_BY_NAME["ps_delay"], fold), NodeModel(cores=2, work_s=1.0), bursts,
        evaluator, options,
    )
    *fitting, final = evaluator.calls
    assert fitting and all(call <= fold.train for call in fitting)
    assert final == set(fold.test) == set(heldout)
