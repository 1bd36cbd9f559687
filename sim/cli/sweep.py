"""`sim sweep`: run a scenario over its sweep axes (from the YAML's `sweep:` and --axis), every
policy on every replication of every point, here or on a Dask cluster; write a table and a report.
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sim.errors import UserError
from sim.files import locate
from sim.report.sweep import write_sweep_report
from sim.scenario import LoadedScenario
from sim.sweep.axes import AxisError, parse_axis
from sim.sweep.executors import ExecutorSpec
from sim.sweep.plan import SweepPlan, distinct, plan_sweep, run_sweep

_stderr = Console(stderr=True)


class ExecutorChoice(StrEnum):
    serial = "serial"
    local = "local"
    dask = "dask"


def _load(path: Path) -> LoadedScenario:
    """The `sim run` loader (file:line:col errors, exit 2), imported late."""
    from sim.cli.run import _load as load

    return load(path)


def _plan(loaded: LoadedScenario, axes: list[str], replications: int | None) -> SweepPlan:
    """The sweep's plan; a bad axis is one line: located in the file for a YAML axis, named
    as the --axis option otherwise."""
    extra: dict[str, tuple[Any, ...]] = {}
    for spec in axes:
        try:
            path, values = parse_axis(spec)
        except AxisError as exc:
            raise UserError(str(exc)) from None
        extra[path] = values
    try:
        plan = plan_sweep(loaded, extra, replications)
    except AxisError as exc:
        if exc.axis in extra:
            raise UserError(f"--axis {exc.axis}: {exc}") from None
        if exc.axis in loaded.scenario.sweep:
            print(f"{_where(loaded.path, exc.axis)}: sweep.{exc.axis}: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        raise UserError(str(exc)) from None
    if not plan.axes:
        raise UserError(f"{loaded.path} has no sweep axes; add a `sweep:` mapping (e.g. "
                        "sweep: {workload.rate_per_s: [1, 2, 4]}) or pass --axis PATH=V1,V2")
    return plan


def _where(path: Path, axis: str) -> str:
    """file:line:col of the axis's key under `sweep:`."""
    node, _ = locate(yaml.compose(path.read_text(encoding="utf-8")), ("sweep", axis),
                     key_node=True)
    if node is None:
        return str(path)
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


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
    loaded = _load(scenario)
    plan = _plan(loaded, axis or [], replications)
    kind = executor.value if executor is not None else ("dask" if scheduler else "local")
    spec = ExecutorSpec(kind, workers, scheduler)  # type: ignore[arg-type]
    out_dir = out if out is not None else Path("runs") / f"{loaded.scenario.name}-sweep"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out_dir} ({exc.strerror}); pass another --out") from None
    total = len(distinct(plan.units))
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_stderr, transient=True,
                  disable=not _stderr.is_terminal) as progress:
        bar = progress.add_task(f"{plan.loaded.scenario.name}: simulations", total=total)
        result = run_sweep(plan, out_dir, spec, batch,
                           on_units_done=lambda n: progress.advance(bar, n))
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
