"""The plan of `sim sweep`: every point of a scenario's sweep axes x replication x policy as
plain-data units, and how they are dealt into tasks for the executors.

A unit's key hashes everything its result depends on, so points that differ only in another
policy's settings share a unit (it runs once), and a resumed sweep knows what is done.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.errors import UserError
from sim.files import ScenarioError, locate
from sim.scenario import LoadedScenario
from sim.sweep.axes import Axes, AxisError, Point, parse_axis, points
from sim.sweep.units import Task, Unit, scenario_units

MAX_BATCH = 32
"""Most units in one task when batching automatically."""
TASKS_PER_WORKER = 8
"""Automatic batching aims at this many tasks per parallel slot: enough to balance the load
when units differ in cost, few enough that per-task overhead stays small."""


@dataclass(frozen=True)
class SweepPlan:
    """Everything to run: the axes, their points, and one unit per point x replication x
    policy in that order (units of different points may share a key: see distinct)."""

    loaded: LoadedScenario
    axes: Axes
    points: tuple[Point, ...]
    units: tuple[Unit, ...]

    @property
    def policies(self) -> tuple[str, ...]:
        return self.loaded.scenario.policy_names


def plan_sweep(loaded: LoadedScenario, extra_axes: Mapping[str, Sequence[Any]] | None = None,
               replications: int | None = None) -> SweepPlan:
    """The points of the scenario's `sweep:` axes (with `extra_axes` replacing or adding
    axes) and their units. Raises AxisError for an axis or value the scenario does not take."""
    scenario = loaded.scenario
    if replications is not None:
        scenario = scenario.model_copy(update={"replications": replications})
    axes: Axes = {**scenario.sweep, **{k: tuple(v) for k, v in (extra_axes or {}).items()}}
    pts = points(scenario, axes, loaded.path.parent)
    units = [unit for point in pts for unit in scenario_units(point.scenario, point.index)]
    return SweepPlan(loaded.model_copy(update={"scenario": scenario}), axes, tuple(pts),
                     tuple(units))


def plan_from_options(loaded: LoadedScenario, axis_options: Sequence[str],
                      replications: int | None) -> SweepPlan:
    """The plan of `sim sweep` with its --axis options. A bad axis is a user's mistake in one
    line: located in the file (ScenarioError) for a YAML axis, named as the option otherwise
    (UserError)."""
    extra: dict[str, tuple[Any, ...]] = {}
    for spec in axis_options:
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
            raise ScenarioError([f"{_where(loaded.path, exc.axis)}: sweep.{exc.axis}: {exc}"]
                                ) from None
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


def distinct(units: Sequence[Unit]) -> list[Unit]:
    """Units with distinct keys, first occurrence kept. Points that differ only in another
    policy's settings share their other policies' units: each runs once."""
    seen: set[str] = set()
    out = []
    for unit in units:
        if unit.key not in seen:
            seen.add(unit.key)
            out.append(unit)
    return out


def batches(todo: Sequence[Unit], size: int) -> list[Task]:
    """Tasks of at most `size` units, dealt round-robin. A unit's cost changes smoothly along
    the points (a higher rate, a bigger cluster), so dealing puts cheap and dear units in every
    task: the tasks cost about the same and no worker is left with the dearest ones at the end."""
    count = math.ceil(len(todo) / size)
    return [tuple(todo[i::count]) for i in range(count)]


def auto_batch(units: int, parallelism: int) -> int:
    """Units per task: short units batched so that there are about TASKS_PER_WORKER tasks per
    parallel slot, at most MAX_BATCH units each."""
    return max(1, min(MAX_BATCH, math.ceil(units / (TASKS_PER_WORKER * max(1, parallelism)))))
