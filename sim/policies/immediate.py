"""`immediate`: the baseline; every instance of a request launched at once on the least-loaded
node (the engine's own baseline policy, configured from YAML)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from sim.policies.base import PolicyConfig
from sim.policies.protocol import ImmediatePolicy

if TYPE_CHECKING:
    from sim.policies.protocol import Policy


class ImmediateConfig(PolicyConfig):
    """Launch every instance now on the node with the fewest in flight + planned."""

    name: Literal["immediate"] = "immediate"

    def build(self, rng: np.random.Generator) -> Policy:
        policy = ImmediatePolicy()
        policy.name = self.display_name
        return policy
