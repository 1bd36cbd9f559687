"""`fixed_interval`: each request goes whole to one node; launches on a node are spaced by a
fixed interval, also across requests (a node never launches two instances closer than that)."""

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


class FixedIntervalConfig(PolicyConfig):
    """Launch a request's instances one every `interval_ms` on the node chosen by `placement`."""

    name: Literal["fixed_interval"] = "fixed_interval"
    interval_ms: float = Field(ge=0)
    """Spacing between two launches on the same node."""
    placement: Placement = "least_loaded"
    """Which node takes a request (load = in flight + planned launches)."""
    packing_capacity: int = Field(default=64, ge=1)
    """With placement `packing`: fill a node up to this load before using the next."""

    tuning: ClassVar = {"interval_ms": [0, 2, 5, 10, 15, 20, 30]}

    def build(self, rng: np.random.Generator) -> FixedInterval:
        return FixedInterval(self, rng)


class FixedInterval(SpacedLaunchPolicy[FixedIntervalConfig]):
    """Spaces launches per node by a constant interval."""

    def interval_s(self, view: PlatformView, node: int, request: Request) -> float:
        return seconds(self._config.interval_ms)
