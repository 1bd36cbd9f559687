"""A request on its way through the engine, and each of its instances in flight: what a node
holds for an instance and hands back when it is ready.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sim.engine.records import Row
from sim.engine.request import Request
from sim.model.burst_stats import P10, interpolate, quantile_ranks

SimTime = float


class RequestState:
    """A request between its arrival and its last instance ready."""

    __slots__ = (
        "arrival", "count", "early", "first_ready", "latency_sum", "launched", "launched_mask",
        "lifetime", "nodes", "p10_need", "p10_ranks", "ready", "request", "request_id", "scale",
        "z",
    )

    def __init__(self, request: Request, z: list[float] | None) -> None:
        self.request = request
        self.request_id = request.request_id
        self.arrival = request.arrival_s
        self.count = request.count
        self.z = z
        """Standard normal draws of the instances' work (None: request.work_scale gives it)."""
        self.scale = request.work_scale
        self.lifetime = math.inf if request.lifetime_s is None else request.lifetime_s
        self.launched = 0
        self.launched_mask = bytearray(request.count)
        """1 for each instance index already launched."""
        self.ready = 0
        self.first_ready = math.nan
        self.p10_ranks = quantile_ranks(request.count, P10)
        self.p10_need = self.p10_ranks[1] + 1
        """How many of the earliest ready times p10 depends on."""
        self.early: list[float] = []
        """The first p10_need ready times, in order (the engine appends them)."""
        self.latency_sum = 0.0
        self.nodes: set[int] = set()

    def mark_launched(self, instances: Sequence[int]) -> None:
        """Refuse to launch an instance twice (a policy bug that would duplicate records)."""
        mask = self.launched_mask
        if isinstance(instances, range) and instances.step == 1:
            start, stop = instances.start, instances.stop
            if mask.find(1, start, stop) != -1:
                raise ValueError(f"request {self.request_id}: an instance in "
                                 f"{start}..{stop - 1} was already launched")
            mask[start:stop] = b"\x01" * (stop - start)
            return
        if len(set(instances)) != len(instances) or any(mask[i] for i in instances):
            raise ValueError(f"request {self.request_id}: an instance is launched twice")
        for i in instances:
            mask[i] = 1

    def record(self, end: SimTime) -> Row:
        """The request's record when it ends at `end` (all ready, or the run stopped)."""
        request = self.request
        complete = self.ready == request.count
        all_ready = end if complete else math.nan
        return (
            request.request_id, request.tenant, request.count, request.arrival_s,
            self.first_ready, self.p10_ready(), all_ready, self.first_ready - request.arrival_s,
            all_ready - request.arrival_s, len(self.nodes),
            self.latency_sum / self.ready if self.ready else math.nan, self.ready, complete,
        )

    def p10_ready(self) -> float:
        """When 10 % of the instances were ready (burst_stats' quantile of all the request's
        ready times); NaN when the run ended before the instances it depends on were."""
        lower, upper, weight = self.p10_ranks
        if len(self.early) <= upper:
            return math.nan
        return interpolate(self.early[lower], self.early[upper], weight)


Flight = tuple[RequestState, int, float, float]
"""An instance in flight, as its node holds it: (request, index in request, planned launch time,
launch time). The node hands it back when the instance is ready (no lookup by id); a queueing
launcher's node restamps the launch time when the launch ends (NodeState's `launched`)."""
