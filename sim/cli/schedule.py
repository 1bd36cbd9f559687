"""`sim schedule` and `sim validate`: hand a policy's launches for one node to the real host
(`measure replay`) and compare what really happened with the model's prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.output import ScenarioArg
from sim.model.schedule import write_schedule
from sim.scenario import load_scenario
from sim.sweep.node_schedule import node_schedule

app = typer.Typer()


@app.command("schedule")
def schedule_command(
    scenario: ScenarioArg,
    policy: Annotated[str, typer.Option(help="policy of the scenario (its label or family name)")],
    out: Annotated[Path, typer.Option(help="schedule JSON to write")],
    node: Annotated[int, typer.Option(help="node whose launches to export")] = 0,
    replication: Annotated[int, typer.Option(help="replication to simulate")] = 0,
) -> None:
    """Write the launch schedule a policy produces for one node (for `measure replay`)."""
    plan = node_schedule(load_scenario(scenario), policy, node, replication)
    write_schedule(plan, out)
    span = plan.launches[-1].at_s
    print(f"{out}: {len(plan.launches)} launches over {span:.3f} s on node {node} ({policy})")


@app.command("validate")
def validate_command(
    dataset: Annotated[Path, typer.Argument(help="dataset written by `measure replay` or "
                                                 "`measure burst`")],
    calibration: Annotated[Path, typer.Option(help="calibration JSON of the host")],
    plots: Annotated[Path | None, typer.Option(help="write CDF overlay PNGs here")] = None,
    work: Annotated[str, typer.Option(help="model: work drawn from the calibration, as the "
                                           "simulator does; measured: each instance's real CPU "
                                           "time")] = "model",
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """Compare real per-instance ready times with the model's prediction for the same launches."""
    from measure.calibration.validate import validate_dataset

    results = validate_dataset(dataset, calibration, plots, work)
    if json_out:
        print(json.dumps([r.model_dump() for r in results], indent=2))
        return
    print(f"{'run':<44} {'n':>4}  {'first':>15} {'median':>15} {'p95':>15} {'all':>15}  W1/mk")
    for r in results:
        cells = [f"{r.real[k]:6.3f}/{r.predicted[k]:6.3f}" for k in
                 ("first_ready_s", "median_ready_s", "p95_ready_s", "all_ready_s")]
        print(f"{r.run_id[:44]:<44} {r.count:>4}  " + " ".join(f"{c:>15}" for c in cells)
              + f"  {r.wasserstein_over_makespan:5.1%}")
        errs = ", ".join(f"{k.replace('_ready_s', '')} {v:+.1%}"
                         for k, v in r.relative_error.items())
        print(f"{'':<44}       model error: {errs}")
    print("(cells: real/predicted seconds from the burst start)")
