"""What every launch policy's YAML settings share, and per-node launch clocks for spacing.

A policy family is a frozen pydantic config (validated from the scenario) that builds a fresh
policy object per replication.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from sim.policies.protocol import Policy


class PolicyConfig(BaseModel):
    """Settings common to all policies; subclasses add `name: Literal[...]` and their knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str | None = Field(default=None, min_length=1)
    """Name of this policy in records and reports; defaults to the family name. Give one when a
    scenario compares the same family with different settings."""

    tuning: ClassVar[dict[str, list[Any]]] = {}
    """Default grid of `sim tune`: parameter -> candidate values."""

    @property
    def display_name(self) -> str:
        name: str = getattr(self, "name")  # noqa: B009 - set by every subclass as a Literal
        return self.label or name

    @classmethod
    def tuning_point(cls, point: dict[str, Any]) -> dict[str, Any]:
        """Settings for one grid point of `sim tune` (a family may add implied settings)."""
        return dict(point)

    def build(self, rng: np.random.Generator) -> Policy:
        """A fresh policy for one replication; `rng` serves its random choices only."""
        raise NotImplementedError


class LoadTracker:
    """Instances a policy launched (planned or started) and not yet ready, per node.

    Equal to each node's in_flight + planned when the policy made every launch, and kept by
    counting, so that placing a request costs one numpy pass instead of a walk over node views.
    """

    __slots__ = ("load",)

    def __init__(self) -> None:
        self.load: np.ndarray = np.zeros(0, dtype=np.int64)

    def setup(self, nodes: int) -> np.ndarray:
        """The load array, created at the first request (the policy learns the node count)."""
        if self.load.size != nodes:
            self.load = np.zeros(nodes, dtype=np.int64)
        return self.load

    def launched(self, node: int, count: int) -> None:
        self.load[node] += count

    def ready(self, node: int) -> None:
        self.load[node] -= 1


class LaunchClock:
    """Next free launch slot per node: launches on a node are spaced by at least the interval
    given with each batch, across requests as well as within one."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[int, float] = {}

    def times(self, node: int, now: float, count: int, interval_s: float) -> list[float]:
        """Launch times for `count` instances on `node`, starting no earlier than now."""
        start = max(now, self._next.get(node, now))
        times = [start + i * interval_s for i in range(count)]
        self._next[node] = times[-1] + interval_s if times else start
        return times

    def backlog(self, node: int, now: float, interval_s: float) -> int:
        """Launches still waiting for their slot on `node` at `now` (for interval choices)."""
        if interval_s <= 0:
            return 0
        return max(0, round((self._next.get(node, now) - now) / interval_s))
