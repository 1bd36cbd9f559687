"""The state of one node in time: launches in, ready instances out, O(log k) per event.
Used by the simulator's nodes and by ready_times(); the CPU sharing itself is the kernel's.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from typing import Generic

from typing_extensions import TypeVar

from sim.model.kernel import ProcessorSharing, SimTime
from sim.model.launcher import Launcher
from sim.model.node_model import NodeModel
from sim.model.vm_lock import VmLock

Instance = TypeVar("Instance", default=int)
"""What identifies an instance to NodeState's caller (an index for ready_times(), the engine's
per-instance payload in the simulator): stored and handed back, never compared."""


class NodeState(Generic[Instance]):
    """Event-driven state of one node. An instance goes: planned (waits for its launch time) ->
    started (launcher serialisation, then the pure delay) -> CPU phase (processor sharing) ->
    ready (keeps running, costing idle_load, until its lifetime ends).

    The launcher decides when each instance starts and leaves its delay; the end of its delay
    is a job queued to join the kernel later, which processes delay ends and completions
    together (ProcessorSharing.run_until). A fair launcher's launches are kernel jobs too: the
    end of one is an event (nothing becomes ready), at which its instance starts and the next
    launch begins. Until its launch ends an instance is planned, not in flight.
    """

    __slots__ = (
        "_clock", "_launched", "_launcher", "_lifetimes", "_lock", "_mortal", "_next", "_pending",
        "_ps",
        "_stops", "_varying_capacity", "idle_cpu_s", "in_flight", "model", "peak_in_flight",
        "ready",
    )

    def __init__(
        self, model: NodeModel, launched: Callable[[Instance, SimTime], Instance] | None = None
    ) -> None:
        """`launched(instance, t)`, if given, is called when a fair or reserved launcher has
        launched `instance` at `t` (later than planned when it fell behind) and returns what
        identifies the instance from then on: the engine stamps the actual launch time into its
        flight."""
        self.model = model
        self._launched = launched
        self._ps: ProcessorSharing[Instance] = ProcessorSharing(
            model.capacity(0), model.max_rate, model.background_jobs
        )
        self._varying_capacity = model.idle_load > 0.0
        self._lock: VmLock[Instance] | None = VmLock(model, self._ps) if model.has_lock else None
        """The node's VM-creation lock (model.lock_s > 0): the parts of the instances' work
        around it are kernel jobs that are no instance (advance() takes its general loop)."""
        self._launcher: Launcher[Instance] = Launcher(
            model, self._ps, self._lock, None if launched is None else self._restamp
        )
        self._pending: list[float] = []
        """Heap of the start times of direct plans (Launcher.direct) not yet counted in
        in_flight (see _count)."""
        self._stops: list[float] = []
        """Heap of the stop times of ready instances with a finite lifetime (which instance
        stops does not matter: only how many are ready)."""
        self._lifetimes: dict[Instance, float] = {}
        """Finite lifetimes of the instances not yet ready."""
        self._mortal = False
        """Some instance was given a finite lifetime (then advance() takes its general loop)."""
        self._clock: SimTime = 0.0
        self._next: SimTime | None = None
        """Cached next_event(); None when a launch or plan may have changed it."""
        self.in_flight = 0
        """Started and not yet ready (launcher wait, delay or CPU phase)."""
        self.ready = 0
        """Ready and still running."""
        self.peak_in_flight = 0
        """Largest in_flight seen."""
        self.idle_cpu_s = 0.0
        """CPU-seconds taken by ready instances (idle_load) up to the clock."""

    @property
    def planned(self) -> int:
        """Launches scheduled for a later time, or waiting for a fair launcher, and not started
        yet."""
        return self._launcher.planned + len(self._pending)

    @property
    def clock(self) -> SimTime:
        """Time up to which internal events have been processed."""
        return self._clock

    def observe(self, now: SimTime, inclusive: bool = True) -> None:
        """Bring in_flight, planned and peak_in_flight to `now` without processing any other
        event: a planned start at `now` counts only if `inclusive` (the engine passes False
        while a node ordered before this one is being woken at `now`)."""
        pending = self._pending
        if pending and (pending[0] < now or (inclusive and pending[0] == now)):
            self._count(now, inclusive)

    def _count(self, now: SimTime, inclusive: bool) -> None:
        # in_flight only grows between completions, so counting starts before each completion
        # (and when observed) keeps in_flight and its peak exactly as per-start events would.
        pending = self._pending
        n = 0
        while pending and (pending[0] < now or (inclusive and pending[0] == now)):
            heapq.heappop(pending)
            n += 1
        self.in_flight += n
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def cpu_busy_s(self, now: SimTime) -> float:
        """Core-seconds the node has been busy up to `now` (CPU phase plus idle_load).

        The node must have been advanced to its last event before `now` (next_event() >= now).
        """
        self._catch_up(now, True)
        idle_cores = self.model.boot_cores - self._ps.capacity if self._varying_capacity else 0.0
        return self._ps.served(now) + self.idle_cpu_s + idle_cores * (now - self._clock)

    def _outlive(self, instances: Sequence[Instance], lifetime: float) -> None:
        """Remember a finite lifetime, to start counting when the instance is ready."""
        if lifetime != math.inf:
            self._mortal = True
            for instance in instances:
                self._lifetimes[instance] = lifetime

    def plan(
        self, at: SimTime, instance: Instance, work: float, lifetime: float = math.inf
    ) -> None:
        """Schedule `instance` to launch at `at` (>= the node's clock); O(log n)."""
        if at < self._clock:
            raise ValueError(f"cannot plan a launch in the past: {at} < {self._clock}")
        if not work >= 0.0:
            raise ValueError(f"work must be >= 0, got {work}")
        self._outlive((instance,), lifetime)
        first = self._launcher.plan(at, instance, work)
        if self._launcher.direct:
            heapq.heappush(self._pending, at)
            if self._next is not None and first < self._next:
                self._next = None
        elif self._next is not None and first < self._next:
            self._next = first

    def plan_batch(
        self,
        ats: Sequence[SimTime],
        instances: Sequence[Instance],
        works: Sequence[float],
        lifetime: float = math.inf,
    ) -> None:
        """plan() each instance at its time, in order; one call for a request's spaced launches."""
        if not (len(ats) == len(instances) == len(works)):
            raise ValueError(f"{len(ats)} times, {len(instances)} instances, {len(works)} works")
        if not ats:
            return
        if min(ats) < self._clock:
            raise ValueError(f"cannot plan a launch in the past: {min(ats)} < {self._clock}")
        if not min(works) >= 0.0:
            raise ValueError("work must be >= 0")
        if not self._launcher.direct:
            for at, instance, work in zip(ats, instances, works, strict=True):
                self.plan(at, instance, work, lifetime)
            return
        self._outlive(instances, lifetime)
        first = self._launcher.plan_direct(ats, instances, works)
        pending = self._pending
        for at in ats:
            heapq.heappush(pending, at)
        if self._next is not None and first < self._next:
            self._next = None

    def launch(
        self, now: SimTime, instance: Instance, work: float, lifetime: float = math.inf
    ) -> None:
        """Start `instance` at `now`: it begins its delay (after any launcher serialisation).
        A fair launcher launches it as a plan at `now` (advance() the node at its next event).

        The node must have been advanced to `now` (no internal event left before `now`).
        `lifetime` is how long the instance keeps running once ready (inf: until the end).
        """
        if self.next_event() < now - 1e-12 * max(1.0, abs(now)):
            raise ValueError("advance() the node to `now` before launching")
        if not work >= 0.0:
            raise ValueError(f"work must be >= 0, got {work}")
        if self._launcher.fair:
            self.plan(now, instance, work, lifetime)
            return
        self._catch_up(now, False)
        self._tick(now)
        self._outlive((instance,), lifetime)
        self._start(now, instance, work)
        self._ps.join_due(now)
        self._next = None

    def launch_batch(
        self,
        now: SimTime,
        instances: Sequence[Instance],
        works: Sequence[float],
        lifetime: float = math.inf,
    ) -> None:
        """launch() each instance at `now`, in order; one call for a whole burst."""
        if self.next_event() < now - 1e-12 * max(1.0, abs(now)):
            raise ValueError("advance() the node to `now` before launching")
        if len(instances) != len(works):
            raise ValueError(f"{len(instances)} instances but {len(works)} works")
        if works and min(works) < 0.0:
            raise ValueError("work must be >= 0")
        if self._launcher.fair:
            self.plan_batch([now] * len(instances), instances, works, lifetime)
            return
        self._outlive(instances, lifetime)
        self._catch_up(now, False)
        self._tick(now)
        self._launcher.start_batch(now, instances, works, self.in_flight,
                                   self.in_flight + self.ready)
        self.in_flight += len(instances)
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        self._ps.join_due(now)
        self._next = None

    def _tick(self, now: SimTime) -> None:
        if now > self._clock:
            if self._varying_capacity:
                self.idle_cpu_s += (self.model.boot_cores - self._ps.capacity) * (now - self._clock)
            self._clock = now

    def _start(self, t: SimTime, instance: Instance, work: float) -> None:
        self._launcher.start(t, instance, work, self.in_flight, self.in_flight + self.ready)
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def _start_launched(self, t: SimTime, instance: Instance, work: float) -> None:
        """Start `instance`, whose fair launch has just ended at `t`."""
        if self._launched is not None:
            instance = self._restamp(instance, t)
        self._start(t, instance, work)

    def _restamp(self, instance: Instance, t: SimTime) -> Instance:
        """`launched(instance, t)`, keeping the instance's lifetime under its new identity."""
        assert self._launched is not None
        stamped = self._launched(instance, t)
        life = self._lifetimes.pop(instance, None)
        if life is not None:
            self._lifetimes[stamped] = life
        return stamped

    def _set_capacity(self, t: SimTime) -> None:
        self._ps.set_capacity(t, self.model.capacity(self.ready))

    def next_event(self) -> SimTime:
        """Absolute time of the next event someone outside can see (inf if none): an instance
        ready, a planned launch starting, a fair launch ending, a ready instance stopping.

        Delay ends change only the node's own CPU sharing, so they are not events of their own:
        the kernel looks past them to find when the next instance is ready, and they are
        processed by the advance() (or launch) that follows, at their own times.
        """
        if self._next is not None:
            return self._next
        bound = self._launcher.next_plan()
        if self._stops and self._stops[0] < bound:
            bound = self._stops[0]
        t = self._ps.first_completion(bound)
        if bound < t:
            t = bound
        self._next = t
        return t

    def _catch_up(self, now: SimTime, inclusive: bool) -> None:
        """Process the delay ends before `now` (also at `now` if `inclusive`) that next_event()
        looked past, at their own times: the state someone outside sees at `now`."""
        ps = self._ps
        while True:
            entry = ps.next_join()
            if entry > now or (entry == now and not inclusive):
                return
            # Something seen from outside at or before this delay end comes first (a caller
            # that has not advanced the node): leave it to advance().
            if (entry >= ps.next_completion() or entry >= self._launcher.next_plan()
                    or (self._stops and entry >= self._stops[0])):
                return
            self._tick(entry)
            ps.join_due(entry)
            self._next = None

    def advance(self, now: SimTime) -> list[Instance]:
        """Process internal events up to `now`; return the instances that became ready at <= now.

        Events are processed in time order (ties: completions, stops, launches, delay ends), so
        calling advance() at each next_event() gives every instance its exact ready time.

        Often only delay ends and completions can happen (no planned start waits in the heap, no
        lifetimes, constant capacity): the kernel's run_until() then does it all in one loop, and
        next_event() is left cached: the simulator's hottest path.
        """
        if now < self._clock and now < self._clock - 1e-12 * max(1.0, abs(now)):
            raise ValueError(f"time went backwards: {now} < {self._clock}")
        if (self._launcher.planned or self._stops or self._varying_capacity or self._mortal
                or self._lock is not None):
            return self._advance_general(now)
        ready_now: list[Instance] = []
        pending = self._pending
        if pending and pending[0] < now:
            # Count the starts before each completion instant, as per-start events would.
            groups: list[tuple[SimTime, int]] = []
            self._next = self._ps.run_until(now, ready_now, groups)
            in_flight = self.in_flight
            counted = 0
            for t, upto in groups:
                if pending and pending[0] < t:
                    while pending and pending[0] < t:
                        heapq.heappop(pending)
                        in_flight += 1
                    if in_flight > self.peak_in_flight:
                        self.peak_in_flight = in_flight
                in_flight -= upto - counted
                counted = upto
            self.in_flight = in_flight
            if pending and pending[0] <= now:
                self._count(now, True)
        else:  # (no start to count before a completion)
            self._next = self._ps.run_until(now, ready_now)
            self.in_flight -= len(ready_now)
            if pending and pending[0] <= now:
                self._count(now, True)
        self.ready += len(ready_now)
        if now > self._clock:
            self._clock = now
        return ready_now

    def _advance_general(self, now: SimTime) -> list[Instance]:
        """advance() with planned starts (or fair launches), lifetimes or a varying capacity."""
        ready_now: list[Instance] = []
        ps = self._ps
        launcher = self._launcher
        stops = self._stops
        fair = launcher.fair
        lock = self._lock
        while True:
            launched: tuple[Instance, float] | None = None
            t_done = ps.next_completion()
            t = t_done
            if launcher.next_plan() < t:
                t = launcher.next_plan()
            entry = ps.next_join()
            if entry < t:
                t = entry
            if stops and stops[0] < t:
                t = stops[0]
            if t > now:
                break
            self._tick(t)
            if t_done <= t:
                if self._pending and self._pending[0] < t:
                    self._count(t, False)
                done = ps.pop_completed(t)
                if fair and done:
                    launched = launcher.finish_launch(done)
                if lock is not None and done:
                    done = lock.route(t, done)
                if done:
                    self.in_flight -= len(done)
                    self.ready += len(done)
                    ready_now.extend(done)
                    if self._lifetimes:
                        for instance in done:
                            life = self._lifetimes.pop(instance, None)
                            if life is not None:
                                heapq.heappush(stops, t + life)
                    if self._varying_capacity:
                        self._set_capacity(t)
            if stops and stops[0] <= t:
                while stops and stops[0] <= t:
                    heapq.heappop(stops)
                    self.ready -= 1
                if self._varying_capacity:
                    self._set_capacity(t)
            if launched is not None:
                self._start_launched(t, *launched)
            while launcher.next_plan() <= t:
                if fair:  # (the launch is a job: next_plan() is inf until it ends)
                    launcher.begin_launch(t)
                else:
                    instance, work = launcher.pop_plan()
                    self._start(t, instance, work)
            ps.join_due(t)
        self._next = None
        if self._pending and self._pending[0] <= now:
            self._count(now, True)
        if now > self._clock:
            self._tick(now)
        return ready_now
