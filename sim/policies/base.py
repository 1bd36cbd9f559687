"""Base classes of the launch policies: default handlers that do nothing, and the skeleton the
spaced-launch families share (place a request whole, space its launches by an interval hook)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import numpy as np

from sim.policies.placement import Placement, place

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView


class PolicyBase(ABC):
    """A policy (sim.policies.protocol.Policy) that ignores timers and ready instances unless a
    subclass overrides those handlers."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def on_request(self, view: PlatformView, request: Request) -> None:
        """Decide where and when the request's instances start."""

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        """Only policies that call view.wake_me get here."""
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        """Nothing to update by default."""
        return None


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


class SpacedLaunchSettings(Protocol):
    """What a spaced-launch family's config gives its policy (besides its interval rule)."""

    placement: Placement
    packing_capacity: int

    @property
    def display_name(self) -> str: ...


C = TypeVar("C", bound=SpacedLaunchSettings)


class SpacedLaunchPolicy(PolicyBase, Generic[C]):
    """Each request goes whole to the node `placement` picks (load: instances launched and not
    yet ready); its launches there are spaced by `interval_s`, after those still planned on the
    node. Families differ only in the interval (and batching in when it launches)."""

    def __init__(self, config: C, rng: np.random.Generator) -> None:
        super().__init__(config.display_name)
        self._config = config
        self._rng = rng
        self._clock = LaunchClock()
        self._load = LoadTracker()

    @abstractmethod
    def interval_s(self, view: PlatformView, node: int, request: Request) -> float:
        """Spacing of `request`'s launches on `node`, chosen before any of them is planned."""

    def on_request(self, view: PlatformView, request: Request) -> None:
        self.launch_whole(view, request)

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        self._load.ready(node)

    def launch_whole(self, view: PlatformView, request: Request) -> None:
        """Place `request` on one node and plan its launches there, spaced by interval_s."""
        load = self._load.setup(len(view.nodes))
        node = place(self._config.placement, load, request.count, self._rng,
                     self._config.packing_capacity)
        at = self._clock.times(node, view.now, request.count, self.interval_s(view, node, request))
        view.launch(node, request, range(request.count), at)
        self._load.launched(node, request.count)
