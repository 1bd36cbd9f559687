"""The node model: hand-checkable bursts, and ready_times() against a naive O(n^2) simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from sim.errors import UserError
from sim.model.calibration import with_launcher
from sim.model.node_model import NodeModel, draw_work, work_from_normal
from sim.model.node_state import NodeState
from sim.model.ready_times import launched_and_ready_times, ready_times


def naive_ready_times(model: NodeModel, launch_s: np.ndarray, work: np.ndarray,
                      lifetime_s: np.ndarray | None = None) -> np.ndarray:
    """naive_launched_and_ready_times()'s ready times."""
    return naive_launched_and_ready_times(model, launch_s, work, lifetime_s)[1]


def naive_launched_and_ready_times(
    model: NodeModel, launch_s: np.ndarray, work: np.ndarray,
    lifetime_s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Independent oracle: every instance's remaining work, stepping from event to event, O(n^2).
    Returns when each instance was launched and when it was ready.

    Written from the model's description (docs/model.md), not from its code. At one instant:
    completions, then stops of ready instances, then launches, then delay ends. A launch starts
    when the launcher is free (spawn_s after the previous start); a start on a node with nothing
    in flight opens a warm-up window (no CPU phase begins before it ends); its work grows by
    work_growth per instance on the node (booting or ready), and by reclaimed_memory_s times
    the part of (on node + 1) beyond backed_instances, at most 1; each of k instances in their CPU
    phase gets min(max_rate, capacity / (k + background_jobs)), capacity being what idle ready
    instances leave (at least min_capacity); a ready instance stops after its lifetime.
    A fair launcher with launch_cpu_s > 0 launches one instance at a time, in launch order: its
    launch is one more of the k sharers until it has received launch_cpu_s, and the instance
    is launched (starts as above) when it has; the next launch begins then, or at its time.
    A reserved launcher keeps one of the cores (the instances share cores - 1): each launch
    begins at its time or when the previous instance started, if later, and the instance
    starts, launched, launch_alone_s (launch_cpu_s while that is 0) after it began (or spawn_s
    after the previous start, if later).
    With a VM-creation lock (lock_s > 0) an instance's (grown) work w is three parts: lock_at * w
    as a sharer; then it asks for the node's one lock, takes it if free, else waits first come
    first served without being a sharer; holding it, h = min(lock_s, w - lock_at * w) as a
    sharer, then it releases the lock (which passes at once to the first waiter) and does the
    rest, w - lock_at * w - h, as a sharer (ready at the release if nothing is left). At an
    instant the completions come first, then asks and releases in the order the parts ended,
    parts ending at one instant (within float noise) in the order the instances began their
    CPU phase (n-th start); a part of no work ends at the instant it begins, before the stops
    and launches of that instant when it follows a completion, an ask or a release.
    """
    n = len(launch_s)
    life = [math.inf] * n if lifetime_s is None else [float(x) for x in lifetime_s]
    fair = model.launcher == "fair" and model.launch_cpu_s > 0
    reserved = model.launcher == "reserved"
    cores = model.cores - 1.0 if reserved else model.cores
    locked = model.lock_s > 0
    launches = sorted(range(n), key=lambda i: (float(launch_s[i]), i))
    launching: int | None = None  # the instance a fair launcher is launching
    launch_left = 0.0  # its launch's remaining CPU
    last_start = -math.inf
    warm_until = -math.inf
    joining: list[tuple[float, int, float, int]] = []  # (CPU phase from, n-th start, work, i)
    remaining: dict[int, float] = {}  # the sharers' work left in their current part
    part: dict[int, str] = {}  # the part a sharer is in: "before" / "holding" the lock, "after"
    held: dict[int, float] = {}  # h, the work to do holding the lock
    rest: dict[int, float] = {}  # the work left once the lock is released
    nth: dict[int, int] = {}  # n-th start, the order of asks at one instant
    holder: int | None = None
    waiting: list[int] = []  # first come first served
    stops: list[float] = []
    in_flight = 0
    running_ready = 0
    started = 0
    launched = [math.nan] * n
    ready = [math.nan] * n
    t = -math.inf
    while launches or launching is not None or joining or remaining:
        capacity = max(model.min_capacity, cores - model.idle_load * running_ready)
        sharers = len(remaining) + (launching is not None)
        rate = min(model.max_rate, capacity / (sharers + model.background_jobs)) if sharers else 0.0
        candidates = [*stops, *(j[0] for j in joining)]
        if remaining:
            candidates.append(t + min(remaining.values()) / rate)
        if launching is not None:
            candidates.append(t + launch_left / rate)
        elif launches:
            candidates.append(float(launch_s[launches[0]]))
        t_next = min(candidates)
        for i in remaining:
            remaining[i] -= (t_next - t) * rate
        if launching is not None:
            launch_left -= (t_next - t) * rate
        t = t_next
        while done := {i: left for i, left in remaining.items() if left <= 1e-9}:
            for i in done:
                del remaining[i]
            for i in [i for i in done if part[i] == "after"]:
                ready[i] = t
                in_flight -= 1
                running_ready += 1
                stops.append(t + life[i])
            lock_parts = {i: left for i, left in done.items() if part[i] != "after"}
            for i in in_order_of_finish(lock_parts, nth):
                if part[i] == "before":  # asks
                    if holder is None:
                        holder = i
                        part[i] = "holding"
                        remaining[i] = held[i]
                    else:
                        waiting.append(i)
                else:  # releases: the lock passes before anything else
                    holder = waiting.pop(0) if waiting else None
                    if holder is not None:
                        part[holder] = "holding"
                        remaining[holder] = held[holder]
                    part[i] = "after"
                    remaining[i] = rest[i]
        running_ready -= len([s for s in stops if s <= t])
        stops = [s for s in stops if s > t]
        to_start = []
        if fair:
            if launching is not None and launch_left <= 1e-9:
                to_start.append(launching)
                launching = None
            if launching is None and launches and float(launch_s[launches[0]]) <= t:
                launching = launches.pop(0)
                launch_left = model.launch_cpu_s
        else:
            while launches and float(launch_s[launches[0]]) <= t:
                to_start.append(launches.pop(0))
        for i in to_start:
            launched[i] = t
            if reserved:
                begin = max(t, last_start)
                alone = model.launch_alone_s or model.launch_cpu_s
                start = max(begin + alone, last_start + model.spawn_s)
                launched[i] = start  # (its launch ended)
            else:
                start = max(t, last_start + model.spawn_s)
            last_start = start
            if in_flight == 0:
                warm_until = start + model.warmup_s
            on_node = in_flight + running_ready
            grown = float(work[i]) * (1.0 + model.work_growth * on_node)
            # The part of its fresh memory beyond what the host still backs costs more.
            beyond = min(1.0, max(0.0, on_node + 1 - model.backed_instances))
            grown += model.reclaimed_memory_s * beyond
            joining.append((max(start + model.delay_s, warm_until), started, grown, i))
            started += 1
            in_flight += 1
        joining.sort()
        while joining and joining[0][0] <= t:
            _, order, grown, i = joining.pop(0)
            nth[i] = order
            if locked:
                before = model.lock_at * grown
                held[i] = min(model.lock_s, grown - before)
                rest[i] = grown - before - held[i]
                part[i], remaining[i] = "before", before
            else:
                part[i], remaining[i] = "after", grown
    return np.array(launched), np.array(ready)


def in_order_of_finish(left: dict[int, float], nth: dict[int, int]) -> list[int]:
    """The instances whose parts end within one oracle step, in the order the parts end: by the
    work they had left (at one rate, the smaller ends first), those within float noise (1e-9
    CPU-s, the model's instant: docs/model.md) of one another being one instant, ordered by n-th
    start."""
    order: list[int] = []
    instant: list[int] = []
    for i in sorted(left, key=left.__getitem__):
        if instant and left[i] - left[instant[0]] > 1e-9:
            order += sorted(instant, key=nth.__getitem__)
            instant = []
        instant.append(i)
    return order + sorted(instant, key=nth.__getitem__)


def naive_work(model: NodeModel, z: np.ndarray) -> np.ndarray:
    """Work from standard normal draws, from the model's description: a fixed work_floor share
    of work_s plus a lognormal share of mean (1 - work_floor) * work_s, CV of the whole work_cv."""
    cv_varying = model.work_cv / (1.0 - model.work_floor)
    sigma = math.sqrt(math.log(1.0 + cv_varying**2))
    varying = np.exp(sigma * z - sigma**2 / 2.0)
    return model.work_s * (model.work_floor + (1.0 - model.work_floor) * varying)


def node_launched_and_ready_times(model: NodeModel, launch_s: np.ndarray, work: np.ndarray,
                                  lifetime_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """launched_and_ready_times() with a lifetime per instance: NodeState driven event by
    event."""
    launched = launch_s.astype(float)

    def stamp(i: int, t: float) -> int:
        launched[i] = t
        return i

    node = NodeState(model, stamp)
    for i in np.argsort(launch_s, kind="stable").tolist():
        node.plan(float(launch_s[i]), i, float(work[i]), float(lifetime_s[i]))
    out = np.full(launch_s.size, np.nan)
    while (t := node.next_event()) != math.inf:
        for i in node.advance(t):
            out[i] = t
    return launched, out


# Bursts whose ready times are worked out by hand (the reason beside each): model, launches,
# ready times. The warm-up and background terms are the calibrations' additions.
HAND_CHECKED = {
    "alone: delay plus work": (
        NodeModel(cores=4, work_s=0.8, delay_s=0.3), [2.0], [2.0 + 0.3 + 0.8]),
    "k together share the cores and finish together": (
        NodeModel(cores=2, work_s=0.5, delay_s=0.1), [0.0] * 10, [0.1 + 10 * 0.5 / 2] * 10),
    "fewer than cores: the rate cap": (
        NodeModel(cores=8, work_s=1.0, max_rate=1.0), [0.0] * 3, [1.0] * 3),
    "fewer than cores: a higher cap": (
        NodeModel(cores=8, work_s=1.0, max_rate=2.0), [0.0] * 3, [0.5] * 3),
    # The first is ready at 1 and then costs half the core: the second, alone in its CPU phase
    # from t=1, gets only 0.5 core and needs 2 s.
    "ready instances keep running and slow later ones": (
        NodeModel(cores=1, work_s=1.0, idle_load=0.5), [0.0, 1.0], [1.0, 3.0]),
    "min_capacity keeps a crowded node moving": (
        NodeModel(cores=1, work_s=1.0, idle_load=1.0, min_capacity=0.25), [0.0, 1.0], [1.0, 5.0]),
    "the launcher serialises starts spawn_s apart": (
        NodeModel(cores=100, work_s=1.0, spawn_s=0.2), [0.0] * 4, [1.0, 1.2, 1.4, 1.6]),
    # Launches 1 s apart never meet on 2 cores: each is ready after its delay and work.
    "no warm-up: delay plus work": (
        NodeModel(cores=2, work_s=0.5, delay_s=0.1), [0.0, 1.0, 2.0], [0.6, 1.6, 2.6]),
    # A 0.3 s window opens at each launch (the node is empty each time) and holds the CPU phase
    # until 0.3 s, 0.2 s after the delay ended.
    "a warm-up window delays each lone instance": (
        NodeModel(cores=2, work_s=0.5, delay_s=0.1, warmup_s=0.3), [0.0, 1.0, 2.0],
        [0.8, 1.8, 2.8]),
    # One core, 1 s each: both wait for the window to end at 2, then share the core (rate 1/2)
    # and finish together at 2 + 2 * 1 = 4.
    "launched during the warm-up, the CPU phases start together": (
        NodeModel(cores=1, work_s=1.0, warmup_s=2.0), [0.0, 0.5], [4.0, 4.0]),
    # Launched at 1.9: its delay ends at 2.2, after the window, so the window does not matter.
    "a delay that ends after the window still counts": (
        NodeModel(cores=4, work_s=1.0, delay_s=0.3, warmup_s=2.0), [0.0, 1.9], [3.0, 3.2]),
    # 0: window 0..2, ready at 3. 5: nothing in flight, a new window 5..7, ready at 8. 6: the
    # node is busy (the instance from 5 is in flight), so it joins that window: ready at 8.
    "an emptied node warms up again, a busy one does not": (
        NodeModel(cores=4, work_s=1.0, warmup_s=2.0), [0.0, 5.0, 6.0], [3.0, 8.0, 8.0]),
    "one background thread halves a lone instance on one core": (
        NodeModel(cores=1, work_s=1.0, background_jobs=1.0), [0.0], [2.0]),
    # 6 instances of 0.5 CPU-s on 2 cores with 2 background threads: each gets 2/8 of a core
    # until all finish together at 0.5 / 0.25 = 2 s.
    "k instances share the cores with the background": (
        NodeModel(cores=2, work_s=0.5, background_jobs=2.0), [0.0] * 6, [2.0] * 6),
    "the rate cap binds when the share with the background is larger": (
        NodeModel(cores=8, work_s=1.0, background_jobs=1.0, max_rate=1.0), [0.0] * 3, [1.0] * 3),
}


@pytest.mark.parametrize("case", HAND_CHECKED)
def test_ready_times_of_hand_checked_bursts(case: str) -> None:
    model, launches, expected = HAND_CHECKED[case]
    np.testing.assert_allclose(ready_times(model, np.array(launches)), expected, rtol=1e-12)


def test_ready_times_do_not_depend_on_the_order_launches_are_listed() -> None:
    rng = np.random.default_rng([1, 0, 7])
    model = NodeModel(cores=3, work_s=0.4, delay_s=0.05, work_cv=0.5, spawn_s=0.001)
    launch = rng.uniform(0, 2, 200)
    work = draw_work(model, 200, rng)
    perm = rng.permutation(200)
    straight = ready_times(model, launch, work)
    shuffled = ready_times(model, launch[perm], work[perm])
    np.testing.assert_allclose(shuffled, straight[perm], rtol=0, atol=1e-12)


ORACLE_MODELS = {
    "delay": NodeModel(cores=4, work_s=0.3, delay_s=0.2, work_cv=0.6),
    "cap+spawn": NodeModel(cores=2.5, work_s=0.1, max_rate=0.8, work_cv=1.0, spawn_s=0.004),
    "idle_load": NodeModel(cores=2, work_s=0.2, delay_s=0.05, idle_load=0.01, min_capacity=0.3),
    "min_capacity": NodeModel(cores=1.5, work_s=0.05, idle_load=0.02, min_capacity=0.2,
                              work_cv=0.4),
    "warmup": NodeModel(cores=2, work_s=0.1, delay_s=0.05, warmup_s=0.3, work_cv=0.5),
    "work_growth": NodeModel(cores=3, work_s=0.1, delay_s=0.1, work_growth=0.04, work_cv=0.3),
    "work_floor": NodeModel(cores=2, work_s=0.2, work_floor=0.6, work_cv=0.5, delay_s=0.02),
    "reclaimed memory": NodeModel(cores=2, work_s=0.1, delay_s=0.05, work_cv=0.4,
                                  reclaimed_memory_s=0.08, backed_instances=60.5),
    "background": NodeModel(cores=2, work_s=0.15, background_jobs=1.5, max_rate=0.7,
                            work_cv=0.5),
    "everything": NodeModel(cores=3, work_s=0.12, delay_s=0.1, work_cv=0.7, max_rate=0.9,
                            idle_load=0.05, spawn_s=0.002, min_capacity=0.4, background_jobs=0.5,
                            warmup_s=0.2, work_floor=0.3, work_growth=0.02,
                            reclaimed_memory_s=0.05, backed_instances=120.0),
}
# The VM-creation lock: cut after 70 % of the work, at the start, and with every other term.
ORACLE_MODELS |= {
    "lock": NodeModel(cores=2, work_s=0.1, delay_s=0.02, work_cv=0.5, lock_s=0.01, lock_at=0.7),
    "lock at start": NodeModel(cores=2, work_s=0.1, delay_s=0.02, work_cv=0.5, lock_s=0.01),
    "lock everything": ORACLE_MODELS["everything"].model_copy(
        update={"lock_s": 0.01, "lock_at": 0.4}),
}
# Each again with a fair launcher whose launches (5 ms of CPU each) fall behind the 200 launches
# of the oracle test.
ORACLE_MODELS |= {
    f"fair {name}": model.model_copy(update={"launcher": "fair", "launch_cpu_s": 0.005})
    for name, model in list(ORACLE_MODELS.items())
}
# And with a reserved launcher: 8 ms per launch on its own core, so that launches queue in the
# busy first 1.5 s of the oracle test, on the cores left (one more than the model had, so that
# every model keeps its own share of cores); once with that time measured alone
# (launch_alone_s) beside a fair fit's other cost, which it must override.
ORACLE_MODELS |= {
    f"reserved {name}": NodeModel.model_validate(
        {**model.model_dump(), "launcher": "reserved", "launch_cpu_s": 0.008,
         "cores": model.cores + 1.0})
    for name, model in list(ORACLE_MODELS.items()) if "fair" not in name
} | {
    "reserved alone": NodeModel.model_validate(
        {**ORACLE_MODELS["delay"].model_dump(), "launcher": "reserved", "launch_cpu_s": 0.002,
         "launch_alone_s": 0.008, "cores": ORACLE_MODELS["delay"].cores + 1.0})
}


@pytest.mark.parametrize("lives", [False, True], ids=["forever", "lifetimes"])
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_ready_times_agree_with_a_naive_simulation(name: str, lives: bool) -> None:
    # Launches over 0..6 s with idle gaps (so warm-up windows reopen), rounded to ms so that
    # simultaneous launches are common; work from normal draws through each implementation's
    # own formula; with lifetimes, ready instances stop and give their idle load back.
    model = ORACLE_MODELS[name]
    rng = np.random.default_rng([2, 0, 99])
    n = 200
    launch = np.round(np.concatenate([rng.uniform(0.0, 1.5, n // 2),
                                      rng.uniform(4.0, 6.0, n - n // 2)]), 3)
    z = rng.standard_normal(n)
    work = work_from_normal(model, z)
    np.testing.assert_allclose(work, naive_work(model, z), rtol=1e-12)
    lifetime = rng.uniform(0.0, 1.0, n) if lives else np.full(n, math.inf)
    ours = (node_launched_and_ready_times(model, launch, work, lifetime) if lives
            else launched_and_ready_times(model, launch, work))
    oracle = naive_launched_and_ready_times(model, launch, naive_work(model, z), lifetime)
    np.testing.assert_allclose(ours[1], oracle[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours[0], oracle[0], rtol=1e-9, atol=1e-9)
    if model.launches_take_cpu:  # (the launcher falls behind: the test tests something)
        assert np.max(ours[0] - launch) > 0.5
    elif model.launcher == "reserved":  # (launches queue: the test tests something)
        assert np.min(ours[0] - launch) >= model.reserved_launch_s - 1e-12
        assert np.max(ours[0] - launch) > 4 * model.reserved_launch_s
    else:
        np.testing.assert_array_equal(ours[0], launch)
    if model.has_lock:  # (the lock binds: the test tests something)
        unlocked = model.model_copy(update={"lock_s": 0.0})
        without = naive_launched_and_ready_times(unlocked, launch, naive_work(model, z), lifetime)
        assert np.max(np.abs(oracle[1] - without[1])) > 0.05


def fair(model: NodeModel, launch_cpu_s: float) -> NodeModel:
    """`model` with a fair launcher whose launches need `launch_cpu_s` of CPU each."""
    return NodeModel.model_validate({**model.model_dump(), "launcher": "fair",
                                     "launch_cpu_s": launch_cpu_s})


def test_the_launchers_fields_are_written_only_when_they_change_the_model() -> None:
    # Calibration files, scenario keys and reports written before the launcher existed must
    # stay byte for byte the same; a fair launcher's fields are written and read back.
    # (The VM-creation lock's fields, younger still, are left out too while off:
    # tests/test_vm_lock.py checks them; so are the memory price's, checked below.)
    plain = NodeModel(cores=2, work_s=0.5)
    younger = ("launcher", "launch_cpu_s", "launch_alone_s", "lock_s", "lock_at",
               "reclaimed_memory_s", "backed_instances")
    older = [name for name in NodeModel.model_fields if name not in younger]
    assert list(plain.model_dump()) == older
    assert list(plain.model_copy(update={"launcher": "realtime"}).model_dump(mode="json")) == older
    assert "launch" not in plain.model_dump_json()
    assert list(fair(plain, 0.001).model_dump()) == [*older, "launcher", "launch_cpu_s"]
    for model in (fair(plain, 0.001), fair(plain, 0.0),
                  plain.model_copy(update={"launch_cpu_s": 0.001})):
        assert NodeModel.model_validate_json(model.model_dump_json()) == model
        assert NodeModel.model_validate(model.model_dump(mode="json")) == model
    priced = plain.model_copy(update={"reclaimed_memory_s": 0.03, "backed_instances": 550.0})
    assert list(priced.model_dump()) == [*older, "reclaimed_memory_s", "backed_instances"]
    assert NodeModel.model_validate_json(priced.model_dump_json()) == priced


def test_a_lone_launch_takes_exactly_its_cpu_then_the_instance_boots() -> None:
    model = fair(NodeModel(cores=2, work_s=0.5, delay_s=0.1), 0.002)
    launched, ready = launched_and_ready_times(model, np.array([3.0]))
    assert launched.tolist() == [3.0 + 0.002]
    assert ready.tolist() == [pytest.approx(3.002 + 0.1 + 0.5, rel=1e-12)]


@pytest.mark.parametrize("model", [
    NodeModel(cores=2, work_s=1.0),
    NodeModel(cores=0.5, work_s=1.0),
    NodeModel(cores=4, work_s=1.0, max_rate=0.8, background_jobs=1.5),
    NodeModel(cores=1, work_s=1.0, background_jobs=3.0, idle_load=0.1),
], ids=["rate cap", "less than a core", "cap with background", "background"])
def test_launches_with_no_boot_competing_end_one_launch_cpu_apart(model: NodeModel) -> None:
    # Launched together, with a delay so long that no instance reaches its CPU phase during the
    # launches: the launcher alone shares the cores with the background, and launch i ends at
    # (i + 1) * launch_cpu_s / min(max_rate, cores / (1 + background_jobs)).
    model = fair(model.model_copy(update={"delay_s": 1e6}), 0.003)
    n = 50
    launched, _ = launched_and_ready_times(model, np.zeros(n))
    rate = min(model.max_rate, model.cores / (1.0 + model.background_jobs))
    np.testing.assert_allclose(launched, (np.arange(n) + 1) * 0.003 / rate, rtol=1e-12)


@pytest.mark.parametrize("name", [name for name in ORACLE_MODELS
                                  if "fair" not in name and "reserved" not in name])
def test_without_a_cost_or_with_a_realtime_launcher_the_launcher_changes_nothing(
    name: str,
) -> None:
    # Bit for bit: a fair launcher whose launches cost nothing, and a realtime launcher
    # whatever its cost, give the ready times of the model without the launcher's fields, and
    # launch at the planned times.
    model = ORACLE_MODELS[name]
    rng = np.random.default_rng([2, 0, 98])
    launch = np.round(rng.uniform(0.0, 1.5, 150), 3)
    work = draw_work(model, launch.size, rng)
    lifetime = np.full(launch.size, 0.3)
    plain = ready_times(model, launch, work)
    plain_lives = node_launched_and_ready_times(model, launch, work, lifetime)[1]
    for launcher, cost in (("fair", 0.0), ("realtime", 0.004)):
        variant = model.model_copy(update={"launcher": launcher, "launch_cpu_s": cost})
        launched, ready = launched_and_ready_times(variant, launch, work)
        assert np.array_equal(ready, plain), launcher
        assert np.array_equal(launched, launch), launcher
        lives = node_launched_and_ready_times(variant, launch, work, lifetime)[1]
        assert np.array_equal(lives, plain_lives), launcher


def reserved(model: NodeModel, launch_s: float) -> NodeModel:
    """`model` with a reserved launcher whose launches take `launch_s` each."""
    return NodeModel.model_validate({**model.model_dump(), "launcher": "reserved",
                                     "launch_cpu_s": launch_s})


@pytest.mark.parametrize("name", ["delay", "idle_load", "work_growth", "lock", "background"])
def test_a_reserved_launcher_with_time_to_spare_is_a_realtime_one_on_a_core_less(
    name: str,
) -> None:
    # Launches at least launch_cpu_s apart never queue: each instance starts launch_cpu_s after
    # its planned time and then meets what it would meet on a node with one core less whose
    # launcher launches on time.
    model = ORACLE_MODELS[name]
    rng = np.random.default_rng([2, 0, 96])
    gap = 0.004
    launch = np.cumsum(gap + rng.exponential(0.01, 150))
    work = draw_work(model, launch.size, rng)
    ours = ready_times(reserved(model.model_copy(update={"cores": model.cores + 1.0}), gap),
                       launch, work)
    np.testing.assert_allclose(ours, ready_times(model, launch + gap, work), rtol=0, atol=1e-9)


def test_a_reserved_launcher_starts_a_dense_burst_one_launch_apart() -> None:
    # 40 instances at once, each needing 1 ms of CPU (less than a launch): the launcher starts
    # one every 3 ms and each boots alone on the two cores left: instance k is ready at
    # (k + 1) * 3 ms + delay + 1 ms.
    model = reserved(NodeModel(cores=3, work_s=0.001, delay_s=0.01), 0.003)
    ready = ready_times(model, np.zeros(40))
    np.testing.assert_allclose(ready, (np.arange(40) + 1) * 0.003 + 0.011, rtol=1e-12)


def test_a_reserved_launcher_needs_a_core_to_spare_and_a_launch_cost() -> None:
    with pytest.raises(ValidationError, match="more than one core"):
        NodeModel(cores=1, work_s=0.1, launcher="reserved", launch_cpu_s=0.001)
    plain = NodeModel(cores=2, work_s=0.1)
    with pytest.raises(UserError, match="no fair-launcher fit"):
        with_launcher(plain, "reserved", "here")
    with pytest.raises(UserError, match="more than one core"):
        with_launcher(plain.model_copy(update={"cores": 1.0, "launch_cpu_s": 0.001}),
                      "reserved", "here")
    kept = with_launcher(plain.model_copy(update={"launch_cpu_s": 0.001}), "reserved", "here")
    assert (kept.cores, kept.boot_cores, kept.reserved_launch_s) == (2.0, 1.0, 0.001)
    assert NodeModel.model_validate_json(kept.model_dump_json()) == kept
    # A time measured on the launcher's own core takes the fair fit's place there, and is
    # enough without one; a fair launcher still needs launch_cpu_s.
    alone = with_launcher(kept.model_copy(update={"launch_alone_s": 0.0013}), "reserved", "here")
    assert alone.reserved_launch_s == 0.0013
    assert "launch_alone_s" in alone.model_dump()
    assert NodeModel.model_validate_json(alone.model_dump_json()) == alone
    only = plain.model_copy(update={"launch_alone_s": 0.0013})
    assert with_launcher(only, "reserved", "here").reserved_launch_s == 0.0013
    with pytest.raises(UserError, match="no fair-launcher fit"):
        with_launcher(only, "fair", "here")


def test_a_fair_launcher_paces_a_dense_burst() -> None:
    # 120 boots planned 2 ms apart on 2 cores, 1 ms of CPU per launch (the shape measured with
    # kernel traces, benchmarks/launcher_trace.py): each launch waits for its share among the
    # boots already started, so launches fall further behind as the crowd grows, and the first
    # boots, facing fewer competitors, are ready much sooner than with a realtime launcher.
    model = NodeModel(cores=2, work_s=0.031, work_cv=0.2, work_floor=0.45)
    planned = np.arange(120) * 0.002
    work = draw_work(model, planned.size, np.random.default_rng([2, 0, 97]))
    realtime = ready_times(model, planned, work)
    launched, ready = launched_and_ready_times(fair(model, 0.001), planned, work)
    late = launched - planned
    gaps = np.diff(launched)
    assert ready.min() < 0.5 * realtime.min()
    assert gaps[:10].mean() < 0.5 * gaps[40:].mean()
    assert late[-1] > 0.5
    assert np.all(np.diff(late) >= -1e-12)  # (never catching up within one crowd)


def test_an_instance_is_planned_until_its_fair_launch_ends() -> None:
    # One core; launches of 0.5 s; instances that stay in their delay for 10 s: the launches
    # run alone, one after the other.
    node = NodeState(fair(NodeModel(cores=1, work_s=1.0, delay_s=10.0), 0.5))
    node.launch(0.0, 0, 1.0)
    node.plan(0.2, 1, 1.0)
    assert (node.planned, node.in_flight) == (2, 0)
    assert node.next_event() == 0.0
    assert node.advance(0.0) == []
    assert node.next_event() == 0.5
    assert node.advance(0.5) == []
    assert (node.planned, node.in_flight) == (1, 1)
    assert node.next_event() == 1.0
    assert node.advance(1.0) == []
    assert (node.planned, node.in_flight, node.peak_in_flight) == (0, 2, 2)
    # 0 runs alone from 10.5, then both at half the core from 11: ready at 12 and 12.5.
    assert node.advance(13.0) == [0, 1]
    assert node.cpu_busy_s(20.0) == pytest.approx(0.5 + 0.5 + 2.0)


def test_instances_launched_together_with_equal_work_are_ready_at_the_same_instant() -> None:
    # Exact ties: equal work launched at the same time, by one or several launches, finishes at
    # one float instant (even when the jobs joined at different times, see test_ps.py).
    model = NodeModel(cores=3, work_s=0.1, delay_s=0.3, background_jobs=0.25)
    launch = np.array([0.0] * 5 + [0.7] * 4 + [0.75] * 3)
    work = np.array([0.1] * 5 + [0.2] * 4 + [0.05] * 3)
    ready = ready_times(model, launch, work)
    assert len(set(ready[:5].tolist())) == 1
    assert len(set(ready[5:9].tolist())) == 1
    assert len(set(ready[9:].tolist())) == 1
    np.testing.assert_allclose(ready, naive_ready_times(model, launch, work), rtol=1e-12)


def test_work_that_differs_by_more_than_rounding_finishes_at_its_own_instant() -> None:
    # Only float noise (~1e-9 CPU-seconds or less) makes two instances one instant; a few 1e-8 s
    # of work more is a later ready time, as in the oracle to 1e-12 s.
    model = NodeModel(cores=1, work_s=1.0)
    work = 1.0 + np.array([0.0, 3e-12, 2e-8, 5e-8, 9e-8, 3e-7])
    launch = np.zeros(work.size)
    ready = ready_times(model, launch, work)
    assert ready[0] == ready[1]
    assert len(set(ready[1:].tolist())) == work.size - 1
    np.testing.assert_allclose(ready, naive_ready_times(model, launch, work), rtol=0, atol=1e-12)


def test_a_launch_at_the_instant_the_node_empties_reopens_the_warm_up_window() -> None:
    # Completions come before launches at the same instant: instance 0 (warm-up 0.5 s, then 1 s
    # of work) is ready at 1.5; instance 1, launched then, finds nothing in flight and waits for
    # its own window; its work grows with the one ready instance on the node.
    model = NodeModel(cores=1, work_s=1.0, warmup_s=0.5, work_growth=0.25)
    ready = ready_times(model, np.array([0.0, 1.5]))
    np.testing.assert_array_equal(ready, [1.5, 1.5 + 0.5 + 1.25])


def _run_checking_the_cached_next_event(node: NodeState[int]) -> int:
    """Run `node` to the end; at every step, the next_event() that advance() left cached must
    be the one recomputed from the state (what a launch does: forget it). Returns the steps."""
    steps = 0
    while (t := node.next_event()) != math.inf:
        node.advance(t)
        cached = node.next_event()
        node._next = None
        assert node.next_event() == cached
        steps += 1
    return steps


def test_a_delay_end_at_the_instant_of_a_completion_comes_after_it() -> None:
    # Instances a and b run alone; c's delay ends exactly when the first of them is ready (the
    # launch is planned at that float instant, delay_s being 0). The ready time must be that
    # instant exactly, and next_event() must find it from any state, whether the delay ends
    # before it are processed yet or not.
    rng = np.random.default_rng([7, 0, 4])
    checked = 0
    for _ in range(60):
        model = NodeModel(cores=float(rng.uniform(0.5, 3.0)), work_s=0.3,
                          max_rate=float(rng.uniform(0.3, 1.0)))
        launch = np.array([0.0, float(rng.uniform(0.01, 0.2))])
        work = rng.uniform(0.1, 0.5, 2)
        first = float(ready_times(model, launch, work).min())
        launch = np.append(launch, first)
        work = np.append(work, rng.uniform(0.1, 0.5))
        ready = ready_times(model, launch, work)
        assert ready.min() == first
        node: NodeState[int] = NodeState(model)
        node.plan_batch(launch.tolist(), [0, 1, 2], work.tolist())
        assert node.next_event() == first
        checked += _run_checking_the_cached_next_event(node)
    assert checked >= 120


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


@pytest.mark.parametrize("launch_cpu_s", [0.0, 0.004])
def test_the_next_event_advance_leaves_cached_is_the_one_next_event_computes(
    launch_cpu_s: float,
) -> None:
    # advance() leaves next_event() cached when only delay ends and completions can happen;
    # recomputing it from the node's state must give the same float, at every step of a run
    # with bursts and spaced launches (the look-ahead past delay ends included), with a fair
    # launcher too.
    model = fair(NodeModel(cores=2, work_s=0.08, delay_s=0.3, work_cv=0.5), launch_cpu_s)
    rng = np.random.default_rng([7, 0, 3])
    launch_s = np.sort(np.concatenate([np.repeat(rng.uniform(0, 5, 20), 3),
                                       rng.uniform(0, 5, 200)]))
    node: NodeState[int] = NodeState(model)
    node.plan_batch(launch_s.tolist(), list(range(launch_s.size)),
                    draw_work(model, launch_s.size, rng).tolist())
    steps = _run_checking_the_cached_next_event(node)
    assert node.ready == launch_s.size and steps > 100
