"""Node-model terms read straight off per-instance measurements instead of fitted (the CPU a
ready instance keeps using, how a boot's CPU work grows with the instances already running), and
the data's host speed and run-to-run noise that prediction intervals and host transfer use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from measure.calibration.data import Burst
from sim.model import burst_stats
from sim.model.intervals import RunNoise, run_noise
from sim.model.node_model import NodeModel
from sim.model.probe import (
    PROBE_COUNT,
    PROBE_INTERVAL_MS,
    HostSpeed,
    early_boot_cpu,
    host_speed,
)


@dataclass(frozen=True)
class HostCosts:
    """What the runs measured, in node-model terms (docs/model.md)."""

    idle_load: float | None
    """CPUs one ready instance keeps using (slope of its post-ready CPU time over the time it
    stayed ready); None when the runs did not record it."""
    post_ready_cpu_s: float | None
    """CPU seconds an instance still uses just after its ready string (the intercept)."""
    work_s: float
    """CPU work of a boot on an empty node (intercept of CPU time against residents)."""
    work_growth: float
    """Relative extra work per instance already on the node when a boot starts."""
    work_cv: float
    """CV of the CPU work once the growth with residents is taken out."""


def residents_at_launch(burst: Burst) -> np.ndarray:
    """Per instance: how many instances of its run had started before it (none end during a
    run); NaN for instances that never started."""
    assert burst.launch_s is not None
    return residents_of(burst.launch_s)


def residents_of(launch_s: np.ndarray) -> np.ndarray:
    """Per launch time (NaN: never started): how many others started before it; ties go to
    the earlier index, the order in which a node model starts them."""
    launch = np.asarray(launch_s, dtype=float)
    started = np.isfinite(launch)
    order = np.lexsort((np.arange(launch.size), np.where(started, launch, np.inf)))
    residents = np.empty(launch.size)
    residents[order] = np.arange(launch.size, dtype=float)
    return np.where(started, residents, np.nan)


def works_from_cpu(model: NodeModel, launch_s: np.ndarray, cpu_s: np.ndarray) -> np.ndarray:
    """The works to give the node model so that each instance gets its measured CPU time: the
    model grows a work by its residents at start (work_growth), the measured time holds that
    growth already."""
    cpu = np.asarray(cpu_s, dtype=float)
    if not model.work_growth:
        return cpu
    return cpu / (1.0 + model.work_growth * residents_of(launch_s))


def measured_idle_load(bursts: Sequence[Burst]) -> tuple[float, float] | None:
    """(idle_load, post-ready CPU s) by least squares of each ready instance's CPU time after
    ready on how long it stayed ready, over all runs; None without those columns."""
    cpu: list[np.ndarray] = []
    span: list[np.ndarray] = []
    for burst in bursts:
        if burst.idle_cpu_s is None or burst.idle_s is None:
            continue
        ok = np.isfinite(burst.idle_cpu_s) & np.isfinite(burst.idle_s) & (burst.idle_s > 0)
        cpu.append(burst.idle_cpu_s[ok])
        span.append(burst.idle_s[ok])
    if not cpu:
        return None
    y = np.concatenate(cpu)
    x = np.concatenate(span)
    if y.size < 3 or np.ptp(x) <= 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return max(float(slope), 0.0), max(float(intercept), 0.0)


EARLY_BOOTS = 20
"""Each run's first boots, whose median CPU time is that run's speed (the host's speed moves by
up to a third between runs minutes apart; docs/calibration.md)."""


def measured_work(bursts: Sequence[Burst]) -> tuple[float, float, float]:
    """(work_s, work_growth, work_cv) from each ready instance's CPU time and the residents at
    its launch, within runs: every run's CPU times are divided by the median of its first
    EARLY_BOOTS, so the host's speed, which drifts between runs, does not pass for growth.
    cpu / speed = a * (1 + work_growth * residents) by least squares over all runs; work_s and
    work_cv are the mean and CV of every CPU time with its growth taken out (an empty node)."""
    ratio: list[np.ndarray] = []
    residents: list[np.ndarray] = []
    cpu: list[np.ndarray] = []
    for burst in bursts:
        if burst.cpu_s is None or burst.ready_s is None or burst.launch_s is None:
            continue
        r = residents_at_launch(burst)
        ok = np.isfinite(burst.cpu_s) & np.isfinite(burst.ready_s) & np.isfinite(r)
        early = burst.cpu_s[ok & (r < EARLY_BOOTS)]
        if early.size == 0 or not np.median(early) > 0:
            continue
        ratio.append(burst.cpu_s[ok] / float(np.median(early)))
        cpu.append(burst.cpu_s[ok])
        residents.append(r[ok])
    y = np.concatenate(ratio) if ratio else np.empty(0)
    x = np.concatenate(residents) if residents else np.empty(0)
    if y.size == 0 or not np.all(y > 0):
        raise ValueError("the runs carry no positive per-instance cpu_s")
    slope, intercept = 0.0, float(np.mean(y))
    if np.ptp(x) > 0 and y.size > 3:
        (fit_slope, fit_intercept), residuals, *_ = np.polyfit(x, y, 1, full=True)
        sigma2 = float(residuals[0]) / (y.size - 2) if residuals.size else 0.0
        se = math.sqrt(sigma2 / float(np.sum((x - x.mean()) ** 2)))
        # Growth only where the data show it: a slope within two standard errors of zero is
        # noise, and fitting it would make every boot's work drift with the node's load.
        if fit_slope > 2.0 * se and fit_intercept > 0:
            slope, intercept = float(fit_slope), float(fit_intercept)
    growth = slope / intercept
    # The work on an empty node: every CPU time with its growth taken out, over all runs.
    work = np.concatenate(cpu) / (1.0 + growth * x)
    return float(np.mean(work)), growth, float(np.std(work) / np.mean(work))


def measure_host_costs(bursts: Sequence[Burst]) -> HostCosts:
    """Every directly measured term at once; ValueError when the runs carry no CPU time."""
    work_s, growth, cv = measured_work(bursts)
    idle = measured_idle_load(bursts)
    return HostCosts(
        idle_load=None if idle is None else idle[0],
        post_ready_cpu_s=None if idle is None else idle[1],
        work_s=work_s,
        work_growth=growth,
        work_cv=cv,
    )


def host_reference(bursts: Sequence[Burst]) -> HostSpeed | None:
    """The data's host speed as `measure probe` reads a host: the median CPU time of the first
    boots of every run (the host's speed drifts between runs, and so over a sweep; the runs'
    configuration moves it less than the drift, docs/calibration.md), and the effective cores
    of the runs of the probe's configuration. None: no per-instance run of that configuration
    (a summary table never has one)."""
    whole = [b for b in bursts if b.launch_s is not None and b.ready_s is not None
             and b.cpu_s is not None and np.all(np.isfinite(b.ready_s))]
    saturated = [(b.launch_s, b.ready_s, b.cpu_s) for b in whole
                 if b.key == (PROBE_COUNT, PROBE_INTERVAL_MS)]
    if not saturated:
        return None
    cores = host_speed(saturated).effective_cores  # type: ignore[arg-type]
    early = np.concatenate([early_boot_cpu(b.cpu_s) for b in whole])  # type: ignore[arg-type]
    return HostSpeed(boot_cpu_s=float(np.median(early)), effective_cores=cores,
                     bursts=len(whole))


def figures_of(burst: Burst) -> dict[str, float]:
    """The figures a run shows: all five from per-instance ready times, first and all-ready
    from a summary table."""
    if burst.ready_s is None:
        return {"first_ready_s": burst.first_ready_s, "all_ready_s": burst.all_ready_s}
    ready = np.asarray(burst.ready_s, dtype=float)
    return {
        "first_ready_s": float(burst_stats.first_ready(ready)),
        "p10_ready_s": float(burst_stats.quantile(ready, 0.1)),
        "median_ready_s": float(burst_stats.median(ready)),
        "p95_ready_s": float(burst_stats.quantile(ready, 0.95)),
        "all_ready_s": float(burst_stats.last_ready(ready)),
    }


def measured_run_noise(bursts: Sequence[Burst]) -> RunNoise:
    """Run-to-run variability of every figure between replicate runs (whole runs only)."""
    whole = [b for b in bursts if b.ready_s is None or np.all(np.isfinite(b.ready_s))]
    return run_noise([(b.key, figures_of(b)) for b in whole])
