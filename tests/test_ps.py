"""Processor sharing kernel: closed-form cases, and agreement with a naive remaining-work oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model.kernel import ProcessorSharing


def run_to_empty(ps: ProcessorSharing) -> dict[int, float]:
    """Pop every job at its completion time; return job -> completion time."""
    finished: dict[int, float] = {}
    t = ps.next_completion()
    while t != math.inf:
        for job in ps.pop_completed(t):
            finished[job] = t
        t = ps.next_completion()
    return finished


def naive_ps(
    arrivals: list[tuple[float, float]], capacity: float, max_rate: float
) -> list[float]:
    """Independent oracle: track every job's remaining work, step from event to event, O(n^2)."""
    n = len(arrivals)
    remaining = [w for _, w in arrivals]
    done = [math.nan] * n
    active: list[int] = []
    pending = sorted(range(n), key=lambda i: arrivals[i][0])
    t = 0.0
    while pending or active:
        rate = min(max_rate, capacity / len(active)) if active else 0.0
        t_finish = t + min(remaining[i] for i in active) / rate if active else math.inf
        t_arrive = arrivals[pending[0]][0] if pending else math.inf
        t_next = min(t_finish, t_arrive)
        for i in active:
            remaining[i] -= (t_next - t) * rate
        t = t_next
        for i in [i for i in active if remaining[i] <= 1e-9]:
            active.remove(i)
            done[i] = t
        while pending and arrivals[pending[0]][0] <= t:
            active.append(pending.pop(0))
    return done


def test_k_equal_jobs_finish_together_at_k_w_over_c() -> None:
    ps = ProcessorSharing(capacity=2.0, max_rate=1.0)
    for job in range(6):
        ps.add(0.0, job, 1.5)
    assert ps.next_completion() == pytest.approx(6 * 1.5 / 2.0)
    assert ps.pop_completed(ps.next_completion()) == [0, 1, 2, 3, 4, 5]
    assert ps.active == 0


def test_a_single_job_is_capped_at_max_rate() -> None:
    ps = ProcessorSharing(capacity=4.0, max_rate=1.0)
    ps.add(0.0, 7, 2.0)
    assert ps.next_completion() == pytest.approx(2.0)
    ps2 = ProcessorSharing(capacity=4.0, max_rate=2.5)
    ps2.add(0.0, 7, 2.0)
    assert ps2.next_completion() == pytest.approx(0.8)


def test_a_late_job_can_catch_up_and_both_leave_at_the_same_instant() -> None:
    # A needs 2 and runs alone for 1 s; then A and B (needs 1) share one core at 0.5 each:
    # both have exactly 1 left and finish together at t=3.
    ps = ProcessorSharing(capacity=1.0)
    ps.add(0.0, 0, 2.0)
    ps.add(1.0, 1, 1.0)
    assert ps.next_completion() == pytest.approx(3.0)
    assert sorted(ps.pop_completed(ps.next_completion())) == [0, 1]


def test_jobs_added_at_different_times_with_equal_marks_leave_together_despite_rounding() -> None:
    ps = ProcessorSharing(capacity=1.0)
    ps.add(0.0, 0, 0.3)
    ps.add(0.1, 1, 0.2)  # both have 0.2 left at 0.1, yet 0.1 + 0.2 != 0.3 in floats
    assert sorted(ps.pop_completed(ps.next_completion())) == [0, 1]


def test_popping_past_several_completions_processes_each_at_its_own_time() -> None:
    ps = ProcessorSharing(capacity=1.0)
    ps.add(0.0, 0, 1.0)
    ps.add(0.0, 1, 2.0)
    # 0 ends at 2 (two jobs share), then 1 runs alone: 1 left -> ends at 3.
    assert ps.pop_completed(10.0) == [0, 1]
    assert ps.served(10.0) == pytest.approx(3.0)


def test_set_capacity_changes_the_rate_from_now_on() -> None:
    ps = ProcessorSharing(capacity=1.0)
    ps.add(0.0, 0, 2.0)
    ps.set_capacity(1.0, 0.5)  # 1 done at t=1, 1 left at rate 0.5 -> ends at 3
    assert ps.next_completion() == pytest.approx(3.0)


def test_served_counts_cpu_seconds_delivered() -> None:
    ps = ProcessorSharing(capacity=2.0)
    ps.add(0.0, 0, 1.0)
    ps.add(0.0, 1, 1.0)
    ps.add(0.0, 2, 1.0)
    assert ps.served(0.75) == pytest.approx(1.5)  # 2 cores busy
    run_to_empty(ps)
    assert ps.served(100.0) == pytest.approx(3.0)


def test_time_cannot_go_backwards() -> None:
    ps = ProcessorSharing(capacity=1.0)
    ps.add(5.0, 0, 1.0)
    with pytest.raises(ValueError, match="backwards"):
        ps.add(4.0, 1, 1.0)


@pytest.mark.parametrize(("capacity", "max_rate"), [(1.0, 1.0), (3.0, 1.0), (2.5, 0.7)])
def test_agrees_with_naive_remaining_work_simulation(capacity: float, max_rate: float) -> None:
    rng = np.random.default_rng([11, 0, 2024])
    n = 300
    arrival = np.sort(rng.uniform(0.0, 40.0, n))
    work = rng.exponential(1.0, n)
    ps = ProcessorSharing(capacity=capacity, max_rate=max_rate)
    finished: dict[int, float] = {}
    for i in range(n):
        t = float(arrival[i])
        while ps.next_completion() <= t:  # complete everything due before this arrival
            tc = ps.next_completion()
            finished.update(dict.fromkeys(ps.pop_completed(tc), tc))
        ps.add(t, i, float(work[i]))
    finished.update(run_to_empty(ps))
    ours = np.array([finished[i] for i in range(n)])
    oracle = np.array(naive_ps(list(zip(arrival.tolist(), work.tolist(), strict=True)),
                               capacity, max_rate))
    np.testing.assert_allclose(ours, oracle, rtol=1e-9, atol=1e-9)


def test_queued_joins_run_in_one_loop_as_joining_and_popping_at_each_event_bit_for_bit() -> None:
    # run_until() is the fused loop of join_due() and pop_completed(), and first_completion()
    # the look-ahead past queued joins: both must give the step-by-step floats exactly, and
    # the naive oracle's times. Join times rounded to 10 ms: many join together.
    rng = np.random.default_rng([11, 0, 7])
    n = 300
    at = np.round(rng.uniform(0.0, 20.0, n), 2)
    work = rng.exponential(0.1, n)
    fused: ProcessorSharing = ProcessorSharing(capacity=2.0, max_rate=0.8)
    stepwise: ProcessorSharing = ProcessorSharing(capacity=2.0, max_rate=0.8)
    for ps in (fused, stepwise):
        ps.join_later_many((float(at[i]), 0.0, i, float(work[i])) for i in range(n))
    by_fused: dict[int, float] = {}
    while (t := fused.first_completion(math.inf)) != math.inf:
        done: list[int] = []
        fused.run_until(t, done)
        by_fused.update(dict.fromkeys(done, t))
    by_step: dict[int, float] = {}
    while (t_done := stepwise.next_completion()) != math.inf or stepwise.next_join() != math.inf:
        if t_done <= stepwise.next_join():  # (completions first at the same instant)
            by_step.update(dict.fromkeys(stepwise.pop_completed(t_done), t_done))
        else:
            stepwise.join_due(stepwise.next_join())
    assert by_fused == by_step and len(by_fused) == n
    oracle = naive_ps(list(zip(at.tolist(), work.tolist(), strict=True)), 2.0, 0.8)
    np.testing.assert_allclose([by_fused[i] for i in range(n)], oracle, rtol=1e-9, atol=1e-9)
