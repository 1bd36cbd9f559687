"""Each launch policy on small clusters where where and when every instance starts, and when it
is ready, can be worked out by hand. Runs go through the real engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sim.engine.cluster import Cluster
from sim.engine.request import Request
from sim.engine.simulate import SimResult, simulate
from sim.model.node_model import NodeModel
from sim.model.ready_times import ready_times
from sim.policies import (
    BatchingConfig,
    ConcurrencyCapConfig,
    CountIntervalConfig,
    FixedIntervalConfig,
    ImmediateConfig,
    PolicyConfig,
    SplitBundleConfig,
)
from sim.policies.count_interval import IntervalStep
from sim.policies.placement import even_split, packing, power_of_two

# Two cores, one second of CPU per instance, no delay, no noise: k instances together on an
# idle node finish at k/2 s (k >= 2), one alone at 1 s.
TWO_CORES = NodeModel(cores=2, work_s=1.0)


def run(config: PolicyConfig, nodes: int, requests: Sequence[Request],
        model: NodeModel = TWO_CORES) -> SimResult:
    policy = config.build(np.random.default_rng([6, 0, 0]))
    return simulate(Cluster.homogeneous(nodes, model), requests, policy)


def req(request_id: int, count: int, at: float = 0.0) -> Request:
    return Request(request_id=request_id, count=count, arrival_s=at)


def launches(result: SimResult, request_id: int) -> list[tuple[int, int, float]]:
    """(instance, node, launch time) of one request, by instance index."""
    rows = [(i.instance_id, i.node, round(i.launch_s, 9)) for i in result.instances
            if i.request_id == request_id]
    return sorted(rows)


def test_immediate_launches_each_request_now_on_the_least_loaded_node() -> None:
    result = run(ImmediateConfig(), nodes=2, requests=[req(0, 3), req(1, 2), req(2, 1)])
    assert {node for _, node, _ in launches(result, 0)} == {0}
    assert {node for _, node, _ in launches(result, 1)} == {1}
    assert {node for _, node, _ in launches(result, 2)} == {1}, "node 1 held 2 < 3"
    assert all(t == 0.0 for r in range(3) for _, _, t in launches(result, r))
    assert result.policy == "immediate"


def test_a_label_names_the_policy_in_the_records() -> None:
    result = run(FixedIntervalConfig(interval_ms=5, label="fixed 5 ms"), 1, [req(0, 1)])
    assert result.policy == "fixed 5 ms"
    assert {r.policy for r in result.requests} == {"fixed 5 ms"}


def test_fixed_interval_spaces_launches_on_a_node_across_requests() -> None:
    result = run(FixedIntervalConfig(interval_ms=10), nodes=1,
                 requests=[req(0, 4), req(1, 2, at=0.015)])
    assert [t for _, _, t in launches(result, 0)] == pytest.approx([0.0, 0.01, 0.02, 0.03])
    # The second request queues behind the first one's last slot, not at its own arrival.
    assert [t for _, _, t in launches(result, 1)] == pytest.approx([0.04, 0.05])


def test_fixed_interval_ready_times_are_the_node_models() -> None:
    result = run(FixedIntervalConfig(interval_ms=300), nodes=1, requests=[req(0, 5)])
    expected = ready_times(TWO_CORES, np.arange(5) * 0.3)
    got = sorted(i.ready_s for i in result.instances)
    assert got == pytest.approx(sorted(expected.tolist()))
    # By hand: instance 0 runs at rate 1 until 0.6 s (two cores, at most two instances), at 2/3
    # until 0.9 s (three share), at 1/2 until 1.2 s, then at 2/5: 0.6 + 0.2 + 0.15 + 0.05 = 1.
    assert result.requests[0].time_to_first_s == pytest.approx(1.2 + 0.05 / 0.4)


def test_an_idle_node_starts_at_the_arrival_not_at_an_old_slot() -> None:
    result = run(FixedIntervalConfig(interval_ms=10), nodes=1,
                 requests=[req(0, 2), req(1, 2, at=5.0)])
    assert [t for _, _, t in launches(result, 1)] == pytest.approx([5.0, 5.01])


def test_count_interval_table_gives_larger_intervals_to_smaller_bursts() -> None:
    config = CountIntervalConfig(table=(
        IntervalStep(up_to=2, interval_ms=20),
        IntervalStep(up_to=10, interval_ms=5),
        IntervalStep(interval_ms=1),
    ))
    assert [config.interval_ms(n) for n in (1, 2, 3, 10, 11, 5000)] == [20, 20, 5, 5, 1, 1]
    result = run(config, nodes=3, requests=[req(0, 2), req(1, 5), req(2, 50)])
    assert [t for _, _, t in launches(result, 0)] == pytest.approx([0.0, 0.02])
    assert [t for _, _, t in launches(result, 1)] == pytest.approx([0.0, 0.005, 0.01, 0.015,
                                                                    0.02])
    assert launches(result, 2)[49][2] == pytest.approx(0.049)


def test_count_interval_spread_rule_divides_a_window_by_the_final_count_on_the_node() -> None:
    config = CountIntervalConfig(spread_ms=100, max_interval_ms=20)
    assert config.interval_ms(4) == 20, "100/4 = 25 ms, clamped to 20"
    assert config.interval_ms(10) == pytest.approx(10)
    # One node: the second request arrives while 4 of the first's launches are still planned,
    # so the node will launch 4 + 5 = 9: interval 100/9 ms, after the first request's slots.
    result = run(config, nodes=1, requests=[req(0, 5), req(1, 5, at=0.01)])
    first = [t for _, _, t in launches(result, 0)]
    second = [t for _, _, t in launches(result, 1)]
    assert first == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08])
    assert second == pytest.approx([0.1 + k * 0.1 / 9 for k in range(5)])


def test_count_interval_needs_exactly_one_rule() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CountIntervalConfig()
    with pytest.raises(ValueError, match="exactly one"):
        CountIntervalConfig(spread_ms=10, table=(IntervalStep(interval_ms=1),))
    with pytest.raises(ValueError, match="increasing"):
        CountIntervalConfig(table=(IntervalStep(up_to=5, interval_ms=1),
                                   IntervalStep(up_to=3, interval_ms=2)))


def test_batching_holds_requests_for_the_window_then_launches_them_together() -> None:
    result = run(BatchingConfig(window_s=0.1), nodes=2,
                 requests=[req(0, 1), req(1, 1, at=0.05), req(2, 1, at=0.12)])
    assert [launches(result, r)[0][2] for r in range(3)] == pytest.approx([0.1, 0.1, 0.22])
    assert [launches(result, r)[0][1] for r in range(2)] == [0, 1], "spread over the nodes"


def test_batching_launches_early_when_the_batch_is_full_and_ignores_the_stale_timer() -> None:
    result = run(BatchingConfig(window_s=0.1, max_instances=5), nodes=2,
                 requests=[req(0, 3), req(1, 3, at=0.05), req(2, 1, at=0.12)])
    assert [launches(result, r)[0][2] for r in range(3)] == pytest.approx([0.05, 0.05, 0.22])


@pytest.mark.parametrize(("order", "nodes_by_request"), [
    ("fifo", {0: 0, 1: 1, 2: 2}),
    ("smallest_first", {1: 0, 2: 1, 0: 2}),
])
def test_batching_places_a_batch_in_queue_order(order: str, nodes_by_request: dict[int, int]
                                                 ) -> None:
    requests = [req(0, 5), req(1, 1, at=0.01), req(2, 3, at=0.02)]
    result = run(BatchingConfig(window_s=0.1, order=order), nodes=3,  # type: ignore[arg-type]
                 requests=requests)
    assert {r: launches(result, r)[0][1] for r in range(3)} == nodes_by_request


def test_split_bundle_splits_large_requests_evenly_over_the_least_loaded_nodes() -> None:
    result = run(SplitBundleConfig(split_above=4), nodes=3, requests=[req(0, 10)])
    per_node = {n: sum(1 for _, node, _ in launches(result, 0) if node == n) for n in range(3)}
    assert per_node == {0: 4, 1: 3, 2: 3}
    assert result.requests[0].nodes_used == 3
    # 4 instances on 2 cores: 2 s; 3 instances: 1.5 s; the request is all ready at 2 s.
    assert result.requests[0].time_to_all_s == pytest.approx(2.0)
    assert result.requests[0].time_to_first_s == pytest.approx(1.5)


def test_split_bundle_never_uses_more_parts_than_nodes_or_max_parts() -> None:
    config = SplitBundleConfig(split_above=4, max_parts=2)
    result = run(config, nodes=3, requests=[req(0, 100)])
    assert result.requests[0].nodes_used == 2
    result = run(SplitBundleConfig(split_above=4), nodes=3, requests=[req(0, 100)])
    counts = sorted(sum(1 for _, node, _ in launches(result, 0) if node == n) for n in range(3))
    assert counts == [33, 33, 34]


def test_split_bundle_bundles_small_requests_on_one_node_until_it_is_full() -> None:
    config = SplitBundleConfig(split_above=8, bundle_below=3, bundle_capacity=4)
    requests = [req(0, 2), req(1, 2), req(2, 2), req(3, 5)]
    result = run(config, nodes=3, requests=requests)
    nodes = {r: launches(result, r)[0][1] for r in range(4)}
    assert nodes[0] == nodes[1] == 0, "two small requests share node 0"
    assert nodes[2] == 1, "node 0 is full (4), the next small one starts node 1"
    assert nodes[3] == 2, "a medium request goes to the least-loaded node"


def test_concurrency_cap_admits_k_at_a_time_and_the_next_when_one_is_ready() -> None:
    capped = run(ConcurrencyCapConfig(max_in_flight=2), nodes=1, requests=[req(0, 5)])
    assert [t for _, _, t in launches(capped, 0)] == pytest.approx([0, 0, 1, 1, 2])
    assert sorted(i.ready_s for i in capped.instances) == pytest.approx([1, 1, 2, 2, 3])
    # Against launching all 5 at once: 5 share 2 cores, all ready at 2.5 s.
    burst = run(ImmediateConfig(), nodes=1, requests=[req(0, 5)])
    assert burst.requests[0].time_to_first_s == pytest.approx(2.5)
    assert capped.requests[0].time_to_first_s == pytest.approx(1.0)
    assert capped.requests[0].time_to_all_s == pytest.approx(3.0)


@pytest.mark.parametrize(("order", "expected"), [
    ("fifo", {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 0): 3}),
    ("smallest_first", {(0, 0): 0, (1, 0): 1, (0, 1): 2, (0, 2): 3}),
])
def test_concurrency_cap_serves_the_queue_in_its_order(order: str,
                                                        expected: dict[tuple[int, int], int]
                                                        ) -> None:
    model = NodeModel(cores=1, work_s=1.0)
    config = ConcurrencyCapConfig(max_in_flight=1, order=order)  # type: ignore[arg-type]
    result = run(config, nodes=1, requests=[req(0, 3), req(1, 1)], model=model)
    got = {(i.request_id, i.instance_id): round(i.launch_s, 9) for i in result.instances}
    assert got == expected


def test_a_shared_queue_lets_one_request_use_every_node_with_a_free_slot() -> None:
    shared = run(ConcurrencyCapConfig(max_in_flight=1, queue="shared"), nodes=2,
                 requests=[req(0, 4)])
    assert shared.requests[0].nodes_used == 2
    assert shared.requests[0].time_to_all_s == pytest.approx(2.0)
    per_node = run(ConcurrencyCapConfig(max_in_flight=1), nodes=2, requests=[req(0, 4)])
    assert per_node.requests[0].nodes_used == 1
    assert per_node.requests[0].time_to_all_s == pytest.approx(4.0)


def test_concurrency_cap_placement_packing_fills_the_first_node_up_to_the_cap() -> None:
    config = ConcurrencyCapConfig(max_in_flight=4, placement="packing")
    result = run(config, nodes=3, requests=[req(0, 2), req(1, 2), req(2, 1)])
    assert [launches(result, r)[0][1] for r in range(3)] == [0, 0, 1]
    spread = run(ConcurrencyCapConfig(max_in_flight=4), nodes=3,
                 requests=[req(0, 2), req(1, 2), req(2, 1)])
    assert [launches(spread, r)[0][1] for r in range(3)] == [0, 1, 2]


def test_power_of_two_choices_picks_the_less_loaded_of_two_random_nodes() -> None:
    # Loads 0, 5, 10: node 2 can never win; node 0 wins whenever it is drawn (2 pairs of 3).
    rng = np.random.default_rng([6, 0, 1])
    picks = np.array([power_of_two([0, 5, 10], rng) for _ in range(30_000)])
    assert not (picks == 2).any()
    assert (picks == 0).mean() == pytest.approx(2 / 3, abs=0.01)


def test_power_of_two_is_reproducible_from_its_generator() -> None:
    def placements(seed: int) -> list[int]:
        config = ConcurrencyCapConfig(max_in_flight=2, placement="power_of_two")
        policy = config.build(np.random.default_rng([6, 0, seed]))
        result = simulate(Cluster.homogeneous(8, TWO_CORES),
                          [req(i, 1, at=0.1 * i) for i in range(30)], policy)
        return [i.node for i in sorted(result.instances, key=lambda i: i.request_id)]

    assert placements(1) == placements(1)
    assert placements(1) != placements(2)


def test_packing_and_even_split_by_hand() -> None:
    assert packing([3, 0, 0], count=1, capacity=4) == 0
    assert packing([3, 0, 0], count=2, capacity=4) == 1
    assert packing([4, 4], count=1, capacity=4) == 0, "nothing fits: least loaded, lowest id"
    assert even_split(10, 3) == [4, 3, 3]
    assert sum(even_split(1001, 7)) == 1001
