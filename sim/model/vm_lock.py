"""The node's VM-creation lock: QEMU's KVM_CREATE_VM takes one global kernel mutex, so the
instances of a node pass it one at a time (docs/model.md, "The VM-creation lock").

An instance's work w is cut in three: lock_at * w before it asks for the lock, then the lock
held for min(lock_s, what is left), then the rest. Each part is a job of the node's
processor-sharing kernel; an instance waiting for the lock is in no job (it sleeps, sharing
nothing). The lock goes to the waiters in the order they asked (first come, first served).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, cast

from typing_extensions import TypeVar

from sim.model.kernel import Join, ProcessorSharing, SimTime
from sim.model.node_model import NodeModel

Instance = TypeVar("Instance", default=int)


class _Asks(Generic[Instance]):
    """The part of an instance's work before it asks for the lock; `rest` follows it. `start`
    orders the asks of one instant: when its CPU phase began, then the launch order."""

    __slots__ = ("instance", "rest", "start")

    def __init__(self, instance: Instance, rest: float, start: tuple[float, float, int]) -> None:
        self.instance = instance
        self.rest = rest
        self.start = start


class _Holds(Generic[Instance]):
    """The part of an instance's work done holding the lock; `rest` follows its release."""

    __slots__ = ("instance", "rest")

    def __init__(self, instance: Instance, rest: float) -> None:
        self.instance = instance
        self.rest = rest


class VmLock(Generic[Instance]):
    """Cuts each instance's work around the lock and passes the lock on. The kernel's jobs are
    typed as instances (like a fair launcher's launch): the parts never leave the node, route()
    takes them out of the completions."""

    __slots__ = ("_at", "_held", "_hold", "_ps", "_seq", "_waiting")

    def __init__(self, model: NodeModel, ps: ProcessorSharing[Instance]) -> None:
        self._ps = ps
        self._at = model.lock_at
        self._hold = model.lock_s
        self._held = False
        self._waiting: deque[_Holds[Instance]] = deque()
        self._seq = 0

    def joins(self, joins: list[Join[Instance]]) -> list[Join[Instance]]:
        """The kernel joins (CPU phase begins at, order, instance, work) of starting instances,
        each instance's job made its part of the work before the lock."""
        out: list[Join[Instance]] = []
        for entry, order, instance, work in joins:
            before = self._at * work
            self._seq += 1
            out.append((entry, order,
                        cast(Instance, _Asks(instance, work - before, (entry, order, self._seq))),
                        before))
        return out

    def route(self, now: SimTime, done: list[Instance]) -> list[Instance]:
        """Take the parts out of the kernel's completions `done` at `now`: an instance that asks
        takes the lock if it is free, else waits; a release hands the lock to the first waiter
        and the released instance goes on with its rest. Returns the instances ready now: those
        of `done`, and those whose work ended with the lock.

        The asks of one instant queue in the order their CPU phases began (the kernel may list
        parts that end together up to rounding in another order). Where the lock goes does not
        depend on the order of the asks and the releases of one instant: an ask joins the end
        of the queue either way."""
        ready: list[Instance] = []
        joining: list[tuple[Instance, float]] = []
        asks: list[_Asks[Instance]] = []
        for job in done:
            if isinstance(job, _Asks):
                asks.append(job)
            elif isinstance(job, _Holds):
                self._release(job, joining, ready)
            else:
                ready.append(job)
        asks.sort(key=lambda a: a.start)
        for ask in asks:
            asking: _Holds[Instance] = _Holds(ask.instance, ask.rest)
            if self._held:
                self._waiting.append(asking)
            else:
                self._grant(asking, joining, ready)
        if joining:
            self._ps.add_many(now, joining)
        return ready

    def _release(self, part: _Holds[Instance], joining: list[tuple[Instance, float]],
                 ready: list[Instance]) -> None:
        """`part`'s instance releases the lock: it goes on with its rest (or is ready), and the
        first waiter gets the lock."""
        if part.rest > 0.0:
            joining.append((part.instance, part.rest))
        else:
            ready.append(part.instance)
        self._held = False
        if self._waiting:
            self._grant(self._waiting.popleft(), joining, ready)

    def _grant(self, part: _Holds[Instance], joining: list[tuple[Instance, float]],
               ready: list[Instance]) -> None:
        """Give the lock to `part`'s instance: its job while it holds it; with nothing left to
        hold it passes the lock on at once, within the instant."""
        holds = min(self._hold, part.rest)
        if holds > 0.0:
            self._held = True
            part.rest -= holds
            joining.append((cast(Instance, part), holds))
        else:
            self._release(part, joining, ready)
