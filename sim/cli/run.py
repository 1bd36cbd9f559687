"""The `sim` command: run a scenario's policies and write records and a comparison report
(`sim run`), or search one policy's parameters (`sim tune`)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.entry import run_app
from sim.errors import UserError
from sim.files import ScenarioError
from sim.report.comparison import ReportInput, build_report, write_report
from sim.scenario import LoadedScenario, load_scenario
from sim.sweep.experiment import Tables, run_scenario, units
from sim.tune import TuneError, TuneResult, base_config, grid_points, tune

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help=__doc__)
# Further commands join this app: `sim schedule` (issue 6), `sim sweep`
# (issue 7) register with app.command() in their own modules, imported at the end of this file.

_stderr = Console(stderr=True)
_WIDTH = 120
"""Tables are laid out for at least this many columns, even when stdout is not a terminal."""


def _console() -> Console:
    width = Console().width
    return Console(width=max(width, _WIDTH))

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file (see scenarios/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only a JSON summary on stdout.")]


def _load(path: Path) -> LoadedScenario:
    """Load a scenario or report every problem as `file:line:col: path: message` and exit 2."""
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        raise typer.Exit(2) from None


@contextmanager
def _progress(description: str, total: int) -> Iterator[Progress]:
    """A progress bar on stderr (never on stdout, which --json keeps for JSON)."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=_stderr, transient=False,
    ) as progress:
        progress.add_task(description, total=total)
        yield progress


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


CSV_MAX_ROWS = 100_000
"""Requests and nodes are also written as CSV (for spreadsheets) up to this many rows."""


def write_records(tables: Tables, out: Path) -> dict[str, str]:
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
    loaded = _load(scenario)
    sc = loaded.scenario
    out_dir = out if out is not None else Path("runs") / sc.name
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out_dir} ({exc.strerror}); pass another --out") from None
    todo = units(sc)
    with _progress(f"{sc.name}: policy x replication", len(todo)) as progress:
        tables = run_scenario(sc, on_unit_done=lambda _: progress.advance(progress.task_ids[0]),
                              workers=workers)
    records = write_records(tables, out_dir)
    frames = {kind: table.to_pandas() for kind, table in tables.items()}
    report = build_report(report_input(loaded, frames))
    files = {k: str(v) for k, v in write_report(report, out_dir).items()}
    summary = _run_summary(loaded, report.summary, files, records)
    if as_json:
        print(json.dumps(_clean(summary), indent=2))
    else:
        _print_run(summary)


def report_input(loaded: LoadedScenario, frames: dict[str, pd.DataFrame]) -> ReportInput:
    """What the report of a `sim run` shows, from the scenario and the record tables."""
    sc = loaded.scenario
    ref = sc.reference
    return ReportInput(
        title=f"Scenario {sc.name}: launch policies compared",
        description=sc.description, policies=sc.policy_names, baseline=sc.baseline_policy,
        tables=frames, slos=sc.metrics.slo.limits(), provenance=loaded.provenance(),
        reference=pd.read_csv(ref.path) if ref is not None else None,
        reference_intervals=ref.intervals_ms if ref is not None else {},
        reference_source=ref.source if ref is not None else "",
    )


def _run_summary(loaded: LoadedScenario, summary: Any, files: dict[str, str],
                 records: dict[str, str]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for row in summary.itertuples(index=False):
        metrics.setdefault(row.metric, {}).setdefault(row.policy, {})[row.stat] = {
            "value": row.value, "ci_low": row.ci_low, "ci_high": row.ci_high,
            "diff_vs_baseline": row.diff, "diff_low": row.diff_low, "diff_high": row.diff_high,
        }
    sc = loaded.scenario
    return {
        "scenario": sc.name, "file": str(loaded.path), "sha256": loaded.sha256,
        "replications": sc.replications, "seed": sc.seed, "policies": list(sc.policy_names),
        "baseline": sc.baseline_policy, "metrics": metrics, "report": files, "records": records,
    }


def _print_run(summary: dict[str, Any]) -> None:
    console = _console()
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


def _parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not name or not values:
            raise UserError(f"--grid {spec!r} is not NAME=V1,V2,...; for example "
                            "--grid interval_ms=0,5,10")
        grid[name.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


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
    loaded = _load(scenario)
    sc = loaded.scenario
    if replications is not None:
        sc = sc.model_copy(update={"replications": replications})
    overrides = _parse_grid(grid or [])
    try:
        family, _ = base_config(sc, policy)
        grid_points(family, overrides)  # a mistake in --policy or --grid fails before any run
        with _progress(f"tuning {policy}", 1) as progress:
            def done(i: int, total: int) -> None:
                progress.update(progress.task_ids[0], completed=i, total=total)

            result = tune(sc, policy, overrides, on_setting_done=done)
    except TuneError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print(json.dumps(_clean(_tune_summary(loaded, result)), indent=2))
    else:
        _print_tune(result)


def _candidate(c: Any) -> dict[str, Any]:
    return {"settings": c.settings, "objective": c.objective, "objective_ci": list(c.objective_ci),
            "all_ready": c.all_ready, "feasible": c.feasible}


def _tune_summary(loaded: LoadedScenario, result: TuneResult) -> dict[str, Any]:
    best = result.best
    return {
        "scenario": loaded.scenario.name, "file": str(loaded.path), "policy": result.policy,
        "objective": result.objective.model_dump(),
        "best": None if best is None else {
            **_candidate(best),
            "config": best.config.model_dump(mode="json", exclude={"label"}),
        },
        "reference_immediate": None if result.reference is None
        else _candidate(result.reference),
        "candidates": [_candidate(c) for c in result.candidates],
        "skipped": list(result.skipped),
    }


def _print_tune(result: TuneResult) -> None:
    obj = result.objective
    name = f"{obj.stat} {obj.metric.removesuffix('_s')}"
    console = _console()
    table = Table(title=f"{result.policy}: {name} (s), best first")
    for column in ("settings", name, "95% CI", f"{obj.stat} time to all", "within slack"):
        table.add_column(column, justify="left" if column == "settings" else "right")
    rows = list(result.candidates)
    if result.reference is not None:
        rows.append(result.reference)
    for c in rows:
        settings = ", ".join(f"{k}={v}" for k, v in c.settings.items()) or "immediate (reference)"
        table.add_row(settings, f"{c.objective:.3f}", f"[{c.objective_ci[0]:.3f}, "
                      f"{c.objective_ci[1]:.3f}]", f"{c.all_ready:.3f}",
                      "yes" if c.feasible else "no")
    console.print(table)
    for line in result.skipped:
        _stderr.print(f"skipped: {line}")
    best = result.best
    if best is None:
        console.print("no setting keeps time to all ready within the slack")
        return
    config = best.config.model_dump(mode="json", exclude={"label"}, exclude_defaults=True)
    console.print("best settings (paste into the scenario's policies):")
    family = type(best.config).model_fields["name"].default
    console.print(yaml.safe_dump([{"name": family, **config}],
                                 sort_keys=False).rstrip())


def _register_loop_commands() -> None:
    """`sim schedule` (the replay loop, sim/cli/schedule.py)."""
    from sim.cli import schedule as loop_cli

    app.command("schedule")(loop_cli.schedule_command)


_register_loop_commands()


def _register_sweep_commands() -> None:
    """`sim sweep` (sweep axes x policies x replications on any executor, sim/cli/sweep.py)."""
    from sim.cli import sweep as sweep_cli

    app.command("sweep")(sweep_cli.sweep_command)


_register_sweep_commands()


def main() -> None:
    """Entry point of the `sim` command: user mistakes exit 2 with one line, never a traceback."""
    run_app(app)


if __name__ == "__main__":
    main()
