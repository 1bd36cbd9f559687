"""`batching`: requests wait in a queue and are launched together, when the oldest has waited
`window_s` or the queue holds `max_instances`; the batch is placed in queue order."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from sim.model.units import seconds
from sim.policies.base import SpacedLaunchPolicy
from sim.policies.config import PolicyConfig
from sim.policies.placement import Placement

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView

QueueOrder = Literal["fifo", "smallest_first"]


class BatchingConfig(PolicyConfig):
    """Hold requests up to `window_s` (or until `max_instances` are queued), then launch all."""

    name: Literal["batching"] = "batching"
    window_s: float = Field(gt=0)
    """Longest a request waits for its batch (the timer starts with the batch's first request)."""
    max_instances: int | None = Field(default=None, ge=1)
    """Launch the batch as soon as it holds this many instances (None: only the window)."""
    order: QueueOrder = "fifo"
    """Order in which a batch's requests are placed and launched."""
    placement: Placement = "least_loaded"
    packing_capacity: int = Field(default=64, ge=1)
    interval_ms: float = Field(default=0.0, ge=0)
    """Spacing of launches on a node (0: all at once)."""

    tuning: ClassVar = {
        "window_s": [0.05, 0.1, 0.25, 0.5, 1.0],
        "order": ["fifo", "smallest_first"],
    }

    def build(self, rng: np.random.Generator) -> Batching:
        return Batching(self, rng)


class Batching(SpacedLaunchPolicy[BatchingConfig]):
    """A window timer per batch; a stale timer (batch already flushed by size) is ignored."""

    def __init__(self, config: BatchingConfig, rng: np.random.Generator) -> None:
        super().__init__(config, rng)
        self._queue: list[Request] = []
        self._queued_instances = 0
        self._batch = 0
        """Sequence number of the batch being collected: the token of its window timer."""

    def interval_s(self, view: PlatformView, node: int, request: Request) -> float:
        return seconds(self._config.interval_ms)

    def on_request(self, view: PlatformView, request: Request) -> None:
        if not self._queue:
            view.wake_me(view.now + self._config.window_s, self._batch)
        self._queue.append(request)
        self._queued_instances += request.count
        limit = self._config.max_instances
        if limit is not None and self._queued_instances >= limit:
            self._flush(view)

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        if token == self._batch and self._queue:
            self._flush(view)

    def _flush(self, view: PlatformView) -> None:
        batch = self._queue
        if self._config.order == "smallest_first":
            batch = sorted(batch, key=lambda r: (r.count, r.arrival_s, r.request_id))
        self._queue = []
        self._queued_instances = 0
        self._batch += 1
        for request in batch:
            self.launch_whole(view, request)
