"""`sim tune`: grid search of one policy's parameters on a scenario, with common random numbers
across settings; the best setting minimises the scenario's objective under its all-ready slack."""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from sim.policies import FAMILIES, ImmediateConfig, PolicyConfig
from sim.report.statistics import METRICS, per_replication, statistic, t_interval
from sim.scenario import LoadedScenario, ObjectiveSpec, Scenario
from sim.sweep.runner import run_scenario


class TuneError(ValueError):
    """A tuning request that cannot be run (unknown policy or parameter, empty grid)."""


@dataclass(frozen=True)
class Candidate:
    """One setting tried: its parameters and the outcome over the scenario's replications."""

    settings: dict[str, Any]
    config: PolicyConfig
    objective: float
    objective_ci: tuple[float, float]
    all_ready: float
    """The objective's statistic of time to all ready (mean over replications)."""
    feasible: bool


@dataclass(frozen=True)
class TuneResult:
    policy: str
    """The policy tuned: a label of the scenario or a family name."""
    objective: ObjectiveSpec
    """What the search minimised, and under which all-ready constraint."""
    candidates: tuple[Candidate, ...]
    """Sorted: feasible first, then by objective."""
    reference: Candidate
    """`immediate` on the same replications, for scale."""
    skipped: tuple[str, ...]
    """Grid points that do not validate, with the reason."""

    @property
    def best(self) -> Candidate | None:
        feasible = [c for c in self.candidates if c.feasible]
        return feasible[0] if feasible else None


def base_config(scenario: Scenario, policy: str) -> tuple[type[PolicyConfig], dict[str, Any]]:
    """The family and base settings of `policy`: a label in the scenario, or a family name."""
    for config in scenario.policies:
        if config.display_name == policy:
            return type(config), config.model_dump(exclude_unset=True, exclude={"label"})
    if policy in FAMILIES:
        return FAMILIES[policy], {"name": policy}
    known = sorted({*scenario.policy_names, *FAMILIES})
    close = difflib.get_close_matches(policy, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TuneError(f"unknown policy {policy!r}; {hint}use one of: {', '.join(known)}")


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`--grid NAME=V1,V2,...` options as axes (each value read as YAML)."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not name or not values:
            raise TuneError(f"--grid {spec!r} is not NAME=V1,V2,...; for example "
                            "--grid interval_ms=0,5,10")
        grid[name.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def grid_points(family: type[PolicyConfig], overrides: Mapping[str, Sequence[Any]]
                ) -> list[dict[str, Any]]:
    """The cross product of the family's default grid, with `overrides` replacing or adding
    axes."""
    axes = {**family.tuning, **overrides}
    unknown = sorted(set(axes) - set(family.model_fields))
    if unknown:
        has = [n for n in family.model_fields if n not in ("name", "label")]
        close = difflib.get_close_matches(unknown[0], has, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise TuneError(f"{family.model_fields['name'].default} has no parameter(s) "
                        f"{', '.join(unknown)}; {hint}it has: {', '.join(has)}")
    if not axes:
        return [{}]
    names = list(axes)
    return [dict(zip(names, values, strict=True))
            for values in itertools.product(*(axes[n] for n in names))]


def _evaluate(scenario: Scenario, config: PolicyConfig, objective: ObjectiveSpec
              ) -> tuple[float, tuple[float, float], float]:
    """The objective's mean over replications with its interval (each replication's statistic
    computed as the report does), and the mean of the same statistic of time to all ready."""
    tables = run_scenario(scenario, [config])
    metric = next(m for m in METRICS if m.name == objective.metric)
    per_rep = per_replication(tables[metric.table].to_pandas(), metric.column)
    mean, low, high = t_interval(per_rep[per_rep.stat == objective.stat]["value"].to_numpy())
    requests = tables["requests"].to_pandas()
    all_ready = []
    for rep in range(scenario.replications):
        done = requests.loc[requests.replication == rep, "time_to_all_s"].to_numpy(dtype=float)
        # A request never all ready counts as infinitely late: the constraint then fails.
        all_ready.append(statistic(np.where(np.isfinite(done), done, math.inf), objective.stat))
    return mean, (low, high), float(np.mean(all_ready))


def tune(
    scenario: Scenario,
    policy: str,
    overrides: Mapping[str, Sequence[Any]] | None = None,
    on_setting_done: Callable[[int, int], None] | None = None,
) -> TuneResult:
    """Try every grid point of `policy` on `scenario` and rank them."""
    family, base = base_config(scenario, policy)
    objective = scenario.metrics.objective
    configs: list[tuple[dict[str, Any], PolicyConfig]] = []
    skipped: list[str] = []
    for point in grid_points(family, overrides or {}):
        settings = family.tuning_point(point)
        label = ", ".join(f"{k}={v}" for k, v in point.items()) or "defaults"
        try:
            config = family.model_validate({**base, **settings, "label": f"{policy}[{label}]"})
        except ValidationError as exc:
            skipped.append(f"{label}: {exc.errors()[0]['msg']}")
            continue
        configs.append((point, config))
    if not configs:
        raise TuneError(f"no valid setting of {policy} in the grid; "
                        + ("; ".join(skipped[:3]) or "give axes with --grid"))
    measured = []
    total = len(configs) + 1
    for i, (point, config) in enumerate(configs):
        value, ci, all_ready = _evaluate(scenario, config, objective)
        measured.append((point, config, value, ci, all_ready))
        if on_setting_done is not None:
            on_setting_done(i + 1, total)
    ref_value, ref_ci, ref_all = _evaluate(scenario, ImmediateConfig(), objective)
    if on_setting_done is not None:
        on_setting_done(total, total)
    fastest = min(m[4] for m in measured)
    slack = objective.all_ready_slack

    def feasible(all_ready: float) -> bool:
        return slack is None or all_ready <= (1 + slack) * fastest

    candidates = sorted(
        (Candidate(p, c, v, ci, a, feasible(a)) for p, c, v, ci, a in measured),
        key=lambda c: (not c.feasible, c.objective if math.isfinite(c.objective) else math.inf),
    )
    reference = Candidate({}, ImmediateConfig(), ref_value, ref_ci, ref_all, feasible(ref_all))
    return TuneResult(policy, objective, tuple(candidates), reference, tuple(skipped))


def _candidate_summary(c: Candidate) -> dict[str, Any]:
    return {"settings": c.settings, "objective": c.objective, "objective_ci": list(c.objective_ci),
            "all_ready": c.all_ready, "feasible": c.feasible}


def tune_summary(loaded: LoadedScenario, result: TuneResult) -> dict[str, Any]:
    """What `sim tune --json` prints: every candidate, the best one's full config, and the
    `immediate` reference."""
    best = result.best
    return {
        "scenario": loaded.scenario.name, "file": str(loaded.path), "policy": result.policy,
        "objective": result.objective.model_dump(),
        "best": None if best is None else {
            **_candidate_summary(best),
            "config": best.config.model_dump(mode="json", exclude={"label"}),
        },
        "reference_immediate": _candidate_summary(result.reference),
        "candidates": [_candidate_summary(c) for c in result.candidates],
        "skipped": list(result.skipped),
    }
