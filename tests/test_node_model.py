"""The node model: hand-checkable bursts, and ready_times() against a naive O(n^2) simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model.node_model import NodeModel, draw_work
from sim.model.node_state import NodeState
from sim.model.ready_times import ready_times


def naive_ready_times(model: NodeModel, launch_s: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Independent oracle: remaining work per instance, stepping event to event, O(n^2)."""
    n = len(launch_s)
    order = sorted(range(n), key=lambda i: (launch_s[i], i))
    cpu_entry = [0.0] * n
    last = -math.inf
    for i in order:  # the launcher starts processes one by one, spawn_s apart at least
        start = max(float(launch_s[i]), last + model.spawn_s)
        last = start
        cpu_entry[i] = start + model.delay_s
    remaining = [float(w) for w in work]
    ready = [math.nan] * n
    waiting = sorted(range(n), key=lambda i: (cpu_entry[i], i))
    active: list[int] = []
    n_ready = 0
    t = min(cpu_entry)
    while waiting or active:
        capacity = max(model.min_capacity, model.cores - model.idle_load * n_ready)
        rate = min(model.max_rate, capacity / len(active)) if active else 0.0
        t_finish = t + min(remaining[i] for i in active) / rate if active else math.inf
        t_enter = cpu_entry[waiting[0]] if waiting else math.inf
        t_next = min(t_finish, t_enter)
        for i in active:
            remaining[i] -= (t_next - t) * rate
        t = t_next
        for i in [i for i in active if remaining[i] <= 1e-9]:
            active.remove(i)
            ready[i] = t
            n_ready += 1
        while waiting and cpu_entry[waiting[0]] <= t:
            active.append(waiting.pop(0))
    return np.array(ready)


def test_a_single_instance_alone_takes_delay_plus_work() -> None:
    model = NodeModel(cores=4, work_s=0.8, delay_s=0.3)
    assert ready_times(model, np.array([2.0]))[0] == pytest.approx(2.0 + 0.3 + 0.8)


def test_k_instances_launched_together_share_the_cores_and_finish_together() -> None:
    model = NodeModel(cores=2, work_s=0.5, delay_s=0.1)
    ready = ready_times(model, np.zeros(10))
    np.testing.assert_allclose(ready, 0.1 + 10 * 0.5 / 2)


def test_fewer_instances_than_cores_run_at_max_rate() -> None:
    capped = NodeModel(cores=8, work_s=1.0, max_rate=1.0)
    np.testing.assert_allclose(ready_times(capped, np.zeros(3)), 1.0)
    faster = NodeModel(cores=8, work_s=1.0, max_rate=2.0)
    np.testing.assert_allclose(ready_times(faster, np.zeros(3)), 0.5)


def test_ready_instances_that_keep_running_slow_later_ones() -> None:
    # The first instance is ready at 1 and then costs half the core: the second, alone in its CPU
    # phase from t=1, gets only 0.5 core and needs 2 s.
    model = NodeModel(cores=1, work_s=1.0, idle_load=0.5)
    np.testing.assert_allclose(ready_times(model, np.array([0.0, 1.0])), [1.0, 3.0])


def test_min_capacity_keeps_a_crowded_node_moving() -> None:
    model = NodeModel(cores=1, work_s=1.0, idle_load=1.0, min_capacity=0.25)
    np.testing.assert_allclose(ready_times(model, np.array([0.0, 1.0])), [1.0, 5.0])


def test_the_launcher_serialises_starts_spawn_s_apart() -> None:
    model = NodeModel(cores=100, work_s=1.0, spawn_s=0.2)
    np.testing.assert_allclose(ready_times(model, np.zeros(4)), [1.0, 1.2, 1.4, 1.6])


def test_ready_times_do_not_depend_on_the_order_launches_are_listed() -> None:
    rng = np.random.default_rng([1, 0, 7])
    model = NodeModel(cores=3, work_s=0.4, delay_s=0.05, work_cv=0.5, spawn_s=0.001)
    launch = rng.uniform(0, 2, 200)
    work = draw_work(model, 200, rng)
    perm = rng.permutation(200)
    straight = ready_times(model, launch, work)
    shuffled = ready_times(model, launch[perm], work[perm])
    np.testing.assert_allclose(shuffled, straight[perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "model",
    [
        NodeModel(cores=4, work_s=0.3, delay_s=0.2, work_cv=0.6),
        NodeModel(cores=2.5, work_s=0.1, max_rate=0.8, work_cv=1.0, spawn_s=0.004),
        NodeModel(cores=2, work_s=0.2, delay_s=0.05, idle_load=0.01, min_capacity=0.3),
    ],
    ids=["delay", "cap+spawn", "idle_load"],
)
def test_ready_times_agree_with_a_naive_simulation(model: NodeModel) -> None:
    rng = np.random.default_rng([2, 0, 99])
    n = 250
    launch = np.round(rng.uniform(0.0, 3.0, n), 3)  # rounding makes simultaneous launches likely
    work = draw_work(model, n, rng)
    np.testing.assert_allclose(ready_times(model, launch, work),
                               naive_ready_times(model, launch, work), rtol=1e-9, atol=1e-9)


def test_draw_work_has_mean_work_s_and_the_requested_cv() -> None:
    model = NodeModel(cores=1, work_s=2.0, work_cv=0.5)
    work = draw_work(model, 200_000, np.random.default_rng([3, 0, 1]))
    assert work.mean() == pytest.approx(2.0, rel=0.01)
    assert work.std() / work.mean() == pytest.approx(0.5, rel=0.02)


def test_a_work_floor_keeps_mean_and_cv_and_bounds_the_smallest_work() -> None:
    # Half of every boot is fixed: the same mean and CV as a plain lognormal, but no instance
    # needs less than half the mean, where the plain lognormal puts 11 % of its draws.
    plain = NodeModel(cores=1, work_s=2.0, work_cv=0.5)
    floored = plain.model_copy(update={"work_floor": 0.5})
    rng = np.random.default_rng([3, 0, 2])
    work = draw_work(floored, 200_000, rng)
    assert work.mean() == pytest.approx(2.0, rel=0.01)
    assert work.std() / work.mean() == pytest.approx(0.5, rel=0.03)
    assert work.min() >= 1.0
    assert np.mean(draw_work(plain, 200_000, rng) < 1.0) > 0.1


def test_ready_times_needs_randomness_only_when_work_varies() -> None:
    with pytest.raises(ValueError, match="rng"):
        ready_times(NodeModel(cores=1, work_s=1, work_cv=0.3), np.zeros(2))
    rng = np.random.default_rng([4, 0, 1])
    drawn = ready_times(NodeModel(cores=1, work_s=1, work_cv=0.3), np.zeros(2), rng=rng)
    assert np.all(np.isfinite(drawn))


def test_node_state_counts_planned_in_flight_and_ready_and_finite_lifetimes_stop() -> None:
    node = NodeState(NodeModel(cores=1, work_s=1.0, delay_s=0.5))
    node.launch(0.0, 0, 2.0, lifetime=2.0)
    node.plan(1.0, 1, 0.5)
    assert (node.planned, node.in_flight, node.ready) == (1, 1, 0)
    # Delay ends (0.5, 1.5) and the planned start (1.0) are not events seen from outside: the
    # next one is instance 1 ready (see below).
    assert node.next_event() == 2.5
    assert node.advance(1.0) == []
    assert (node.planned, node.in_flight) == (0, 2)
    # At 1.5 instance 0 has 1 s of work left and 1 joins: both at 0.5 core; 1 (0.5 s) is ready
    # at 2.5, then 0 runs alone and finishes its last 0.5 s at 3.0.
    assert node.advance(2.5) == [1]
    assert node.advance(3.0) == [0]
    assert (node.in_flight, node.ready) == (0, 2)
    assert node.advance(4.99) == []
    assert node.ready == 2
    assert node.advance(5.0) == []  # instance 0 stops at 3.0 + 2.0
    assert node.ready == 1
    assert node.cpu_busy_s(10.0) == pytest.approx(2.5)


def test_launching_before_processing_due_events_is_refused() -> None:
    node = NodeState(NodeModel(cores=1, work_s=1.0))
    node.launch(0.0, 0, 1.0)
    with pytest.raises(ValueError, match="advance"):
        node.launch(2.0, 1, 1.0)


def launched_one_by_one(model: NodeModel, launch_s: np.ndarray, work: np.ndarray
                        ) -> tuple[np.ndarray, dict[float, tuple[int, int]]]:
    """Reference: each instance launch()ed at its time (a start event of its own), the node
    advanced event by event in between; also (in_flight, peak) after the launches at each time."""
    node = NodeState(model)
    ready = np.full(len(launch_s), np.nan)
    counts = {}
    for i in np.argsort(launch_s, kind="stable").tolist():
        t = float(launch_s[i])
        while (event := node.next_event()) <= t:
            for j in node.advance(event):
                ready[j] = event
        node.launch(t, i, float(work[i]))
        counts[t] = (node.in_flight, node.peak_in_flight)
    while (event := node.next_event()) != math.inf:
        for j in node.advance(event):
            ready[j] = event
    return ready, counts


@pytest.mark.parametrize("delay_s", [0.0, 0.4])
def test_planned_launches_without_a_start_event_give_bit_identical_ready_times(
    delay_s: float,
) -> None:
    # Without launcher serialisation or warm-up a planned launch goes straight to its delay end:
    # ready_times() (all planned) must equal, bit for bit, launching each at its own time.
    model = NodeModel(cores=2, work_s=0.05, delay_s=delay_s, max_rate=0.8, background_jobs=0.5)
    rng = np.random.default_rng([7, 0, 1])
    launch_s = np.concatenate([np.arange(200) * 0.005, np.repeat([0.3, 0.61], 20),
                               rng.uniform(0.0, 1.5, 100)])
    work = model.work_s * rng.exponential(1.0, launch_s.size)
    reference, counts = launched_one_by_one(model, launch_s, work)
    assert np.array_equal(ready_times(model, launch_s, work), reference)

    # The starts are counted lazily, yet in_flight and its peak are those of the reference.
    planned = NodeState(model)
    order = np.argsort(launch_s, kind="stable").tolist()
    for i in order:
        planned.plan(float(launch_s[i]), i, float(work[i]))
    seen = {}
    for i in order:
        t = float(launch_s[i])
        while (event := planned.next_event()) <= t:
            planned.advance(event)
        planned.advance(t)
        seen[t] = (planned.in_flight, planned.peak_in_flight)
    assert seen == counts


def ready_by_general_loop(model: NodeModel, launch_s: np.ndarray, work: np.ndarray,
                          batch: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """ready_times() the long way: every instance lives 1e9 s once ready, which never ends
    within the run but sends advance() through its general loop (stops, lifetimes) instead
    of the plain one; planned one by one or as one plan_batch()."""
    node = NodeState(model)
    order = np.argsort(launch_s, kind="stable").tolist()
    if batch:
        node.plan_batch([float(launch_s[i]) for i in order], order,
                        [float(work[i]) for i in order], 1e9)
    else:
        for i in order:
            node.plan(float(launch_s[i]), i, float(work[i]), 1e9)
    out = np.full(launch_s.size, np.nan)
    while (t := node.next_event()) < 1e8:
        for i in node.advance(t):
            out[i] = t
    return out, (node.in_flight, node.peak_in_flight)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("delay_s", [0.0, 0.4])
def test_plain_advance_loop_gives_the_general_loops_ready_times_bit_for_bit(
    delay_s: float, batch: bool
) -> None:
    # advance() takes a specialised loop when only delay ends and completions can happen; it
    # must do the general loop's arithmetic in the same order: equal floats, not close ones.
    model = NodeModel(cores=3, work_s=0.05, delay_s=delay_s, max_rate=0.9, background_jobs=0.3)
    rng = np.random.default_rng([7, 0, 2])
    launch_s = np.concatenate([np.arange(300) * 0.004, np.repeat([0.5, 0.9], 30),
                               rng.uniform(0.0, 2.0, 200)])
    work = model.work_s * rng.lognormal(0.0, 0.5, launch_s.size)
    work[::50] = 0.0  # zero work: ready at the instant its delay ends
    general, counts = ready_by_general_loop(model, launch_s, work, batch)
    assert not np.isnan(general).any()
    assert np.array_equal(ready_times(model, launch_s, work), general)
    plain = NodeState(model)
    for i in np.argsort(launch_s, kind="stable").tolist():
        plain.plan(float(launch_s[i]), i, float(work[i]))
    while (t := plain.next_event()) < math.inf:
        plain.advance(t)
    assert (0, plain.peak_in_flight) == (plain.in_flight, counts[1]) and counts[0] == 0


def test_the_next_event_advance_leaves_cached_is_the_one_next_event_computes() -> None:
    # advance() leaves next_event() cached when only delay ends and completions can happen;
    # recomputing it from the node's state must give the same float, at every step of a run
    # with bursts and spaced launches (the look-ahead past delay ends included).
    model = NodeModel(cores=2, work_s=0.08, delay_s=0.3, work_cv=0.5)
    rng = np.random.default_rng([7, 0, 3])
    launch_s = np.sort(np.concatenate([np.repeat(rng.uniform(0, 5, 20), 3),
                                       rng.uniform(0, 5, 200)]))
    node: NodeState[int] = NodeState(model)
    node.plan_batch(launch_s.tolist(), list(range(launch_s.size)),
                    draw_work(model, launch_s.size, rng).tolist())
    steps = 0
    while (t := node.next_event()) != math.inf:
        node.advance(t)
        cached = node.next_event()
        node._next = None  # (what a launch does: forget it and recompute)
        assert node.next_event() == cached
        steps += 1
    assert node.ready == launch_s.size and steps > 100
