"""Independent replications of a run, serial or on a process pool with identical results,
and Student-t confidence intervals over them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from scipy import stats

from sim.engine.cluster import Cluster
from sim.engine.simulate import SimResult, simulate
from sim.policies.protocol import PolicyBuilder
from sim.streams import Stream, stream_rng
from sim.workloads.processes import WorkloadBase

T = TypeVar("T")


@dataclass(frozen=True)
class ReplicationTask:
    """One policy on one cluster and workload: call it with a replication number.

    Picklable (pydantic specs and a PolicyBuilder), so a process pool can run it. Each
    replication builds a fresh policy from the POLICY stream and replays the workload from its
    own streams: every policy with the same seed sees the same requests and work.
    """

    cluster: Cluster
    workload: WorkloadBase
    policy: PolicyBuilder
    seed: int = 0
    sample_period_s: float | None = None
    until_s: float | None = None

    def __call__(self, replication: int) -> SimResult:
        policy = self.policy.build(stream_rng(Stream.POLICY, replication, self.seed))
        return simulate(
            self.cluster,
            self.workload.requests(replication, self.seed),
            policy,
            replication=replication,
            seed=self.seed,
            sample_period_s=self.sample_period_s,
            until_s=self.until_s,
        )


def run_replications(
    task: Callable[[int], T], replications: int | Sequence[int], *, workers: int = 1
) -> list[T]:
    """task(r) for every replication r, in replication order.

    With workers > 1 the replications run on a process pool; since each depends only on its
    own number, the results equal the serial ones exactly. `task` must then be picklable.
    """
    reps = list(range(replications)) if isinstance(replications, int) else list(replications)
    if workers <= 1 or len(reps) <= 1:
        return [task(r) for r in reps]
    with ProcessPoolExecutor(max_workers=min(workers, len(reps))) as pool:
        return list(pool.map(task, reps))


@dataclass(frozen=True)
class ConfidenceInterval:
    """Mean of independent replications with a two-sided Student-t interval."""

    mean: float
    half_width: float
    """NaN with fewer than two replications."""
    n: int
    level: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def confidence_interval(
    values: Sequence[float] | np.ndarray, level: float = 0.95
) -> ConfidenceInterval:
    """Student-t interval of the mean of independent values (one per replication)."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if n < 2:
        return ConfidenceInterval(mean, math.nan, n, level)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sem
    return ConfidenceInterval(mean, half, n, level)


def summarize(
    results: Sequence[SimResult], metric: Callable[[SimResult], float], level: float = 0.95
) -> ConfidenceInterval:
    """Confidence interval of `metric` (one value per replication) over the results."""
    return confidence_interval([metric(r) for r in results], level)
