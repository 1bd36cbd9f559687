"""A user's launch request: how many instances, for whom, when.
Pure data shared by workloads, policies and the engine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Request(BaseModel):
    """One launch request arriving at the platform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: int = Field(ge=0)
    """Unique within a workload, in arrival order."""
    tenant: str = "t0"
    """Who asked."""
    count: int = Field(ge=1)
    """Instances to launch."""
    memory_mb: int = Field(default=128, ge=1)
    """Guest memory per instance (the study found it barely matters; kept for placement)."""
    arrival_s: float = Field(ge=0)
    """When the request reaches the platform (simulation seconds)."""
    lifetime_s: float | None = Field(default=None, ge=0)
    """How long each instance keeps running once ready; None: until the end of the run."""
    work_scale: tuple[float, ...] | None = None
    """Per-instance CPU work as a multiple of the node's work_s; None: the node's lognormal."""

    @model_validator(mode="after")
    def _one_scale_per_instance(self) -> Request:
        if self.work_scale is not None:
            if len(self.work_scale) != self.count:
                raise ValueError(
                    f"work_scale has {len(self.work_scale)} values for {self.count} instances"
                )
            if min(self.work_scale) < 0:
                raise ValueError("work_scale values must be >= 0")
        return self
