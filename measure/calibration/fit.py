"""Fit node-model families to measured bursts and keep the one that predicts held-out bursts best.

Model selection: every family on all runs and on each cross-validation fold, then the bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from measure.calibration.bootstrap import bootstrap_intervals
from measure.calibration.crossval import SCHEMES, Fold, Scheme, folds, runs_in
from measure.calibration.data import Burst, CalibrationData, CalibrationInputError
from measure.calibration.describe import FamilyResult, describe
from measure.calibration.families import FAMILY_BY_NAME, Family, default_families
from measure.calibration.family_fit import FamilyFit, fit_family
from measure.calibration.objective import (
    Evaluator,
    Forecasts,
    replicate_noise,
    residuals,
    robust_loss,
)
from measure.calibration.options import CalibrateOptions, Progress
from measure.calibration.parallel import parallel_map
from sim.model import calibration as cf
from sim.model.node_model import NodeModel

__all__ = ["CalibrateOptions", "calibrate", "candidate_families", "check_design"]


@dataclass(frozen=True)
class _Task:
    """One fit of the model selection: a family on all runs (fold None) or on a fold's
    training runs. Tasks are independent, so they may run in any order or process."""

    family: Family
    fold: Fold | None


def _run_task(
    task: _Task,
    base: NodeModel,
    bursts: Sequence[Burst],
    evaluator: Evaluator,
    options: CalibrateOptions,
) -> tuple[FamilyFit, Forecasts]:
    """Fit, then forecast the configurations the fit is judged on (all, or the held-out)."""
    if task.fold is None:
        noise = replicate_noise(bursts)
        fit = fit_family(task.family, base, bursts, evaluator, noise, options, refine=2)
        return fit, evaluator.forecast(fit.model, sorted({b.key for b in bursts}))
    # Strict cross-validation: noise weights, measured work, starts and fit see training runs.
    train = runs_in(bursts, task.fold.train)
    fit = fit_family(task.family, base, train, evaluator, replicate_noise(train), options)
    return fit, evaluator.forecast(fit.model, sorted(task.fold.test))


def check_design(data: CalibrationData) -> dict[Scheme, list[Fold]]:
    """The folds of both schemes; an error if the data cannot be cross-validated."""
    keys = data.keys()
    all_folds = {scheme: folds(keys, scheme) for scheme in SCHEMES}
    if not all_folds["leave_one_count_out"] or not all_folds["leave_one_interval_out"]:
        counts = sorted({k[0] for k in keys})
        intervals = sorted({k[1] for k in keys})
        raise CalibrationInputError(
            f"the data hold counts {counts} and intervals {intervals}; cross-validation needs "
            "at least two of each: measure more configurations"
        )
    return all_folds


def candidate_families(data: CalibrationData, options: CalibrateOptions) -> list[Family]:
    """The families to try on these data; an error if one cannot apply to them."""
    families = [FAMILY_BY_NAME[n] for n in options.families or default_families(data.kind)]
    if data.kind == "summary_table" and any(f.measured_work for f in families):
        raise CalibrationInputError(
            "summary tables have no per-instance CPU time; drop the cpu_* families"
        )
    return families


def calibrate(
    data: CalibrationData, options: CalibrateOptions, progress: Progress | None = None
) -> cf.Calibration:
    """Fit every family, choose by held-out loss, bootstrap the chosen one, describe the fit."""
    say = progress or (lambda message: None)
    bursts = list(data.bursts)
    all_folds = check_design(data)
    families = candidate_families(data, options)
    cores = options.cores if options.cores is not None else data.host.cores
    if cores is None:
        raise CalibrationInputError(
            "the number of CPUs of the measured host is unknown; pass --cores"
        )
    base = NodeModel(cores=float(cores), work_s=1.0)
    evaluator = Evaluator(options.work_draws, options.seed)
    tasks = [
        _Task(family, fold)
        for family in families
        for fold in [None, *(f for scheme in SCHEMES for f in all_folds[scheme])]
    ]
    folds_per_family = len(tasks) // len(families) - 1
    say(f"{len(tasks)} fits: {len(families)} families x (all runs + {folds_per_family} folds)")
    outcomes = parallel_map(
        lambda task: _run_task(task, base, bursts, evaluator, options), tasks, options.jobs, say
    )
    noise = replicate_noise(bursts)
    results: list[FamilyResult] = []
    for family in families:
        mine = [(t, o) for t, o in zip(tasks, outcomes, strict=True) if t.family == family]
        fit, fitted = next(o for t, o in mine if t.fold is None)
        result = FamilyResult(family, fit, fitted)
        for scheme in SCHEMES:
            result.heldout[scheme] = {}
            for task, (_, forecasts) in mine:
                if task.fold is not None and task.fold.scheme == scheme:
                    result.heldout[scheme].update(forecasts)
        result.heldout_loss = sum(
            robust_loss(residuals(result.heldout[scheme], bursts, noise), options.loss)
            for scheme in SCHEMES
        )
        say(
            f"family {family.name}: training loss {fit.cost:.1f}, "
            f"held-out loss {result.heldout_loss:.1f}"
        )
        results.append(result)
    chosen = min(results, key=lambda r: (r.heldout_loss, len(r.family.free)))
    say(f"chosen family: {chosen.family.name}")
    intervals = bootstrap_intervals(
        chosen.family, chosen.fit, base, bursts, evaluator, options, say
    )
    return describe(data, options, chosen, results, intervals, noise, all_folds)
