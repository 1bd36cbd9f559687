"""What `measure predict` forecasts for the bursts a one-node scenario launches: the five figures
of each burst with their 80 % intervals for a single run, by the forecast's own function.

A request's burst is read off the simulated launch schedule (its instances' planned_s):
its instance count and its launch interval, when the launches are evenly spaced. A request
launched unevenly (a concurrency cap, say) or not all ready has no such burst and is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.model.forecast import forecast, interval_parts, probe_parts
from sim.model.intervals import FIGURES, LEVEL
from sim.model.predict import predict
from sim.model.units import milliseconds
from sim.scenario import NodeGroupSpec, Scenario

Interval = tuple[float, float]

EVEN_TOLERANCE_S = 1e-6
"""Launches within this of an even spacing are evenly spaced (float noise of start + i * step)."""
MAX_BURSTS = 100
"""Distinct bursts forecast at most (those launched most often first; a forecast runs the model
seventeen times over its work draws)."""
INLINE = ("the node model is inline in the scenario, without a calibration (no run-to-run "
          "variability, no parameter estimates)")


@dataclass(frozen=True)
class Predicted:
    """One burst's forecast, in seconds from its first planned launch."""

    central: Mapping[str, float]
    """Each figure of FIGURES: the mean over the calibration's work draws."""
    intervals: Mapping[str, Interval] | None
    """Each figure's interval at LEVEL (None: the calibration lacks a part of it)."""
    extrapolation: list[str]
    host: str | None


@dataclass(frozen=True)
class BurstForecast:
    """A burst a policy launched, how often, and its forecast."""

    policy: str
    count: int
    interval_ms: float
    requests: int
    """Requests the policy launched as this burst, over all replications."""
    predicted: Predicted

    def to_json(self) -> dict[str, Any]:
        """As `measure predict --json` has them: each figure, then `<figure>_interval`."""
        central, bands = self.predicted.central, self.predicted.intervals
        return {
            "policy": self.policy, "count": self.count, "interval_ms": self.interval_ms,
            "requests": self.requests, **{name: central[name] for name in FIGURES},
            **{f"{name}_interval": None if bands is None else list(bands[name])
               for name in FIGURES},
            "extrapolation": self.predicted.extrapolation,
        }


@dataclass(frozen=True)
class NodeForecast:
    """The forecasts for the one node of a scenario, and what they leave out."""

    node: str
    host: str | None
    """The calibration's host, or the probed host it is carried to (None: an inline model)."""
    interval_parts: list[str]
    """What the intervals hold; when empty, `no_intervals` says why there are none."""
    no_intervals: list[str]
    """Why the bursts have no intervals (what the calibration lacks); empty: they have."""
    bursts: list[BurstForecast]
    uneven: dict[str, int] = field(default_factory=dict)
    """Policy -> requests launched unevenly (no single interval), over all replications."""
    unfinished: dict[str, int] = field(default_factory=dict)
    """Policy -> requests not all ready when the run ended."""
    left_out: int = 0
    """Distinct bursts beyond MAX_BURSTS, not forecast."""
    warnings: list[str] = field(default_factory=list)
    """The run's extrapolation sentences (sim.scenario.node_extrapolations)."""

    def notes(self) -> list[str]:
        """The sentences a report sets above the table of bursts."""
        where = (f"on {self.host}" if self.host is not None
                 else "from the scenario's inline node model, central figures only")
        notes = [
            f"The platform is one node ({self.node}). Each row is a burst it launched, a "
            "request's instance count and launch interval read off the simulated launch "
            "schedule (its planned launches, evenly spaced), and the forecast `measure predict "
            f"--count N --interval-ms I` gives for it ({where}): seconds from the burst's first "
            "planned launch (the tables above count from the request's arrival), for a burst "
            "on an idle node, each the mean over the prediction's work draws. Requests that "
            "overlap on the node make the simulated times longer."]
        if self.interval_parts:
            notes.append(f"In brackets, the {LEVEL:.0%} interval of a single run on that host: "
                         f"{'; '.join(self.interval_parts)}.")
        else:
            notes.append(f"No intervals: {'; '.join(self.no_intervals)}.")
        skipped = [f"`{policy}`: {n} launched unevenly (no single interval)"
                   for policy, n in self.uneven.items()]
        skipped += [f"`{policy}`: {n} not all ready when the run ended"
                    for policy, n in self.unfinished.items()]
        if skipped:
            notes.append(f"Requests not forecast, over all replications: {', '.join(skipped)}.")
        if self.left_out:
            notes.append(f"{self.left_out} other bursts, launched less often, are not forecast "
                         f"(at most {MAX_BURSTS}).")
        notes += [f"Extrapolation: {sentence}." for sentence in self.warnings]
        return notes

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node, "host": self.host, "interval_level": LEVEL,
            "interval_parts": self.interval_parts, "no_intervals": self.no_intervals,
            "bursts": [b.to_json() for b in self.bursts], "uneven": self.uneven,
            "unfinished": self.unfinished, "left_out": self.left_out, "warnings": self.warnings,
        }


def one_node(scenario: Scenario) -> NodeGroupSpec | None:
    """The node group of a scenario whose platform is one node, else None."""
    groups = scenario.cluster.nodes
    return groups[0] if len(groups) == 1 and groups[0].count == 1 else None


def launch_interval_ms(launch_s: np.ndarray) -> float | None:
    """The spacing (ms, to the microsecond) of evenly spaced launches, else None."""
    launches = np.sort(launch_s)
    if launches.size < 2:
        return 0.0
    step = (launches[-1] - launches[0]) / (launches.size - 1)
    if np.max(np.abs(np.diff(launches) - step)) > EVEN_TOLERANCE_S:
        return None
    return round(float(milliseconds(step)), 3)


def launched_bursts(requests: pd.DataFrame, instances: pd.DataFrame,
                    ) -> tuple[Counter[tuple[str, int, float]], Counter[str], Counter[str]]:
    """(bursts, uneven, unfinished): how many requests each policy launched as each
    (count, interval_ms), and per policy the requests launched unevenly or not all ready."""
    launches = {key: group.to_numpy(dtype=float) for key, group in
                instances.groupby(["policy", "replication", "request_id"]).planned_s}
    bursts: Counter[tuple[str, int, float]] = Counter()
    uneven: Counter[str] = Counter()
    unfinished: Counter[str] = Counter()
    columns = requests[["policy", "replication", "request_id", "count", "complete"]]
    for policy, replication, request_id, count, complete in columns.itertuples(
            index=False, name=None):
        if not complete:
            unfinished[policy] += 1
            continue
        interval = launch_interval_ms(launches[(policy, replication, request_id)])
        if interval is None:
            uneven[policy] += 1
        else:
            bursts[(policy, int(count), interval)] += 1
    return bursts, uneven, unfinished


def interval_notes(group: NodeGroupSpec) -> tuple[list[str], list[str]]:
    """(what the group's intervals hold, why it has none): one of the two is empty. A
    calibration lacking a part of the interval gets none: it would be too narrow."""
    calibration = group.loaded_calibration
    if calibration is None:
        return [], [INLINE]
    held, lacking = interval_parts(calibration)
    if group.loaded_probe is not None:
        held += probe_parts()
    return (held, []) if not lacking else ([], lacking)


def predict_burst(group: NodeGroupSpec, count: int, interval_ms: float) -> Predicted:
    """The group's forecast of one burst: `measure predict`'s (carried to the group's probe);
    for an inline model, the central figures of the same prediction, without intervals."""
    calibration = group.loaded_calibration
    if calibration is None:
        central = predict(group.node_model, count, interval_ms).model_dump()
        return Predicted(central, None, [], None)
    probe, name = group.loaded_probe, str(group.probe)
    made = forecast(calibration, count, interval_ms, probe, name)
    bands = {figure: getattr(made, f"{figure}_interval") for figure in FIGURES}
    central = {figure: getattr(made, figure) for figure in FIGURES}
    complete = not interval_notes(group)[1]
    return Predicted(central, bands if complete else None, made.extrapolation, made.host)


def node_forecast(scenario: Scenario, tables: Mapping[str, pd.DataFrame],
                  warnings: list[str]) -> NodeForecast | None:
    """The forecast of every burst the scenario's one node launched (None: more nodes)."""
    group = one_node(scenario)
    if group is None:
        return None
    bursts, uneven, unfinished = launched_bursts(tables["requests"], tables["instances"])
    launched: Counter[tuple[int, float]] = Counter()
    for (_, count, interval), n in bursts.items():
        launched[(count, interval)] += n
    chosen = sorted(launched, key=lambda b: (-launched[b], b))[:MAX_BURSTS]
    made = {burst: predict_burst(group, *burst) for burst in sorted(chosen)}
    order = {name: i for i, name in enumerate(scenario.policy_names)}
    rows = []
    for policy, count, interval in sorted(bursts, key=lambda b: (order[b[0]], b[1], b[2])):
        if (count, interval) in made:
            rows.append(BurstForecast(policy, count, interval, bursts[(policy, count, interval)],
                                      made[(count, interval)]))
    held, missing = interval_notes(group)
    hosts = [m.host for m in made.values()]
    return NodeForecast(
        node=group.label, host=hosts[0] if hosts else None, interval_parts=held,
        no_intervals=missing, bursts=rows, uneven=dict(uneven), unfinished=dict(unfinished),
        left_out=len(launched) - len(chosen), warnings=list(warnings))
