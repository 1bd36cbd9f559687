"""What sim/engine/environment.py relies on in SimPy beyond its public API, pinned against the
installed release: each test fails if a SimPy release changes one of those internals.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim.engine.environment import PlatformEnvironment


def nothing() -> None:
    return None


def test_the_event_queue_is_simpys_own_heap_of_time_priority_id_event() -> None:
    env = PlatformEnvironment(nothing)
    timeout = env.timeout(2.5, value="x")
    assert len(env.event_queue) == 1
    at, _, eid, event = env.event_queue[0]
    assert (at, event) == (2.5, timeout) and isinstance(eid, int)
    env.run()
    assert env.event_queue == [] and env.now == 2.5


def test_setting_the_clock_moves_now_and_what_simpy_schedules_from_it() -> None:
    env = PlatformEnvironment(nothing)
    env.clock_setter()(5.0)
    assert env.now == 5.0
    timeout = env.timeout(1.0)
    assert env.event_queue[0][0] == 6.0 and env.event_queue[0][3] is timeout


def test_an_event_scheduled_at_an_absolute_time_fires_exactly_then_with_its_value() -> None:
    # 1/3 + (0.9 - 1/3) is not 0.9 in floats: a timeout by delay would miss the instant.
    now = 1.0 / 3.0
    assert now + (0.9 - now) != 0.9
    env = PlatformEnvironment(nothing)
    env.clock_setter()(now)
    seen: list[tuple[float, Any]] = []

    def waiter() -> Generator[simpy.Event, Any, None]:
        value = yield env.succeed_at(0.9, "token")
        seen.append((env.now, value))

    env.process(waiter())
    env.run()
    assert seen == [(0.9, "token")]
    event = env.succeed_at(1.0, 7)
    assert event.triggered and event.ok and event.value == 7


def test_events_at_the_same_time_run_in_the_order_they_were_scheduled() -> None:
    env = PlatformEnvironment(nothing)
    order: list[object] = []
    for name in ("a", "b", "c"):
        env.succeed_at(1.0, name).callbacks.append(lambda event: order.append(event.value))
    env.run()
    assert order == ["a", "b", "c"]


def test_agenda_entries_run_before_simpy_events_at_the_same_time() -> None:
    log: list[tuple[str, float]] = []

    def run_agenda() -> None:
        at, _, _ = env.agenda.pop()
        env.clock_setter()(at)
        log.append(("node", env.now))

    env = PlatformEnvironment(run_agenda)
    env.succeed_at(1.0).callbacks.append(lambda _event: log.append(("timer", env.now)))
    env.agenda.append((1.0, 0, 0))
    assert env.peek() == 1.0
    env.run()
    assert log == [("node", 1.0), ("timer", 1.0)]


def test_regression_the_installed_simpy_is_the_release_these_internals_were_checked_on() -> None:
    # Regression test: a new release must be checked against the tests above, then listed here.
    assert simpy.__version__ == "4.1.2"
