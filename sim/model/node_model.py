"""The node model: how launched instances on one host become ready under CPU contention.
One implementation, used by calibration (ready_times) and by the simulator (NodeState).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from typing import Generic

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeVar

from sim.model.kernel import _TIME_REL_EPS, _WORK_EPS, ProcessorSharing, SimTime

Instance = TypeVar("Instance", default=int)
"""What identifies an instance to NodeState's caller (an index for ready_times(), the engine's
per-instance payload in the simulator): stored and handed back, never compared."""


class NodeModel(BaseModel):
    """The parameters of one node, as a calibration file stores them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cores: float = Field(gt=0)
    """Effective cores shared by instances in their CPU phase."""
    work_s: float = Field(gt=0)
    """Mean CPU time (seconds) an instance's initialisation needs when it runs alone."""
    delay_s: float = Field(default=0.0, ge=0)
    """Pure delay before the CPU phase (exec, page faults): does not contend for CPU."""
    work_cv: float = Field(default=0.0, ge=0)
    """Coefficient of variation of the per-instance work (lognormal around work_s)."""
    max_rate: float = Field(default=1.0, gt=0)
    """Most cores one instance can use at once."""
    idle_load: float = Field(default=0.0, ge=0)
    """Cores each ready-but-running instance keeps using (a halted QEMU still costs a little)."""
    spawn_s: float = Field(default=0.0, ge=0)
    """Launcher serialisation: effective starts are at least this far apart."""
    min_capacity: float = Field(default=0.05, gt=0)
    """Capacity left to booting instances however many ready instances idle on the node."""
    background_jobs: float = Field(default=0.0, ge=0)
    """CPU-bound threads outside the instances (other load on the host) that share the cores
    fairly with instances in their CPU phase: each then gets cores / (k + background_jobs).
    Added by the calibration of this host's datasets (docs/model.md); 0: none."""
    warmup_s: float = Field(default=0.0, ge=0)
    """Node warm-up: an instance started on a node with nothing in flight opens a window of
    warmup_s during which no instance's CPU phase begins (0: none). Added by the calibration of
    the 2016 study, where nothing is ready for seconds after a burst starts, whatever the
    interval (docs/model.md)."""
    work_floor: float = Field(default=0.0, ge=0, lt=1)
    """Fraction of the mean work every instance needs at least (the part of a boot that does
    not vary): work = work_s * (work_floor + (1 - work_floor) * lognormal), still of mean work_s
    and CV work_cv (docs/model.md). 0: plain lognormal."""
    work_growth: float = Field(default=0.0, ge=0)
    """Relative extra CPU work of a boot per instance already on the node when it starts
    (booting or ready): its work is w * (1 + work_growth * residents). Measured on this host from
    per-instance CPU time, which grows with the instances launched before (docs/model.md); 0:
    none."""

    def capacity(self, n_ready: int) -> float:
        """Cores left for the CPU phase with `n_ready` ready instances still running."""
        return max(self.min_capacity, self.cores - self.idle_load * n_ready)

    @property
    def work_sigma(self) -> float:
        """Sigma of the log of the varying part's multiplier (mean 1), so that the whole work has
        CV work_cv: the varying part, (1 - work_floor) of the mean, has CV work_cv / (1 -
        work_floor)."""
        cv = self.work_cv / (1.0 - self.work_floor)
        return math.sqrt(math.log1p(cv * cv))

    @property
    def work_fixed_s(self) -> float:
        """The work every instance needs: work_s * work_floor."""
        return self.work_s * self.work_floor

    @property
    def work_varying_s(self) -> float:
        """Mean of the part of the work that varies: work_s * (1 - work_floor)."""
        return self.work_s - self.work_fixed_s


def work_from_normal(model: NodeModel, z: np.ndarray) -> np.ndarray:
    """Per-instance work from standard normal draws:
    work_fixed_s + work_varying_s * exp(sigma*z - sigma^2/2)."""
    sigma = model.work_sigma
    return model.work_fixed_s + model.work_varying_s * np.exp(
        sigma * np.asarray(z, dtype=float) - 0.5 * sigma * sigma
    )


def draw_work(model: NodeModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the CPU work of `n` instances (lognormal, mean work_s, CV work_cv).

    Always consumes n normal draws, even when work_cv is 0, so streams stay aligned across models.
    """
    return work_from_normal(model, rng.standard_normal(n))


class NodeState(Generic[Instance]):
    """Event-driven state of one node: launches in, ready instances out. Used by the SimPy
    node process AND by ready_times(); O(log k) per event.

    An instance goes: planned (waits for its launch time) -> started (launcher serialisation, then
    the pure delay) -> CPU phase (processor sharing) -> ready (keeps running, costing idle_load,
    until its lifetime ends).
    """

    __slots__ = (
        "_clock",
        "_delays",
        "_direct",
        "_last_start",
        "_lifetimes",
        "_mortal",
        "_next",
        "_pending",
        "_plan_seq",
        "_plans",
        "_ps",
        "_stops",
        "_varying_capacity",
        "_warm_until",
        "idle_cpu_s",
        "in_flight",
        "model",
        "peak_in_flight",
        "ready",
    )

    def __init__(self, model: NodeModel) -> None:
        self.model = model
        self._ps: ProcessorSharing[Instance] = ProcessorSharing(
            model.capacity(0), model.max_rate, model.background_jobs
        )
        self._varying_capacity = model.idle_load > 0.0
        self._warm_until = -math.inf
        """End of the current warm-up window (CPU phases begin no earlier)."""
        self._plans: list[tuple[float, int, Instance, float, float]] = []
        """Heap of (planned launch time, order, instance, work, lifetime)."""
        self._delays: deque[tuple[float, float, Instance, float, float]] = deque()
        """(end of delay, start, instance, work, lifetime), in the order the old event-per-start
        code appended them: by end of delay, then by start."""
        self._direct = model.spawn_s == 0.0 and model.warmup_s == 0.0 and not model.work_growth
        """A planned launch then starts exactly at its time, leaves its delay exactly delay_s
        later and its work does not depend on the node's state: plan() queues its delay end at
        once, and its start is no event."""
        self._pending: list[float] = []
        """Heap of the start times of such plans not yet counted in in_flight (see _count)."""
        self._stops: list[float] = []
        """Heap of the stop times of ready instances with a finite lifetime (which instance
        stops does not matter: only how many are ready)."""
        self._lifetimes: dict[Instance, float] = {}
        self._mortal = False
        """Some instance was given a finite lifetime (then advance() takes its general loop)."""
        self._plan_seq = 0
        self._last_start = -math.inf
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
        """Launches scheduled for a later time and not started yet."""
        return len(self._plans) + len(self._pending)

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

    @property
    def clock(self) -> SimTime:
        """Time up to which internal events have been processed."""
        return self._clock

    def cpu_busy_s(self, now: SimTime) -> float:
        """Core-seconds the node has been busy up to `now` (CPU phase plus idle_load).

        The node must have been advanced to its last event before `now` (next_event() >= now).
        """
        self._catch_up(now, True)
        idle_cores = self.model.cores - self._ps.capacity if self._varying_capacity else 0.0
        return self._ps.served(now) + self.idle_cpu_s + idle_cores * (now - self._clock)

    def plan(
        self, at: SimTime, instance: Instance, work: float, lifetime: float = math.inf
    ) -> None:
        """Schedule `instance` to launch at `at` (>= the node's clock); O(log n)."""
        if at < self._clock:
            raise ValueError(f"cannot plan a launch in the past: {at} < {self._clock}")
        if not work >= 0.0:
            raise ValueError(f"work must be >= 0, got {work}")
        if lifetime != math.inf:
            self._mortal = True
        if self._direct:
            # What _start() would do at `at`: start = at (no serialisation, no warm-up window).
            entry = at + self.model.delay_s
            self._queue_delay((entry, at, instance, work, lifetime))
            heapq.heappush(self._pending, at)
            if self._next is not None and entry < self._next:
                self._next = None
            return
        heapq.heappush(self._plans, (at, self._plan_seq, instance, work, lifetime))
        self._plan_seq += 1
        if self._next is not None and at < self._next:
            self._next = at

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
        if lifetime != math.inf:
            self._mortal = True
        if not self._direct:
            for at, instance, work in zip(ats, instances, works, strict=True):
                self.plan(at, instance, work, lifetime)
            return
        delay = self.model.delay_s
        delays = self._delays
        pending = self._pending
        first = math.inf
        for at, instance, work in zip(ats, instances, works, strict=True):
            entry = at + delay
            if entry < first:
                first = entry
            if delays:  # (_queue_delay's test, without building the two key tuples)
                last = delays[-1]
                if last[0] > entry or (last[0] == entry and last[1] > at):
                    self._queue_delay((entry, at, instance, work, lifetime))
                    heapq.heappush(pending, at)
                    continue
            delays.append((entry, at, instance, work, lifetime))
            heapq.heappush(pending, at)
        if self._next is not None and first < self._next:
            self._next = None

    def _queue_delay(self, item: tuple[float, float, Instance, float, float]) -> None:
        delays = self._delays
        if not delays or (delays[-1][0], delays[-1][1]) <= (item[0], item[1]):
            delays.append(item)
        else:  # a start before one planned earlier for later: after its equals, as appended
            delays.insert(bisect_right(delays, (item[0], item[1]), key=lambda d: (d[0], d[1])),
                          item)

    def launch(
        self, now: SimTime, instance: Instance, work: float, lifetime: float = math.inf
    ) -> None:
        """Start `instance` at `now`: it begins its delay (after any launcher serialisation).

        The node must have been advanced to `now` (no internal event left before `now`).
        `lifetime` is how long the instance keeps running once ready (inf: until the end).
        """
        if self.next_event() < now - 1e-12 * max(1.0, abs(now)):
            raise ValueError("advance() the node to `now` before launching")
        if not work >= 0.0:
            raise ValueError(f"work must be >= 0, got {work}")
        if lifetime != math.inf:
            self._mortal = True
        self._catch_up(now, False)
        self._tick(now)
        self._start(now, instance, work, lifetime)
        self._drain_delays(now)
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
        if lifetime != math.inf:
            self._mortal = True
        self._catch_up(now, False)
        self._tick(now)
        spawn = self.model.spawn_s
        delay = self.model.delay_s
        last = self._last_start
        delays = self._delays
        append = delays.append
        if self._direct and delays and (delays[-1][0], delays[-1][1]) > (now + delay, now):
            append = self._queue_delay  # plans for later are queued: keep the order
        idle = self.in_flight == 0
        growth = self.model.work_growth
        residents = self.in_flight + self.ready
        for instance, work in zip(instances, works, strict=True):
            if growth:
                work *= 1.0 + growth * residents
                residents += 1
            start = last + spawn
            if start < now:
                start = now
            last = start
            if idle:
                self._warm_until = start + self.model.warmup_s
                idle = False
            entry = start + delay
            append((entry if entry > self._warm_until else self._warm_until, start, instance,
                    work, lifetime))
        self._last_start = last
        self.in_flight += len(instances)
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        self._drain_delays(now)
        self._next = None

    def _tick(self, now: SimTime) -> None:
        if now > self._clock:
            if self._varying_capacity:
                self.idle_cpu_s += (self.model.cores - self._ps.capacity) * (now - self._clock)
            self._clock = now

    def _start(self, t: SimTime, instance: Instance, work: float, lifetime: float) -> None:
        start = self._last_start + self.model.spawn_s
        if start < t:
            start = t
        self._last_start = start
        if self.in_flight == 0:
            self._warm_until = start + self.model.warmup_s
        entry = start + self.model.delay_s
        if entry < self._warm_until:
            entry = self._warm_until
        if self.model.work_growth:
            work *= 1.0 + self.model.work_growth * (self.in_flight + self.ready)
        self._queue_delay((entry, start, instance, work, lifetime))
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def _drain_delays(self, now: SimTime) -> None:
        delays = self._delays
        while delays and delays[0][0] <= now:
            # Instances launched together leave their delay together: one rate update for all.
            t = delays[0][0]
            batch: list[tuple[Instance, float]] = []
            while delays and delays[0][0] == t:
                _, _, instance, work, lifetime = delays.popleft()
                batch.append((instance, work))
                if lifetime != math.inf:
                    self._lifetimes[instance] = lifetime
            self._ps.add_many(t, batch)

    def _set_capacity(self, t: SimTime) -> None:
        self._ps.set_capacity(t, self.model.capacity(self.ready))

    def next_event(self) -> SimTime:
        """Absolute time of the next event someone outside can see (inf if none): an instance
        ready, a planned launch starting, a ready instance stopping.

        Delay ends change only the node's own CPU sharing, so they are not events of their own:
        they are looked ahead here, to find when the next instance is ready, and processed by
        the advance() (or launch) that follows, at their own times and with the same arithmetic.
        """
        if self._next is not None:
            return self._next
        t = self._ps.next_completion()
        bound = math.inf
        if self._plans:
            bound = self._plans[0][0]
        if self._stops and self._stops[0] < bound:
            bound = self._stops[0]
        delays = self._delays
        if delays and delays[0][0] < t and delays[0][0] < bound:
            t = self._first_completion(t, bound)
        if bound < t:
            t = bound
        self._next = t
        return t

    def _first_completion(self, t_done: SimTime, bound: SimTime) -> SimTime:
        """When the first instance would be ready if the delays ending before it and before
        `bound` were processed: ProcessorSharing.add_many() and next_completion() replayed on
        local copies, operation for operation, so the time is bit-identical to processing them."""
        ps = self._ps
        heap = ps._heap
        k = len(heap)
        clock = ps._clock
        virtual = ps._virtual
        rate = ps._rate
        capacity = ps._capacity
        background = ps._background
        max_rate = ps._max_rate
        mark = heap[0][0] if k else math.inf
        # One pass over the queue in order (deque indexing is not O(1)); a group of equal delay
        # ends is closed (rate and t_done updated) when the next group starts or the queue ends.
        group = math.nan
        for entry, _, _, work, _ in self._delays:
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

    def _catch_up(self, now: SimTime, inclusive: bool) -> None:
        """Process the delay ends before `now` (also at `now` if `inclusive`) that next_event()
        looked past, at their own times: the state someone outside sees at `now`."""
        delays = self._delays
        while delays:
            entry = delays[0][0]
            if entry > now or (entry == now and not inclusive):
                return
            # Something seen from outside at or before this delay end comes first (a caller
            # that has not advanced the node): leave it to advance().
            if (entry >= self._ps.next_completion() or (self._plans and entry >= self._plans[0][0])
                    or (self._stops and entry >= self._stops[0])):
                return
            self._tick(entry)
            self._drain_delays(entry)
            self._next = None

    def advance(self, now: SimTime) -> list[Instance]:
        """Process internal events up to `now`; return the instances that became ready at <= now.

        Events are processed in time order (ties: completions, stops, launches, delay ends), so
        calling advance() at each next_event() gives every instance its exact ready time.

        Often only delay ends and completions can happen (no planned start waits in the heap, no
        lifetimes, constant capacity): this loop then does the general loop's operations
        (_advance_general) in the same order with the same arithmetic, without the checks that
        cannot fire. ProcessorSharing.add_many() (a delay end, one per spaced launch) and
        pop_completed() (one per ready instance) are inlined on local copies of its state,
        written back once, and next_event() is left cached: the simulator's hottest path.
        """
        if now < self._clock and now < self._clock - 1e-12 * max(1.0, abs(now)):
            raise ValueError(f"time went backwards: {now} < {self._clock}")
        if self._plans or self._stops or self._varying_capacity or self._mortal:
            return self._advance_general(now)
        ready_now: list[Instance] = []
        append = ready_now.append
        ps = self._ps
        heap = ps._heap
        delays = self._delays
        pending = self._pending
        popleft = delays.popleft
        heappop = heapq.heappop
        heappush = heapq.heappush
        clock = ps._clock
        virtual = ps._virtual
        rate = ps._rate
        served = ps._served
        seq = ps._seq
        capacity = ps._capacity
        background = ps._background
        max_rate = ps._max_rate
        node_clock = self._clock
        in_flight = self.in_flight
        inf = math.inf
        while True:
            t_done = clock + (heap[0][0] - virtual) / rate if heap else inf
            if delays and delays[0][0] < t_done:
                # Delay ends first (at a completion's instant: after it, as the general loop).
                t = delays[0][0]
                if t > now:
                    break
                if t > node_clock:
                    node_clock = t
                # ps.add_many(t, the instances whose delay ends at t), inlined.
                dt = t - clock
                if dt < 0.0:  # (ps._advance: an error if really backwards, else no change)
                    if dt < -_TIME_REL_EPS * max(1.0, abs(t)):
                        raise ValueError(f"time went backwards: {t} < {clock}")
                else:
                    if heap:
                        step = dt * rate
                        virtual += step
                        served += step * len(heap)
                    clock = t
                while delays and delays[0][0] == t:
                    _, _, instance, work, _ = popleft()
                    if not work >= 0.0:
                        raise ValueError(f"work must be >= 0, got {work}")
                    heappush(heap, (virtual + work, seq, instance))
                    seq += 1
                share = capacity / (len(heap) + background)
                rate = share if share < max_rate else max_rate
                continue
            t = t_done
            if t > now:
                break
            if t > node_clock:
                node_clock = t
            if pending and pending[0] < t:  # (_count(t, False) inlined)
                while pending and pending[0] < t:
                    heappop(pending)
                    in_flight += 1
                if in_flight > self.peak_in_flight:
                    self.peak_in_flight = in_flight
            # ps.pop_completed(t), inlined.
            before = len(ready_now)
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
                limit = mark + _WORK_EPS
                while heap and heap[0][0] <= limit:
                    append(heappop(heap)[2])
                k = len(heap)
                if k:
                    share = capacity / (k + background)
                    rate = share if share < max_rate else max_rate
                else:
                    rate = 0.0
                    virtual = 0.0
            if t > clock:
                if heap:
                    step = (t - clock) * rate
                    virtual += step
                    served += step * len(heap)
                clock = t
            done = len(ready_now) - before
            in_flight -= done
            self.ready += done
        ps._clock = clock
        ps._virtual = virtual
        ps._rate = rate
        ps._served = served
        ps._seq = seq
        self.in_flight = in_flight
        # next_event(), folded in: with no plan or stop it is the next completion, unless a
        # delay end comes first (then next_event() looks ahead past it).
        self._next = t_done if not delays or delays[0][0] >= t_done else None
        if pending and pending[0] <= now:
            self._count(now, True)
        self._clock = now if now > node_clock else node_clock
        return ready_now

    def _advance_general(self, now: SimTime) -> list[Instance]:
        """advance() with planned starts, lifetimes or a varying capacity."""
        ready_now: list[Instance] = []
        ps = self._ps
        plans = self._plans
        delays = self._delays
        stops = self._stops
        next_completion = ps.next_completion
        while True:
            t_done = next_completion()
            t = t_done
            if plans and plans[0][0] < t:
                t = plans[0][0]
            if delays and delays[0][0] < t:
                t = delays[0][0]
            if stops and stops[0] < t:
                t = stops[0]
            if t > now:
                break
            if t > self._clock:
                if self._varying_capacity:
                    self.idle_cpu_s += (self.model.cores - ps.capacity) * (t - self._clock)
                self._clock = t
            if t_done <= t:
                if self._pending and self._pending[0] < t:
                    self._count(t, False)
                done = ps.pop_completed(t)
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
            while plans and plans[0][0] <= t:
                _, _, instance, work, lifetime = heapq.heappop(plans)
                self._start(t, instance, work, lifetime)
            if delays and delays[0][0] <= t:
                self._drain_delays(t)
        self._next = None
        if self._pending and self._pending[0] <= now:
            self._count(now, True)
        if now > self._clock:
            self._tick(now)
        return ready_now


def ready_times(
    model: NodeModel,
    launch_s: np.ndarray,
    work: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Absolute ready time of each instance given its launch time (any order); exact, O(n log n).

    Work per instance is `work` if given, else drawn with draw_work(model, n, rng); with
    work_cv == 0 no generator is needed.
    """
    launches = np.asarray(launch_s, dtype=float)
    n = launches.size
    if work is None:
        if rng is not None:
            work = draw_work(model, n, rng)
        elif model.work_cv == 0.0:
            work = np.full(n, model.work_s)
        else:
            raise ValueError("work_cv > 0: pass `work` or a numpy Generator `rng`")
    works = np.asarray(work, dtype=float)
    if works.shape != launches.shape:
        raise ValueError(f"work has shape {works.shape}, launch_s has {launches.shape}")
    out = np.full(n, np.nan)
    if n == 0:
        return out
    # The node's clock starts at 0; shift only when needed, so that non-negative launch times give
    # bit-identical results to a simulation that uses the same absolute times.
    shift = min(float(launches.min()), 0.0)
    node = NodeState(model)
    # Planned in time order (ties in index order, as the plan heap orders them): then the
    # queue of delay ends only grows at its end.
    order = np.argsort(launches, kind="stable")
    for i, t, w in zip(order.tolist(), (launches[order] - shift).tolist(),
                       works[order].tolist(), strict=True):
        node.plan(t, i, w)
    t = node.next_event()
    while t != math.inf:
        for i in node.advance(t):
            out[i] = t
        t = node.next_event()
    return out + shift
