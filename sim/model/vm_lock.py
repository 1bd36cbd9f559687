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

from sim.model.kernel import ProcessorSharing, SimTime
from sim.model.node_model import NodeModel

Instance = TypeVar("Instance", default=int)


class _Asks(Generic[Instance]):
    """The part of an instance's work before it asks for the lock; `rest` follows it."""

    __slots__ = ("instance", "rest")

    def __init__(self, instance: Instance, rest: float) -> None:
        self.instance = instance
        self.rest = rest


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

    __slots__ = ("_at", "_held", "_hold", "_ps", "_waiting")

    def __init__(self, model: NodeModel, ps: ProcessorSharing[Instance]) -> None:
        self._ps = ps
        self._at = model.lock_at
        self._hold = model.lock_s
        self._held = False
        self._waiting: deque[_Holds[Instance]] = deque()

    def job(self, instance: Instance, work: float) -> tuple[Instance, float]:
        """The first job of an instance whose work is `work`: its part before the lock."""
        before = self._at * work
        return cast(Instance, _Asks(instance, work - before)), before

    def route(self, now: SimTime, done: list[Instance]) -> list[Instance]:
        """Take the parts out of the kernel's completions `done` (in their order) at `now`: an
        instance that asks takes the lock if it is free, else waits; a release hands the lock to
        the first waiter and the released instance goes on with its rest. Returns the instances
        ready now: those of `done`, and those whose work ended with the lock."""
        ready: list[Instance] = []
        joining: list[tuple[Instance, float]] = []
        for job in done:
            if isinstance(job, _Asks):
                asking: _Holds[Instance] = _Holds(job.instance, job.rest)
                if self._held:
                    self._waiting.append(asking)
                else:
                    joining.append(self._grant(asking))
            elif isinstance(job, _Holds):
                if job.rest > 0.0:
                    joining.append((job.instance, job.rest))
                else:
                    ready.append(job.instance)
                self._held = False
                if self._waiting:
                    joining.append(self._grant(self._waiting.popleft()))
            else:
                ready.append(job)
        if joining:
            self._ps.add_many(now, joining)
        return ready

    def _grant(self, part: _Holds[Instance]) -> tuple[Instance, float]:
        """Give the lock to `part`'s instance: its job while it holds it."""
        self._held = True
        holds = min(self._hold, part.rest)
        part.rest -= holds
        return cast(Instance, part), holds

    @property
    def waiting(self) -> int:
        """Instances asleep waiting for the lock."""
        return len(self._waiting)
