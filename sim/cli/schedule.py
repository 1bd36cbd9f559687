"""`sim schedule`: hand a policy's launches for one node to the real host (`measure replay`);
`measure validate` then compares what really happened with the model's prediction."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.output import ScenarioArg
from sim.model.schedule import write_schedule
from sim.scenario import load_scenario, with_probe
from sim.sweep.node_schedule import node_schedule

app = typer.Typer()


@app.command("schedule")
def schedule_command(
    scenario: ScenarioArg,
    policy: Annotated[str, typer.Option(help="policy of the scenario (its label or family name)")],
    out: Annotated[Path, typer.Option(help="schedule JSON to write")],
    node: Annotated[int, typer.Option(help="node whose launches to export")] = 0,
    replication: Annotated[int, typer.Option(help="replication to simulate")] = 0,
    probe: Annotated[Path | None, typer.Option(help="probe file from `measure probe`: every "
                                                   "calibrated node group carried to that host")
                     ] = None,
) -> None:
    """Write the launch schedule a policy produces for one node (for `measure replay`)."""
    loaded = load_scenario(scenario)
    if probe is not None:
        loaded, carried = with_probe(loaded, probe)
        print(f"probe {probe} carries node groups: {', '.join(carried)}", file=sys.stderr)
    plan, extrapolation = node_schedule(loaded, policy, node, replication)
    for sentence in extrapolation:
        print(f"warning: extrapolation: {sentence}", file=sys.stderr)
    write_schedule(plan, out)
    span = plan.launches[-1].at_s
    print(f"{out}: {len(plan.launches)} launches over {span:.3f} s on node {node} ({policy})")

