"""`concurrency_cap`: admission control; at most `max_in_flight` initialisations per node, the
rest wait in a queue (per node, or one shared by the cluster) served fifo or smallest first."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from sim.policies.base import PolicyBase
from sim.policies.batching import QueueOrder
from sim.policies.config import PolicyConfig
from sim.policies.placement import Placement, place

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView

QueueKind = Literal["per_node", "shared"]


class ConcurrencyCapConfig(PolicyConfig):
    """Cap the instances initialising at once on each node."""

    name: Literal["concurrency_cap"] = "concurrency_cap"
    max_in_flight: int = Field(ge=1)
    """Most instances launched and not yet ready on one node."""
    placement: Placement = "least_loaded"
    """per_node: which node's queue a request joins (load = in flight + queued there);
    shared: which node with a free slot takes the head of the queue."""
    order: QueueOrder = "fifo"
    """Which waiting request is served first: arrival order or fewest instances."""
    queue: QueueKind = "per_node"
    """per_node: a request stays whole on the node it was placed on; shared: one cluster queue,
    any node with a free slot takes the next instances (a request may span nodes)."""

    tuning: ClassVar = {
        "max_in_flight": [1, 2, 4, 8, 16, 32, 64],
        "order": ["fifo", "smallest_first"],
    }

    def build(self, rng: np.random.Generator) -> ConcurrencyCap:
        return ConcurrencyCap(self, rng)


@dataclass(order=True, slots=True)
class _Waiting:
    """A request with instances left to launch; ordered by the queue's key."""

    key: tuple[float, ...]
    request: Request = field(compare=False)
    next_instance: int = field(default=0, compare=False)

    @property
    def left(self) -> int:
        return self.request.count - self.next_instance


class ConcurrencyCap(PolicyBase):
    """Admits queued instances whenever a node has a free slot (on arrival and on each ready)."""

    def __init__(self, config: ConcurrencyCapConfig, rng: np.random.Generator) -> None:
        super().__init__(config.display_name)
        self._config = config
        self._rng = rng
        self._seq = 0
        self._in_flight = np.zeros(0, dtype=np.int64)
        """Instances this policy launched per node that are not ready yet."""
        self._queues: list[list[_Waiting]] = []
        """Heaps of waiting requests: one per node, or a single shared one."""
        self._queued = np.zeros(0, dtype=np.int64)
        """Instances waiting per queue."""

    def _setup(self, nodes: int) -> None:
        if self._in_flight.size == 0:
            self._in_flight = np.zeros(nodes, dtype=np.int64)
            queues = nodes if self._config.queue == "per_node" else 1
            self._queues = [[] for _ in range(queues)]
            self._queued = np.zeros(queues, dtype=np.int64)

    def _cap(self, node: int) -> int:
        """The cap of `node` (one value here; the model-based policy sets it per node)."""
        return self._config.max_in_flight

    def _caps(self) -> np.ndarray | int:
        """Every node's cap (broadcastable against the per-node arrays)."""
        return self._config.max_in_flight

    def on_request(self, view: PlatformView, request: Request) -> None:
        self._setup(len(view.nodes))
        cfg = self._config
        if cfg.queue == "shared":
            self._enqueue(view, 0, request)
            return
        load = self._in_flight + self._queued
        node = place(cfg.placement, load, request.count, self._rng, cfg.max_in_flight)
        self._enqueue(view, node, request)

    def _enqueue(self, view: PlatformView, queue: int, request: Request) -> None:
        """Queue `request` (on node `queue`, or the shared queue 0) and admit what fits."""
        if self._config.order == "smallest_first":
            key: tuple[float, ...] = (float(request.count), float(self._seq))
        else:
            key = (float(self._seq),)
        self._seq += 1
        heapq.heappush(self._queues[queue], _Waiting(key, request))
        self._queued[queue] += request.count
        if self._config.queue == "shared":
            self._admit_shared(view)
        else:
            self._admit(view, queue, queue)

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        self._in_flight[node] -= 1
        # After every admission either the queue is empty or no node has a free slot, so the
        # node that just freed one is the only candidate: no scan of the cluster needed.
        self._admit(view, node, 0 if self._config.queue == "shared" else node)

    def _admit(self, view: PlatformView, node: int, queue: int) -> None:
        """Launch from `queue` onto `node` while the node has free slots."""
        heap = self._queues[queue]
        cap = self._cap(node)
        while heap and self._in_flight[node] < cap:
            head = heap[0]
            n = min(cap - int(self._in_flight[node]), head.left)
            first = head.next_instance
            view.launch(node, head.request, range(first, first + n), [view.now] * n)
            self._in_flight[node] += n
            self._queued[queue] -= n
            head.next_instance += n
            if head.left == 0:
                heapq.heappop(heap)

    def _admit_shared(self, view: PlatformView) -> None:
        while self._queues[0]:
            free = np.flatnonzero(self._in_flight < self._caps())
            if free.size == 0:
                return
            node = int(free[place(self._config.placement, self._in_flight[free], 1, self._rng,
                                  self._config.max_in_flight)])
            self._admit(view, node, 0)
