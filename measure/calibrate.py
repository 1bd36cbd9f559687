"""Fit node-model families to measured bursts and keep the one that predicts held-out bursts best.

Robust bounded least squares per family, cross-validation by configuration, bootstrap intervals.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from measure import calibration_file as cf
from measure.calibration_baseline import fit_baseline
from measure.calibration_data import Burst, CalibrationData, CalibrationInputError, ConfigKey
from measure.crossval import SCHEMES, Fold, Scheme, folds
from measure.predict import DEFAULT_SEED, burst_ready_times, planned_launches
from sim.node_model import NodeModel

FAMILY_VERSION = 1
"""Bump when a family's meaning (free parameters, bounds, objective) changes."""
BOOTSTRAP_STREAM = 11
DEFAULT_NOISE = (0.06, 0.01)
"""Relative noise of (first, all-ready) when the data hold no replicate runs to measure it: the
size of the 2016 study's replicate differences."""

Progress = Callable[[str], None]
Predicted = dict[ConfigKey, tuple[float, float]]
"""(first, all-ready) predicted for each configuration."""


@dataclass(frozen=True)
class Parameter:
    unit: str
    meaning: str
    low: float
    high: float
    scale: float
    """Typical size: the optimiser works on value/scale so finite-difference steps fit it."""


PARAMETERS: dict[str, Parameter] = {
    "cores": Parameter("CPUs", "effective CPUs the instances share", 0.5, 256, 1.0),
    "work_s": Parameter("CPU s", "mean CPU work of one instance's contended phase", 1e-4, 50, 0.1),
    "delay_s": Parameter("s", "pure delay before the CPU phase (does not contend)", 0, 60, 1.0),
    "work_cv": Parameter("1", "coefficient of variation of the work across instances", 0, 3, 0.3),
    "max_rate": Parameter("CPUs", "most CPU one instance can use at once", 1e-3, 8, 0.1),
    "idle_load": Parameter(
        "CPUs", "CPU a ready, still running instance keeps using", 0, 0.2, 0.001
    ),
    "spawn_s": Parameter("s", "launcher serialisation: least time between two starts", 0, 1, 0.01),
    "min_capacity": Parameter("CPUs", "capacity floor under idle load", 0, 256, 0.05),
    "warmup_s": Parameter(
        "s", "node warm-up: no CPU phase starts before this long after the burst's first start",
        0, 60, 1.0,
    ),
}


@dataclass(frozen=True)
class Family:
    """A candidate model: which NodeModel parameters are fitted; the rest keep their defaults
    (cores is fixed to the host's CPUs because it trades off exactly against work and rate)."""

    name: str
    free: tuple[str, ...]
    description: str


FAMILIES: tuple[Family, ...] = (
    Family("ps", ("work_s",), "processor sharing only"),
    Family("ps_delay", ("work_s", "delay_s"), "pure delay, then processor sharing"),
    Family("ps_delay_cv", ("work_s", "delay_s", "work_cv"), "+ work varying across instances"),
    Family("ps_delay_cap", ("work_s", "delay_s", "max_rate"), "+ per-instance rate cap"),
    Family(
        "ps_delay_cv_cap", ("work_s", "delay_s", "work_cv", "max_rate"), "+ variation and cap"
    ),
    Family(
        "ps_delay_cv_idle",
        ("work_s", "delay_s", "work_cv", "idle_load"),
        "+ CPU used by ready instances",
    ),
    Family(
        "ps_delay_cv_spawn", ("work_s", "delay_s", "work_cv", "spawn_s"), "+ launcher serialisation"
    ),
    Family(
        "warmup_ps_delay_cv", ("warmup_s", "work_s", "delay_s", "work_cv"), "node warm-up, then PS"
    ),
    Family(
        "warmup_ps_delay_cv_idle",
        ("warmup_s", "work_s", "delay_s", "work_cv", "idle_load"),
        "node warm-up + CPU used by ready instances",
    ),
    Family(
        "warmup_ps_delay_cv_cap_idle",
        ("warmup_s", "work_s", "delay_s", "work_cv", "max_rate", "idle_load"),
        "node warm-up + rate cap + CPU used by ready instances",
    ),
)
FAMILY_BY_NAME = {family.name: family for family in FAMILIES}


@dataclass(frozen=True)
class CalibrateOptions:
    name: str
    seed: int = DEFAULT_SEED
    work_draws: int = 4
    bootstrap: int = 40
    interval_level: float = 0.9
    loss: str = "soft_l1"
    families: tuple[str, ...] = tuple(family.name for family in FAMILIES)
    cores: float | None = None
    """CPUs of the node; None takes the host's from the data's provenance."""
    max_nfev: int = 60
    jobs: int = 1
    """Processes for the independent fits of model selection and bootstrap (same result)."""


@dataclass
class _Fit:
    model: NodeModel
    cost: float
    x: np.ndarray


@dataclass
class _FamilyResult:
    family: Family
    fit: _Fit
    heldout: dict[Scheme, dict[ConfigKey, tuple[float, float]]] = field(default_factory=dict)
    heldout_loss: float = math.inf


class Evaluator:
    """Predicted (first, all-ready) of configurations under a model, with common random
    numbers: every model sees the same work draws, so the objective is smooth in parameters."""

    def __init__(self, draws: int, seed: int) -> None:
        self.draws = draws
        self.seed = seed

    def predict(
        self, model: NodeModel, keys: Sequence[ConfigKey]
    ) -> dict[ConfigKey, tuple[float, float]]:
        result = {}
        for count, interval in keys:
            times = burst_ready_times(
                model, planned_launches(count, interval), interval, self.draws, self.seed
            )
            result[(count, interval)] = (
                float(np.mean(times.min(axis=1))),
                float(np.mean(times.max(axis=1))),
            )
        return result


def replicate_noise(bursts: Sequence[Burst]) -> tuple[float, float]:
    """Relative noise of one run's first and all-ready, from replicate runs of a configuration:
    median pairwise relative difference / sqrt(2) (a difference has twice one run's variance)."""
    groups: dict[ConfigKey, list[Burst]] = {}
    for burst in bursts:
        groups.setdefault(burst.key, []).append(burst)
    diffs: tuple[list[float], list[float]] = ([], [])
    for runs in groups.values():
        for i, a in enumerate(runs):
            for b in runs[i + 1 :]:
                diffs[0].append(_rel_diff(a.first_ready_s, b.first_ready_s))
                diffs[1].append(_rel_diff(a.all_ready_s, b.all_ready_s))
    if len(diffs[1]) < 3:
        return DEFAULT_NOISE
    noise = [float(np.median(d)) / math.sqrt(2) for d in diffs]
    # A floor keeps a table of identical replicates from giving infinite weights.
    return max(noise[0], 1e-3), max(noise[1], 1e-3)


def _rel_diff(a: float, b: float) -> float:
    return abs(a - b) / ((a + b) / 2)


def _residuals(
    predicted: dict[ConfigKey, tuple[float, float]],
    bursts: Sequence[Burst],
    noise: tuple[float, float],
) -> np.ndarray:
    """Relative errors of each run's first and all-ready, in units of measurement noise."""
    res = np.empty(2 * len(bursts))
    for i, burst in enumerate(bursts):
        first, last = predicted[burst.key]
        res[2 * i] = (first / burst.first_ready_s - 1.0) / noise[0]
        res[2 * i + 1] = (last / burst.all_ready_s - 1.0) / noise[1]
    return res


def robust_loss(residuals: np.ndarray, loss: str) -> float:
    """The loss least_squares minimises (without its 1/2), with f_scale = 1."""
    z = residuals**2
    if loss == "linear":
        rho = z
    elif loss == "soft_l1":
        rho = 2 * (np.sqrt(1 + z) - 1)
    elif loss == "huber":
        rho = np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
    elif loss == "cauchy":
        rho = np.log1p(z)
    else:
        raise ValueError(f"unknown loss {loss}")
    return float(np.sum(rho))


def _model_of(base: NodeModel, family: Family, u: np.ndarray) -> NodeModel:
    values = {
        name: float(value) * PARAMETERS[name].scale
        for name, value in zip(family.free, u, strict=True)
    }
    return base.model_copy(update=values)


def _starts(family: Family, bursts: Sequence[Burst], cores: float) -> list[dict[str, float]]:
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
    work = slope * cores
    base = {"work_s": work, "delay_s": intercept, "work_cv": 0.3, "max_rate": 1.0,
            "idle_load": 0.0, "spawn_s": 0.0, "warmup_s": 0.0}
    starts = [base]
    if "max_rate" in family.free:
        # An instance slower alone than its share suggests: the isolated init time
        # (smallest first-ready) minus the delay, spent on the work at a capped rate.
        alone = max(float(np.min(first)) - intercept * 0.5, 1e-3)
        capped = dict(base, delay_s=intercept * 0.5, max_rate=min(1.0, work / alone))
        starts.append(capped)
    if "work_cv" in family.free:
        starts.append(dict(base, work_cv=0.8))
    if "warmup_s" in family.free:
        # A node-level hold: nothing is ready before the smallest first-ready of any run.
        starts.append(dict(base, warmup_s=0.8 * intercept, delay_s=0.2 * intercept, work_cv=0.15))
    return [{name: start[name] for name in family.free} for start in starts]


def fit_family(
    family: Family,
    base: NodeModel,
    bursts: Sequence[Burst],
    evaluator: Evaluator,
    noise: tuple[float, float],
    options: CalibrateOptions,
    starts: Sequence[dict[str, float]] | None = None,
    refine: int = 1,
) -> _Fit:
    """Robust bounded least squares from the `refine` best of the starting points (ranked by
    their loss, one evaluation each), keeping the best result."""
    from scipy.optimize import least_squares  # imported here: `measure --help` stays quick

    keys = sorted({burst.key for burst in bursts})
    lower = np.array([PARAMETERS[n].low / PARAMETERS[n].scale for n in family.free])
    upper = np.array([PARAMETERS[n].high / PARAMETERS[n].scale for n in family.free])

    def residuals(u: np.ndarray) -> np.ndarray:
        model = _model_of(base, family, u)
        return _residuals(evaluator.predict(model, keys), bursts, noise)

    margin = 1e-9 * (upper - lower)
    candidates: list[tuple[float, int, np.ndarray]] = []
    for start in starts or _starts(family, bursts, base.cores):
        u0 = np.array([start[n] / PARAMETERS[n].scale for n in family.free])
        u0 = np.clip(u0, lower + margin, upper - margin)
        candidates.append((robust_loss(residuals(u0), options.loss), len(candidates), u0))
    candidates.sort(key=lambda c: (c[0], c[1]))
    best: _Fit | None = None
    for _, _, u0 in candidates[:refine]:
        result = least_squares(
            residuals, u0, bounds=(lower, upper), loss=options.loss, f_scale=1.0,
            diff_step=1e-3, x_scale="jac", max_nfev=options.max_nfev,
        )
        cost = robust_loss(result.fun, options.loss)
        if best is None or cost < best.cost:
            best = _Fit(_model_of(base, family, result.x), cost, result.x)
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
) -> tuple[_Fit, dict[ConfigKey, tuple[float, float]]]:
    if task.fold is None:
        fit = fit_family(
            task.family, base, bursts, evaluator, replicate_noise(bursts), options, refine=2
        )
        return fit, evaluator.predict(fit.model, sorted({b.key for b in bursts}))
    # Strict cross-validation: the noise weights, starts and fit see the training runs only.
    train = _split(bursts, task.fold.train)
    fit = fit_family(task.family, base, train, evaluator, replicate_noise(train), options)
    return fit, evaluator.predict(fit.model, sorted(task.fold.test))


def _median_errors(
    predicted: dict[ConfigKey, tuple[float, float]], bursts: Sequence[Burst]
) -> cf.Errors:
    first = [abs(predicted[b.key][0] / b.first_ready_s - 1) for b in bursts]
    last = [abs(predicted[b.key][1] / b.all_ready_s - 1) for b in bursts]
    return cf.Errors(first_ready=float(np.median(first)), all_ready=float(np.median(last)))


def _split(bursts: Sequence[Burst], keys: frozenset[ConfigKey]) -> list[Burst]:
    return [burst for burst in bursts if burst.key in keys]


def _baseline_predictions(
    bursts: Sequence[Burst], all_folds: dict[Scheme, list[Fold]]
) -> tuple[Predicted, dict[Scheme, Predicted]]:
    keys = sorted({b.key for b in bursts})
    full = fit_baseline(bursts)
    first, last = full.predict(keys)
    training = {key: (float(f), float(a)) for key, f, a in zip(keys, first, last, strict=True)}
    heldout: dict[Scheme, dict[ConfigKey, tuple[float, float]]] = {}
    for scheme, scheme_folds in all_folds.items():
        heldout[scheme] = {}
        for fold in scheme_folds:
            line = fit_baseline(_split(bursts, fold.train))
            test = sorted(fold.test)
            first, last = line.predict(test)
            for key, f, a in zip(test, first, last, strict=True):
                heldout[scheme][key] = (float(f), float(a))
    return training, heldout


def _scores(
    training: dict[ConfigKey, tuple[float, float]],
    heldout: dict[Scheme, dict[ConfigKey, tuple[float, float]]],
    bursts: Sequence[Burst],
) -> cf.Scores:
    return cf.Scores(
        training=_median_errors(training, bursts),
        leave_one_count_out=_median_errors(heldout["leave_one_count_out"], bursts),
        leave_one_interval_out=_median_errors(heldout["leave_one_interval_out"], bursts),
    )


def check_design(data: CalibrationData) -> dict[Scheme, list[Fold]]:
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


def calibrate(
    data: CalibrationData, options: CalibrateOptions, progress: Progress | None = None
) -> cf.Calibration:
    """Fit every family, choose by held-out loss, bootstrap the chosen one, describe the fit."""
    say = progress or (lambda message: None)
    bursts = list(data.bursts)
    all_folds = check_design(data)
    cores = options.cores if options.cores is not None else data.host.cores
    if cores is None:
        raise CalibrationInputError(
            "the number of CPUs of the measured host is unknown; pass --cores"
        )
    base = NodeModel(cores=float(cores), work_s=1.0)
    noise = replicate_noise(bursts)
    evaluator = Evaluator(options.work_draws, options.seed)
    keys = data.keys()
    families = [FAMILY_BY_NAME[name] for name in options.families]
    tasks = [
        _Task(family, fold)
        for family in families
        for fold in [None, *(f for scheme in SCHEMES for f in all_folds[scheme])]
    ]
    folds_per_family = len(tasks) // len(families) - 1
    say(f"{len(tasks)} fits: {len(families)} families x (all runs + {folds_per_family} folds)")
    outcomes = _map(
        lambda task: _run_task(task, base, bursts, evaluator, options),
        tasks, options.jobs, say,
    )
    results: list[_FamilyResult] = []
    for family in families:
        mine = [(t, o) for t, o in zip(tasks, outcomes, strict=True) if t.family == family]
        full = next(o for t, o in mine if t.fold is None)
        result = _FamilyResult(family, full[0])
        for scheme in SCHEMES:
            result.heldout[scheme] = {}
            for task, (_, predicted) in mine:
                if task.fold is not None and task.fold.scheme == scheme:
                    result.heldout[scheme].update(predicted)
        result.heldout_loss = float(
            sum(
                robust_loss(_residuals(result.heldout[scheme], bursts, noise), options.loss)
                for scheme in SCHEMES
            )
        )
        say(
            f"family {family.name}: training loss {result.fit.cost:.1f}, "
            f"held-out loss {result.heldout_loss:.1f}"
        )
        results.append(result)
    chosen = min(results, key=lambda r: (r.heldout_loss, len(r.family.free)))
    say(f"chosen family: {chosen.family.name}")
    intervals = bootstrap_intervals(
        chosen.family, chosen.fit, base, bursts, evaluator, noise, options, say
    )
    return _describe(data, options, chosen, results, intervals, noise, evaluator, keys, all_folds)


T = TypeVar("T")
R = TypeVar("R")


def _map(
    function: Callable[[T], R], items: Sequence[T], jobs: int, say: Progress
) -> list[R]:
    """function over items, in order; in `jobs` forked processes when jobs > 1. Each item's
    result depends on that item only, so the answer is the same for every `jobs`."""
    if jobs <= 1 or len(items) <= 1:
        results = []
        for i, item in enumerate(items):
            results.append(function(item))
            say(f"fit {i + 1}/{len(items)} done")
        return results
    context = multiprocessing.get_context("fork")
    global _FORKED_FUNCTION
    _FORKED_FUNCTION = function  # inherited by the forked workers; lambdas cannot be pickled
    with context.Pool(jobs) as pool:
        results = []
        for i, result in enumerate(pool.imap(_call_forked, items)):
            results.append(result)
            say(f"fit {i + 1}/{len(items)} done")
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
    noise: tuple[float, float],
    options: CalibrateOptions,
    say: Progress,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from refits on resamples of whole configurations (summary tables,
    whose replicates are too few to resample alone) or whole runs (per-instance datasets)."""
    groups: dict[object, list[Burst]] = {}
    for burst in bursts:
        unit = burst.key if burst.launch_s is None else burst.run_id
        groups.setdefault(unit, []).append(burst)
    units = list(groups)
    start = {name: float(getattr(fit.model, name)) for name in family.free}
    resamples = []
    for rep in range(options.bootstrap):
        rng = np.random.default_rng([BOOTSTRAP_STREAM, rep, options.seed])
        picked = rng.integers(0, len(units), size=len(units))
        resample = [burst for i in picked for burst in groups[units[i]]]
        if len({b.count for b in resample}) >= 2 and len({b.interval_ms for b in resample}) >= 2:
            resamples.append(resample)  # one count (or interval) cannot separate the terms
    say(f"bootstrap: {len(resamples)} refits")
    refits = _map(
        lambda resample: fit_family(
            family, base, resample, evaluator, noise, options, starts=[start]
        ),
        resamples, options.jobs, say,
    )
    samples = [[float(getattr(refit.model, name)) for name in family.free] for refit in refits]
    tail = (1 - options.interval_level) / 2
    intervals = {}
    for i, name in enumerate(family.free):
        if samples:
            values = np.array([s[i] for s in samples])
            low, high = np.quantile(values, [tail, 1 - tail])
            intervals[name] = (float(low), float(high))
        else:
            value = float(getattr(fit.model, name))
            intervals[name] = (value, value)
    return intervals


def _describe(
    data: CalibrationData,
    options: CalibrateOptions,
    chosen: _FamilyResult,
    results: Sequence[_FamilyResult],
    intervals: dict[str, tuple[float, float]],
    noise: tuple[float, float],
    evaluator: Evaluator,
    keys: Sequence[ConfigKey],
    all_folds: dict[Scheme, list[Fold]],
) -> cf.Calibration:
    bursts = list(data.bursts)
    model = chosen.fit.model
    fitted = evaluator.predict(model, keys)
    base_training, base_heldout = _baseline_predictions(bursts, all_folds)
    parameters = {}
    for name, value in model.model_dump().items():
        info = PARAMETERS[name]
        low, high = intervals.get(name, (value, value))
        parameters[name] = cf.ParameterEstimate(
            value=value, fitted=name in chosen.family.free, low=min(low, high), high=max(low, high),
            unit=info.unit, meaning=info.meaning,
        )
    family_scores = []
    for result in results:
        result_training = evaluator.predict(result.fit.model, keys)
        family_scores.append(
            cf.FamilyScore(
                family=result.family.name, free=list(result.family.free),
                scores=_scores(result_training, result.heldout, bursts),
                heldout_loss=result.heldout_loss,
            )
        )
    configurations = []
    for key in keys:
        runs = [b for b in bursts if b.key == key]
        loco = chosen.heldout["leave_one_count_out"][key]
        loio = chosen.heldout["leave_one_interval_out"][key]
        configurations.append(
            cf.ConfigurationFit(
                count=key[0], interval_ms=key[1], runs=len(runs),
                measured_first_ready_s=float(np.median([b.first_ready_s for b in runs])),
                measured_all_ready_s=float(np.median([b.all_ready_s for b in runs])),
                fitted_first_ready_s=fitted[key][0], fitted_all_ready_s=fitted[key][1],
                count_heldout_first_ready_s=loco[0], count_heldout_all_ready_s=loco[1],
                interval_heldout_first_ready_s=loio[0], interval_heldout_all_ready_s=loio[1],
                baseline_count_heldout_first_ready_s=base_heldout["leave_one_count_out"][key][0],
                baseline_count_heldout_all_ready_s=base_heldout["leave_one_count_out"][key][1],
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
            model=_scores(fitted, chosen.heldout, bursts),
            baseline=_scores(base_training, base_heldout, bursts),
            families=family_scores,
            configurations=configurations,
        ),
        settings=cf.FitSettings(
            loss=options.loss,  # type: ignore[arg-type]
            seed=options.seed, work_draws=options.work_draws, bootstrap=options.bootstrap,
            interval_level=options.interval_level, noise_first_ready=noise[0],
            noise_all_ready=noise[1],
            selection="least robust held-out loss over leave-one-count-out and "
            "leave-one-interval-out; ties go to fewer free parameters",
        ),
    )
