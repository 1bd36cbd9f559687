"""The launches a policy makes on one node in one simulated replication of a scenario, as a
LaunchSchedule that `measure replay` executes on the real host (what `sim schedule` writes)."""

from __future__ import annotations

from sim.errors import UserError
from sim.model.schedule import LaunchSchedule, ScheduledLaunch
from sim.scenario import LoadedScenario, node_extrapolations
from sim.sweep.units import simulate_unit


def node_schedule(loaded: LoadedScenario, policy: str, node: int, replication: int
                  ) -> tuple[LaunchSchedule, list[str]]:
    """Simulate `policy` (a label of the scenario) on `replication` and keep `node`'s launches
    as the policy planned them (a queueing launcher's own delay is left to the host that
    replays them), timed from its first, with the instances' predicted ready times on the same
    clock; and the sentences that say where that node went beyond its calibration's data."""
    sc = loaded.scenario
    names = [p.display_name for p in sc.policies]
    if policy not in names:
        raise UserError(f"policy {policy!r} is not in {loaded.path}; choose one of: "
                        f"{', '.join(names)}")
    if not 0 <= replication < sc.replications:
        raise UserError(f"--replication must be in 0..{sc.replications - 1}")
    tables = simulate_unit(sc, sc.policies[names.index(policy)], replication)
    inst = tables["instances"].to_pandas()
    mine = inst[inst.node == node].sort_values(["planned_s", "request_id", "instance_id"])
    if mine.empty:
        used = sorted(int(n) for n in inst.node.unique())[:10]
        raise UserError(f"node {node} launched nothing under {policy}; choose another --node "
                        f"(nodes with launches include {used})")
    start = float(mine.planned_s.iloc[0])
    group_of_node = [group for group in sc.cluster.nodes for _ in range(group.count)]
    calibration = group_of_node[node].calibration if node < len(group_of_node) else None
    nodes = tables["nodes"].to_pandas()
    peak = int(nodes[nodes.node == node].peak_in_flight.max())
    schedule = LaunchSchedule(
        scenario=str(loaded.path), scenario_sha256=loaded.sha256, policy=policy, node=node,
        replication=replication, calibration=str(calibration) if calibration else None,
        launches=[ScheduledLaunch(request_id=int(r.request_id), instance_id=int(r.instance_id),
                                  at_s=float(r.planned_s) - start,
                                  predicted_ready_s=float(r.ready_s) - start)
                  for r in mine.itertuples()],
    )
    return schedule, node_extrapolations(sc, {node: peak})
