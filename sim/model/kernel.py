"""Egalitarian processor sharing with a per-job rate cap, exact and O(log k) per event.
A virtual clock counts the service every active job has had; a heap holds the finish marks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
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


class ProcessorSharing(Generic[Job]):
    """Egalitarian PS with per-job rate cap, virtual clock and a heap of virtual finish times.

    With k active jobs each one progresses at r(k) = min(max_rate, capacity / (k + background)),
    `background` counting CPU-bound threads outside the jobs that share the cores fairly with
    them (0 by default: plain egalitarian PS). The virtual clock
    V grows at r(k), so a job added at virtual time V0 with work w finishes when V reaches V0 + w:
    adding or removing a job changes one number (the rate), never the other jobs' entries.
    """

    __slots__ = (
        "_background", "_capacity", "_clock", "_heap", "_max_rate", "_rate", "_seq", "_served",
        "_virtual",
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
        if not work >= 0.0:
            raise ValueError(f"work must be >= 0, got {work}")
        self._advance(now)
        heapq.heappush(self._heap, (self._virtual + work, self._seq, job))
        self._seq += 1
        self._update_rate()

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
        """Remove and return the jobs whose work is done at `now`, in finishing order.

        Jobs whose finish marks coincide (within float tolerance) leave together. If `now` is past
        several completions, they are processed one by one at their own times (the rate changes
        after each), so the state at `now` is exact.
        """
        heap = self._heap
        done: list[Job] = []
        # The state in locals, written back once: the simulator's hottest loop.
        clock = self._clock
        virtual = self._virtual
        rate = self._rate
        if heap:
            served = self._served
            capacity = self._capacity
            background = self._background
            max_rate = self._max_rate
            pop = heapq.heappop
            horizon = now + _TIME_REL_EPS * (abs(now) if abs(now) > 1.0 else 1.0)
            while heap:
                mark = heap[0][0]
                due = clock + (mark - virtual) / rate
                if due > horizon:
                    break
                if mark > virtual:
                    served += (mark - virtual) * len(heap)
                    virtual = mark
                at = due if due < now else now
                if at > clock:
                    clock = at
                limit = mark + _WORK_EPS
                while heap and heap[0][0] <= limit:
                    done.append(pop(heap)[2])
                # (_update_rate inlined)
                k = len(heap)
                if k:
                    share = capacity / (k + background)
                    rate = share if share < max_rate else max_rate
                else:
                    rate = 0.0
                    virtual = 0.0
            self._served = served
            self._rate = rate
        if now > clock:  # (_advance inlined)
            if heap:
                step = (now - clock) * rate
                virtual += step
                self._served += step * len(heap)
            clock = now
        self._clock = clock
        self._virtual = virtual
        return done
