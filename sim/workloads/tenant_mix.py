"""A multi-tenant workload: each named tenant has its own arrival process and request sizes; their
requests are merged in arrival order, each tenant drawing from its own random streams."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.engine.request import Request
from sim.workloads.processes import DailyWorkload, MMPPWorkload, PoissonWorkload, TraceWorkload

SingleWorkload = Annotated[
    PoissonWorkload | MMPPWorkload | DailyWorkload | TraceWorkload, Field(discriminator="kind")
]


def tenant_seed(seed: int, tenant: int) -> int:
    """The seed of tenant number `tenant`'s streams: a hash of (seed, tenant), so that tenants
    never share a stream and no two studies' seeds overlap the way seed + i would."""
    return int(np.random.SeedSequence([seed, tenant]).generate_state(1, dtype=np.uint32)[0])


class TenantMix(BaseModel):
    """Tenants by name, each with its own workload; request ids are renumbered in merged order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["tenants"] = "tenants"
    tenants: dict[str, SingleWorkload] = Field(min_length=1)

    def requests(self, replication: int, seed: int) -> Iterator[Request]:
        """Every tenant's requests, merged by arrival time (ties: tenant order, then id)."""
        streams = [
            _keyed(number, name, workload, replication, seed)
            for number, (name, workload) in enumerate(self.tenants.items())
        ]
        for request_id, (_, _, _, tenant, request) in enumerate(heapq.merge(*streams)):
            yield request.model_copy(update={"request_id": request_id, "tenant": tenant})


def _keyed(number: int, name: str, workload: SingleWorkload, replication: int, seed: int
           ) -> Iterator[tuple[float, int, int, str, Request]]:
    """One tenant's requests with their merge key and tenant label."""
    many = workload.tenants > 1
    for r in workload.requests(replication, tenant_seed(seed, number)):
        yield r.arrival_s, number, r.request_id, f"{name}.{r.tenant}" if many else name, r
