"""Replications through the one runner (sim.sweep.runner.run_scenario): a local process pool
gives exactly the serial tables, a replication does not depend on how many others run, and
confidence intervals over replications cover the true mean as often as they claim.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from tiny_scenario import TINY

from sim.report.statistics import confidence_interval
from sim.scenario import Scenario
from sim.sweep.runner import run_scenario

SCENARIO = Scenario.model_validate(yaml.safe_load(TINY))


def test_two_worker_processes_give_exactly_the_serial_tables() -> None:
    serial = run_scenario(SCENARIO)
    parallel = run_scenario(SCENARIO, workers=2)
    for kind, table in serial.items():
        assert parallel[kind].equals(table), kind
    requests = serial["requests"].to_pandas()
    assert list(requests.replication.unique()) == [0, 1]  # replication-major order
    first, second = (requests[(requests.replication == r) & (requests.policy == "immediate")]
                     for r in (0, 1))
    assert first.arrival_s.tolist() != second.arrival_s.tolist(), "replications differ"


def test_a_replication_does_not_depend_on_how_many_others_run() -> None:
    three = run_scenario(SCENARIO.model_copy(update={"replications": 3}))
    two = run_scenario(SCENARIO)
    for kind, table in two.items():
        mine = three[kind].to_pandas()
        assert mine[mine.replication < 2].reset_index(drop=True).equals(table.to_pandas()), kind


def test_progress_counts_every_unit_once() -> None:
    done: list[int] = []
    run_scenario(SCENARIO, on_units_done=done.append, workers=2)
    assert sum(done) == SCENARIO.replications * len(SCENARIO.policies)


def test_confidence_intervals_cover_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng([7, 0, 1])
    covered = [3.0 in confidence_interval(rng.normal(3.0, 2.0, 5)) for _ in range(4000)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.012)


def test_one_replication_has_a_mean_and_no_interval() -> None:
    single = confidence_interval([1.0])
    assert single.mean == 1.0 and np.isnan(single.half_width)
