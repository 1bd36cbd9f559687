"""What a calibration compares: a model's forecast of a burst against the measured run.

Forecasts, replays of measured runs, replicate noise, residuals in noise units, robust loss, errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from measure.calibration.data import Burst, ConfigKey
from measure.calibration.host_costs import works_from_cpu
from sim.model import calibration as cf
from sim.model.burst_stats import first_ready, last_ready, quantile
from sim.model.node_model import NodeModel
from sim.model.predict import burst_ready_times, planned_launches
from sim.model.ready_times import ready_times

QUANTILES = 50
LEVELS = (np.arange(QUANTILES) + 0.5) / QUANTILES
"""Probability levels at which ready-time distributions are compared (midpoints: their mean
absolute difference is the Wasserstein-1 distance of the two distributions)."""
DEFAULT_NOISE = (0.06, 0.01, 0.02)
"""Relative noise of (first, all-ready, W1/makespan) when the data hold no replicate runs to
measure it: the size of the 2016 study's replicate differences."""


@dataclass(frozen=True)
class Forecast:
    """A model's answer for one burst: means over work draws."""

    first: float
    last: float
    quantiles: np.ndarray
    """Ready times at LEVELS (seconds from the burst start)."""


Forecasts = dict[ConfigKey, Forecast]
"""A forecast per configuration."""


def forecast_of(times: np.ndarray) -> Forecast:
    """Summary of ready times, one row per draw."""
    return Forecast(
        first=float(np.mean(first_ready(times))),
        last=float(np.mean(last_ready(times))),
        quantiles=np.mean(quantile(times, LEVELS), axis=1),
    )


@dataclass(frozen=True)
class Noise:
    """Relative noise of one run's first-ready, all-ready and ready-time distribution."""

    first: float
    last: float
    w1: float


class Evaluator:
    """Forecasts of configurations (planned launches, drawn works: what `measure predict`
    says) and replays of measured runs (their own launch times and CPU times as works).
    Draws are common random numbers: every model sees the same ones."""

    def __init__(self, draws: int, seed: int) -> None:
        self.draws = draws
        self.seed = seed

    def forecast(self, model: NodeModel, keys: Sequence[ConfigKey]) -> Forecasts:
        return {
            (count, interval): forecast_of(
                burst_ready_times(
                    model, planned_launches(count, interval), interval, self.draws, self.seed
                )
            )
            for count, interval in keys
        }

    def replay(self, model: NodeModel, bursts: Sequence[Burst]) -> dict[str, Forecast]:
        """Each run simulated with its measured launches and per-instance CPU time; instances
        the harness never saw ready still load the node but are left out of the comparison."""
        result = {}
        for burst in bursts:
            assert burst.launch_s is not None and burst.cpu_s is not None
            started = np.isfinite(burst.launch_s)
            cpu = np.where(np.isfinite(burst.cpu_s), burst.cpu_s, model.work_s)
            works = works_from_cpu(model, burst.launch_s, cpu)[started]
            times = ready_times(model, burst.launch_s[started], work=works)
            assert burst.ready_s is not None
            seen = times[np.isfinite(burst.ready_s[started])][None, :]
            result[burst.run_id] = forecast_of(seen)
        return result


def measured_quantiles(burst: Burst) -> np.ndarray:
    assert burst.ready_s is not None
    return np.asarray(quantile(burst.ready_s[np.isfinite(burst.ready_s)], LEVELS))


def ready_w1(forecast: Forecast, burst: Burst) -> float:
    """Wasserstein-1 distance between forecast and measured ready times, / the run's makespan."""
    return float(np.mean(np.abs(forecast.quantiles - measured_quantiles(burst)))) / (
        burst.all_ready_s
    )


def replicate_noise(bursts: Sequence[Burst]) -> Noise:
    """Relative noise of one run, from replicate runs of each configuration: the median pairwise
    relative difference / sqrt(2) (a difference has twice one run's variance)."""
    groups: dict[ConfigKey, list[Burst]] = {}
    for burst in bursts:
        groups.setdefault(burst.key, []).append(burst)
    first: list[float] = []
    last: list[float] = []
    w1: list[float] = []
    for runs in groups.values():
        for i, a in enumerate(runs):
            for b in runs[i + 1 :]:
                first.append(_rel_diff(a.first_ready_s, b.first_ready_s))
                last.append(_rel_diff(a.all_ready_s, b.all_ready_s))
                if a.ready_s is not None and b.ready_s is not None:
                    distance = np.mean(np.abs(measured_quantiles(a) - measured_quantiles(b)))
                    w1.append(float(distance) / ((a.all_ready_s + b.all_ready_s) / 2))
    if len(last) < 3:
        return Noise(*DEFAULT_NOISE)
    # A floor keeps a table of identical replicates from giving infinite weights.
    return Noise(
        first=max(float(np.median(first)) / math.sqrt(2), 1e-3),
        last=max(float(np.median(last)) / math.sqrt(2), 1e-3),
        w1=max(float(np.median(w1)) / math.sqrt(2), 1e-3) if w1 else DEFAULT_NOISE[2],
    )


def _rel_diff(a: float, b: float) -> float:
    return abs(a - b) / ((a + b) / 2)


def burst_residuals(forecast: Forecast, burst: Burst, noise: Noise) -> np.ndarray:
    """Relative errors of first and all-ready in noise units; for per-instance runs also the
    quantile differences, scaled so that together they weigh like one W1/makespan error."""
    head = [
        (forecast.first / burst.first_ready_s - 1.0) / noise.first,
        (forecast.last / burst.all_ready_s - 1.0) / noise.last,
    ]
    if burst.ready_s is None:
        return np.array(head)
    spread = (forecast.quantiles - measured_quantiles(burst)) / (
        burst.all_ready_s * noise.w1 * math.sqrt(QUANTILES)
    )
    return np.concatenate([head, spread])


def residuals(
    forecasts: Mapping[ConfigKey, Forecast] | Mapping[str, Forecast],
    bursts: Sequence[Burst],
    noise: Noise,
    by_run: bool = False,
) -> np.ndarray:
    """Residuals of every run against the forecast of its configuration (or of itself)."""
    parts = [
        burst_residuals(forecasts[burst.run_id if by_run else burst.key], burst, noise)  # type: ignore[index]
        for burst in bursts
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def robust_loss(values: np.ndarray, loss: str) -> float:
    """The loss least_squares minimises (without its 1/2), with f_scale = 1."""
    z = values**2
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


def median_errors(forecasts: Mapping[ConfigKey, Forecast], bursts: Sequence[Burst]) -> cf.Errors:
    """Median over runs of the relative errors, and of W1/makespan for per-instance runs when the
    forecasts have distributions (the straight-line baseline has none)."""
    first = [abs(forecasts[b.key].first / b.first_ready_s - 1) for b in bursts]
    last = [abs(forecasts[b.key].last / b.all_ready_s - 1) for b in bursts]
    w1 = [
        ready_w1(forecasts[b.key], b)
        for b in bursts
        if b.ready_s is not None and forecasts[b.key].quantiles.size
    ]
    return cf.Errors(
        first_ready=float(np.median(first)),
        all_ready=float(np.median(last)),
        ready_w1=float(np.median(w1)) if w1 else None,
    )
