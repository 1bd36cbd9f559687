"""Run a scenario: every policy on every replication, with common random numbers (the same
requests and per-instance work for every policy), collecting flat record tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from sim.engine.cluster import Cluster
from sim.engine.records import RECORD_CLASSES, MemorySink, schema
from sim.engine.simulate import simulate
from sim.policies import PolicyConfig
from sim.scenario import Scenario
from sim.streams import Stream, stream_rng

Tables = dict[str, pa.Table]
"""Record tables by kind: instances, requests, node_samples, nodes."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One simulation: a policy on one replication (plain data, picklable)."""

    policy: PolicyConfig
    replication: int


def units(scenario: Scenario, policies: Sequence[PolicyConfig] | None = None) -> list[Unit]:
    """Replication-major order: each replication's policies run back to back."""
    chosen = list(policies) if policies is not None else list(scenario.policies)
    return [Unit(p, r) for r in range(scenario.replications) for p in chosen]


def run_unit(scenario: Scenario, unit: Unit, cluster: Cluster | None = None) -> Tables:
    """Simulate one unit. The workload and the engine's work noise depend only on
    (replication, seed); the policy's own choices draw from Stream.POLICY."""
    seed = scenario.seed
    requests = scenario.workload.requests(unit.replication, seed)
    policy = unit.policy.build(stream_rng(Stream.POLICY, unit.replication, seed))
    sink = MemorySink()
    simulate(
        cluster if cluster is not None else scenario.cluster.build(), requests, policy,
        replication=unit.replication, seed=seed, sample_period_s=scenario.sample_period_s,
        until_s=scenario.until_s, sink=sink,
    )
    return {cls.kind: sink.table(cls) for cls in RECORD_CLASSES}


def concat(parts: Iterable[Tables]) -> Tables:
    """Stack the tables of several units, kind by kind."""
    collected: dict[str, list[pa.Table]] = {cls.kind: [] for cls in RECORD_CLASSES}
    for part in parts:
        for kind, table in part.items():
            collected[kind].append(table)
    return {
        cls.kind: pa.concat_tables(collected[cls.kind]) if collected[cls.kind]
        else schema(cls).empty_table()
        for cls in RECORD_CLASSES
    }


def run_scenario(
    scenario: Scenario,
    policies: Sequence[PolicyConfig] | None = None,
    on_unit_done: Callable[[Unit], None] | None = None,
    workers: int = 1,
) -> Tables:
    """Every unit of the scenario, serially or on a pool of `workers` processes. Each unit
    depends only on its own data, so the tables are identical either way (and in unit order)."""
    todo = units(scenario, policies)
    parts = []
    if workers <= 1 or len(todo) <= 1:
        cluster = scenario.cluster.build()
        for unit in todo:
            parts.append(run_unit(scenario, unit, cluster))
            if on_unit_done is not None:
                on_unit_done(unit)
        return concat(parts)
    with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        for unit, tables in zip(todo, pool.map(run_unit, [scenario] * len(todo), todo),
                                strict=True):
            parts.append(tables)
            if on_unit_done is not None:
                on_unit_done(unit)
    return concat(parts)
