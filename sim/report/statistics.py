"""Statistics over replications: Student-t confidence intervals of a mean, and per policy and
metric, mean/p50/p95/p99 with their intervals and the paired difference against a baseline
policy (common random numbers make pairs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

STATISTICS: tuple[str, ...] = ("mean", "p50", "p95", "p99")
POLICY_STATISTICS_COLUMNS = ["metric", "policy", "stat", "value", "ci_low", "ci_high", "diff",
                             "diff_low", "diff_high", "replications"]


@dataclass(frozen=True, slots=True)
class Metric:
    """A per-request or per-instance column summarised in the report."""

    name: str
    table: str  # "requests" or "instances"
    column: str
    label: str


METRICS: tuple[Metric, ...] = (
    Metric("time_to_first_s", "requests", "time_to_first_s", "time to first ready (s)"),
    Metric("time_to_all_s", "requests", "time_to_all_s", "time to all ready (s)"),
    Metric("instance_latency_s", "instances", "latency_s", "instance ready latency (s)"),
)


def statistic(values: np.ndarray, stat: str) -> float:
    """One statistic (mean, p50, ...) of a sample (NaN for an empty sample)."""
    if values.size == 0:
        return math.nan
    if stat == "mean":
        return float(np.mean(values))
    if stat.startswith("p"):
        return float(np.percentile(values, float(stat[1:])))
    raise ValueError(f"unknown statistic {stat!r}")


@dataclass(frozen=True)
class ConfidenceInterval:
    """Mean of independent replications with a two-sided Student-t interval."""

    mean: float
    half_width: float
    """NaN with fewer than two replications."""
    n: int
    level: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def confidence_interval(
    values: Sequence[float] | np.ndarray, level: float = 0.95
) -> ConfidenceInterval:
    """Student-t interval of the mean of independent values (one per replication)."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if n < 2:
        return ConfidenceInterval(mean, math.nan, n, level)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sem
    return ConfidenceInterval(mean, half, n, level)


def t_interval(
    samples: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) of the finite samples' confidence_interval; the bounds are NaN below
    two samples, everything NaN with none."""
    x = np.asarray(samples, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    ci = confidence_interval(x, level)
    return ci.mean, ci.low, ci.high


def per_replication(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows (policy, replication, stat, value): each statistic computed within each replication."""
    rows = []
    for (policy, rep), group in frame.groupby(["policy", "replication"], sort=True):
        values = group[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        for stat in STATISTICS:
            rows.append((policy, int(str(rep)), stat, statistic(values, stat)))
    return pd.DataFrame(rows, columns=["policy", "replication", "stat", "value"])


def policy_statistics(
    tables: dict[str, pd.DataFrame],
    baseline: str | None,
    metrics: Sequence[Metric] = METRICS,
    policies: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each policy's statistics, one row per (metric, policy, stat): the value's CI over
    replications and the paired difference (policy - baseline, same replication) with its CI."""
    rows = []
    for metric in metrics:
        frame = tables[metric.table]
        reps = per_replication(frame, metric.column)
        order = list(policies) if policies is not None else sorted(reps["policy"].unique())
        for policy in order:
            for stat in STATISTICS:
                mine = reps[(reps.policy == policy) & (reps.stat == stat)].set_index("replication")
                mean, low, high = t_interval(mine["value"].to_numpy())
                diff = (math.nan, math.nan, math.nan)
                if baseline is not None and policy != baseline:
                    base = reps[(reps.policy == baseline) & (reps.stat == stat)].set_index(
                        "replication"
                    )
                    paired = mine["value"].sub(base["value"]).dropna()
                    diff = t_interval(paired.to_numpy())
                rows.append({
                    "metric": metric.name,
                    "policy": policy,
                    "stat": stat,
                    "value": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "diff": diff[0],
                    "diff_low": diff[1],
                    "diff_high": diff[2],
                    "replications": int(mine["value"].notna().sum()),
                })
    return pd.DataFrame(rows, columns=POLICY_STATISTICS_COLUMNS)


def slo_attainment(requests: pd.DataFrame, column: str, limit_s: float) -> pd.DataFrame:
    """Per policy: mean fraction of requests with `column` <= limit_s, CI over replications."""
    rows = []
    for policy, group in requests.groupby("policy", sort=True):
        fractions = group.groupby("replication")[column].apply(
            lambda s: float((s.to_numpy(dtype=float) <= limit_s).mean())
        )
        mean, low, high = t_interval(fractions.to_numpy())
        rows.append({"policy": policy, "metric": column, "limit_s": limit_s, "value": mean,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)
