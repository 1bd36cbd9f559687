"""`count_interval`: the launch interval on a node chosen from how many instances the node will
launch (its planned launches plus the new request): larger when few, smaller when many."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.model.units import seconds
from sim.policies.base import SpacedLaunchPolicy
from sim.policies.config import PolicyConfig
from sim.policies.placement import Placement

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView


class IntervalStep(BaseModel):
    """Counts up to `up_to` (inclusive; None: any larger count) launch every `interval_ms`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    up_to: int | None = Field(default=None, ge=1)
    interval_ms: float = Field(ge=0)


class CountIntervalConfig(PolicyConfig):
    """Interval from a step table, or `spread_ms / count` clamped to [min, max]."""

    name: Literal["count_interval"] = "count_interval"
    table: tuple[IntervalStep, ...] | None = None
    """Steps in increasing `up_to`; a count above the last bound uses the last interval."""
    spread_ms: float | None = Field(default=None, gt=0)
    """Spread the node's launches over this long: interval = spread_ms / count."""
    min_interval_ms: float = Field(default=0.0, ge=0)
    max_interval_ms: float | None = Field(default=None, ge=0)
    """Upper clamp of the spread rule (None: no upper clamp)."""
    placement: Placement = "least_loaded"
    packing_capacity: int = Field(default=64, ge=1)

    tuning: ClassVar = {"spread_ms": [250, 500, 1000, 2000, 4000], "max_interval_ms": [10, 20, 40]}

    @model_validator(mode="after")
    def _one_rule(self) -> CountIntervalConfig:
        if (self.table is None) == (self.spread_ms is None):
            raise ValueError("give exactly one of `table` or `spread_ms`")
        if self.table is not None:
            if not self.table:
                raise ValueError("`table` needs at least one step")
            bounds = [s.up_to for s in self.table]
            if any(b is None for b in bounds[:-1]):
                raise ValueError("only the last step of `table` may omit `up_to`")
            finite = [b for b in bounds if b is not None]
            if finite != sorted(set(finite)):
                raise ValueError("`table` steps must have strictly increasing `up_to`")
        if self.max_interval_ms is not None and self.min_interval_ms > self.max_interval_ms:
            raise ValueError("min_interval_ms is above max_interval_ms")
        return self

    @classmethod
    def tuning_point(cls, point: dict[str, Any]) -> dict[str, Any]:
        """Tuning the spread rule replaces a table given in the scenario."""
        return {**point, "table": None} if "spread_ms" in point else dict(point)

    def interval_ms(self, count: int) -> float:
        """The interval for a node that will launch `count` instances."""
        if self.table is not None:
            chosen = self.table[-1].interval_ms
            for step in self.table:
                if step.up_to is None or count <= step.up_to:
                    chosen = step.interval_ms
                    break
            return chosen
        assert self.spread_ms is not None
        raw = self.spread_ms / max(count, 1)
        upper = math.inf if self.max_interval_ms is None else self.max_interval_ms
        return min(upper, max(self.min_interval_ms, raw))

    def build(self, rng: np.random.Generator) -> CountInterval:
        return CountInterval(self, rng)


class CountInterval(SpacedLaunchPolicy[CountIntervalConfig]):
    """Places each request whole and spaces its launches by interval(planned + count)."""

    def interval_s(self, view: PlatformView, node: int, request: Request) -> float:
        return seconds(self._config.interval_ms(view.nodes[node].planned + request.count))
