"""Describe a finished model selection as the calibration file: parameters, scores, fits.

Scores the chosen family, every candidate and the straight-line baseline on the same folds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from measure.calibration.baseline import fit_baseline
from measure.calibration.crossval import Fold, Scheme, runs_in
from measure.calibration.data import Burst, CalibrationData, ConfigKey
from measure.calibration.families import FAMILY_VERSION, PARAMETERS, Family
from measure.calibration.family_fit import FamilyFit, measured_names
from measure.calibration.host_costs import host_reference, measured_run_noise
from measure.calibration.objective import Forecast, Forecasts, Noise, median_errors
from measure.calibration.options import CalibrateOptions
from sim.model import calibration as cf


@dataclass
class FamilyResult:
    family: Family
    fit: FamilyFit
    fitted: Forecasts
    heldout: dict[Scheme, Forecasts] = field(default_factory=dict)
    heldout_loss: float = math.inf


def _line_forecasts(keys: Sequence[ConfigKey], first: np.ndarray, last: np.ndarray) -> Forecasts:
    return {
        key: Forecast(float(f), float(a), np.empty(0))
        for key, f, a in zip(keys, first, last, strict=True)
    }


def _baseline_forecasts(
    bursts: Sequence[Burst], all_folds: dict[Scheme, list[Fold]]
) -> tuple[Forecasts, dict[Scheme, Forecasts]]:
    keys = sorted({b.key for b in bursts})
    training = _line_forecasts(keys, *fit_baseline(bursts).predict(keys))
    heldout: dict[Scheme, Forecasts] = {}
    for scheme, scheme_folds in all_folds.items():
        heldout[scheme] = {}
        for fold in scheme_folds:
            test = sorted(fold.test)
            line = fit_baseline(runs_in(bursts, fold.train))
            heldout[scheme].update(_line_forecasts(test, *line.predict(test)))
    return training, heldout


def _scores(
    training: Forecasts, heldout: dict[Scheme, Forecasts], bursts: Sequence[Burst]
) -> cf.Scores:
    return cf.Scores(
        training=median_errors(training, bursts),
        leave_one_count_out=median_errors(heldout["leave_one_count_out"], bursts),
        leave_one_interval_out=median_errors(heldout["leave_one_interval_out"], bursts),
    )


def describe(
    data: CalibrationData,
    options: CalibrateOptions,
    chosen: FamilyResult,
    results: Sequence[FamilyResult],
    intervals: dict[str, tuple[float, float]],
    noise: Noise,
    all_folds: dict[Scheme, list[Fold]],
) -> cf.Calibration:
    bursts = list(data.bursts)
    keys = data.keys()
    model = chosen.fit.model
    measured = measured_names(chosen.family, bursts[0].launch_s is not None)
    base_training, base_heldout = _baseline_forecasts(bursts, all_folds)
    parameters = {}
    for name, value in model.model_dump().items():
        if name == "launcher":
            continue  # a string the family fixes, not a parameter: the model records it
        info = PARAMETERS[name]
        source: Literal["fitted", "measured", "fixed"] = (
            "fitted" if name in chosen.family.free
            else "measured" if name in measured
            else "fixed"
        )
        low, high = intervals.get(name, (value, value))
        parameters[name] = cf.ParameterEstimate(
            value=value, source=source, low=min(low, high), high=max(low, high),
            unit=info.unit, meaning=info.meaning,
        )
    family_scores = [
        cf.FamilyScore(
            family=r.family.name, free=list(r.family.free), measured_work=r.family.measured_work,
            scores=_scores(r.fitted, r.heldout, bursts), heldout_loss=r.heldout_loss,
        )
        for r in results
    ]
    loco = chosen.heldout["leave_one_count_out"]
    loio = chosen.heldout["leave_one_interval_out"]
    base_loco = base_heldout["leave_one_count_out"]
    configurations = []
    for key in keys:
        runs = [b for b in bursts if b.key == key]
        per_instance = runs[0].ready_s is not None
        configurations.append(
            cf.ConfigurationFit(
                count=key[0], interval_ms=key[1], runs=len(runs),
                measured_first_ready_s=float(np.median([b.first_ready_s for b in runs])),
                measured_all_ready_s=float(np.median([b.all_ready_s for b in runs])),
                fitted_first_ready_s=chosen.fitted[key].first,
                fitted_all_ready_s=chosen.fitted[key].last,
                count_heldout_first_ready_s=loco[key].first,
                count_heldout_all_ready_s=loco[key].last,
                interval_heldout_first_ready_s=loio[key].first,
                interval_heldout_all_ready_s=loio[key].last,
                baseline_count_heldout_first_ready_s=base_loco[key].first,
                baseline_count_heldout_all_ready_s=base_loco[key].last,
                count_heldout_ready_w1=(
                    median_errors(loco, runs).ready_w1 if per_instance else None
                ),
                count_heldout_quantiles_s=(
                    [float(q) for q in loco[key].quantiles] if per_instance else None
                ),
            )
        )
    return cf.Calibration(
        name=options.name,
        family=chosen.family.name,
        family_version=FAMILY_VERSION,
        model=model,
        parameters=parameters,
        provenance=cf.Provenance(
            host=data.host, data_files=list(data.files), configurations=data.configurations(),
            boot=data.boot, accel=data.accel,
        ),
        fit=cf.FitQuality(
            model=_scores(chosen.fitted, chosen.heldout, bursts),
            baseline=_scores(base_training, base_heldout, bursts),
            families=family_scores,
            configurations=configurations,
        ),
        settings=cf.FitSettings(
            loss=options.loss,  # type: ignore[arg-type]
            seed=options.seed, work_draws=options.work_draws, bootstrap=options.bootstrap,
            interval_level=options.interval_level, noise_first_ready=noise.first,
            noise_all_ready=noise.last, noise_ready_w1=noise.w1,
            selection="least robust held-out loss over leave-one-count-out and "
            "leave-one-interval-out; ties go to fewer free parameters",
        ),
        host_reference=host_reference(bursts),
        run_noise=measured_run_noise(bursts),
    )

