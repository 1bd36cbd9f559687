"""What a node model predicts for one burst: first, p10, median, p95 and all-ready times.

Runs the node model's ready_times over seeded work draws; calibrate, `measure predict` and the
reports of one-node scenarios (sim/report/node_forecast.py) share it.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.special import ndtri

from sim.model.burst_stats import P10, first_ready, last_ready, median, quantile
from sim.model.calibration import Calibration
from sim.model.node_model import NodeModel, work_from_normal
from sim.model.ready_times import ready_times
from sim.model.units import seconds
from sim.streams import MeasureStream, measure_rng

DEFAULT_DRAWS = 8
DEFAULT_SEED = 2016


class ReadyPrediction(BaseModel):
    """Seconds from the burst start (planned launch of instance 0); each a mean over draws."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    first_ready_s: float
    p10_ready_s: float
    """Until 10 % of the instances are ready (a platform cares about the first few)."""
    median_ready_s: float
    p95_ready_s: float
    all_ready_s: float


def planned_launches(count: int, interval_ms: float) -> np.ndarray:
    return np.arange(count, dtype=float) * seconds(interval_ms)


def work_generator(draw: int, seed: int, count: int, interval_ms: float) -> np.random.Generator:
    """The generator of one draw of one configuration: the same for every model, so fits see
    common random numbers and a refit or a prediction reproduces the same draws."""
    return measure_rng(MeasureStream.WORK_DRAWS, draw, seed, count, round(interval_ms * 1000))


def work_scores(count: int, rng: np.random.Generator) -> np.ndarray:
    """Standard normal scores of the instances' works, stratified: the n quantiles
    Phi^-1((i + 1/2) / n) in a random order. Every draw then holds the whole distribution
    (smallest and largest works included), so the first and all-ready of a few draws are
    nearly as steady as those of many iid draws; the order is what varies between draws."""
    quantiles = ndtri((np.arange(count) + 0.5) / count)
    return rng.permutation(quantiles)


def burst_ready_times(
    model: NodeModel,
    launch_s: np.ndarray,
    interval_ms: float,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """Ready time of every instance (columns, launch order) for each work draw (rows)."""
    count = len(launch_s)
    times = np.empty((draws, count))
    for draw in range(draws):
        scores = work_scores(count, work_generator(draw, seed, count, interval_ms))
        times[draw] = ready_times(model, launch_s, work=work_from_normal(model, scores))
    return times


def summarise(times: np.ndarray) -> ReadyPrediction:
    """Mean over draws (rows) of each draw's first, p10, median, p95 and last ready time."""
    return ReadyPrediction(
        first_ready_s=float(np.mean(first_ready(times))),
        p10_ready_s=float(np.mean(quantile(times, P10))),
        median_ready_s=float(np.mean(median(times))),
        p95_ready_s=float(np.mean(quantile(times, 0.95))),
        all_ready_s=float(np.mean(last_ready(times))),
    )


def predict(
    calibration: Calibration | NodeModel,
    count: int,
    interval_ms: float,
    draws: int | None = None,
    seed: int | None = None,
) -> ReadyPrediction:
    """Predicted start-up of a burst of `count` instances launched `interval_ms` apart on one
    node. With a Calibration, draws and seed default to the ones it was fitted with."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not interval_ms >= 0:
        raise ValueError(f"interval_ms must be >= 0, got {interval_ms}")
    if isinstance(calibration, Calibration):
        model = calibration.model
        draws = calibration.settings.work_draws if draws is None else draws
        seed = calibration.settings.seed if seed is None else seed
    else:
        model = calibration
    draws = DEFAULT_DRAWS if draws is None else draws
    seed = DEFAULT_SEED if seed is None else seed
    launches = planned_launches(count, interval_ms)
    return summarise(burst_ready_times(model, launches, interval_ms, draws, seed))
