"""A cluster: groups of identical nodes, each group with its own node model (calibration).
Pure validated data; the engine numbers nodes group by group, in order.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sim.model.node_model import NodeModel


class NodeGroup(BaseModel):
    """`count` nodes that all behave as `model` says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1)
    model: NodeModel
    name: str = ""
    """Label of the group (for example the calibration it came from)."""


class Cluster(BaseModel):
    """The nodes of the simulated platform; heterogeneous when groups differ."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[NodeGroup, ...] = Field(min_length=1)

    @classmethod
    def homogeneous(cls, nodes: int, model: NodeModel, name: str = "") -> Cluster:
        """`nodes` identical nodes."""
        return cls(groups=(NodeGroup(count=nodes, model=model, name=name),))

    @property
    def size(self) -> int:
        """Number of nodes."""
        return sum(group.count for group in self.groups)

    def node_models(self) -> list[NodeModel]:
        """The model of every node, by node id."""
        return [group.model for group in self.groups for _ in range(group.count)]

    def node_groups(self) -> list[str]:
        """The group name of every node, by node id."""
        return [group.name for group in self.groups for _ in range(group.count)]
