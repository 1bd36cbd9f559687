"""Prediction intervals for one burst: how far a single run on this host may fall from the
central prediction, from the run-to-run variability of replicate runs and the uncertainty of
the fitted parameters (their bootstrap intervals).

Both are treated on a log scale (a host runs a few per cent faster or slower as a whole):
log(run / central) ~ Normal(0, sigma_run^2 + sigma_param^2), so the 80 % interval is
central * exp(+-1.2816 sigma). A forecast carried to a probe adds a third part, the host's
drift since the probe (sim.model.forecast). Coverage is measured (benchmarks/transfer.py), not
assumed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.special import ndtri

from sim.model.node_model import NodeModel
from sim.streams import MeasureStream, measure_rng

FIGURES = ("first_ready_s", "p10_ready_s", "median_ready_s", "p95_ready_s", "all_ready_s")
LEVEL = 0.8
PARAMETER_DRAWS = 16
"""Parameter sets drawn for the parameter part of an interval."""
FALLBACK_FIGURE = {"p10_ready_s": "first_ready_s", "median_ready_s": "all_ready_s",
                   "p95_ready_s": "all_ready_s"}
"""Where a table holds only first and all-ready, the figure whose run noise stands in."""


class RunNoise(BaseModel):
    """Standard deviation of log(run figure) between replicate runs of one configuration,
    pooled over configurations (degrees of freedom: runs - configurations)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sigma: dict[str, float]
    runs: int
    configurations: int


def run_noise(runs: Sequence[tuple[tuple[int, float], Mapping[str, float]]]) -> RunNoise:
    """Pooled replicate noise of each figure from (configuration, figures) of every run."""
    by_config: dict[tuple[int, float], list[Mapping[str, float]]] = defaultdict(list)
    for key, figures in runs:
        by_config[key].append(figures)
    sigma: dict[str, float] = {}
    replicated = [group for group in by_config.values() if len(group) >= 2]
    for name in FIGURES:
        squares, dof = 0.0, 0
        for group in replicated:
            values = np.log([g[name] for g in group if name in g and g[name] > 0])
            if values.size >= 2:
                squares += float(np.sum((values - values.mean()) ** 2))
                dof += values.size - 1
        if dof:
            sigma[name] = math.sqrt(squares / dof)
    return RunNoise(sigma=sigma, runs=len(runs), configurations=len(replicated))


def noise_of(noise: RunNoise, figure: str) -> float:
    """The run noise of a figure, or of the figure standing in for it."""
    if figure in noise.sigma:
        return noise.sigma[figure]
    return noise.sigma.get(FALLBACK_FIGURE.get(figure, ""), 0.0)


class Estimate(Protocol):
    """A fitted parameter with its bootstrap interval (sim.model.calibration.ParameterEstimate)."""

    @property
    def value(self) -> float: ...
    @property
    def source(self) -> str: ...
    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...


def parameter_draws(model: NodeModel, parameters: Mapping[str, Estimate],
                    interval_level: float, draws: int, seed: int) -> list[NodeModel]:
    """Node models with every fitted parameter drawn from a normal matching its bootstrap
    interval (independently: the file keeps intervals, not the bootstrap's joint draws)."""
    z = float(ndtri(0.5 + interval_level / 2.0))
    rng = measure_rng(MeasureStream.PARAMETER_DRAWS, seed, draws)
    base = model.model_dump()
    models = []
    for _ in range(draws):
        values = dict(base)
        for name, estimate in parameters.items():
            if estimate.source != "fitted" or estimate.high <= estimate.low:
                continue
            sd = (estimate.high - estimate.low) / (2.0 * z)
            # Truncated to the interval widened by one sd, and never below half of the smaller
            # of the value and the interval's low end when that is positive (an edited or very
            # wide interval would otherwise draw a zero work or zero cores): a draw stays a
            # valid model.
            value = float(rng.normal(estimate.value, sd))
            floor = max(estimate.low - sd, 0.5 * min(estimate.low, estimate.value), 0.0)
            value = float(np.clip(value, floor, max(estimate.high + sd, floor)))
            values[name] = min(value, 0.99) if name == "work_floor" else value
        models.append(NodeModel.model_validate(values))
    return models


def intervals(central: Mapping[str, float], sampled: Sequence[Mapping[str, float]],
              noise: RunNoise, level: float = LEVEL,
              extra: Mapping[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """The interval of each figure around its central value; `extra`: a further independent
    part of each figure's log-scale standard deviation (the host's drift since a probe)."""
    z = float(ndtri(0.5 + level / 2.0))
    out = {}
    for name in FIGURES:
        logs = np.log([s[name] for s in sampled]) if sampled else np.zeros(1)
        more = 0.0 if extra is None else extra.get(name, 0.0)
        sigma = math.sqrt(float(np.var(logs)) + noise_of(noise, name) ** 2 + more ** 2)
        out[name] = (central[name] * math.exp(-z * sigma), central[name] * math.exp(z * sigma))
    return out


def predict_with_intervals(
    model: NodeModel, parameters: Mapping[str, Estimate], interval_level: float, seed: int,
    figures: Callable[[NodeModel], Mapping[str, float]], noise: RunNoise,
    adapt: Callable[[NodeModel], NodeModel] | None = None,
    draws: int = PARAMETER_DRAWS, level: float = LEVEL,
    extra: Mapping[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Central figures (the model, adapted to the host) and their intervals: `figures` of each
    parameter draw give the parameter part, `noise` the run-to-run part, `extra` any other."""
    def host(m: NodeModel) -> NodeModel:
        return m if adapt is None else adapt(m)

    central = dict(figures(host(model)))
    sampled = [figures(host(m))
               for m in parameter_draws(model, parameters, interval_level, draws, seed)]
    return central, intervals(central, sampled, noise, level, extra)

