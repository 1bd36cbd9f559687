"""Fit node-model families to measured bursts and keep the one that predicts held-out bursts best.

Robust bounded least squares per family, cross-validation by configuration, bootstrap intervals.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from measure.calibration.baseline import fit_baseline
from measure.calibration.crossval import SCHEMES, Fold, Scheme, folds
from measure.calibration.data import Burst, CalibrationData, CalibrationInputError, ConfigKey
from measure.calibration.families import (
    FAMILY_BY_NAME,
    FAMILY_VERSION,
    PARAMETERS,
    Family,
    default_families,
)
from measure.calibration.host_costs import host_reference, measure_host_costs, measured_run_noise
from measure.calibration.objective import (
    Evaluator,
    Forecast,
    Noise,
    median_errors,
    replicate_noise,
    residuals,
    robust_loss,
)
from measure.calibration.predict import DEFAULT_SEED
from sim.model import calibration as cf
from sim.model.node_model import NodeModel
from sim.streams import MeasureStream, measure_rng

Progress = Callable[[str], None]
Forecasts = dict[ConfigKey, Forecast]


@dataclass(frozen=True)
class CalibrateOptions:
    name: str
    seed: int = DEFAULT_SEED
    work_draws: int = 2
    bootstrap: int = 30
    interval_level: float = 0.9
    loss: str = "soft_l1"
    families: tuple[str, ...] | None = None
    """Candidate families; None: default_families() of the data's kind."""
    cores: float | None = None
    """CPUs of the node; None takes the host's from the data's provenance."""
    max_nfev: int = 60
    jobs: int = 1
    """Processes for the independent fits of model selection and bootstrap (same result)."""


@dataclass
class _Fit:
    model: NodeModel
    cost: float


@dataclass
class _FamilyResult:
    family: Family
    fit: _Fit
    fitted: Forecasts
    heldout: dict[Scheme, Forecasts] = field(default_factory=dict)
    heldout_loss: float = math.inf


def _model_of(base: NodeModel, family: Family, u: np.ndarray) -> NodeModel:
    values = {
        name: float(value) * PARAMETERS[name].scale
        for name, value in zip(family.free, u, strict=True)
    }
    return base.model_copy(update=values)


def measured_base(base: NodeModel, family: Family, bursts: Sequence[Burst]) -> NodeModel:
    """The base model with what per-instance runs measured directly: the CPU a ready instance
    keeps using and the growth of a boot's work with the instances already running (unless the
    family fits them), and for measured-work families the work itself and its CV."""
    if not bursts or bursts[0].launch_s is None:
        return base
    try:
        costs = measure_host_costs(bursts)
    except ValueError:
        if family.measured_work:
            raise CalibrationInputError(
                "the runs carry no positive per-instance cpu_s; use a fitted-work family"
            ) from None
        return base
    update: dict[str, float] = {}
    if "idle_load" not in family.free and costs.idle_load is not None:
        update["idle_load"] = costs.idle_load
    if "work_growth" not in family.free:
        update["work_growth"] = costs.work_growth
    if family.measured_work:
        update["work_s"] = costs.work_s
        update["work_cv"] = costs.work_cv
    return base.model_copy(update=update)


def measured_names(family: Family, per_instance: bool) -> set[str]:
    """The parameters a calibration of `family` measured, not fitted or fixed."""
    if not per_instance:
        return set()
    names = {"idle_load", "work_growth"} - set(family.free)
    if family.measured_work:
        names |= {"work_s", "work_cv"}
    return names


def _starts(family: Family, bursts: Sequence[Burst], base: NodeModel) -> list[dict[str, float]]:
    """Physically informed starting points, from the training runs only: the slope of all-ready
    with count is the CPU work per instance / cores, its intercept a delay."""
    counts = np.array([b.count for b in bursts], dtype=float)
    last = np.array([b.all_ready_s for b in bursts])
    first = np.array([b.first_ready_s for b in bursts])
    if np.ptp(counts) > 0:
        slope, intercept = np.polyfit(counts, last, 1)
    else:
        slope, intercept = float(np.median(last / counts)), 0.0
    slope = max(float(slope), 1e-4)
    intercept = float(np.clip(intercept, 0.0, np.min(first)))
    cores = base.cores
    if family.measured_work:
        # Measured work: the slope says how many CPUs the instances really got.
        cores = float(np.clip(base.work_s / slope, 0.2, 2 * base.cores))
    start = {"cores": cores, "work_s": slope * base.cores, "delay_s": intercept, "work_cv": 0.3,
             "max_rate": 1.0, "idle_load": 0.0, "spawn_s": 0.0, "warmup_s": 0.0,
             "background_jobs": 0.5, "work_floor": 0.0}
    starts = [start]
    if "max_rate" in family.free:
        starts.append(dict(start, delay_s=0.5 * intercept, max_rate=0.3))
    if "work_cv" in family.free:
        starts.append(dict(start, work_cv=0.8))
    if "work_floor" in family.free:
        # Half of each boot fixed, the rest varying more: the same mean and a bounded left tail.
        starts.append(dict(start, work_floor=0.5, work_cv=0.3))
    if "warmup_s" in family.free:
        # A node-level hold: most of the intercept is a window, the rest a per-instance delay.
        starts.append(dict(start, warmup_s=0.8 * intercept, delay_s=0.2 * intercept, work_cv=0.15))
        if "work_floor" in family.free:
            starts.append(dict(starts[-1], work_floor=0.5, work_cv=0.3))
    return [{name: s[name] for name in family.free} for s in starts]


def fit_family(
    family: Family,
    base: NodeModel,
    bursts: Sequence[Burst],
    evaluator: Evaluator,
    noise: Noise,
    options: CalibrateOptions,
    starts: Sequence[dict[str, float]] | None = None,
    refine: int = 1,
) -> _Fit:
    """Robust bounded least squares from the `refine` best of the starting points (ranked by
    their loss, one evaluation each), keeping the best result.

    Fitted-work families are fitted on forecasts of each configuration; measured-work families
    on replays of each run with its own launch and CPU times."""
    from scipy.optimize import least_squares  # imported here: `measure --help` stays quick

    base = measured_base(base, family, bursts)
    keys = sorted({burst.key for burst in bursts})
    lower = np.array([PARAMETERS[n].low / PARAMETERS[n].scale for n in family.free])
    upper = np.array([PARAMETERS[n].high / PARAMETERS[n].scale for n in family.free])

    def objective(u: np.ndarray) -> np.ndarray:
        model = _model_of(base, family, u)
        if family.measured_work:
            return residuals(evaluator.replay(model, bursts), bursts, noise, by_run=True)
        return residuals(evaluator.forecast(model, keys), bursts, noise)

    margin = 1e-9 * (upper - lower)
    candidates: list[tuple[float, int, np.ndarray]] = []
    for start in starts or _starts(family, bursts, base):
        u0 = np.array([start[n] / PARAMETERS[n].scale for n in family.free])
        u0 = np.clip(u0, lower + margin, upper - margin)
        candidates.append((robust_loss(objective(u0), options.loss), len(candidates), u0))
    candidates.sort(key=lambda c: (c[0], c[1]))
    best: _Fit | None = None
    for _, _, u0 in candidates[:refine]:
        result = least_squares(
            objective, u0, bounds=(lower, upper), loss=options.loss, f_scale=1.0,
            diff_step=1e-3, x_scale="jac", max_nfev=options.max_nfev,
        )
        cost = robust_loss(result.fun, options.loss)
        if best is None or cost < best.cost:
            best = _Fit(_model_of(base, family, result.x), cost)
    assert best is not None
    return best


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
) -> tuple[_Fit, Forecasts]:
    """Fit, then forecast the configurations the fit is judged on (all, or the held-out)."""
    if task.fold is None:
        noise = replicate_noise(bursts)
        fit = fit_family(task.family, base, bursts, evaluator, noise, options, refine=2)
        return fit, evaluator.forecast(fit.model, sorted({b.key for b in bursts}))
    # Strict cross-validation: noise weights, measured work, starts and fit see training runs.
    train = _split(bursts, task.fold.train)
    fit = fit_family(task.family, base, train, evaluator, replicate_noise(train), options)
    return fit, evaluator.forecast(fit.model, sorted(task.fold.test))


def _split(bursts: Sequence[Burst], keys: frozenset[ConfigKey]) -> list[Burst]:
    return [burst for burst in bursts if burst.key in keys]


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
            line = fit_baseline(_split(bursts, fold.train))
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
    outcomes = _map(
        lambda task: _run_task(task, base, bursts, evaluator, options), tasks, options.jobs, say
    )
    noise = replicate_noise(bursts)
    results: list[_FamilyResult] = []
    for family in families:
        mine = [(t, o) for t, o in zip(tasks, outcomes, strict=True) if t.family == family]
        fit, fitted = next(o for t, o in mine if t.fold is None)
        result = _FamilyResult(family, fit, fitted)
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
    return _describe(data, options, chosen, results, intervals, noise, all_folds)


T = TypeVar("T")
R = TypeVar("R")


def _map(function: Callable[[T], R], items: Sequence[T], jobs: int, say: Progress) -> list[R]:
    """function over items, in order; in `jobs` forked processes when jobs > 1. Each item's
    result depends on that item only, so the answer is the same for every `jobs`."""
    if jobs <= 1 or len(items) <= 1:
        results = []
        for i, item in enumerate(items):
            results.append(function(item))
            say(f"fit {i + 1}/{len(items)} done")
        return results
    global _FORKED_FUNCTION
    _FORKED_FUNCTION = function  # inherited by the forked workers; lambdas cannot be pickled
    context = multiprocessing.get_context("fork")
    results = []
    # An executor, not a Pool: if a worker dies (the OOM killer during a measurement, say),
    # map() raises BrokenProcessPool instead of waiting forever for the lost result.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as executor:
        try:
            for i, result in enumerate(executor.map(_call_forked, items)):
                results.append(result)
                say(f"fit {i + 1}/{len(items)} done")
        except BrokenProcessPool:
            raise RuntimeError(
                "a fitting process died (out of memory?); rerun, or with fewer --jobs"
            ) from None
    return results


_FORKED_FUNCTION: Callable[[Any], Any] | None = None


def _call_forked(item: Any) -> Any:
    assert _FORKED_FUNCTION is not None
    return _FORKED_FUNCTION(item)


def bootstrap_intervals(
    family: Family,
    fit: _Fit,
    base: NodeModel,
    bursts: Sequence[Burst],
    evaluator: Evaluator,
    options: CalibrateOptions,
    say: Progress,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from refits on resamples of whole configurations (summary tables,
    whose replicates are too few to resample alone) or whole runs (per-instance datasets).
    Measured work is re-measured on each resample, so its interval is a bootstrap one too."""
    groups: dict[object, list[Burst]] = {}
    for burst in bursts:
        unit = burst.key if burst.launch_s is None else burst.run_id
        groups.setdefault(unit, []).append(burst)
    units = list(groups)
    start = {name: float(getattr(fit.model, name)) for name in family.free}
    resamples = []
    for rep in range(options.bootstrap):
        rng = measure_rng(MeasureStream.BOOTSTRAP, rep, options.seed)
        picked = rng.integers(0, len(units), size=len(units))
        resample = [burst for i in picked for burst in groups[units[i]]]
        if len({b.count for b in resample}) >= 2 and len({b.interval_ms for b in resample}) >= 2:
            resamples.append(resample)  # one count (or interval) cannot separate the terms
    say(f"bootstrap: {len(resamples)} refits")
    noise = replicate_noise(bursts)
    refits = _map(
        lambda resample: fit_family(
            family, base, resample, evaluator, noise, options, starts=[start]
        ),
        resamples, options.jobs, say,
    )
    per_instance = bursts[0].launch_s is not None
    names = list(family.free) + sorted(measured_names(family, per_instance))
    tail = (1 - options.interval_level) / 2
    intervals = {}
    for name in names:
        values = np.array([getattr(refit.model, name) for refit in refits])
        if values.size:
            low, high = np.quantile(values, [tail, 1 - tail])
            intervals[name] = (float(low), float(high))
    return intervals


def _describe(
    data: CalibrationData,
    options: CalibrateOptions,
    chosen: _FamilyResult,
    results: Sequence[_FamilyResult],
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
