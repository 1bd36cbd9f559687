"""The sweep's results: one row of metrics per unit (made in the worker from the unit's records),
saved as part files as tasks finish, and assembled into the tidy table with its provenance."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.report.statistics import METRICS, STATISTICS, statistic
from sim.scenario import Scenario, sha256_file
from sim.sweep.plan import SweepPlan, distinct
from sim.sweep.units import Tables

PROVENANCE_KEY = b"bootstorm.provenance"
"""Parquet metadata key of the sweep table's provenance (JSON)."""


def unit_metrics(tables: Tables, scenario: Scenario) -> dict[str, float | int]:
    """A unit's row of metrics: each statistic of each metric within this replication (as
    `sim run`'s report computes per replication), SLO attainment, node facts."""
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
