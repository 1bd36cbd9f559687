"""`sim sweep`: run a scenario over its sweep axes (from the YAML's `sweep:` and --axis), every
policy on every replication of every point, here or on a Dask cluster; write a table and a report.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.output import progress_bar
from sim.errors import UserError
from sim.report.sweep import write_sweep_report
from sim.scenario import load_scenario
from sim.sweep.executors import ExecutorSpec
from sim.sweep.plan import distinct, plan_from_options
from sim.sweep.runner import run_sweep

app = typer.Typer()


class ExecutorChoice(StrEnum):
    serial = "serial"
    local = "local"
    dask = "dask"


@app.command("sweep")
def sweep_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file with a `sweep:` mapping "
                                                  "of axes (see scenarios/sweep-*.yaml).")],
    axis: Annotated[list[str] | None, typer.Option(
        "--axis", help="PATH=V1,V2,... adds an axis or replaces the YAML's (repeatable); PATH "
                       "is dotted, e.g. workload.rate_per_s or policies.batching.window_s.")
    ] = None,
    executor: Annotated[ExecutorChoice | None, typer.Option(
        "--executor", help="Where tasks run: serial (this process), local (a process pool), "
                           "dask (a Dask cluster). Default: local, or dask with --scheduler.")
    ] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Processes of the local pool or of a Dask cluster started "
                                 "here (default: one per CPU).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786.")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder (default: runs/<scenario name>-sweep). Running again "
                      "into the same folder resumes: finished units are not redone.")] = None,
    replications: Annotated[int | None, typer.Option(
        "--replications", min=1, help="Override the scenario's replications.")] = None,
    batch: Annotated[int | None, typer.Option(
        "--batch", min=1, help="Simulations per task (default: chosen from the sweep's size "
                               "and the parallelism).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only a JSON summary.")] = False,
) -> None:
    """Run every point of SCENARIO's sweep axes x policy x replication and write a tidy table
    (sweep.parquet, with provenance), a report (report.md, figures/) and summary.csv."""
    loaded = load_scenario(scenario)
    plan = plan_from_options(loaded, axis or [], replications)
    kind = executor.value if executor is not None else ("dask" if scheduler else "local")
    spec = ExecutorSpec(kind, workers, scheduler)  # type: ignore[arg-type]
    out_dir = out if out is not None else Path("runs") / f"{loaded.scenario.name}-sweep"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out_dir} ({exc.strerror}); pass another --out") from None
    total = len(distinct(plan.units))
    started = time.perf_counter()
    with progress_bar(f"{plan.loaded.scenario.name}: simulations", total,
                      transient=True) as progress:
        result = run_sweep(plan, out_dir, spec, batch,
                           on_units_done=lambda n: progress.advance(progress.task_ids[0], n))
    elapsed = time.perf_counter() - started
    files = {k: str(v) for k, v in write_sweep_report(plan, result.table, result.provenance,
                                                      out_dir).items()}
    files["table"] = str(out_dir / "sweep.parquet")
    files["provenance"] = str(out_dir / "provenance.json")
    summary = {
        "scenario": plan.loaded.scenario.name, "file": str(plan.loaded.path),
        "axes": {k: list(v) for k, v in plan.axes.items()}, "points": len(plan.points),
        "policies": list(plan.policies), "replications": plan.loaded.scenario.replications,
        "rows": len(result.table), "simulations": total, "run": result.units_run,
        "resumed": result.units_reused, "tasks": result.tasks, "executor": result.executor,
        "seconds": round(elapsed, 3), "files": files,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['points']} points x {len(plan.policies)} policies x "
          f"{summary['replications']} replications: {total} simulations "
          f"({result.units_reused} already done, {result.units_run} run on {result.executor} "
          f"in {elapsed:.1f} s)")
    print(f"table: {files['table']}")
    print(f"report: {files['markdown']}")
