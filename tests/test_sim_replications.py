"""Replications: serial and process-pool runs give identical results; confidence intervals
cover the true mean as often as they claim.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.cluster import Cluster
from sim.model.node_model import NodeModel
from sim.policies.protocol import ImmediateBuilder
from sim.sweep.replications import ReplicationTask, confidence_interval, run_replications, summarize
from sim.workloads.processes import GeometricSize, PoissonWorkload

TASK = ReplicationTask(
    cluster=Cluster.homogeneous(4, NodeModel(cores=2, work_s=0.3, delay_s=0.1, work_cv=0.5)),
    workload=PoissonWorkload(rate_per_s=4.0, duration_s=100.0, size=GeometricSize(mean=5)),
    policy=ImmediateBuilder(),
    seed=11,
    sample_period_s=1.0,
)


def test_parallel_replications_equal_serial_ones_exactly() -> None:
    serial = run_replications(TASK, 4)
    parallel = run_replications(TASK, 4, workers=2)
    assert [r.replication for r in parallel] == [0, 1, 2, 3]
    assert serial == parallel
    assert serial[0].instances != serial[1].instances  # replications differ from each other


def test_a_replication_does_not_depend_on_which_others_run() -> None:
    alone = run_replications(TASK, [2])
    assert alone[0] == run_replications(TASK, 3)[2]


def test_confidence_intervals_cover_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng([7, 0, 1])
    covered = [3.0 in confidence_interval(rng.normal(3.0, 2.0, 5)) for _ in range(4000)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.012)


def test_summaries_over_replications() -> None:
    results = run_replications(TASK, 3)
    ci = summarize(results, lambda r: float(np.mean([i.latency_s for i in r.instances])))
    assert ci.n == 3 and ci.low < ci.mean < ci.high
    single = confidence_interval([1.0])
    assert single.mean == 1.0 and np.isnan(single.half_width)
