"""A node's launcher: when each launched instance starts and when its delay ends, and the work
it then brings; the delay ends are queued as joins in the node's processor-sharing kernel, and a
fair launcher's launches are jobs of that kernel.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from typing import Generic, cast

from typing_extensions import TypeVar

from sim.model.kernel import ProcessorSharing, SimTime
from sim.model.node_model import NodeModel
from sim.model.vm_lock import VmLock

Instance = TypeVar("Instance", default=int)


class _Launch:
    """The identity of a fair launcher's launch among the kernel's jobs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<launch>"


class Launcher(Generic[Instance]):
    """Starts are serialised spawn_s apart; an instance started on a node with nothing in flight
    opens a warm-up window (no delay ends before warmup_s); the delay lasts delay_s; the work
    grows with the instances already on the node (work_growth), and by reclaimed_memory_s for
    an instance whose memory lies beyond what the host still backs (backed_instances).

    A fair launcher (NodeModel.launches_take_cpu) launches the plans one at a time, in plan
    order: each launch is a job of launch_cpu_s in the kernel, sharing the cores like an
    instance in its CPU phase, and begins when the previous one has ended or at its planned time
    if later; the instance starts when its launch ends (finish_launch()).

    A reserved launcher (NodeModel.reserved_launch_s) launches them one at a time too, on its
    own core: a launch begins at its planned time or when the previous instance started, if
    later, and the instance starts reserved_launch_s after it began (and spawn_s after the
    previous start, if that is later); `stamp(instance, start)` then gives what identifies the
    instance from its start on (the engine stamps the launch's end into its flight, as under a
    fair launcher).
    """

    __slots__ = (
        "_job", "_last_start", "_launching", "_lock", "_plan_seq", "_plans", "_ps", "_stamp",
        "_warm_until", "direct", "fair", "model",
    )

    def __init__(self, model: NodeModel, ps: ProcessorSharing[Instance],
                 lock: VmLock[Instance] | None = None,
                 stamp: Callable[[Instance, SimTime], Instance] | None = None) -> None:
        self.model = model
        self._stamp = stamp if model.reserved_launch_s > 0.0 else None
        """Restamps a reserved launcher's instances with their start (the launch's end)."""
        self._ps = ps
        self._lock = lock
        """The node's VM-creation lock, if it has one: an instance's CPU phase then begins with
        its part of the work before the lock (VmLock.joins())."""
        self.fair = model.launches_take_cpu
        """Launches are CPU jobs in the kernel (begin_launch(), finish_launch())."""
        self.direct = (model.spawn_s == 0.0 and model.warmup_s == 0.0 and not model.work_growth
                       and not model.reclaimed_memory_s and not model.launches_queue)
        """A planned launch then starts exactly at its time, leaves its delay exactly delay_s
        later and its work does not depend on the node's state: plan() queues its delay end at
        once, and its start is no event."""
        self._plans: list[tuple[float, int, Instance, float]] = []
        """Heap of (planned launch time, order, instance, work): the plans that are events."""
        self._plan_seq = 0
        self._last_start = -math.inf
        self._warm_until = -math.inf
        """End of the current warm-up window (CPU phases begin no earlier)."""
        self._launching = False
        """A fair launcher is launching the first plan of the heap: its job is in the kernel
        (plans come no earlier than the node's clock, so none can come before it)."""
        # The kernel's jobs are instances: the launch is typed as one so that the kernel and the
        # node's fast paths keep their types. It never leaves the node: finish_launch() takes it
        # out of the completions, and the fast paths do not run while it is in the kernel.
        self._job = cast(Instance, _Launch())

    @property
    def planned(self) -> int:
        """Plans waiting in the heap, the one being launched included (direct plans are already
        queued joins)."""
        return len(self._plans)

    def next_plan(self) -> SimTime:
        """Time of the next planned start (or fair launch) that is an event; math.inf if none.
        While a fair launcher is busy the next launch begins when this one ends: a completion
        in the kernel."""
        return self._plans[0][0] if self._plans and not self._launching else math.inf

    def plan(self, at: SimTime, instance: Instance, work: float) -> SimTime:
        """Plan `instance` to launch at `at`. Returns its delay end if direct, else when the
        plan is next an event: `at` (math.inf while a fair launcher is busy)."""
        if self.direct:
            # What start() would do at `at`: start = at (no serialisation, no warm-up window).
            entry = at + self.model.delay_s
            if self._lock is not None:
                self._ps.join_later_many(self._lock.joins([(entry, at, instance, work)]))
            else:
                self._ps.join_later(entry, at, instance, work)
            return entry
        heapq.heappush(self._plans, (at, self._plan_seq, instance, work))
        self._plan_seq += 1
        return math.inf if self._launching else at

    def plan_direct(
        self, ats: Sequence[SimTime], instances: Sequence[Instance], works: Sequence[float]
    ) -> SimTime:
        """plan() each instance when direct: their delay ends go straight to the kernel.
        Returns the first delay end."""
        delay = self.model.delay_s
        joins = [(at + delay, at, instance, work) for at, instance, work
                 in zip(ats, instances, works, strict=True)]
        self._ps.join_later_many(joins if self._lock is None else self._lock.joins(joins))
        return min(ats) + delay

    def pop_plan(self) -> tuple[Instance, float]:
        """Remove the next planned start: (instance, work)."""
        _, _, instance, work = heapq.heappop(self._plans)
        return instance, work

    def begin_launch(self, now: SimTime) -> None:
        """A fair launcher begins launching the next plan at `now`: its job joins the kernel."""
        self._launching = True
        self._ps.add(now, self._job, self.model.launch_cpu_s)

    def finish_launch(self, done: list[Instance]) -> tuple[Instance, float] | None:
        """Take the launch out of the kernel's completions `done`, if it is there: the plan
        (instance, work) it launched, to start() now; else None."""
        job = self._job
        for k, item in enumerate(done):
            if item is job:
                del done[k]
                self._launching = False
                return self.pop_plan()
        return None

    def start(
        self, now: SimTime, instance: Instance, work: float, in_flight: int, residents: int
    ) -> None:
        """Start `instance` at `now` (or when the launcher is free), `residents` instances being
        on the node (booting or ready), `in_flight` of them not ready yet."""
        self.start_batch(now, (instance,), (work,), in_flight, residents)

    def start_batch(
        self, now: SimTime, instances: Sequence[Instance], works: Sequence[float],
        in_flight: int, residents: int,
    ) -> None:
        """start() each instance in order; `in_flight` of the `residents` are not ready yet."""
        launch = self.model.reserved_launch_s
        spawn = self.model.spawn_s if self.model.spawn_s > launch else launch
        delay = self.model.delay_s
        warmup = self.model.warmup_s
        growth = self.model.work_growth
        reclaimed = self.model.reclaimed_memory_s
        backed = self.model.backed_instances
        last = self._last_start
        stamp = self._stamp
        idle = in_flight == 0
        joins: list[tuple[SimTime, float, Instance, float]] = []
        # Starts are spawn_s apart and the warm-up window only moves later: the delay ends come
        # in (time, start) order. A reserved launcher's launch (0 s otherwise) begins at `now` or
        # at the previous start and the instance starts when it ends.
        earliest = now + launch
        for instance, work in zip(instances, works, strict=True):
            if growth or reclaimed:
                if growth:
                    work *= 1.0 + growth * residents
                if reclaimed:
                    work += reclaimed * min(1.0, max(0.0, residents + 1.0 - backed))
                residents += 1
            start = last + spawn
            if start < earliest:
                start = earliest
            last = start
            if stamp is not None:
                instance = stamp(instance, start)
            if idle:
                self._warm_until = start + warmup
                idle = False
            entry = start + delay
            joins.append((entry if entry > self._warm_until else self._warm_until, start,
                          instance, work))
        if self._lock is not None:
            joins = self._lock.joins(joins)
        self._ps.join_later_many(joins, in_order=True)
        self._last_start = last
