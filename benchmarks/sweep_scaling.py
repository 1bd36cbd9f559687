"""Sweep speed-up: the same sweep of 40 points (160 simulations) run serially and on a pool of
local worker processes (and, with --dask, on a Dask cluster started here), checked identical.

    .venv/bin/python benchmarks/sweep_scaling.py               # serial vs 2 local workers
    .venv/bin/python benchmarks/sweep_scaling.py --dask --json # also Dask; figures as JSON

Wall times include starting the pool or cluster. Figures go to docs/scaling.md and
benchmarks/results/sweep_scaling.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from sim.entry import run_app
from sim.scenario import load_scenario
from sim.sweep.executors import ExecutorKind, ExecutorSpec, open_executor
from sim.sweep.plan import SweepPlan, distinct, plan_sweep
from sim.sweep.runner import metrics_task, run_sweep

LOCK = Path("/tmp/bootstorm-measuring")
RESULTS = Path(__file__).resolve().parent / "results" / "sweep_scaling.json"

# 8 rates x 5 cluster sizes = 40 points; two policies, two replications: 160 simulations of
# a few hundred to a few thousand launches each (a node shaped like the 2016 host).
SCENARIO = """\
name: sweep-scaling
description: benchmark sweep (benchmarks/sweep_scaling.py)
seed: 2024
replications: 2
sample_period_s: 1.0
cluster:
  nodes:
    - count: 4
      model: {cores: 4, work_s: 0.08, delay_s: 2.0, work_cv: 0.3}
workload:
  kind: poisson
  rate_per_s: 2
  duration_s: 600
  size: {kind: geometric, mean: 20}
  lifetime_s: 30
policies:
  - {name: fixed_interval, interval_ms: 5}
  - {name: concurrency_cap, max_in_flight: 16}
sweep:
  workload.rate_per_s: [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]
  cluster.nodes.0.count: [2, 4, 6, 8, 10]
"""

app = typer.Typer(no_args_is_help=False, add_completion=False)


def timed(plan: SweepPlan, out: Path, spec: ExecutorSpec) -> tuple[float, pd.DataFrame, str]:
    started = time.perf_counter()
    result = run_sweep(plan, out, spec)
    return time.perf_counter() - started, result.table, result.executor


def startup(spec: ExecutorSpec) -> float:
    """Seconds to open the executor, run one empty task on every slot, and shut it down: the
    fixed cost inside each wall time. Measured in a fresh process, as `sim sweep` pays it."""
    code = ("import sys, time; from benchmarks.sweep_scaling import open_startup; "
            f"print(open_startup({spec.kind!r}, {spec.workers!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parent.parent)
    return float(done.stdout.strip().splitlines()[-1])


def open_startup(kind: ExecutorKind, workers: int | None) -> float:
    started = time.perf_counter()
    with open_executor(ExecutorSpec(kind, workers)) as opened:
        for future in [opened.executor.submit(metrics_task, ()) for _ in range(opened.parallelism)]:
            future.result()
    return time.perf_counter() - started


@app.command()
def main(
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 2,
    dask: Annotated[bool, typer.Option("--dask", help="Also on a local Dask cluster.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
    save: Annotated[bool, typer.Option(help="Write benchmarks/results/sweep_scaling.json.")
                    ] = True,
) -> None:
    """Measure the speed-up of a 40-point sweep on local workers (and Dask) over serial."""
    while LOCK.exists():
        print("waiting: real VMs are being measured (/tmp/bootstorm-measuring)", file=sys.stderr)
        time.sleep(20)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "scaling.yaml").write_text(SCENARIO)
        plan = plan_sweep(load_scenario(folder / "scaling.yaml"))
        simulations = len(distinct(plan.units))
        runs: dict[str, Any] = {}
        print(f"{len(plan.points)} points, {simulations} simulations", file=sys.stderr)
        specs = {"serial": ExecutorSpec("serial"),
                 f"local x{workers}": ExecutorSpec("local", workers)}
        if dask:
            specs[f"dask x{workers}"] = ExecutorSpec("dask", workers)
        reference: pd.DataFrame | None = None
        for label, spec in specs.items():
            print(f"running {label} ...", file=sys.stderr)
            seconds, table, executor = timed(plan, folder / label.replace(" ", "-"), spec)
            identical = reference is None or table.equals(reference)
            reference = table if reference is None else reference
            fixed = startup(spec)
            runs[label] = {"seconds": round(seconds, 2), "startup_seconds": round(fixed, 2),
                           "executor": executor, "identical_to_serial": identical}
            print(f"  {seconds:.1f} s (of which start-up about {fixed:.1f} s)", file=sys.stderr)
    serial = runs["serial"]["seconds"]
    for figures in runs.values():
        figures["speedup"] = round(serial / figures["seconds"], 2)
    report = {"host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "machine": platform.machine()},
              "points": len(plan.points), "simulations": simulations, "runs": runs}
    if save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    if json_out:
        print(json.dumps(report, indent=2))
        return
    for label, figures in runs.items():
        print(f"{label}: {figures['seconds']:.1f} s (start-up {figures['startup_seconds']:.1f} "
              f"s), speed-up {figures['speedup']:.2f}x, identical to serial: "
              f"{figures['identical_to_serial']}")


if __name__ == "__main__":
    run_app(app)
