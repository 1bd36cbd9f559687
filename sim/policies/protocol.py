"""What a launch policy sees and does (PlatformView), what the engine calls on it (Policy),
and the baseline `immediate` policy. The engine knows policies only through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.engine.request import Request
from sim.model.node_model import NodeModel

__all__ = [
    "ImmediateBuilder",
    "ImmediatePolicy",
    "NodeView",
    "PlatformView",
    "Policy",
    "PolicyBuilder",
    "Request",
]


class NodeView(Protocol):
    """A node as a policy sees it (read only), up to date at view.now."""

    @property
    def id(self) -> int: ...
    @property
    def model(self) -> NodeModel: ...
    @property
    def in_flight(self) -> int:
        """Launched (started) and not yet ready."""
        ...
    @property
    def ready(self) -> int:
        """Ready and still running."""
        ...
    @property
    def planned(self) -> int:
        """Launches scheduled for a later time and not started yet."""
        ...


class PlatformView(Protocol):
    """The platform during one engine callback: its time, its nodes, and two actions."""

    @property
    def now(self) -> float: ...
    @property
    def nodes(self) -> Sequence[NodeView]: ...
    @property
    def ready_request(self) -> Request | None:
        """During on_instance_ready: the request the ready instance belongs to; else None."""
        ...

    def launch(
        self, node: int, request: Request, instances: Sequence[int], at: Sequence[float]
    ) -> None:
        """Launch `instances` (indices 0..count-1 of `request`) on `node`, instance i at the
        absolute time at[i] >= now. Planned launches live in the node's own event heap."""
        ...

    def wake_me(self, at: float, token: object) -> None:
        """Call the policy's on_wakeup(view, token) at absolute time `at` (>= now)."""
        ...


class Policy(Protocol):
    """Decides where (node) and when (absolute time) each instance of each request starts."""

    name: str

    def on_request(self, view: PlatformView, request: Request) -> None: ...
    def on_wakeup(self, view: PlatformView, token: object) -> None: ...
    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None: ...


class PolicyBuilder(Protocol):
    """Makes a fresh policy for one replication (policies keep state, so never share one)."""

    def build(self, rng: np.random.Generator) -> Policy: ...


class ImmediatePolicy:
    """Baseline: every instance of a request starts now on the least-loaded node (fewest
    in_flight + planned; lowest id among equals), as one launch call."""

    name = "immediate"

    def __init__(self) -> None:
        self._load: np.ndarray | None = None
        """in_flight + planned per node, kept by counting our launches and ready callbacks so
        that choosing a node is one argmin instead of a scan of Python objects."""
        self._ready_nodes: list[int] = []
        """Nodes of the instances ready since the last request, subtracted from _load then:
        one list append per ready instance instead of a numpy scalar update."""

    def on_request(self, view: PlatformView, request: Request) -> None:
        if self._load is None:
            self._load = np.array([n.in_flight + n.planned for n in view.nodes], dtype=np.int64)
        if self._ready_nodes:
            self._load -= np.bincount(self._ready_nodes, minlength=self._load.size)
            self._ready_nodes.clear()
        node = int(np.argmin(self._load))
        count = request.count
        view.launch(node, request, range(count), [view.now] * count)
        self._load[node] += count

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        self._ready_nodes.append(node)


@dataclass(frozen=True)
class ImmediateBuilder:
    """PolicyBuilder of the baseline (picklable, for parallel replications)."""

    def build(self, rng: np.random.Generator) -> Policy:
        return ImmediatePolicy()
