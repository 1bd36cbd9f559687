"""The model-based policy: its burst predictions worked out by hand, its choice rule, and the
policy on the engine using exactly the interval or cap its model picks."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.cluster import Cluster
from sim.engine.request import Request
from sim.engine.simulate import simulate
from sim.model.node_model import NodeModel
from sim.policies import ModelBasedConfig
from sim.policies.model_based import (
    BurstOutcome,
    best_cap,
    best_interval_s,
    capped_burst,
    choose,
    count_grid,
    interval_burst,
)

TWO_CORES = NodeModel(cores=2, work_s=1.0)
ONE_CORE = NodeModel(cores=1, work_s=0.1)


@pytest.mark.parametrize(("cap", "first", "last"), [
    (1, 1.0, 5.0),   # one at a time
    (2, 1.0, 3.0),   # pairs at 1 s each, then the fifth alone
    (3, 1.5, 2.5),   # three share two cores (1.5 s), then two together (1 s)
    (4, 2.0, 3.0),   # four share (2 s), then the fifth alone (1 s)
    (5, 2.5, 2.5),   # all five share: 5 s of work on two cores
])
def test_capped_burst_of_five_on_two_cores(cap: int, first: float, last: float) -> None:
    outcome = capped_burst(TWO_CORES, 5, cap)
    assert outcome.first_ready_s == pytest.approx(first)
    assert outcome.all_ready_s == pytest.approx(last)


def test_interval_burst_on_one_core_is_sequential_once_the_interval_covers_the_work() -> None:
    spaced = interval_burst(ONE_CORE, 10, 0.1)
    assert spaced.first_ready_s == pytest.approx(0.1)
    assert spaced.all_ready_s == pytest.approx(1.0)
    together = interval_burst(ONE_CORE, 10, 0.0)
    assert together.first_ready_s == pytest.approx(1.0), "ten share one core: all at 1 s"
    wide = interval_burst(ONE_CORE, 10, 0.15)
    assert wide.all_ready_s == pytest.approx(9 * 0.15 + 0.1), "the CPU idles between launches"


def test_choose_takes_the_earliest_first_ready_within_the_slack_of_the_fastest_all_ready() -> None:
    outcomes = [BurstOutcome(2.5, 2.5), BurstOutcome(1.0, 3.0), BurstOutcome(1.5, 2.5),
                BurstOutcome(0.5, 9.0)]
    assert choose(outcomes, slack=0.0) == 2
    assert choose(outcomes, slack=0.2) == 1, "3.0 <= 1.2 * 2.5"
    assert choose(outcomes, slack=10.0) == 3


def test_best_interval_is_the_largest_that_keeps_the_cpu_busy() -> None:
    # On one core, any interval up to the work keeps all-ready at n * work; the largest of them
    # lets the first instance run alone (first-ready ties go to the shorter interval).
    candidates = (0.0, 50.0, 100.0, 110.0, 150.0)
    assert best_interval_s(ONE_CORE, 10, 0.01, candidates) == pytest.approx(0.1)


def test_slack_buys_an_earlier_first_ready_with_a_later_all_ready() -> None:
    # Without 100 ms: 50 ms keeps all-ready at 1.0 s; 110 ms gets the first ready at 0.1 s but
    # all ready at 9 * 0.11 + 0.1 = 1.09 s, allowed only with a slack of at least 9 %.
    candidates = (0.0, 50.0, 110.0, 150.0)
    assert best_interval_s(ONE_CORE, 10, 0.01, candidates) == pytest.approx(0.05)
    assert best_interval_s(ONE_CORE, 10, 0.10, candidates) == pytest.approx(0.11)


def test_best_cap_follows_the_hand_worked_burst() -> None:
    caps = (1, 2, 3, 4, 8)
    assert best_cap(TWO_CORES, 5, 0.0, caps) == 3, "2.5 s all-ready with the earliest first"
    assert best_cap(TWO_CORES, 5, 0.25, caps) == 2, "3.0 s is within 25 % of 2.5 s"


def test_count_grid_rounds_up_and_keeps_small_counts() -> None:
    assert [count_grid(n) for n in range(1, 9)] == list(range(1, 9))
    sizes = [count_grid(n) for n in range(9, 2000)]
    assert all(g >= n for g, n in zip(sizes, range(9, 2000), strict=True))
    assert all(g <= 1.2 * n + 1 for g, n in zip(sizes, range(9, 2000), strict=True))
    assert len(set(sizes)) < 40


def test_the_interval_policy_launches_at_the_interval_its_model_chooses() -> None:
    config = ModelBasedConfig(slack=0.01, intervals_ms=(0.0, 50.0, 100.0, 110.0, 150.0))
    policy = config.build(np.random.default_rng(0))
    result = simulate(Cluster.homogeneous(1, ONE_CORE),
                      [Request(request_id=0, count=8, arrival_s=0.0)], policy)
    times = sorted(i.launch_s for i in result.instances)
    assert np.diff(times) == pytest.approx(np.full(7, 0.1))
    assert result.requests[0].time_to_first_s == pytest.approx(0.1)


def test_the_cap_policy_admits_as_many_as_its_model_chooses() -> None:
    config = ModelBasedConfig(mode="cap", slack=0.0, caps=(1, 2, 3, 4, 8))
    policy = config.build(np.random.default_rng(0))
    result = simulate(Cluster.homogeneous(1, TWO_CORES),
                      [Request(request_id=0, count=5, arrival_s=0.0)], policy)
    assert sum(1 for i in result.instances if i.launch_s == 0.0) == 3
    assert result.requests[0].time_to_first_s == pytest.approx(1.5)
    assert result.requests[0].time_to_all_s == pytest.approx(2.5)
