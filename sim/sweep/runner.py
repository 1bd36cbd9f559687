"""The one runner of policy x replication: units dealt into tasks and run on an executor (this
process, a local pool or Dask) through one loop. `run_scenario` is a sweep without axes that
keeps every unit's records; `run_sweep` keeps each unit's metric row and saves it at once.

Each unit depends only on its own data, so the results are identical on every executor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from sim.policies import PolicyConfig
from sim.scenario import Scenario
from sim.sweep.executors import ExecutorSpec, OpenExecutor, open_executor
from sim.sweep.plan import SweepPlan, auto_batch, batches, distinct
from sim.sweep.table import (
    parts_dir,
    read_parts,
    sweep_provenance,
    tidy_table,
    unit_metrics,
    write_part,
    write_table,
)
from sim.sweep.units import Tables, Task, concat, scenario_units, simulate_task

R = TypeVar("R")


def run_tasks(opened: OpenExecutor, work: Callable[[Task], R], tasks: Sequence[Task],
              on_task_done: Callable[[Task, R], None]) -> None:
    """work(task) for every task on the executor, keeping at most `opened.window` submitted;
    each result is handed to on_task_done as soon as it is there (in completion order)."""
    queue = list(reversed(tasks))
    pending: dict[Future[R], Task] = {}
    try:
        while queue or pending:
            while queue and len(pending) < opened.window:
                task = queue.pop()
                pending[opened.executor.submit(work, task)] = task
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                on_task_done(pending.pop(future), future.result())
    finally:
        for future in pending:
            future.cancel()


def records_task(task: Task) -> list[Tables]:
    """Each unit's record tables (what `sim run` keeps)."""
    return [tables for _, _, _, tables in simulate_task(task)]


def metrics_task(task: Task) -> list[dict[str, Any]]:
    """Each unit's row of metrics (what `sim sweep` keeps); its records are dropped at once."""
    return [{"unit": unit.key, "policy": config.display_name, "replication": unit.replication,
             **unit_metrics(tables, scenario)}
            for unit, scenario, config, tables in simulate_task(task)]


def run_scenario(
    scenario: Scenario,
    policies: Sequence[PolicyConfig] | None = None,
    on_units_done: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Tables:
    """Every policy of the scenario (or `policies`) on every replication, serially or on a
    pool of `workers` local processes: the tables are identical either way, in unit order
    (replication-major)."""
    todo = scenario_units(scenario, policies=policies)
    if workers <= 1 or len(todo) <= 1:
        spec = ExecutorSpec("serial")
    else:
        spec = ExecutorSpec("local", min(workers, len(todo)))
    done: dict[str, Tables] = {}

    def keep(task: Task, tables: list[Tables]) -> None:
        for unit, unit_tables in zip(task, tables, strict=True):
            done[unit.key] = unit_tables
        if on_units_done is not None:
            on_units_done(len(task))

    with open_executor(spec) as opened:
        run_tasks(opened, records_task, [(unit,) for unit in todo], keep)
    return concat(done[unit.key] for unit in todo)


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

    def save(task: Task, rows: list[dict[str, Any]]) -> None:
        write_part(folder, rows)
        if on_units_done is not None:
            on_units_done(len(task))

    tasks: list[Task] = []
    description = "none (every unit was already done)"
    if todo:
        with open_executor(executor) as opened:
            description = opened.description
            tasks = batches(todo, batch or auto_batch(len(todo), opened.parallelism))
            run_tasks(opened, metrics_task, tasks, save)
    rows = read_parts(folder, wanted)
    table = tidy_table(plan, rows)
    provenance = sweep_provenance(plan, description, units_run=len(todo),
                                  units_reused=len(done))
    write_table(table, out / "sweep.parquet", provenance)
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return SweepResult(table, len(todo), len(done), len(tasks), description, provenance)
