"""Per-burst summaries of instance rows: first-ready, all-ready and friends, for one burst just
measured (`measure burst`, `measure replay`) and for every run of a dataset (`measure plot`).

The figures come from sim.model.burst_stats, the one definition (numpy's linear quantiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from measure.harness.records import InstanceRow
from sim.model.burst_stats import burst_figures, median, quantile
from sim.model.units import milliseconds

if TYPE_CHECKING:  # imported where a frame is made (see measure/harness/dataset.py)
    import pandas as pd

CONFIG = ["boot", "accel", "count", "interval_ms", "memory_mb"]


def burst_summary(rows: Sequence[InstanceRow]) -> dict[str, float | int | None]:
    """First/median/p95/all-ready, median init time and launch lateness of one burst. None
    where nothing was measured; all_ready_s is None unless every instance became ready."""
    ready = np.array([r.ready_s for r in rows if r.status == "ready"], dtype=float)
    init = np.array([r.ready_s - r.launch_s for r in rows if r.status == "ready"], dtype=float)
    late = milliseconds(np.array([r.launch_s - r.planned_launch_s for r in rows
                                  if r.launch_s == r.launch_s], dtype=float))
    return {
        "count": len(rows),
        "ready": int(ready.size),
        **burst_figures(ready, everyone_ready=ready.size == len(rows)),
        "median_init_s": float(median(init)) if init.size else None,
        "launch_late_p50_ms": float(quantile(late, 0.5)) if late.size else None,
        "launch_late_p99_ms": float(quantile(late, 0.99)) if late.size else None,
        "launch_late_max_ms": float(late.max()) if late.size else None,
    }


def per_run(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per run: configuration, first/median/p95/all-ready (from the burst start), and
    launch lateness. all_ready_s is NaN when some instance never became ready."""
    rows = []
    for run_id, g in instances.groupby("run_id", sort=True):
        ready = g.loc[g.status == "ready", "ready_s"].to_numpy(dtype=float)
        late_ms = milliseconds((g.launch_s - g.planned_launch_s).dropna().to_numpy(dtype=float))
        figures = burst_figures(ready, everyone_ready=len(ready) == len(g))
        first = g.iloc[0]
        rows.append({
            "run_id": run_id,
            **{k: first[k] for k in CONFIG},
            "repeat": int(first["repeat"]),
            "instances": len(g),
            "ready": len(ready),
            **{k: np.nan if v is None else v for k, v in figures.items()},
            "mean_init_s": float((g.ready_s - g.launch_s).mean()),
            "mean_cpu_s": float(g.cpu_s.mean()),
            "launch_late_p99_ms": float(quantile(late_ms, 0.99)) if len(late_ms) else np.nan,
        })
    import pandas as pd

    return pd.DataFrame(rows)


def per_config(runs: pd.DataFrame) -> pd.DataFrame:
    """Median and spread (min, max) over repeats of each configuration."""
    metrics = ["first_ready_s", "median_ready_s", "all_ready_s", "mean_cpu_s"]
    agg = runs.groupby(CONFIG, sort=True)[metrics].agg(["median", "min", "max", "count"])
    agg.columns = ["_".join(pair) for pair in agg.columns.to_flat_index()]
    return agg.reset_index()
