"""`split_bundle`: a request above `split_above` is split evenly across the least-loaded nodes;
a request below `bundle_below` joins the other small ones on one node (first fit)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.model.units import seconds
from sim.policies.base import LaunchClock, LoadTracker, PolicyBase
from sim.policies.config import PolicyConfig
from sim.policies.placement import even_split, least_loaded, packing

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView


class SplitBundleConfig(PolicyConfig):
    """Split large requests, bundle small ones, place the rest on the least-loaded node."""

    name: Literal["split_bundle"] = "split_bundle"
    split_above: int = Field(ge=1)
    """A request of more instances than this is split into parts of at most this many."""
    max_parts: int | None = Field(default=None, ge=2)
    """Never split into more parts than this (None: up to the number of nodes)."""
    bundle_below: int = Field(default=0, ge=0)
    """A request of fewer instances than this is bundled (0: never bundle)."""
    bundle_capacity: int = Field(default=64, ge=1)
    """A node keeps taking bundled requests while its load stays within this."""
    interval_ms: float = Field(default=0.0, ge=0)
    """Spacing of launches on a node (0: all at once)."""

    tuning: ClassVar = {"split_above": [25, 50, 100, 200], "bundle_below": [0, 4, 16]}

    @model_validator(mode="after")
    def _bundle_smaller_than_split(self) -> SplitBundleConfig:
        if self.bundle_below > self.split_above:
            raise ValueError("bundle_below must not exceed split_above")
        return self

    def build(self, rng: np.random.Generator) -> SplitBundle:
        return SplitBundle(self)


class SplitBundle(PolicyBase):
    """Deterministic: no random choices."""

    def __init__(self, config: SplitBundleConfig) -> None:
        super().__init__(config.display_name)
        self._config = config
        self._clock = LaunchClock()
        self._load = LoadTracker()

    def parts(self, count: int, nodes: int) -> list[int]:
        """Instances per part for a request of `count` on a cluster of `nodes`."""
        cfg = self._config
        if count <= cfg.split_above:
            return [count]
        n = min(math.ceil(count / cfg.split_above), nodes, cfg.max_parts or nodes)
        return even_split(count, n)

    def on_request(self, view: PlatformView, request: Request) -> None:
        cfg = self._config
        load = self._load.setup(len(view.nodes))
        interval_s = seconds(cfg.interval_ms)
        if request.count < cfg.bundle_below:
            node = packing(load, request.count, cfg.bundle_capacity)
            at = self._clock.times(node, view.now, request.count, interval_s)
            view.launch(node, request, range(request.count), at)
            self._load.launched(node, request.count)
            return
        first = 0
        # Largest part to the least-loaded node, then the next largest to the next, and so on.
        for size in self.parts(request.count, len(load)):
            node = least_loaded(load)
            at = self._clock.times(node, view.now, size, interval_s)
            view.launch(node, request, range(first, first + size), at)
            self._load.launched(node, size)
            first += size

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        self._load.ready(node)
