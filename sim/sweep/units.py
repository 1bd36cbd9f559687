"""A unit: one policy on one replication of one scenario, as plain data named by a hash of
everything its result depends on, and the one function that simulates it into record tables.

Every run of policy x replication goes through here: `sim run`, `sim tune`, `sim schedule` and
each point of `sim sweep`. The workload and the engine's work noise depend only on (replication,
seed), so every policy sees the same requests and work (common random numbers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import TypeAdapter

from sim.engine.cluster import Cluster
from sim.engine.records import RECORD_CLASSES, MemorySink, schema
from sim.engine.simulate import simulate
from sim.policies import PolicyConfig, PolicySpec
from sim.scenario import Scenario, sha256_file
from sim.streams import Stream, stream_rng

Tables = dict[str, pa.Table]
"""Record tables by kind: instances, requests, node_samples, nodes."""
FORMAT = 1
"""Version of a unit's summary row; part of every unit's hash, so a change redoes old parts."""

_POLICY = TypeAdapter(PolicySpec)


@dataclass(frozen=True, slots=True)
class Unit:
    """One simulation, as plain data: nothing of SimPy, nothing unpicklable."""

    key: str
    """Hash of everything the result depends on (see unit_key)."""
    point: int
    """The sweep point it belongs to (0 for a scenario run without axes)."""
    scenario: dict[str, Any]
    """The point's scenario as JSON-able data, node models inlined (workers need no
    calibration files)."""
    policy: dict[str, Any]
    replication: int
    seed: int


Task = tuple[Unit, ...]
"""Units run one after the other by one worker."""


# --- naming units ----------------------------------------------------------------------------


def portable(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON-able data that validates anywhere: calibrated node groups become
    their fitted model inline (paths to traces stay, absolute)."""
    data = scenario.model_dump(mode="json")
    data["cluster"]["nodes"] = [
        {"count": g.count, "model": g.node_model.model_dump(mode="json"), "name": g.label}
        for g in scenario.cluster.nodes
    ]
    return data


def canonical(value: Any) -> bytes:
    """Stable bytes of JSON-able data, for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _referenced_files(value: Any, found: dict[str, str]) -> None:
    """sha256 of every existing absolute file path in the data (traces): a unit's result
    depends on the file's content, not just its name."""
    if isinstance(value, Mapping):
        for v in value.values():
            _referenced_files(v, found)
    elif isinstance(value, list):
        for v in value:
            _referenced_files(v, found)
    elif isinstance(value, str) and value.startswith("/") and value not in found:
        path = Path(value)
        if path.is_file():
            found[value] = sha256_file(path)


# Fields that do not change any one unit's result: cosmetic ones, and replications and the
# policy list (a unit names its own policy and replication), so that adding replications or
# policies to a sweep reuses what is done.
_NOT_IN_KEY = ("name", "description", "replications", "policies", "baseline", "sweep")


def point_digest(data: Mapping[str, Any]) -> str:
    """Hash of what a point's units share: the scenario minus _NOT_IN_KEY, plus the content
    of referenced files."""
    files: dict[str, str] = {}
    _referenced_files(data, files)
    material = {k: v for k, v in data.items() if k not in _NOT_IN_KEY}
    return hashlib.sha256(canonical({"format": FORMAT, "scenario": material,
                                     "files": files})).hexdigest()


def unit_key(digest: str, policy: Mapping[str, Any], replication: int, seed: int) -> str:
    return hashlib.sha256(canonical({"point": digest, "policy": policy,
                                     "replication": replication, "seed": seed})).hexdigest()


def scenario_units(scenario: Scenario, point: int = 0,
                   policies: Sequence[PolicyConfig] | None = None) -> list[Unit]:
    """The units of one scenario (the scenario's policies unless `policies` is given), in
    replication-major order: each replication's policies run back to back."""
    data = portable(scenario)
    digest = point_digest(data)
    seed = scenario.seed
    units = []
    for replication in range(scenario.replications):
        for config in policies if policies is not None else scenario.policies:
            policy = config.model_dump(mode="json")
            units.append(Unit(unit_key(digest, policy, replication, seed), point, data, policy,
                              replication, seed))
    return units


# --- simulating ------------------------------------------------------------------------------


def simulate_unit(scenario: Scenario, policy: PolicyConfig, replication: int,
                  cluster: Cluster | None = None) -> Tables:
    """Simulate one policy on one replication of `scenario` (`cluster`: its built cluster, when
    the caller keeps one). The policy's own choices draw from Stream.POLICY."""
    seed = scenario.seed
    requests = scenario.workload.requests(replication, seed)
    built = policy.build(stream_rng(Stream.POLICY, replication, seed))
    sink = MemorySink()
    simulate(
        cluster if cluster is not None else scenario.cluster.build(), requests, built,
        replication=replication, seed=seed, sample_period_s=scenario.sample_period_s,
        until_s=scenario.until_s, sink=sink,
    )
    return {cls.kind: sink.table(cls) for cls in RECORD_CLASSES}


def simulate_task(task: Task) -> Iterator[tuple[Unit, Scenario, PolicyConfig, Tables]]:
    """Simulate the units of a task one after the other (in a worker process or inline): each
    with its scenario, policy and record tables. A point's scenario is validated and its
    cluster built once per task."""
    scenarios: dict[str, tuple[Scenario, Cluster]] = {}
    for unit in task:
        digest = hashlib.sha256(canonical(unit.scenario)).hexdigest()
        if digest not in scenarios:
            scenario = Scenario.model_validate(unit.scenario)
            scenarios[digest] = (scenario, scenario.cluster.build())
        scenario, cluster = scenarios[digest]
        if scenario.seed != unit.seed:
            scenario = scenario.model_copy(update={"seed": unit.seed})
        config: PolicyConfig = _POLICY.validate_python(unit.policy)
        yield unit, scenario, config, simulate_unit(scenario, config, unit.replication, cluster)


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
