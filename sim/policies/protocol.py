"""The interface between the engine and a launch policy: what a policy sees and does
(PlatformView, NodeView) and what the engine calls on it (Policy). The engine knows policies only
through this module; their shared code is sim/policies/base.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sim.engine.request import Request
from sim.model.node_model import NodeModel


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
