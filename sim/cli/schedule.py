"""`sim schedule`: hand a policy's launches for one node to the real host (`measure replay`);
`measure validate` then compares what really happened with the model's prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.errors import UserError
from sim.model.schedule import LaunchSchedule, ScheduledLaunch, write_schedule
from sim.scenario import LoadedScenario
from sim.sweep.experiment import Unit, run_unit


def _load(path: Path) -> LoadedScenario:
    """The `sim run` loader (file:line:col errors, exit 2), imported late."""
    from sim.cli.run import _load as load

    return load(path)


def schedule_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (see scenarios/).")],
    policy: Annotated[str, typer.Option(help="policy of the scenario (its label or family name)")],
    out: Annotated[Path, typer.Option(help="schedule JSON to write")],
    node: Annotated[int, typer.Option(help="node whose launches to export")] = 0,
    replication: Annotated[int, typer.Option(help="replication to simulate")] = 0,
) -> None:
    """Write the launch schedule a policy produces for one node (for `measure replay`)."""
    loaded = _load(scenario)
    sc = loaded.scenario
    names = [p.display_name for p in sc.policies]
    if policy not in names:
        raise UserError(f"policy {policy!r} is not in {scenario}; choose one of: "
                        f"{', '.join(names)}")
    if not 0 <= replication < sc.replications:
        raise UserError(f"--replication must be in 0..{sc.replications - 1}")
    config = sc.policies[names.index(policy)]
    tables = run_unit(sc, Unit(config, replication))
    inst = tables["instances"].to_pandas()
    mine = inst[inst.node == node].sort_values(["launch_s", "request_id", "instance_id"])
    if mine.empty:
        used = sorted(int(n) for n in inst.node.unique())[:10]
        raise UserError(f"node {node} launched nothing under {policy}; choose another --node "
                        f"(nodes with launches include {used})")
    start = float(mine.launch_s.iloc[0])
    group_of_node = []
    for group in sc.cluster.nodes:
        group_of_node += [group] * group.count
    calibration = (group_of_node[node].calibration if node < len(group_of_node) else None)
    plan = LaunchSchedule(
        scenario=str(loaded.path), scenario_sha256=loaded.sha256, policy=policy, node=node,
        replication=replication, calibration=str(calibration) if calibration else None,
        launches=[ScheduledLaunch(request_id=int(r.request_id), instance_id=int(r.instance_id),
                                  at_s=float(r.launch_s) - start,
                                  predicted_ready_s=float(r.ready_s) - start)
                  for r in mine.itertuples()],
    )
    write_schedule(plan, out)
    span = plan.launches[-1].at_s
    print(f"{out}: {len(plan.launches)} launches over {span:.3f} s on node {node} ({policy})")

