"""Fit one node-model family to measured bursts: robust bounded least squares from starts.

Per-instance runs fix what they measure directly (idle load, work growth, work) before the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from measure.calibration.data import Burst, CalibrationInputError
from measure.calibration.families import PARAMETERS, Family
from measure.calibration.host_costs import measure_host_costs
from measure.calibration.objective import Evaluator, Noise, residuals, robust_loss
from measure.calibration.options import CalibrateOptions
from sim.model.node_model import NodeModel


@dataclass
class FamilyFit:
    model: NodeModel
    cost: float


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
             "background_jobs": 0.5, "work_floor": 0.0, "launch_cpu_s": 1e-3,
             "lock_s": 3e-4}
    starts = [start]
    if "max_rate" in family.free:
        starts.append(dict(start, delay_s=0.5 * intercept, max_rate=0.3))
    if "work_cv" in family.free:
        starts.append(dict(start, work_cv=0.8))
    if "work_floor" in family.free:
        # Half of each boot fixed, the rest varying more: the same mean and a bounded left tail.
        starts.append(dict(start, work_floor=0.5, work_cv=0.3))
    if "launch_cpu_s" in family.free:
        # A dearer launch: launches that fall behind sooner, as a heavy launcher's would.
        starts.append(dict(start, launch_cpu_s=0.02))
    if "lock_s" in family.free:
        # A longer hold: a lock that binds from smaller crowds on.
        starts.append(dict(start, lock_s=2e-3))
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
) -> FamilyFit:
    """Robust bounded least squares from the `refine` best of the starting points (ranked by
    their loss, one evaluation each), keeping the best result. The model has the family's
    launcher.

    Fitted-work families are fitted on forecasts of each configuration; measured-work families
    on replays of each run with its own launch and CPU times."""
    from scipy.optimize import least_squares  # imported here: `measure --help` stays quick

    base = measured_base(base.model_copy(update={"launcher": family.launcher,
                                                 "lock_at": family.lock_at}), family, bursts)
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
    best: FamilyFit | None = None
    for _, _, u0 in candidates[:refine]:
        result = least_squares(
            objective, u0, bounds=(lower, upper), loss=options.loss, f_scale=1.0,
            diff_step=1e-3, x_scale="jac", max_nfev=options.max_nfev,
        )
        cost = robust_loss(result.fun, options.loss)
        if best is None or cost < best.cost:
            best = FamilyFit(_model_of(base, family, result.x), cost)
    assert best is not None
    return best
