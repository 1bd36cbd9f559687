"""The engine's side of one node: its NodeState, the work of the instances launched on it, and
its entry in the agenda; what policies see of it (a NodeView).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sim.engine.flight import Flight, RequestState
from sim.model.node_model import NodeModel, WorkFromNormal
from sim.model.node_state import NodeState

SimTime = float


def _launched_at(flight: Flight, at: SimTime) -> Flight:
    """The flight of an instance its launcher launched at `at`: a queueing launcher's launches
    end later than planned, and an instance's record gives both times."""
    return (flight[0], flight[1], flight[2], at)


class EngineNode:
    """One node of a run: NodeState plus agenda bookkeeping (a NodeView)."""

    __slots__ = (
        "clock", "cpu_mark", "generation", "id", "launches", "model", "state", "wake_at",
        "waking", "work",
    )

    def __init__(self, node_id: int, model: NodeModel, clock: Callable[[], SimTime],
                 waking: Callable[[], int | None]) -> None:
        self.id = node_id
        self.model = model
        self.clock = clock
        """The engine's current time."""
        self.waking = waking
        """The node whose wake-up is being processed, if any."""
        self.state: NodeState[Flight] = NodeState(model, _launched_at)
        self.work = WorkFromNormal(model)
        self.generation = 0
        self.wake_at = math.inf
        """Time of the live agenda entry (inf: none)."""
        self.launches = 0
        self.cpu_mark = 0.0
        """Busy core-seconds at the previous sample."""

    def _observe(self) -> NodeState[Flight]:
        # Planned starts are counted lazily (NodeState.observe). A start at `now` counts as the
        # node's own wake-up at `now` would: not yet while a node ordered before it is woken.
        waking = self.waking()
        self.state.observe(self.clock(), waking is None or self.id <= waking)
        return self.state

    @property
    def in_flight(self) -> int:
        return self._observe().in_flight

    @property
    def ready(self) -> int:
        return self.state.ready

    @property
    def planned(self) -> int:
        return self._observe().planned

    def launch(self, now: SimTime, st: RequestState, instances: Sequence[int],
               at: Sequence[float]) -> None:
        """Start (at or before `now`) or plan (later) the request's `instances` at times `at`."""
        if st.scale is not None:
            work_s = self.model.work_s
            scale = st.scale
            all_works = [work_s * scale[index] for index in instances]
        else:
            assert st.z is not None
            all_works = self.work.of(st.z, instances)
        started: list[Flight] = []
        works: list[float] = []
        planned: list[Flight] = []
        planned_at: list[float] = []
        planned_works: list[float] = []
        for index, t, work in zip(instances, at, all_works, strict=True):
            if t <= now:
                started.append((st, index, t, now))
                works.append(work)
            else:
                planned.append((st, index, t, t))
                planned_at.append(t)
                planned_works.append(work)
        if planned:  # (before the started ones, as one plan() per instance in the loop did)
            self.state.plan_batch(planned_at, planned, planned_works, st.lifetime)
        if started:
            self.state.launch_batch(now, started, works, st.lifetime)
        self.launches += len(instances)
