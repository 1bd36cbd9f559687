"""`model_based`: each node's interval (or concurrency cap) chosen from its calibrated NodeModel
so that a burst's first instance is ready soonest while its last stays within `slack` of the
fastest possible."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from sim.model.node_model import NodeModel
from sim.model.node_state import NodeState
from sim.model.ready_times import ready_times
from sim.model.units import seconds
from sim.policies.base import SpacedLaunchPolicy
from sim.policies.concurrency_cap import ConcurrencyCap, ConcurrencyCapConfig
from sim.policies.config import PolicyConfig
from sim.policies.placement import Placement, place

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView

DEFAULT_INTERVALS_MS: tuple[float, ...] = (0, 1, 2, 3, 5, 7, 10, 13, 16, 20, 25, 30, 40, 50)
DEFAULT_CAPS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512)


@dataclass(frozen=True, slots=True)
class BurstOutcome:
    """When the first and the last instance of a burst on an idle node are ready (s)."""

    first_ready_s: float
    all_ready_s: float


def interval_burst(model: NodeModel, count: int, interval_s: float) -> BurstOutcome:
    """A burst of `count` launched every `interval_s` on an idle node, each with mean work."""
    ready = ready_times(model, np.arange(count) * interval_s, np.full(count, model.work_s))
    return BurstOutcome(float(ready.min()), float(ready.max()))


def capped_burst(model: NodeModel, count: int, cap: int) -> BurstOutcome:
    """A burst of `count` with at most `cap` in flight: a new launch whenever one is ready."""
    node = NodeState(model)
    launched = min(cap, count)
    for i in range(launched):
        node.launch(0.0, i, model.work_s)
    first = math.inf
    last = math.nan
    t = node.next_event()
    while t != math.inf:
        done = node.advance(t)
        if done:
            first = min(first, t)
            last = t
            for _ in done:
                if launched < count:
                    node.launch(t, launched, model.work_s)
                    launched += 1
        t = node.next_event()
    return BurstOutcome(first, last)


def choose(outcomes: Sequence[BurstOutcome], slack: float) -> int:
    """Index of the outcome with the earliest first-ready among those whose all-ready is within
    (1 + slack) of the best all-ready; ties go to the earlier candidate."""
    best_all = min(o.all_ready_s for o in outcomes)
    allowed = [i for i, o in enumerate(outcomes) if o.all_ready_s <= (1 + slack) * best_all]
    return min(allowed, key=lambda i: (outcomes[i].first_ready_s, i))


def count_grid(count: int) -> int:
    """Round a burst size up to a geometric grid (ratio ~1.2) so that few sizes are modelled."""
    if count <= 8:
        return count
    return math.ceil(8 * 1.2 ** math.ceil(math.log(count / 8, 1.2) - 1e-9))


@lru_cache(maxsize=4096)
def best_interval_s(model: NodeModel, count: int, slack: float,
                    candidates_ms: tuple[float, ...]) -> float:
    """The interval (s) `model_based` uses for a burst of `count` on a node of `model`."""
    outcomes = [interval_burst(model, count, seconds(ms)) for ms in candidates_ms]
    return seconds(candidates_ms[choose(outcomes, slack)])


@lru_cache(maxsize=4096)
def best_cap(model: NodeModel, count: int, slack: float, candidates: tuple[int, ...]) -> int:
    """The concurrency cap `model_based` uses for a burst of `count` on a node of `model`."""
    usable = (*tuple(c for c in candidates if c < count), count)
    outcomes = [capped_burst(model, count, cap) for cap in usable]
    return usable[choose(outcomes, slack)]


class ModelBasedConfig(PolicyConfig):
    """Pick each node's interval or cap from its model for the burst it is about to launch."""

    name: Literal["model_based"] = "model_based"
    mode: Literal["interval", "cap"] = "interval"
    """interval: space launches like count_interval; cap: admission control like
    concurrency_cap (per-node queues), with the cap re-chosen at each request."""
    slack: float = Field(default=0.1, ge=0)
    """All-ready may exceed the fastest all-ready by this fraction (0.1 = 10 %)."""
    intervals_ms: tuple[float, ...] = Field(default=DEFAULT_INTERVALS_MS, min_length=1)
    caps: tuple[int, ...] = Field(default=DEFAULT_CAPS, min_length=1)
    placement: Placement = "least_loaded"
    packing_capacity: int = Field(default=64, ge=1)

    tuning: ClassVar = {"slack": [0.0, 0.05, 0.1, 0.2, 0.4], "mode": ["interval", "cap"]}

    def build(self, rng: np.random.Generator) -> ModelBasedInterval | ModelBasedCap:
        if self.mode == "cap":
            return ModelBasedCap(self, rng)
        return ModelBasedInterval(self, rng)


class ModelBasedInterval(SpacedLaunchPolicy[ModelBasedConfig]):
    """count_interval whose interval comes from the node's model rather than a table."""

    def interval_s(self, view: PlatformView, node: int, request: Request) -> float:
        cfg = self._config
        burst = count_grid(view.nodes[node].planned + request.count)
        return best_interval_s(view.nodes[node].model, burst, cfg.slack, cfg.intervals_ms)


class ModelBasedCap(ConcurrencyCap):
    """concurrency_cap with a per-node cap chosen from the model for the node's current burst."""

    def __init__(self, config: ModelBasedConfig, rng: np.random.Generator) -> None:
        cap_config = ConcurrencyCapConfig(
            label=config.display_name, max_in_flight=max(config.caps),
            placement=config.placement,
        )
        super().__init__(cap_config, rng)
        self._model_config = config
        self._node_caps = np.zeros(0, dtype=np.int64)

    def _cap(self, node: int) -> int:
        return int(self._node_caps[node])

    def _caps(self) -> np.ndarray | int:
        return self._node_caps

    def on_request(self, view: PlatformView, request: Request) -> None:
        self._setup(len(view.nodes))
        if self._node_caps.size == 0:
            self._node_caps = np.full(len(view.nodes), max(self._model_config.caps))
        cfg = self._model_config
        load = self._in_flight + self._queued
        node = place(cfg.placement, load, request.count, self._rng, cfg.packing_capacity)
        burst = count_grid(int(load[node]) + request.count)
        self._node_caps[node] = best_cap(view.nodes[node].model, burst, cfg.slack, cfg.caps)
        self._enqueue(view, node, request)
