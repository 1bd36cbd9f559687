"""What every launch policy's YAML settings share: a family is a frozen pydantic config, validated
from the scenario, that builds a fresh policy object per replication."""

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
