"""`sim run`: run a scenario's policies and write records and a comparison report; `sim tune`:
search one policy's parameters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from sim.cli.output import (
    JsonOpt,
    ScenarioArg,
    json_safe,
    progress_bar,
    stderr,
    wide_console,
)
from sim.errors import UserError
from sim.report.run_outputs import check_output_folder, write_run
from sim.scenario import load_scenario
from sim.sweep.runner import run_scenario
from sim.tune import TuneError, TuneResult, base_config, grid_points, parse_grid, tune, tune_summary

app = typer.Typer()


@app.command("run")
def run_command(
    scenario: ScenarioArg,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder (default: runs/<scenario name>).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Processes running simulations at once (results identical).")
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Run every policy of SCENARIO on every replication (common random numbers) and write the
    records (Parquet, CSV) and the report (report.md, report.html)."""
    loaded = load_scenario(scenario)
    sc = loaded.scenario
    out_dir = out if out is not None else Path("runs") / sc.name
    check_output_folder(out_dir)  # created only when the results are written
    units = sc.replications * len(sc.policies)
    with progress_bar(f"{sc.name}: policy x replication", units) as progress:
        tables = run_scenario(sc, workers=workers, on_units_done=lambda n: progress.advance(
            progress.task_ids[0], n))
    summary = write_run(loaded, tables, out_dir)
    for sentence in summary["extrapolation"]:
        print(f"warning: extrapolation: {sentence}", file=sys.stderr)
    if as_json:
        print(json.dumps(json_safe(summary), indent=2))
    else:
        _print_run(summary)


def _print_run(summary: dict[str, Any]) -> None:
    console = wide_console()
    table = Table(title=f"{summary['scenario']}: mean over {summary['replications']} "
                        "replications (95% CI)")
    table.add_column("policy")
    for metric in ("time_to_first_s", "time_to_all_s"):
        for stat in ("mean", "p95"):
            table.add_column(f"{stat} {metric.removesuffix('_s')}", justify="right")
    for policy in summary["policies"]:
        cells = []
        for metric in ("time_to_first_s", "time_to_all_s"):
            for stat in ("mean", "p95"):
                s = summary["metrics"][metric][policy][stat]
                cells.append(f"{s['value']:.3f}")
        table.add_row(policy, *cells)
    console.print(table)
    console.print(f"report: {summary['report']['html']} and {summary['report']['markdown']}")


@app.command("tune")
def tune_command(
    scenario: ScenarioArg,
    policy: Annotated[str, typer.Option(
        "--policy", help="A policy label of the scenario, or a family name.")],
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", help="NAME=V1,V2,... replaces or adds an axis (repeatable).")] = None,
    replications: Annotated[int | None, typer.Option(
        "--replications", min=1, help="Override the scenario's replications.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search POLICY's parameters on SCENARIO: minimise the scenario's objective (default p95
    time to first ready) keeping time to all ready within its slack of the best setting."""
    loaded = load_scenario(scenario)
    sc = loaded.scenario
    if replications is not None:
        sc = sc.model_copy(update={"replications": replications})
    try:
        overrides = parse_grid(grid or [])
        family, _ = base_config(sc, policy)
        grid_points(family, overrides)  # a mistake in --policy or --grid fails before any run
        with progress_bar(f"tuning {policy}", 1) as progress:
            def done(i: int, total: int) -> None:
                progress.update(progress.task_ids[0], completed=i, total=total)

            result = tune(sc, policy, overrides, on_setting_done=done)
    except TuneError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print(json.dumps(json_safe(tune_summary(loaded, result)), indent=2))
    else:
        _print_tune(result)


def _print_tune(result: TuneResult) -> None:
    obj = result.objective
    name = f"{obj.stat} {obj.metric.removesuffix('_s')}"
    console = wide_console()
    table = Table(title=f"{result.policy}: {name} (s), best first")
    for column in ("settings", name, "95% CI", f"{obj.stat} time to all", "within slack"):
        table.add_column(column, justify="left" if column == "settings" else "right")
    for c in (*result.candidates, result.reference):
        settings = ", ".join(f"{k}={v}" for k, v in c.settings.items()) or "immediate (reference)"
        table.add_row(settings, f"{c.objective:.3f}", f"[{c.objective_ci[0]:.3f}, "
                      f"{c.objective_ci[1]:.3f}]", f"{c.all_ready:.3f}",
                      "yes" if c.feasible else "no")
    console.print(table)
    for line in result.skipped:
        stderr.print(f"skipped: {line}")
    best = result.best
    if best is None:
        console.print("no setting keeps time to all ready within the slack")
        return
    config = best.config.model_dump(mode="json", exclude={"label"}, exclude_defaults=True)
    console.print("best settings (paste into the scenario's policies):")
    family = type(best.config).model_fields["name"].default
    console.print(yaml.safe_dump([{"name": family, **config}],
                                 sort_keys=False).rstrip())
