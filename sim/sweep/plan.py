"""`sim sweep`: every point of a scenario's sweep axes x policy x replication, run as plain-data
tasks on any executor, each finished task saved at once so an interrupted sweep resumes.

A unit (one policy on one replication of one point) is named by a hash of everything its result
depends on; a task is a batch of units; OUT/parts/ holds one Parquet file per finished task.
The tidy table has one row per unit: the point's axis values and the unit's summary metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter

from sim.engine.cluster import Cluster
from sim.policies import PolicyConfig, PolicySpec
from sim.report.statistics import METRICS, STATISTICS, statistic
from sim.scenario import LoadedScenario, Scenario, sha256_file
from sim.sweep.axes import Axes, Point, points
from sim.sweep.executors import ExecutorSpec, open_executor
from sim.sweep.experiment import Tables, Unit, run_unit

FORMAT = 1
"""Version of a unit's summary row; part of every unit's hash, so a change redoes old parts."""
PROVENANCE_KEY = b"bootstorm.provenance"
"""Parquet metadata key of the sweep table's provenance (JSON)."""
MAX_BATCH = 32
"""Most units in one task when batching automatically."""
TASKS_PER_WORKER = 8
"""Automatic batching aims at this many tasks per parallel slot: enough to balance the load
when units differ in cost, few enough that per-task overhead stays small."""

_POLICY = TypeAdapter(PolicySpec)


@dataclass(frozen=True, slots=True)
class SweepUnit:
    """One simulation of a sweep, as plain data: nothing of SimPy, nothing unpicklable."""

    key: str
    """Hash of everything the result depends on (see unit_key)."""
    point: int
    scenario: dict[str, Any]
    """The point's scenario as JSON-able data, node models inlined (workers need no
    calibration files)."""
    policy: dict[str, Any]
    replication: int
    seed: int


Task = tuple[SweepUnit, ...]


@dataclass(frozen=True)
class SweepPlan:
    """Everything to run: the axes, their points, and one unit per point x replication x
    policy in that order (units of different points may share a key: see distinct)."""

    loaded: LoadedScenario
    axes: Axes
    points: tuple[Point, ...]
    units: tuple[SweepUnit, ...]

    @property
    def policies(self) -> tuple[str, ...]:
        return self.loaded.scenario.policy_names


@dataclass(frozen=True)
class SweepResult:
    table: pd.DataFrame
    """One row per unit: point, axis columns, policy, replication, seed, metrics, unit key."""
    units_run: int
    units_reused: int
    """Units whose results were already in OUT/parts/ (an earlier, interrupted run)."""
    tasks: int
    executor: str
    provenance: dict[str, Any]


# --- planning --------------------------------------------------------------------------------


def portable(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON-able data that validates anywhere: calibrated node groups become
    their fitted model inline (paths to traces stay, absolute)."""
    data = scenario.model_dump(mode="json")
    data["cluster"]["nodes"] = [
        {"count": g.count, "model": g.node_model.model_dump(mode="json"), "name": g.label}
        for g in scenario.cluster.nodes
    ]
    return data


def _canonical(value: Any) -> bytes:
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
    return hashlib.sha256(_canonical({"format": FORMAT, "scenario": material,
                                      "files": files})).hexdigest()


def unit_key(digest: str, policy: Mapping[str, Any], replication: int, seed: int) -> str:
    return hashlib.sha256(_canonical({"point": digest, "policy": policy,
                                      "replication": replication, "seed": seed})).hexdigest()


def plan_sweep(loaded: LoadedScenario, extra_axes: Mapping[str, Sequence[Any]] | None = None,
               replications: int | None = None) -> SweepPlan:
    """The points of the scenario's `sweep:` axes (with `extra_axes` replacing or adding
    axes) and their units. Raises AxisError for an axis or value the scenario does not take."""
    scenario = loaded.scenario
    if replications is not None:
        scenario = scenario.model_copy(update={"replications": replications})
    axes: Axes = {**scenario.sweep, **{k: tuple(v) for k, v in (extra_axes or {}).items()}}
    pts = points(scenario, axes, loaded.path.parent)
    all_units = []
    for point in pts:
        data = portable(point.scenario)
        digest = point_digest(data)
        seed = point.scenario.seed
        for replication in range(point.scenario.replications):
            for config in point.scenario.policies:
                policy = config.model_dump(mode="json")
                all_units.append(SweepUnit(unit_key(digest, policy, replication, seed),
                                           point.index, data, policy, replication, seed))
    return SweepPlan(loaded.model_copy(update={"scenario": scenario}), axes, tuple(pts),
                     tuple(all_units))


def distinct(units: Sequence[SweepUnit]) -> list[SweepUnit]:
    """Units with distinct keys, first occurrence kept. Points that differ only in another
    policy's settings share their other policies' units: each runs once."""
    seen: set[str] = set()
    out = []
    for unit in units:
        if unit.key not in seen:
            seen.add(unit.key)
            out.append(unit)
    return out


def batches(todo: Sequence[SweepUnit], size: int) -> list[Task]:
    """Tasks of at most `size` units, dealt round-robin. A unit's cost changes smoothly along
    the points (a higher rate, a bigger cluster), so dealing puts cheap and dear units in every
    task: the tasks cost about the same and no worker is left with the dearest ones at the end."""
    count = math.ceil(len(todo) / size)
    return [tuple(todo[i::count]) for i in range(count)]


def auto_batch(units: int, parallelism: int) -> int:
    """Units per task: short units batched so that there are about TASKS_PER_WORKER tasks per
    parallel slot, at most MAX_BATCH units each."""
    return max(1, min(MAX_BATCH, math.ceil(units / (TASKS_PER_WORKER * max(1, parallelism)))))


# --- the worker side -------------------------------------------------------------------------


def summarise_unit(tables: Tables, scenario: Scenario) -> dict[str, float | int]:
    """The unit's summary metrics: each statistic of each metric within this replication
    (as `sim run`'s report computes per replication), SLO attainment, node facts."""
    requests, nodes = tables["requests"], tables["nodes"]
    row: dict[str, float | int] = {
        "requests": requests.num_rows,
        "instances": int(np.sum(requests["count"].to_numpy())) if requests.num_rows else 0,
        "incomplete_requests": int(np.sum(~requests["complete"].to_numpy(
            zero_copy_only=False))),
    }
    for metric in METRICS:
        values = tables[metric.table][metric.column].to_numpy().astype(float)
        finite = values[np.isfinite(values)]
        for stat in STATISTICS:
            row[f"{metric.name}_{stat}"] = statistic(finite, stat)
    for column, limit in scenario.metrics.slo.limits().items():
        values = requests[column].to_numpy().astype(float)
        # a request that never got there (NaN) misses its SLO, as in the report
        row[f"within_slo_{column}"] = float(np.mean(values <= limit)) if values.size else math.nan
    nodes_used = requests["nodes_used"].to_numpy().astype(float)
    row["mean_nodes_per_request"] = float(nodes_used.mean()) if nodes_used.size else math.nan
    row["peak_in_flight"] = int(nodes["peak_in_flight"].to_numpy().max()) if nodes.num_rows else 0
    row["mean_cpu_busy"] = (float(nodes["cpu_busy"].to_numpy().mean()) if nodes.num_rows
                            else math.nan)
    return row


def run_task(task: Task) -> list[dict[str, Any]]:
    """Run a batch of units (in a worker process or inline); one summary row per unit. Each
    point's scenario is validated and its cluster built once per task."""
    scenarios: dict[str, tuple[Scenario, Cluster]] = {}
    rows = []
    for unit in task:
        digest = _digest_of(unit.scenario)
        if digest not in scenarios:
            scenario = Scenario.model_validate(unit.scenario)
            scenarios[digest] = (scenario, scenario.cluster.build())
        scenario, cluster = scenarios[digest]
        if scenario.seed != unit.seed:
            scenario = scenario.model_copy(update={"seed": unit.seed})
        config: PolicyConfig = _POLICY.validate_python(unit.policy)
        tables = run_unit(scenario, Unit(config, unit.replication), cluster)
        rows.append({"unit": unit.key, "policy": config.display_name,
                     "replication": unit.replication, **summarise_unit(tables, scenario)})
    return rows


def _digest_of(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(data)).hexdigest()


# --- parts on disk ---------------------------------------------------------------------------


def parts_dir(out: Path) -> Path:
    return out / "parts"


def write_part(folder: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """One finished task's rows, written atomically (temporary file, then rename): a part file
    is whole or absent, whenever the sweep is interrupted."""
    keys = sorted(str(r["unit"]) for r in rows)
    name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    final = folder / f"{name}.parquet"
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    pq.write_table(pa.Table.from_pylist(list(rows)), temporary)
    os.replace(temporary, final)
    return final


def read_parts(folder: Path, wanted: set[str]) -> pd.DataFrame:
    """Rows of the finished units among `wanted` (parts of other sweeps into the same folder,
    or of an older scenario, are left alone)."""
    frames = []
    for path in sorted(folder.glob("*.parquet")):
        frame = pq.read_table(path).to_pandas()
        frames.append(frame[frame["unit"].isin(wanted)])
    if not frames:
        return pd.DataFrame(columns=["unit"])
    return pd.concat(frames, ignore_index=True).drop_duplicates("unit")


# --- running ---------------------------------------------------------------------------------


def run_sweep(
    plan: SweepPlan,
    out: Path,
    executor: ExecutorSpec,
    batch: int | None = None,
    on_units_done: Callable[[int], None] | None = None,
) -> SweepResult:
    """Run the units not already in OUT/parts/ on `executor`, saving each task's rows as it
    finishes, then assemble the tidy table (written to OUT/sweep.parquet with provenance)."""
    folder = parts_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp"):  # a write cut short by an interruption
        stale.unlink(missing_ok=True)
    wanted = {u.key for u in plan.units}
    done = set(read_parts(folder, wanted)["unit"])
    todo = [u for u in distinct(plan.units) if u.key not in done]
    if on_units_done is not None and done:
        on_units_done(len(done))
    tasks: list[Task] = []
    description = "none (every unit was already done)"
    if todo:
        with open_executor(executor) as opened:
            description = opened.description
            tasks = batches(todo, batch or auto_batch(len(todo), opened.parallelism))
            _drain(opened.executor, tasks, folder, opened.window, on_units_done)
    rows = read_parts(folder, wanted)
    table = tidy_table(plan, rows)
    provenance = sweep_provenance(plan, description, units_run=len(todo),
                                  units_reused=len(done))
    write_table(table, out / "sweep.parquet", provenance)
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return SweepResult(table, len(todo), len(done), len(tasks), description, provenance)


def _drain(executor: Any, tasks: Sequence[Task], folder: Path, window: int,
           on_units_done: Callable[[int], None] | None) -> None:
    """Keep at most `window` tasks submitted; save each one's rows as soon as it is done."""
    queue = list(reversed(tasks))
    pending: dict[Future[list[dict[str, Any]]], Task] = {}
    try:
        while queue or pending:
            while queue and len(pending) < window:
                task = queue.pop()
                pending[executor.submit(run_task, task)] = task
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                write_part(folder, future.result())
                if on_units_done is not None:
                    on_units_done(len(task))
    finally:
        for future in pending:
            future.cancel()


# --- the table ---------------------------------------------------------------------------------


def axis_column(values: Sequence[Any]) -> list[Any]:
    """An axis's values as one Parquet-friendly column: numbers, strings or booleans as they
    are (ints widened to floats when mixed), anything else as its JSON text."""
    if all(isinstance(v, bool) for v in values):
        return list(values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        if any(isinstance(v, float) for v in values):
            return [float(v) for v in values]
        return list(values)
    if all(isinstance(v, str) for v in values):
        return list(values)
    return [json.dumps(v, sort_keys=True) for v in values]


def tidy_table(plan: SweepPlan, rows: pd.DataFrame) -> pd.DataFrame:
    """Units in plan order (point, replication, policy) joined with their rows; units without
    a row yet are left out."""
    index = pd.DataFrame({
        "unit": [u.key for u in plan.units],
        "point": [u.point for u in plan.units],
        "seed": [u.seed for u in plan.units],
        "order": range(len(plan.units)),
    })
    for axis, values in plan.axes.items():
        column = axis_column(values)
        by_value = {json.dumps(v, sort_keys=True): c for v, c in zip(values, column, strict=True)}
        index[axis] = [by_value[json.dumps(dict(plan.points[u.point].values)[axis],
                                           sort_keys=True)] for u in plan.units]
    table = index.merge(rows, on="unit", how="inner", validate="many_to_one")
    table = table.sort_values("order", kind="stable").drop(columns="order")
    first = ["point", *plan.axes, "policy", "replication", "seed"]
    rest = [c for c in table.columns if c not in first and c != "unit"]
    return table[[*first, *rest, "unit"]].reset_index(drop=True)


def sweep_provenance(plan: SweepPlan, executor: str, units_run: int, units_reused: int
                     ) -> dict[str, Any]:
    """The scenario file and its hash, every calibration any point used (path and sha256),
    the bootstorm version, the axes and the executor."""
    base = plan.loaded.provenance()
    calibrations: dict[str, str] = {}
    for point in plan.points:
        for group in point.scenario.cluster.nodes:
            if group.calibration is not None and str(group.calibration) not in calibrations:
                calibrations[str(group.calibration)] = sha256_file(group.calibration)
    return {
        "scenario": base["scenario"],
        "calibrations": [{"file": f, "sha256": h} for f, h in calibrations.items()],
        "bootstorm_version": metadata.version("bootstorm"),
        "sweep": {"axes": {k: list(v) for k, v in plan.axes.items()},
                  "points": len(plan.points), "policies": list(plan.policies),
                  "units": len(plan.units), "simulations": len(distinct(plan.units))},
        "executor": executor,
        "units_run": units_run,
        "units_reused": units_reused,
    }


def write_table(table: pd.DataFrame, path: Path, provenance: Mapping[str, Any]) -> None:
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata_ = {**(arrow.schema.metadata or {}),
                 PROVENANCE_KEY: json.dumps(provenance).encode()}
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(arrow.replace_schema_metadata(metadata_), temporary)
    os.replace(temporary, path)


def read_provenance(path: Path) -> dict[str, Any]:
    """The provenance stored in a sweep table."""
    meta = pq.read_schema(path).metadata or {}
    loaded: dict[str, Any] = json.loads(meta[PROVENANCE_KEY])
    return loaded
