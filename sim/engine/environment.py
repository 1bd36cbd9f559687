"""SimPy's environment with a second heap for node wake-ups: the only module that relies on
SimPy internals (tests/test_simpy_internals.py pins each of them against the installed SimPy).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, Event

SimTime = float

EventQueue = list[tuple[SimTime, Any, int, Event]]
"""SimPy's event heap: (time, priority, event id, event)."""


class PlatformEnvironment(simpy.Environment):
    """A SimPy environment whose event order also covers a node agenda.

    SimPy's heap cannot move or cancel an entry, so a node whose next event moves earlier (a new
    launch) would leave a stale wake-up behind on every such change. The agenda is a second heap
    of (time, node, generation) merged into step(): a node has one live entry, a superseded entry
    is skipped by its generation, and compaction keeps stale entries fewer than the nodes.
    At equal times node events run first, so arrivals and timers see every node up to date.

    What SimPy's public API lacks, and this class relies on (SimPy 4.1): events scheduled at an
    absolute time (now + (at - now) may round away from `at`), the event heap itself (the
    engine's agenda loop compares with its head on every node event) and setting the clock
    (the agenda's events are not SimPy events).
    """

    def __init__(self, run_agenda: Callable[[], None]) -> None:
        super().__init__(0.0)
        self.agenda: list[tuple[SimTime, int, int]] = []
        """Heap of (wake-up time, node id, generation)."""
        self._run_agenda = run_agenda
        """Pops and processes agenda entries while they come first (one call for a run of them,
        not one step() each)."""
        self.event_queue: EventQueue = self._queue
        """SimPy's own event heap (the same list, read only)."""

    def clock_setter(self) -> Callable[[SimTime], None]:
        """A function that sets `now` (for the agenda's node events, which SimPy does not see).

        A C-level setattr, not a method: the agenda loop calls it once per node event.
        """
        return partial(setattr, self, "_now")

    def schedule_at(self, event: Event, at: SimTime, priority: Any = NORMAL) -> None:
        """Schedule an already triggered event at absolute time `at` (no now + delay rounding)."""
        heappush(self._queue, (at, priority, next(self._eid), event))

    def succeed_at(self, at: SimTime, value: Any = None) -> Event:
        """A new event that succeeds with `value` at absolute time `at` (a Timeout to a time)."""
        event = self.event()
        event._ok = True
        event._value = value
        self.schedule_at(event, at)
        return event

    def peek(self) -> SimTime:
        t = super().peek()
        if self.agenda and self.agenda[0][0] <= t:
            return self.agenda[0][0]
        return t

    def step(self) -> None:
        agenda = self.agenda
        if agenda:
            queue = self._queue
            if not queue or agenda[0][0] <= queue[0][0]:
                self._run_agenda()
                return
        super().step()
