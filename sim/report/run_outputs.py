"""What `sim run` leaves behind for a scenario's run: the record tables (Parquet, the small ones
also as CSV), the comparison report, and the run's summary (what `--json` prints)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sim.errors import UserError
from sim.report.comparison import ReportInput, build_report
from sim.report.node_forecast import node_forecast
from sim.report.render import write_report
from sim.scenario import LoadedScenario, node_extrapolations

CSV_MAX_ROWS = 100_000
"""Requests and nodes are also written as CSV (for spreadsheets) up to this many rows."""


def write_records(tables: dict[str, pa.Table], out: Path) -> dict[str, str]:
    """Every record kind as Parquet under out/records/, the small ones also as CSV."""
    folder = out / "records"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, table in tables.items():
        path = folder / f"{kind}.parquet"
        pq.write_table(table, path)
        paths[kind] = str(path)
    for kind in ("requests", "nodes"):
        if tables[kind].num_rows <= CSV_MAX_ROWS:
            pacsv.write_csv(tables[kind], folder / f"{kind}.csv")
    return paths


def report_input(loaded: LoadedScenario, frames: dict[str, pd.DataFrame],
                 extrapolation: list[str]) -> ReportInput:
    """What the report of a `sim run` shows, from the scenario and the record tables (for one
    node, with the forecast of each burst it launched)."""
    sc = loaded.scenario
    ref = sc.reference
    provenance = {**loaded.provenance(), "extrapolation": extrapolation or [
        "none: every node group stayed within its calibration's data"]}
    return ReportInput(
        title=f"Scenario {sc.name}: launch policies compared",
        description=sc.description, policies=sc.policy_names, baseline=sc.baseline_policy,
        tables=frames, slos=sc.metrics.slo.limits(), provenance=provenance,
        reference=pd.read_csv(ref.path) if ref is not None else None,
        reference_intervals=ref.intervals_ms if ref is not None else {},
        reference_source=ref.source if ref is not None else "",
        forecast=node_forecast(sc, frames, extrapolation),
    )


def check_output_folder(out: Path) -> None:
    """Refuse, before anything runs, an `out` that cannot be created or written. Nothing is
    created until the results are written (a run that fails leaves no folder behind)."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot create {out} ({existing} is not a writable folder); pass "
                        "another --out")


def write_run(loaded: LoadedScenario, tables: dict[str, pa.Table], out: Path) -> dict[str, Any]:
    """Write the records and the report of a run of `loaded` into `out`; the run's summary:
    every statistic of every metric and policy, and the files written. If writing fails, the
    folders it created are removed again: no partial output is left looking like a result."""
    created = next((p for p in (*reversed(out.parents), out) if not p.exists()), None)
    try:
        return _write_run(loaded, tables, out)
    except BaseException as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise UserError(f"cannot write the results to {out} ({reason}); free space or "
                            "pass another --out") from None
        raise


def _write_run(loaded: LoadedScenario, tables: dict[str, pa.Table], out: Path) -> dict[str, Any]:
    records = write_records(tables, out)
    frames = {kind: table.to_pandas() for kind, table in tables.items()}
    peaks = frames["nodes"].groupby("node").peak_in_flight.max()
    extrapolation = node_extrapolations(loaded.scenario, {int(n): int(p) for n, p in peaks.items()})
    data = report_input(loaded, frames, extrapolation)
    report = build_report(data)
    files = {k: str(v) for k, v in write_report(report, out).items()}
    metrics: dict[str, Any] = {}
    for row in report.statistics.to_dict("records"):
        by_policy = metrics.setdefault(str(row["metric"]), {}).setdefault(str(row["policy"]), {})
        by_policy[str(row["stat"])] = {
            "value": row["value"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
            "diff_vs_baseline": row["diff"], "diff_low": row["diff_low"],
            "diff_high": row["diff_high"],
        }
    sc = loaded.scenario
    return {
        "scenario": sc.name, "file": str(loaded.path), "sha256": loaded.sha256,
        "replications": sc.replications, "seed": sc.seed, "policies": list(sc.policy_names),
        "baseline": sc.baseline_policy, "metrics": metrics, "report": files, "records": records,
        "extrapolation": extrapolation,
        "one_node_forecast": None if data.forecast is None else data.forecast.to_json(),
    }
