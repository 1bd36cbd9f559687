"""The node model's VM-creation lock (NodeModel.lock_s, lock_at) against closed-form theory.

An instance's work w is cut in three: lock_at * w as one of the processor-sharing sharers, then
it asks for the node's one lock (first come first served; a waiter is not a sharer), holds it
for h = min(lock_s, w - lock_at * w) of work as a sharer, releases it (to the first waiter, at
that instant) and does the rest as a sharer. Each test below works its expected ready times out
from that description alone, through the public ready_times(); tests/test_node_model.py checks
the same model against an independent event-stepping oracle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from sim.model.node_model import NodeModel, draw_work
from sim.model.ready_times import launched_and_ready_times, ready_times


def locked(model: NodeModel, lock_s: float, lock_at: float) -> NodeModel:
    """`model` with a VM-creation lock held for `lock_s` of work, asked after `lock_at` of it."""
    return model.model_copy(update={"lock_s": lock_s, "lock_at": lock_at})


def last_ready(model: NodeModel, launch_s: np.ndarray, work: np.ndarray) -> float:
    """When the last instance of the burst is ready."""
    return float(ready_times(model, launch_s, work).max())


@pytest.mark.parametrize(("lock_s", "lock_at"), [
    (0.01, 0.0), (0.01, 0.7), (0.3, 0.5), (5.0, 0.0), (5.0, 0.2), (0.01, 1.0),
], ids=["short at start", "short late", "part", "all at start", "all after a part",
        "nothing left to hold"])
@pytest.mark.parametrize("model", [
    NodeModel(cores=4, work_s=0.8, delay_s=0.3),
    NodeModel(cores=0.5, work_s=0.8, delay_s=0.1),
    NodeModel(cores=3, work_s=0.8, max_rate=0.7),
], ids=["rate cap 1", "less than a core", "rate cap 0.7"])
def test_a_lone_instance_never_waits_for_the_lock(model: NodeModel, lock_s: float,
                                                  lock_at: float) -> None:
    # Alone, the instance finds the lock free and is the only sharer from its CPU phase on:
    # its three parts, whatever their sizes, take w / min(max_rate, cores) together.
    w = 0.8
    ready = ready_times(locked(model, lock_s, lock_at), np.array([2.0]), np.array([w]))
    expected = 2.0 + model.delay_s + w / min(model.max_rate, model.cores)
    np.testing.assert_allclose(ready, [expected], rtol=1e-12)


@pytest.mark.parametrize("cores", [1.0, 2.0, 3.5])
@pytest.mark.parametrize("lock_s_over_w", [1.0, 4.0])
def test_a_lock_over_the_whole_work_runs_a_burst_one_at_a_time(cores: float,
                                                               lock_s_over_w: float) -> None:
    # lock_at = 0 and lock_s >= w: every instance asks at 0 and does all its work holding the
    # lock. The holder is the only sharer (the waiters take no CPU), at min(1, cores) = 1: it
    # is ready w after it took the lock, and hands it on then. Ties go in index order.
    w, k = 0.25, 6
    model = NodeModel(cores=cores, work_s=w, lock_s=lock_s_over_w * w)
    ready = ready_times(model, np.zeros(k), np.full(k, w))
    np.testing.assert_allclose(ready, w * np.arange(1, k + 1), rtol=1e-12)


def test_under_a_whole_work_lock_unequal_instances_finish_at_the_running_sums() -> None:
    # As above with each its own work: one at a time, in index order (simultaneous asks queue
    # by launch order, ties by index), so the i-th is ready at w_0 + ... + w_i; the delay only
    # shifts them all.
    rng = np.random.default_rng([11, 0, 1])
    model = NodeModel(cores=2, work_s=0.3, work_cv=0.6, delay_s=0.05, lock_s=100.0)
    work = draw_work(model, 12, rng)
    ready = ready_times(model, np.zeros(work.size), work)
    np.testing.assert_allclose(ready, 0.05 + np.cumsum(work), rtol=1e-12)


def test_two_instances_sharing_after_the_lock() -> None:
    # cores=2, w=1, lock_at=0, lock_s=0.5, both launched at 0. A (index 0) takes the lock, B
    # waits and takes no CPU: A alone gets min(1, 2/1) = 1 and has held it for 0.5 at t=0.5.
    # A releases, B takes it; both are sharers at min(1, 2/2) = 1. A's last 0.5 ends at 1.0
    # (ready); so does B's held 0.5, which releases, and B's last 0.5, alone at rate 1, ends at
    # 1.5.
    model = NodeModel(cores=2, work_s=1.0, lock_s=0.5)
    np.testing.assert_allclose(ready_times(model, np.zeros(2)), [1.0, 1.5], rtol=1e-12)


def test_asks_at_one_instant_queue_in_the_order_the_cpu_phases_began() -> None:
    # 3 cores, so every sharer runs at its cap 1 (exact binary fractions throughout). Instance
    # 1, launched at 0, asks after 0.25 of its 0.5; instance 0, launched at 0.125, after 0.125
    # of its 0.25: both at 0.25. 1 began its CPU phase first and takes the lock, though its
    # index is larger: it holds min(0.25, 0.25) until 0.5, nothing is left (ready); 0 then
    # holds its 0.125 until 0.625.
    model = NodeModel(cores=3, work_s=0.5, lock_s=0.25, lock_at=0.5)
    ready = ready_times(model, np.array([0.125, 0.0]), np.array([0.25, 0.5]))
    np.testing.assert_allclose(ready, [0.625, 0.5], rtol=1e-12)


def test_asks_apart_by_more_than_float_noise_queue_in_the_order_they_come() -> None:
    # Instance 1 needs 2e-8 more than twice instance 0's work (launched 0.1 later): it asks
    # 1e-8 s after 0, more than the 1e-9 CPU-s that make one instant, so 0 takes the lock first
    # and holds its 0.1 until 0.3 (ready); then 1 holds the rest of its work, 0.2 + 1e-8, until
    # 0.5 + 1e-8. The other way round 0 would be ready at 0.4.
    model = NodeModel(cores=3, work_s=0.5, lock_s=0.25, lock_at=0.5)
    ready = ready_times(model, np.array([0.1, 0.0]), np.array([0.2, 0.4 + 2e-8]))
    np.testing.assert_allclose(ready, [0.3, 0.5 + 1e-8], rtol=1e-12)


def test_asks_at_one_instant_up_to_float_noise_queue_in_the_order_the_cpu_phases_began() -> (
        None):
    # One core, a 0.2 s warm-up, lock_s 0.25 after half the work. 1 and 2 (launched at 0.2)
    # wait for the window and share the core from 0.4 at 1/2; 0 joins at 0.5 (the node busy: no
    # new window), when 1 has 0.05 left before its ask, 2 0.15; at 1/3 both 1 and 0 (0.05
    # before its ask) ask at 0.65, one instant in exact arithmetic: 1, whose CPU phase began
    # first, takes the lock. 1 holds 0.1 and 2 finishes its first 0.2 at 1/2, both at 0.85: 1
    # is ready, 0 takes the lock (2 asks behind it), holds its 0.05 alone until 0.9 (ready),
    # and 2 its 0.2 until 1.1.
    model = NodeModel(cores=1, work_s=0.2, warmup_s=0.2, lock_s=0.25, lock_at=0.5)
    ready = ready_times(model, np.array([0.5, 0.2, 0.2]), np.array([0.1, 0.2, 0.4]))
    np.testing.assert_allclose(ready, [0.9, 0.85, 1.1], rtol=1e-9)


def test_an_empty_held_part_is_ready_before_the_launches_of_its_instant() -> None:
    # lock_at = 1: nothing is left to hold, the lock is taken and released at the instant the
    # work ends, and the instance is ready then, as without the lock: 0 (window 0..0.2, then
    # 0.2 of work) at 0.4. Completions come before launches, so 1, launched at 0.4, finds the
    # node empty, opens its own window until 0.6 and is ready at 0.8, as without the lock.
    launch, work = np.array([0.0, 0.4]), np.array([0.2, 0.2])
    model = NodeModel(cores=1, work_s=0.2, warmup_s=0.2)
    np.testing.assert_allclose(ready_times(model, launch, work), [0.4, 0.8], rtol=1e-12)
    ready = ready_times(locked(model, 0.1, 1.0), launch, work)
    np.testing.assert_allclose(ready, [0.4, 0.8], rtol=1e-12)


def test_the_lock_applies_to_the_grown_work() -> None:
    # work_growth: the i-th of a burst starts with i instances on the node, its work is
    # w * (1 + g * i). Under a lock over all of it they still run one at a time on one core.
    g, w, k = 0.1, 0.5, 5
    model = NodeModel(cores=1, work_s=w, work_growth=g, lock_s=100.0)
    ready = ready_times(model, np.zeros(k))
    np.testing.assert_allclose(ready, np.cumsum(w * (1.0 + g * np.arange(k))), rtol=1e-12)


def test_a_fair_launch_is_a_sharer_beside_the_lock_holder() -> None:
    # One core, fair launches of c CPU-s, lock_at = 0, a lock over the whole work w > 2c.
    # Launch 0 runs alone: instance 0 launched at c, takes the lock. Launch 1 (not an instance's
    # work: the lock does not concern it) shares the core with it at 1/2: it ends at c + 2c = 3c,
    # when instance 0 has received c. Instance 1 asks and waits, taking no CPU; instance 0 alone
    # does its last w - c by w + 2c, and instance 1 then all its w, by 2w + 2c.
    c, w = 0.1, 1.0
    model = NodeModel(cores=1, work_s=w, lock_s=w, launcher="fair", launch_cpu_s=c)
    launched, ready = launched_and_ready_times(model, np.zeros(2))
    np.testing.assert_allclose(launched, [c, 3 * c], rtol=1e-12)
    np.testing.assert_allclose(ready, [w + 2 * c, 2 * w + 2 * c], rtol=1e-12)


@pytest.mark.parametrize("lock_at", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("base", [
    NodeModel(cores=2, work_s=0.1, delay_s=0.02, work_cv=0.5),
    NodeModel(cores=3, work_s=0.12, delay_s=0.1, work_cv=0.7, max_rate=0.9, idle_load=0.05,
              spawn_s=0.002, min_capacity=0.4, background_jobs=0.5, warmup_s=0.2,
              work_floor=0.3, work_growth=0.02, launcher="fair", launch_cpu_s=0.005),
], ids=["plain", "everything"])
def test_no_lock_is_bit_identical_to_a_model_without_the_fields(base: NodeModel,
                                                                lock_at: float) -> None:
    # lock_s = 0 is "no lock" whatever lock_at says: the same floats, not close ones, and the
    # same launches under a fair launcher.
    rng = np.random.default_rng([11, 0, 2])
    launch = np.round(rng.uniform(0.0, 1.0, 150), 3)
    work = draw_work(base, launch.size, rng)
    plain = launched_and_ready_times(base, launch, work)
    off = launched_and_ready_times(locked(base, 0.0, lock_at), launch, work)
    assert np.array_equal(off[1], plain[1])
    assert np.array_equal(off[0], plain[0])


@pytest.mark.parametrize("lock_s", [0.001, 0.3, 10.0])
def test_instances_that_never_meet_ignore_the_lock(lock_s: float) -> None:
    # Launches 2 s apart, each instance done within delay + 1.1 / 0.8 < 2 s: none ever meets
    # another, so the lock, however long, is always free: ready at launch + delay + w / 0.8.
    rng = np.random.default_rng([11, 0, 3])
    model = NodeModel(cores=2, work_s=1.0, delay_s=0.05, max_rate=0.8)
    launch = 2.0 * np.arange(20) + 0.5
    work = rng.uniform(0.9, 1.1, launch.size)
    expected = launch + model.delay_s + work / model.max_rate
    np.testing.assert_allclose(ready_times(model, launch, work), expected, rtol=1e-12)
    np.testing.assert_allclose(ready_times(locked(model, lock_s, 0.4), launch, work), expected,
                               rtol=1e-12)


def test_a_lock_shorter_than_the_gaps_between_asks_is_never_waited_for() -> None:
    # Launches 0.3 s apart, works of 0.9..1.1: up to 4 instances overlap on 4 cores, each at its
    # rate cap 1, so instance i asks at a_i = launch_i + lock_at * w_i and holds the lock until
    # a_i + lock_s. A lock_s shorter than every gap a_{i+1} - a_i is free at each ask: nothing
    # changes. One longer than the first gap makes instance 1 wait until a_0 + lock_s, then do
    # its last (1 - lock_at) w_1 at rate 1 (it is one of at most 4 sharers).
    rng = np.random.default_rng([11, 0, 4])
    lock_at = 0.5
    model = NodeModel(cores=4, work_s=1.0)
    launch = 0.3 * np.arange(40)
    work = rng.uniform(0.9, 1.1, launch.size)
    plain = ready_times(model, launch, work)
    np.testing.assert_allclose(plain, launch + work, rtol=1e-12)
    asks = launch + lock_at * work
    short = 0.9 * float(np.diff(asks).min())
    np.testing.assert_allclose(ready_times(locked(model, short, lock_at), launch, work), plain,
                               rtol=1e-12)
    long = 1.5 * float(asks[1] - asks[0])
    assert asks[0] + long > asks[1]  # (instance 1 asks while 0 holds: it must wait)
    ready = ready_times(locked(model, long, lock_at), launch, work)
    assert ready[1] == pytest.approx(asks[0] + long + (1.0 - lock_at) * work[1], rel=1e-12)


@pytest.mark.parametrize(("lock_s", "lock_at"), [
    (0.0, 0.0), (0.02, 0.0), (0.02, 0.6), (0.2, 0.3), (100.0, 0.0), (0.05, 1.0),
])
def test_one_core_is_never_idle_while_anyone_boots(lock_s: float, lock_at: float) -> None:
    # One core, rate cap 1, everything launched at 0: whenever an instance waits for the lock,
    # its holder is a sharer, so the core is always fully used and the work is conserved: the
    # last instance is ready at delay + the sum of the works, lock or not.
    rng = np.random.default_rng([11, 0, 5])
    model = NodeModel(cores=1, work_s=0.1, work_cv=0.8, delay_s=0.07, lock_s=lock_s,
                      lock_at=lock_at)
    work = draw_work(model, 40, rng)
    assert last_ready(model, np.zeros(work.size), work) == pytest.approx(
        0.07 + float(work.sum()), rel=1e-12)


def test_a_lock_never_ends_a_dense_burst_before_its_work_or_its_held_parts_allow() -> None:
    # 60 instances launched within 60 ms on 2 cores, locks from none to most of each boot.
    # Whatever lock_s, the end of the burst respects two bounds: all the work done on 2 cores,
    # and the held parts done one at a time (one holder) at most at the rate cap, none before
    # the first delay ends. (The end is NOT monotone in lock_s: see the next test.) The longest
    # lock's held parts alone outlast the burst without a lock, so it must end later.
    rng = np.random.default_rng([11, 0, 6])
    base = NodeModel(cores=2, work_s=0.05, work_cv=0.4, delay_s=0.01)
    launch = np.round(rng.uniform(0.0, 0.06, 60), 3)
    work = draw_work(base, launch.size, rng)
    lock_at = 0.3
    lasts = {}
    for lock_s in (0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.1):
        held = np.minimum(lock_s, work - lock_at * work)
        lasts[lock_s] = last = last_ready(locked(base, lock_s, lock_at), launch, work)
        assert last >= float(work.sum()) / base.cores * (1 - 1e-12)
        assert last >= (base.delay_s + float(held.sum()) / base.max_rate) * (1 - 1e-12)
    serial = base.delay_s + float(np.minimum(0.1, work - lock_at * work).sum()) / base.max_rate
    assert serial > lasts[0.0]  # (so the bound above binds: the check checks something)


def test_a_lock_can_end_a_burst_earlier_than_no_lock() -> None:
    # Why the end of a burst is not monotone in lock_s. Two cores, works 2, 1, 1 launched at 0,
    # lock_at = 0. Without a lock the three share at 2/3: the two short ones end at 1.5, and the
    # long one does its last 1 alone at rate 1 while a core idles: 2.5. With lock_s = 0.5, 0
    # holds alone (rate 1) until 0.5; then 0 and 1 (holding) at rate 1 until 1.0, when 1
    # releases to 2 and 0 has 1 left; three sharers at 2/3 until 1.75, when 1 has done its
    # last 0.5 (ready) and 2 releases, 0 having 0.5 left; 0 and 2 end their 0.5 at rate 1 at
    # 2.25. The lock staggered the boots, so no core idled and the burst ended earlier.
    launch, work = np.zeros(3), np.array([2.0, 1.0, 1.0])
    model = NodeModel(cores=2, work_s=1.0)
    np.testing.assert_allclose(ready_times(model, launch, work), [2.5, 1.5, 1.5], rtol=1e-12)
    np.testing.assert_allclose(ready_times(locked(model, 0.5, 0.0), launch, work),
                               [2.25, 1.75, 2.25], rtol=1e-12)


@pytest.mark.parametrize("lock_at", [0.0, 0.3, 0.8])
def test_a_lock_longer_than_what_is_left_of_every_boot_saturates(lock_at: float) -> None:
    # Once lock_s is at least every w - lock_at * w, each instance holds the lock for all the
    # rest of its work (h = w - lock_at * w) whatever lock_s: a longer lock changes nothing,
    # to the bit. One just shorter cuts the longest boot and must change something.
    rng = np.random.default_rng([11, 0, 7])
    base = NodeModel(cores=2, work_s=0.05, work_cv=0.4, delay_s=0.01)
    launch = np.round(rng.uniform(0.0, 0.3, 50), 3)
    work = draw_work(base, launch.size, rng)
    longest = float((work - lock_at * work).max())
    at_longest = ready_times(locked(base, longest, lock_at), launch, work)
    for factor in (1.5, 10.0):
        longer = ready_times(locked(base, factor * longest, lock_at), launch, work)
        assert np.array_equal(longer, at_longest), factor
    shorter = ready_times(locked(base, 0.5 * longest, lock_at), launch, work)
    assert not np.array_equal(shorter, at_longest)


def test_a_model_without_a_lock_is_written_as_before_the_lock_existed() -> None:
    # Calibration files and scenario keys written before the lock must stay byte for byte the
    # same: lock_s = 0 and lock_at = 0 are not written at all.
    model = NodeModel(cores=2, work_s=0.5, delay_s=0.1)
    for dumped in (model.model_dump(), model.model_dump(mode="json")):
        assert "lock_s" not in dumped and "lock_at" not in dumped
    assert "lock" not in model.model_dump_json()
    assert NodeModel.model_validate(model.model_dump()) == model


@pytest.mark.parametrize("lock_at", [0.0, 0.35, 1.0])
def test_a_lock_is_written_and_read_back(lock_at: float) -> None:
    model = NodeModel(cores=2, work_s=0.5, lock_s=0.012, lock_at=lock_at)
    dumped = model.model_dump()
    assert dumped["lock_s"] == 0.012
    assert ("lock_at" in dumped) == (lock_at != 0.0)  # (0, the default, is left out)
    assert dumped.get("lock_at", 0.0) == lock_at
    assert NodeModel.model_validate(dumped) == model
    assert NodeModel.model_validate_json(model.model_dump_json()) == model
    assert NodeModel.model_validate(model.model_dump(mode="json")).has_lock


@pytest.mark.parametrize("fields", [{"lock_s": -0.1}, {"lock_at": 1.5}, {"lock_at": -0.1},
                                    {"lock_s": math.inf}])
def test_a_lock_outside_its_range_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        NodeModel.model_validate({"cores": 2, "work_s": 0.5, **fields})
