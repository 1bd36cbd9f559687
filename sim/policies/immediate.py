"""`immediate`: the baseline; every instance of a request launched at once on the least-loaded
node. Reports give every other policy's paired difference against it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from sim.policies.base import PolicyBase
from sim.policies.config import PolicyConfig

if TYPE_CHECKING:
    from sim.engine.request import Request
    from sim.policies.protocol import PlatformView


class ImmediateConfig(PolicyConfig):
    """Launch every instance now on the node with the fewest in flight + planned."""

    name: Literal["immediate"] = "immediate"

    def build(self, rng: np.random.Generator) -> ImmediatePolicy:
        return ImmediatePolicy(self.display_name)


class ImmediatePolicy(PolicyBase):
    """Every instance of a request starts now on the least-loaded node (fewest in_flight +
    planned; lowest id among equals), as one launch call."""

    def __init__(self, name: str = "immediate") -> None:
        super().__init__(name)
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

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        self._ready_nodes.append(node)
