"""Egalitarian processor sharing with a per-job rate cap, exact and O(log k) per event: the one
home of the sharing arithmetic (virtual clock, finish marks, rates, tolerances, tie rules).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Generic

from typing_extensions import TypeVar

SimTime = float

# Two finish marks closer than this (in seconds of CPU work) are the same instant: jobs added at
# different times accumulate rounding error, and such jobs must still leave together.
_WORK_EPS = 1e-9
# A completion this close after `now` (relative to the clock's magnitude) counts as due at `now`.
_TIME_REL_EPS = 1e-12

Job = TypeVar("Job", default=int)
"""What identifies a job (opaque here: only handed back when it completes)."""

Join = tuple[SimTime, float, Job, float]
"""A job that joins later: (join time, order among equal join times, job, work)."""


class ProcessorSharing(Generic[Job]):
    """Egalitarian PS with per-job rate cap, virtual clock and a heap of virtual finish times.

    With k active jobs each one progresses at r(k) = min(max_rate, capacity / (k + background)),
    `background` counting CPU-bound threads outside the jobs that share the cores fairly with
    them (0 by default: plain egalitarian PS). The virtual clock
    V grows at r(k), so a job added at virtual time V0 with work w finishes when V reaches V0 + w:
    adding or removing a job changes one number (the rate), never the other jobs' entries.

    Jobs may also be queued to join at a known later time (a node's instances leaving their
    delay): run_until() then processes joins and completions in one loop, and
    first_completion() looks ahead past the joins without changing the state.
    """

    __slots__ = (
        "_background", "_capacity", "_clock", "_heap", "_joins", "_max_rate", "_rate", "_seq",
        "_served", "_virtual",
    )

    def __init__(self, capacity: float, max_rate: float = 1.0, background: float = 0.0) -> None:
        if not capacity > 0.0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        if not max_rate > 0.0:
            raise ValueError(f"max_rate must be > 0, got {max_rate}")
        if not background >= 0.0:
            raise ValueError(f"background must be >= 0, got {background}")
        self._background = float(background)
        self._capacity = float(capacity)
        self._max_rate = float(max_rate)
        self._clock: SimTime = 0.0
        """Real time up to which the virtual clock has been advanced."""
        self._virtual = 0.0
        """Service received by every job that has been active since the last idle period."""
        self._rate = 0.0
        """Current per-job rate r(k); 0 when idle."""
        self._served = 0.0
        """Total CPU-seconds delivered since creation (for utilisation)."""
        self._heap: list[tuple[float, int, Job]] = []
        """(virtual finish mark, insertion order, job): the order breaks ties deterministically."""
        self._seq = 0
        self._joins: deque[Join[Job]] = deque()
        """Jobs queued to join later, in (join time, order) order; equal keys in queueing order."""

    @property
    def active(self) -> int:
        """Jobs in service."""
        return len(self._heap)

    @property
    def capacity(self) -> float:
        """Cores shared among the active jobs."""
        return self._capacity

    @property
    def rate(self) -> float:
        """Rate at which each active job progresses now (CPU-seconds per second)."""
        return self._rate

    def served(self, now: SimTime) -> float:
        """CPU-seconds delivered to jobs from creation up to `now` (does not change the state)."""
        return self._served + (now - self._clock) * self._rate * len(self._heap)

    def _advance(self, now: SimTime) -> None:
        dt = now - self._clock
        if dt < 0.0:
            if dt < -_TIME_REL_EPS * max(1.0, abs(now)):
                raise ValueError(f"time went backwards: {now} < {self._clock}")
            return
        if self._heap:
            step = dt * self._rate
            self._virtual += step
            self._served += step * len(self._heap)
        self._clock = now

    def _update_rate(self) -> None:
        k = len(self._heap)
        if k == 0:
            self._rate = 0.0
            # Restart the virtual clock while idle so it never grows large enough to lose precision.
            self._virtual = 0.0
        else:
            share = self._capacity / (k + self._background)
            self._rate = share if share < self._max_rate else self._max_rate

    def set_capacity(self, now: SimTime, capacity: float) -> None:
        """Change the shared capacity from `now` on (the clock is advanced first)."""
        if not capacity > 0.0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self._advance(now)
        self._capacity = float(capacity)
        self._update_rate()

    def add(self, now: SimTime, job: Job, work: float) -> None:
        """Start serving `job`, which needs `work` CPU-seconds; O(log k)."""
        self.add_many(now, ((job, work),))

    def add_many(self, now: SimTime, jobs: Iterable[tuple[Job, float]]) -> None:
        """add() each (job, work) at `now`: one clock advance and one rate update for all."""
        self._advance(now)
        heap = self._heap
        virtual = self._virtual
        seq = self._seq
        for job, work in jobs:
            if not work >= 0.0:
                raise ValueError(f"work must be >= 0, got {work}")
            heapq.heappush(heap, (virtual + work, seq, job))
            seq += 1
        self._seq = seq
        self._update_rate()

    def next_completion(self) -> SimTime:
        """Absolute time at which the next job finishes if nothing changes; math.inf if idle."""
        if not self._heap:
            return math.inf
        return self._clock + (self._heap[0][0] - self._virtual) / self._rate

    def pop_completed(self, now: SimTime) -> list[Job]:
        """Remove and return the jobs whose work is done at `now`, in finishing order (queued
        joins are left alone, even those due before `now`).

        Jobs whose finish marks coincide (within float tolerance) leave together. If `now` is past
        several completions, they are processed one by one at their own times (the rate changes
        after each), so the state at `now` is exact.
        """
        done: list[Job] = []
        self.run_until(now, done, None, False)
        if now > self._clock:
            self._advance(now)
        return done

    # --- jobs that join later ----------------------------------------------------------------

    def next_join(self) -> SimTime:
        """Time of the next queued join; math.inf if none."""
        return self._joins[0][0] if self._joins else math.inf

    def join_later(self, at: SimTime, order: float, job: Job, work: float) -> None:
        """Queue `job` (needing `work`) to join at `at`: jobs joining at the same time join in
        `order`, then in the order they were queued."""
        joins = self._joins
        if not joins or (joins[-1][0], joins[-1][1]) <= (at, order):
            joins.append((at, order, job, work))
        else:
            joins.insert(bisect_right(joins, (at, order), key=lambda d: (d[0], d[1])),
                         (at, order, job, work))

    def join_later_many(self, items: Iterable[Join[Job]], in_order: bool = False) -> None:
        """join_later() each (at, order, job, work); `in_order`: the caller knows the items are
        sorted by (at, order), so only the first is compared with the queue."""
        joins = self._joins
        if in_order:
            if not isinstance(items, list):
                items = list(items)
            if not items or not joins or (joins[-1][0], joins[-1][1]) <= items[0][:2]:
                joins.extend(items)
                return
        append = joins.append
        for item in items:
            if joins:  # (join_later's test, without building the two key tuples)
                last = joins[-1]
                if last[0] > item[0] or (last[0] == item[0] and last[1] > item[1]):
                    self.join_later(*item)
                    continue
            append(item)

    def join_due(self, now: SimTime) -> None:
        """Add the queued jobs whose join time is <= `now`, each at its own time."""
        joins = self._joins
        while joins and joins[0][0] <= now:
            # Jobs joining together: one clock advance and one rate update for all.
            t = joins[0][0]
            batch: list[tuple[Job, float]] = []
            while joins and joins[0][0] == t:
                _, _, job, work = joins.popleft()
                batch.append((job, work))
            self.add_many(t, batch)

    def run_until(
        self, now: SimTime, done: list[Job], groups: list[tuple[SimTime, int]] | None = None,
        with_joins: bool = True,
    ) -> SimTime | None:
        """Process the queued joins (unless not `with_joins`) and the completions up to `now`,
        each at its own time (at equal times completions first), appending the completed jobs to
        `done`; with `groups`, also append (time, len(done)) after each instant at which jobs
        completed.

        Returns the next completion if no join comes before it, else None (then ask
        first_completion()). join_due() and pop_completed() at each event would do the same
        operations with the same arithmetic: this is that loop, the state in locals.
        """
        joins: Sequence[Join[Job]] = self._joins if with_joins else ()
        heap = self._heap
        append = done.append
        popleft = self._joins.popleft
        heappop = heapq.heappop
        heappush = heapq.heappush
        # The state in locals, written back once: the simulator's hottest loop.
        clock = self._clock
        virtual = self._virtual
        rate = self._rate
        served = self._served
        seq = self._seq
        capacity = self._capacity
        background = self._background
        max_rate = self._max_rate
        inf = math.inf
        while True:
            t_done = clock + (heap[0][0] - virtual) / rate if heap else inf
            if joins and joins[0][0] < t_done:
                # A join first (at a completion's instant: after it).
                t = joins[0][0]
                if t > now:
                    break
                dt = t - clock
                if dt < 0.0:  # (_advance: an error if really backwards, else no change)
                    if dt < -_TIME_REL_EPS * max(1.0, abs(t)):
                        raise ValueError(f"time went backwards: {t} < {clock}")
                else:
                    if heap:
                        step = dt * rate
                        virtual += step
                        served += step * len(heap)
                    clock = t
                while joins and joins[0][0] == t:  # (add_many)
                    _, _, job, work = popleft()
                    if not work >= 0.0:
                        raise ValueError(f"work must be >= 0, got {work}")
                    heappush(heap, (virtual + work, seq, job))
                    seq += 1
                share = capacity / (len(heap) + background)
                rate = share if share < max_rate else max_rate
                continue
            t = t_done
            if t > now:
                break
            # (abs(t) if abs(t) > 1.0 else 1.0, without two calls)
            horizon = t + _TIME_REL_EPS * (t if t > 1.0 else -t if t < -1.0 else 1.0)
            while heap:
                mark = heap[0][0]
                due = clock + (mark - virtual) / rate
                if due > horizon:
                    break
                if mark > virtual:
                    served += (mark - virtual) * len(heap)
                    virtual = mark
                at = due if due < t else t
                if at > clock:
                    clock = at
                # Marks this close are one instant: jobs added at different times accumulate
                # rounding error and must still leave together.
                limit = mark + _WORK_EPS
                while heap and heap[0][0] <= limit:
                    append(heappop(heap)[2])
                k = len(heap)  # (_update_rate)
                if k:
                    share = capacity / (k + background)
                    rate = share if share < max_rate else max_rate
                else:
                    rate = 0.0
                    virtual = 0.0
            if t > clock:  # (_advance)
                if heap:
                    step = (t - clock) * rate
                    virtual += step
                    served += step * len(heap)
                clock = t
            if groups is not None:
                groups.append((t, len(done)))
        self._clock = clock
        self._virtual = virtual
        self._rate = rate
        self._served = served
        self._seq = seq
        return t_done if not joins or joins[0][0] >= t_done else None

    def first_completion(self, bound: SimTime) -> SimTime:
        """When the next job would complete if the joins due before it and before `bound` were
        processed (math.inf if none would); the state does not change.

        add_many() and next_completion() replayed on local copies, operation for operation, so
        the time is bit-identical to processing the joins with run_until().
        """
        heap = self._heap
        clock = self._clock
        virtual = self._virtual
        rate = self._rate
        # (next_completion(), inlined: next_event() asks this once per node event)
        t_done = clock + (heap[0][0] - virtual) / rate if heap else math.inf
        joins = self._joins
        if not joins or joins[0][0] >= t_done or joins[0][0] >= bound:
            return t_done
        k = len(heap)
        capacity = self._capacity
        background = self._background
        max_rate = self._max_rate
        mark = heap[0][0] if k else math.inf
        # One pass over the queue in order (deque indexing is not O(1)); a group of equal join
        # times is closed (rate and t_done updated) when the next group starts or the queue ends.
        group = math.nan
        for entry, _, _, work in joins:
            if entry != group:
                if group == group:  # (not NaN: close the previous group)
                    share = capacity / (k + background)
                    rate = share if share < max_rate else max_rate
                    t_done = clock + (mark - virtual) / rate
                if entry >= t_done or entry >= bound:  # (ties: completions first, then bound)
                    return t_done
                if k:
                    virtual += (entry - clock) * rate
                clock = entry
                group = entry
            joined = virtual + work
            if joined < mark:
                mark = joined
            k += 1
        if group == group:
            share = capacity / (k + background)
            rate = share if share < max_rate else max_rate
            t_done = clock + (mark - virtual) / rate
        return t_done
