"""The engine against queueing theory: M/M/1-PS, M/G/1-PS insensitivity, M/M/c (Erlang C),
and Little's law measured two independent ways on the simulated output.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from sim.engine.cluster import Cluster
from sim.engine.request import Request
from sim.engine.simulate import SimResult, simulate
from sim.model.node_model import NodeModel
from sim.policies.immediate import ImmediatePolicy
from sim.policies.protocol import PlatformView
from sim.workloads.processes import (
    DeterministicWork,
    ExponentialWork,
    FixedSize,
    HyperExponentialWork,
    PoissonWorkload,
    WorkSpec,
)

# One core, no delay, one instance per request: each node is a single-server PS queue whose
# service time is the work (work_s = 1 times the workload's multiplier).
PS_SERVER = NodeModel(cores=1, work_s=1.0, max_rate=1.0)


def batch_means(values: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """Mean and its standard error from batch means (sojourns of a queue are correlated)."""
    usable = values[: values.size // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(values.mean()), float(usable.std(ddof=1) / math.sqrt(batches))


def sojourns(result: SimResult, warmup: int = 1000) -> np.ndarray:
    ordered = sorted(result.instances, key=lambda r: r.request_id)
    return np.array([r.latency_s for r in ordered[warmup:]])


def run_single_server(load: float, work: WorkSpec, requests: int, seed: int) -> SimResult:
    workload = PoissonWorkload(rate_per_s=load, duration_s=requests / load, work=work)
    cluster = Cluster.homogeneous(1, PS_SERVER)
    return simulate(cluster, workload.requests(0, seed), ImmediatePolicy(), seed=seed)


def test_mm1_ps_mean_sojourn_is_service_time_over_one_minus_load() -> None:
    load = 0.7
    result = run_single_server(load, ExponentialWork(), requests=100_000, seed=1)
    mean, se = batch_means(sojourns(result))
    expected = 1.0 / (1.0 - load)
    assert se < 0.03 * expected, "too few samples for a meaningful check"
    assert abs(mean - expected) < 4 * se, f"mean {mean:.3f} vs {expected:.3f} (se {se:.3f})"


@pytest.mark.parametrize(
    "work", [DeterministicWork(), HyperExponentialWork(cv=2.0)], ids=["deterministic", "H2"]
)
def test_mg1_ps_mean_sojourn_does_not_depend_on_the_work_distribution(work: WorkSpec) -> None:
    load = 0.5
    result = run_single_server(load, work, requests=80_000, seed=2)
    mean, se = batch_means(sojourns(result))
    expected = 1.0 / (1.0 - load)
    assert se < 0.03 * expected, "too few samples for a meaningful check"
    assert abs(mean - expected) < 4 * se, f"mean {mean:.3f} vs {expected:.3f} (se {se:.3f})"


class CentralFifo:
    """c single-core nodes fed by one FIFO queue: a request starts on a free node at once, else
    waits; when an instance is ready its node takes the head of the queue. (M/M/c with
    exponential work.)"""

    name = "central_fifo"

    def __init__(self) -> None:
        self.queue: deque[Request] = deque()

    def on_request(self, view: PlatformView, request: Request) -> None:
        for node in view.nodes:
            if node.in_flight == 0 and node.planned == 0:
                view.launch(node.id, request, [0], [view.now])
                return
        self.queue.append(request)

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        if self.queue:
            view.launch(node, self.queue.popleft(), [0], [view.now])


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c (offered load a = lambda/mu < c)."""
    terms = sum(offered**k / math.factorial(k) for k in range(servers))
    last = offered**servers / math.factorial(servers) * servers / (servers - offered)
    return last / (terms + last)


def test_mmc_waiting_matches_erlang_c() -> None:
    servers, rate = 3, 2.1  # mu = 1, so a = 2.1 and rho = 0.7
    workload = PoissonWorkload(rate_per_s=rate, duration_s=60_000 / rate, work=ExponentialWork())
    result = simulate(Cluster.homogeneous(servers, PS_SERVER), workload.requests(0, 3),
                      CentralFifo(), seed=3)
    arrival = {r.request_id: r.arrival_s for r in result.requests}
    ordered = sorted(result.instances, key=lambda r: r.request_id)[1000:]
    waits = np.array([r.launch_s - arrival[r.request_id] for r in ordered])
    p_wait = erlang_c(servers, rate)
    expected_wait = p_wait / (servers - rate)
    mean, se = batch_means(waits)
    assert se < 0.05 * expected_wait
    assert abs(mean - expected_wait) < 4 * se, f"E[Wq] {mean:.4f} vs {expected_wait:.4f}"
    assert np.mean(waits > 0) == pytest.approx(p_wait, abs=0.02)


def test_littles_law_holds_between_sampled_occupancy_and_request_latencies() -> None:
    # Four 2-core nodes with a delay phase, bursts of 5 instances: L from the node counters
    # sampled over time must equal lambda * W from the per-instance records.
    model = NodeModel(cores=2, work_s=0.4, delay_s=0.1, work_cv=0.5)
    rate, size, horizon = 2.0, 5, 5_000.0
    workload = PoissonWorkload(rate_per_s=rate, duration_s=horizon, size=FixedSize(count=size))
    result = simulate(Cluster.homogeneous(4, model), workload.requests(0, 4), ImmediatePolicy(),
                      seed=4, sample_period_s=0.25)
    # The sampler runs on a regular grid over the whole run, [0, end_s], drain included.
    instants = len(result.node_samples) / 4
    occupancy = sum(s.in_flight for s in result.node_samples) / instants
    latencies = np.array([r.latency_s for r in result.instances])
    throughput = len(latencies) / result.end_s
    assert latencies.size > 40_000
    assert occupancy == pytest.approx(throughput * latencies.mean(), rel=0.02)


def test_cpu_busy_matches_offered_work() -> None:
    # Utilisation of a PS server = lambda * E[work] / cores, whatever the policy.
    model = NodeModel(cores=2, work_s=1.0)
    workload = PoissonWorkload(rate_per_s=1.2, duration_s=20_000, work=ExponentialWork())
    result = simulate(Cluster.homogeneous(1, model), workload.requests(0, 5), ImmediatePolicy(),
                      seed=5)
    assert result.nodes[0].cpu_busy == pytest.approx(1.2 * 1.0 / 2, rel=0.03)
