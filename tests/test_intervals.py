"""Prediction intervals: the run-to-run part is estimated from replicate runs and, on a log
scale, an 80 % interval holds 80 % of runs (checked against draws from the assumed law); the
parameter part follows the calibration's bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from sim.model.intervals import (
    FIGURES,
    LEVEL,
    RunNoise,
    intervals,
    noise_of,
    parameter_draws,
    run_noise,
)
from sim.model.node_model import NodeModel


def test_replicate_noise_is_the_pooled_sd_of_log_figures() -> None:
    rng = np.random.default_rng(5)
    runs = []
    for config in range(60):
        centre = rng.uniform(0.1, 20.0)
        for _ in range(3):
            runs.append(((config, 1.0), {name: centre * float(np.exp(rng.normal(0, 0.07)))
                                         for name in FIGURES}))
    noise = run_noise(runs)
    assert noise.configurations == 60 and noise.runs == 180
    for name in FIGURES:
        assert noise.sigma[name] == pytest.approx(0.07, rel=0.12)


def test_an_80_percent_interval_holds_80_percent_of_runs() -> None:
    noise = RunNoise(sigma=dict.fromkeys(FIGURES, 0.1), runs=0, configurations=0)
    central = dict.fromkeys(FIGURES, 2.0)
    bands = intervals(central, [], noise)
    runs = 2.0 * np.exp(np.random.default_rng(9).normal(0, 0.1, 40_000))
    low, high = bands["all_ready_s"]
    assert np.mean((runs >= low) & (runs <= high)) == pytest.approx(LEVEL, abs=0.01)


def test_parameter_spread_widens_the_interval() -> None:
    noise = RunNoise(sigma={"first_ready_s": 0.05, "all_ready_s": 0.05}, runs=6,
                     configurations=2)
    central = dict.fromkeys(FIGURES, 1.0)
    sampled = [dict.fromkeys(FIGURES, v) for v in (0.8, 0.9, 1.0, 1.1, 1.25)]
    narrow = intervals(central, [], noise)
    wide = intervals(central, sampled, noise)
    for name in FIGURES:
        assert wide[name][0] < narrow[name][0] and wide[name][1] > narrow[name][1]
    # A table has no p10 or median: first and all-ready stand in for them.
    assert noise_of(noise, "p10_ready_s") == noise.sigma["first_ready_s"]
    assert noise_of(noise, "median_ready_s") == noise.sigma["all_ready_s"]


class _Estimate:
    def __init__(self, value: float, low: float, high: float) -> None:
        self.value, self.low, self.high, self.source = value, low, high, "fitted"


def test_parameter_draws_follow_the_bootstrap_interval() -> None:
    model = NodeModel(cores=2.0, work_s=0.03, work_floor=0.5)
    estimates = {"work_s": _Estimate(0.03, 0.028, 0.032),
                 "work_floor": _Estimate(0.5, 0.3, 0.95)}
    draws = parameter_draws(model, estimates, 0.9, 400, seed=3)
    work = np.array([m.work_s for m in draws])
    # A normal whose 90 % interval is 0.028-0.032: sd 0.002 / 1.645.
    assert work.mean() == pytest.approx(0.03, abs=3e-4)
    assert work.std() == pytest.approx(0.002 / 1.645, rel=0.15)
    assert all(0.0 <= m.work_floor < 1.0 for m in draws)
    assert {m.cores for m in draws} == {2.0}
    assert parameter_draws(model, estimates, 0.9, 5, seed=3) == parameter_draws(
        model, estimates, 0.9, 5, seed=3)
