"""The engine's mechanics: same physics as the node model, reproducibility, common random numbers,
the policy interface (launch, plan, timers, callbacks) and bounded event queues.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from sim.engine.cluster import Cluster, NodeGroup
from sim.engine.request import Request
from sim.engine.simulate import SimResult, simulate
from sim.model.node_model import NodeModel
from sim.model.ready_times import launched_and_ready_times, ready_times
from sim.policies.immediate import ImmediatePolicy
from sim.policies.protocol import PlatformView
from sim.streams import Stream, stream_rng
from sim.workloads.processes import FixedSize, GeometricSize, PoissonWorkload

NODE = NodeModel(cores=2, work_s=0.5, delay_s=0.2, work_cv=0.4, spawn_s=0.003)


class IntervalOnNode:
    """Test policy: every request goes to one node, its instances `interval_s` apart."""

    def __init__(self, node: int = 0, interval_s: float = 0.0, name: str = "interval") -> None:
        self.node = node
        self.interval_s = interval_s
        self.name = name
        self.seen: list[Request] = []

    def on_request(self, view: PlatformView, request: Request) -> None:
        self.seen.append(request)
        at = [view.now + i * self.interval_s for i in range(request.count)]
        view.launch(self.node, request, range(request.count), at)

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        return None


def ready_by_instance(result: SimResult) -> np.ndarray:
    ordered = sorted(result.instances, key=lambda r: r.instance_id)
    return np.array([r.ready_s for r in ordered])


def test_one_node_one_request_reproduces_ready_times_exactly() -> None:
    count, interval = 60, 0.007
    scale = tuple(np.random.default_rng([9, 0, 1]).exponential(1.0, count).tolist())
    request = Request(request_id=0, count=count, arrival_s=0.0, work_scale=scale)
    result = simulate(Cluster.homogeneous(1, NODE), [request], IntervalOnNode(0, interval))
    launches = np.arange(count) * interval
    expected = ready_times(NODE, launches, work=NODE.work_s * np.array(scale))
    np.testing.assert_array_equal(ready_by_instance(result), expected)


@pytest.mark.parametrize("interval", [0.0, 0.004])
def test_a_fair_launcher_launches_and_readies_as_the_node_model_says(interval: float) -> None:
    # The records' launch time is when the fair launcher's launch ended, later and later as the
    # node fills; both it and the ready times are launched_and_ready_times()'s. The planned time
    # stays the policy's. Instances whose
    # launch has not ended are planned, not in flight: the node's count of launches that
    # started, sampled, grows with the launches; ready instances stop after their lifetime.
    node = NodeModel(cores=2, work_s=0.03, delay_s=0.001, launcher="fair", launch_cpu_s=0.001)
    count = 80
    scale = tuple(np.random.default_rng([9, 0, 2]).exponential(1.0, count).tolist())
    request = Request(request_id=0, count=count, arrival_s=0.0, work_scale=scale,
                      lifetime_s=0.1)
    result = simulate(Cluster.homogeneous(1, node), [request], IntervalOnNode(0, interval),
                      sample_period_s=0.05)
    launched, ready = launched_and_ready_times(node, np.arange(count) * interval,
                                               work=node.work_s * np.array(scale))
    records = sorted(result.instances, key=lambda r: r.instance_id)
    np.testing.assert_array_equal([r.launch_s for r in records], launched)
    np.testing.assert_array_equal([r.ready_s for r in records], ready)
    np.testing.assert_array_equal([r.planned_s for r in records], np.arange(count) * interval)
    assert launched[-1] - (count - 1) * interval > 0.2
    assert result.nodes[0].launches == count
    for sample in result.node_samples[1:]:  # (at 0, the request may not have arrived yet)
        started = int(np.sum(launched <= sample.t_s))
        assert sample.planned == count - started
        assert sample.in_flight == started - int(np.sum(ready <= sample.t_s))
        assert sample.ready == int(np.sum((ready <= sample.t_s) & (sample.t_s < ready + 0.1)))


@pytest.mark.parametrize("interval", [0.0, 0.004])
def test_a_reserved_launcher_stamps_its_launch_ends_as_the_node_model_says(
    interval: float,
) -> None:
    # On its own core a launch of 6 ms falls behind a plan of one every 0 or 4 ms: the records'
    # launch time is when each launch ended (one launch after the previous one, or after its
    # plan), and both it and the ready times are launched_and_ready_times()'s.
    node = NodeModel(cores=3, work_s=0.03, delay_s=0.001, launcher="reserved",
                     launch_cpu_s=0.002, launch_alone_s=0.006)
    count = 60
    request = Request(request_id=0, count=count, arrival_s=0.0, lifetime_s=0.5)
    result = simulate(Cluster.homogeneous(1, node), [request], IntervalOnNode(0, interval))
    planned = np.arange(count) * interval
    launched, ready = launched_and_ready_times(node, planned)
    records = sorted(result.instances, key=lambda r: r.instance_id)
    np.testing.assert_array_equal([r.launch_s for r in records], launched)
    np.testing.assert_array_equal([r.ready_s for r in records], ready)
    np.testing.assert_array_equal([r.planned_s for r in records], planned)
    np.testing.assert_allclose(launched, (np.arange(count) + 1) * 0.006, rtol=1e-12)


@pytest.mark.parametrize("floor", [0.0, 0.45])
def test_one_node_one_request_with_calibrated_noise_matches_ready_times(floor: float) -> None:
    # The engine draws each request's work noise from the WORK stream, as draw_work() does, and
    # shapes it the same way (a fixed part of the work when the model has a floor).
    node = NODE.model_copy(update={"work_floor": floor})
    count, interval, seed = 40, 0.013, 5
    request = Request(request_id=0, count=count, arrival_s=0.0)
    result = simulate(Cluster.homogeneous(1, node), [request], IntervalOnNode(0, interval),
                      seed=seed)
    expected = ready_times(node, np.arange(count) * interval,
                           rng=stream_rng(Stream.WORK, 0, seed))
    np.testing.assert_allclose(ready_by_instance(result), expected, rtol=1e-12)


def small_workload() -> PoissonWorkload:
    return PoissonWorkload(rate_per_s=3.0, duration_s=60.0, size=GeometricSize(mean=8))


def test_the_same_seed_gives_the_same_result_and_another_seed_does_not() -> None:
    cluster = Cluster.homogeneous(5, NODE)
    runs = [
        simulate(cluster, small_workload().requests(0, seed), ImmediatePolicy(), seed=seed)
        for seed in (1, 1, 2)
    ]
    assert runs[0] == runs[1]
    assert runs[0].instances != runs[2].instances


def test_policies_see_the_same_requests_and_the_same_work() -> None:
    # Sparse arrivals on a large cluster: no contention, so an instance's latency is its
    # delay plus its work; two policies placing it on different nodes must agree exactly.
    model = NodeModel(cores=64, work_s=0.5, delay_s=0.1, work_cv=0.6)
    workload = PoissonWorkload(rate_per_s=0.2, duration_s=500.0, size=FixedSize(count=3))
    first, second = IntervalOnNode(0, name="a"), IntervalOnNode(3, name="b")
    runs = [simulate(Cluster.homogeneous(4, model), workload.requests(2, 7), policy, seed=7,
                     replication=2) for policy in (first, second)]
    assert first.seen == second.seen
    assert len(first.seen) > 50
    assert {r.node for r in runs[0].instances} == {0}
    assert {r.node for r in runs[1].instances} == {3}
    latency = [sorted((r.request_id, r.instance_id, r.latency_s) for r in run.instances)
               for run in runs]
    assert latency[0] == latency[1]


def test_immediate_launches_a_whole_request_on_the_least_loaded_node() -> None:
    slow = NodeModel(cores=1, work_s=10.0)
    requests = [Request(request_id=i, count=c, arrival_s=0.1 * i)
                for i, c in enumerate([5, 2, 1, 1, 3])]
    result = simulate(Cluster.homogeneous(3, slow), requests, ImmediatePolicy())
    node_of = {r.request_id: {i.node for i in result.instances if i.request_id == r.request_id}
               for r in requests}
    # loads (in flight): [5,0,0] -> [5,2,0] -> [5,2,1] -> [5,2,2] -> node 1 (lowest id of 2s)
    assert node_of == {0: {0}, 1: {1}, 2: {2}, 3: {2}, 4: {1}}
    assert all(r.nodes_used == 1 for r in result.requests)


def test_a_heterogeneous_cluster_runs_each_node_by_its_own_model() -> None:
    fast = NodeModel(cores=4, work_s=0.1, delay_s=0.05)
    slow = NodeModel(cores=1, work_s=1.0, delay_s=0.5)
    cluster = Cluster(groups=(NodeGroup(count=1, model=fast), NodeGroup(count=1, model=slow)))
    requests = [Request(request_id=0, count=1, arrival_s=0.0),
                Request(request_id=1, count=1, arrival_s=0.0)]
    result = simulate(cluster, requests, ImmediatePolicy())
    latency = {r.node: r.latency_s for r in result.instances}
    assert latency == {0: pytest.approx(0.15), 1: pytest.approx(1.5)}


class Recorder:
    """Test policy: plans launches in the future, asks for timers, records what it sees."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list[tuple[str, float, object]] = []

    def on_request(self, view: PlatformView, request: Request) -> None:
        view.launch(0, request, [0, 1], [view.now + 1.0, view.now + 2.0])
        self.events.append(("planned", view.now, view.nodes[0].planned))
        view.wake_me(view.now + 1.5, "tick")

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        node = view.nodes[0]
        self.events.append(("wake", view.now, (token, node.planned, node.in_flight)))

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        assert view.ready_request is not None
        self.events.append(("ready", view.now, (view.ready_request.request_id, instance)))


def test_planned_launches_timers_and_ready_callbacks_happen_in_time_order() -> None:
    model = NodeModel(cores=1, work_s=1.0)
    policy = Recorder()
    simulate(Cluster.homogeneous(1, model), [Request(request_id=4, count=2, arrival_s=0.0)],
             policy)
    assert policy.events == [
        ("planned", 0.0, 2),
        ("wake", 1.5, ("tick", 1, 1)),  # instance 0 started at 1.0, instance 1 waits for 2.0
        ("ready", 2.0, (4, 0)),
        ("ready", 3.0, (4, 1)),
    ]


class Misbehaving:
    name = "bad"

    def __init__(self, action: str) -> None:
        self.action = action

    def on_request(self, view: PlatformView, request: Request) -> None:
        if self.action == "past":
            view.launch(0, request, [0], [view.now - 1.0])
        elif self.action == "too_many":
            view.launch(0, request, range(request.count + 1), [view.now] * (request.count + 1))
        elif self.action == "unknown":
            view.launch(0, request.model_copy(update={"request_id": 99}), [0], [view.now])
        elif self.action == "mismatch":
            view.launch(0, request, [0, 1], [view.now])
        elif self.action == "twice":
            view.launch(0, request, range(1), [view.now])
            view.launch(0, request, [0], [view.now])

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        return None


@pytest.mark.parametrize(
    ("action", "message"),
    [("past", "past"), ("too_many", "instances"), ("unknown", "not waiting"),
     ("mismatch", "launch times"), ("twice", "twice")],
)
def test_a_policy_mistake_is_refused_with_a_clear_error(action: str, message: str) -> None:
    request = Request(request_id=0, count=2, arrival_s=1.0)
    with pytest.raises(ValueError, match=message):
        simulate(Cluster.homogeneous(1, NODE), [request], Misbehaving(action))


def test_requests_out_of_arrival_order_are_refused() -> None:
    requests = [Request(request_id=0, count=1, arrival_s=2.0),
                Request(request_id=1, count=1, arrival_s=1.0)]
    with pytest.raises(ValueError, match="arrival order"):
        simulate(Cluster.homogeneous(1, NODE), requests, ImmediatePolicy())


def test_stopping_early_records_unfinished_requests_as_incomplete() -> None:
    model = NodeModel(cores=1, work_s=1.0)
    requests = [Request(request_id=0, count=3, arrival_s=0.0)]
    result = simulate(Cluster.homogeneous(1, model), requests, ImmediatePolicy(), until_s=2.0)
    (record,) = result.requests
    assert (record.complete, record.ready_count) == (False, 0)
    assert math.isnan(record.all_ready_s) and math.isnan(record.time_to_first_s)
    assert result.end_s == 2.0


def test_instances_with_a_lifetime_stop_and_free_their_idle_load() -> None:
    # idle_load 0.5: while the first instance runs, the second gets half a core.
    model = NodeModel(cores=1, work_s=1.0, idle_load=0.5)
    requests = [Request(request_id=0, count=1, arrival_s=0.0, lifetime_s=1.0),
                Request(request_id=1, count=1, arrival_s=1.0)]
    result = simulate(Cluster.homogeneous(1, model), requests, ImmediatePolicy(),
                      sample_period_s=0.5)
    # second: 0.5 core during [1, 2] (0.5 done), full core after the first stops at 2 -> 2.5
    assert {r.request_id: r.ready_s for r in result.instances} == {0: 1.0, 1: 2.5}
    ready_over_time = [(s.t_s, s.ready) for s in result.node_samples]
    # Sampling stops with the last sample after the run goes idle.
    assert ready_over_time == [(0.0, 0), (0.5, 0), (1.0, 1), (1.5, 1), (2.0, 0), (2.5, 1)]


class Retargeting:
    """Test policy: on every request, launch on a busy node with a launch time earlier than
    anything the node had scheduled, so its next event keeps moving earlier."""

    name = "retargeting"

    def __init__(self, probe: list[tuple[int, int]]) -> None:
        self.probe = probe

    def on_request(self, view: PlatformView, request: Request) -> None:
        node = request.request_id % len(view.nodes)
        at = [view.now + 0.001 * (i + 1) for i in range(request.count)][::-1]
        view.launch(node, request, range(request.count), at)
        env = view.env  # type: ignore[attr-defined]  # the engine's view is the Simulation
        self.probe.append((len(env.event_queue), len(env.agenda)))

    def on_wakeup(self, view: PlatformView, token: object) -> None:
        return None

    def on_instance_ready(self, view: PlatformView, node: int, instance: int) -> None:
        return None


def test_event_queues_stay_bounded_by_nodes_not_by_instances() -> None:
    nodes = 20
    workload = PoissonWorkload(rate_per_s=400.0, duration_s=20.0, size=GeometricSize(mean=6))
    probe: list[tuple[int, int]] = []
    result = simulate(Cluster.homogeneous(nodes, NODE), workload.requests(0, 1), Retargeting(probe),
                      seed=1)
    assert result.launches > 40_000
    simpy_queue = max(q for q, _ in probe)
    agenda = max(a for _, a in probe)
    assert simpy_queue <= 2  # the arrival process only: nodes never use SimPy's queue
    assert agenda <= 2 * nodes + 64


def test_records_carry_policy_replication_and_consistent_times() -> None:
    workload = small_workload()
    result = simulate(Cluster.homogeneous(3, NODE), workload.requests(1, 3), ImmediatePolicy(),
                      seed=3, replication=1)
    assert {(r.policy, r.replication) for r in result.instances} == {("immediate", 1)}
    by_request: dict[int, list[float]] = {}
    for r in result.instances:
        assert r.ready_s >= r.launch_s
        by_request.setdefault(r.request_id, []).append(r.ready_s)
    for req in result.requests:
        times: Sequence[float] = by_request[req.request_id]
        assert req.complete and req.ready_count == req.count == len(times)
        assert req.first_ready_s == min(times) and req.all_ready_s == max(times)
        assert req.time_to_all_s == pytest.approx(req.all_ready_s - req.arrival_s)
    assert sum(n.launches for n in result.nodes) == result.launches == len(result.instances)
