"""Per-burst summaries of instance rows: first-ready, all-ready and friends, one row per run."""

from __future__ import annotations

import numpy as np
import pandas as pd

CONFIG = ["boot", "accel", "count", "interval_ms", "memory_mb"]


def per_run(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per run: configuration, first/median/p95/all-ready (from the burst start), and
    launch lateness. all_ready_s is NaN when some instance never became ready."""
    rows = []
    for run_id, g in instances.groupby("run_id", sort=True):
        ready = np.sort(g.loc[g.status == "ready", "ready_s"].to_numpy(dtype=float))
        late_ms = (g.launch_s - g.planned_launch_s).dropna().to_numpy(dtype=float) * 1000
        first = g.iloc[0]
        rows.append({
            "run_id": run_id,
            **{k: first[k] for k in CONFIG},
            "repeat": int(first["repeat"]),
            "instances": len(g),
            "ready": len(ready),
            "first_ready_s": ready[0] if len(ready) else np.nan,
            "median_ready_s": float(np.median(ready)) if len(ready) else np.nan,
            "p95_ready_s": float(np.quantile(ready, 0.95)) if len(ready) else np.nan,
            "all_ready_s": ready[-1] if len(ready) == len(g) else np.nan,
            "mean_init_s": float((g.ready_s - g.launch_s).mean()),
            "mean_cpu_s": float(g.cpu_s.mean()),
            "launch_late_p99_ms": float(np.quantile(late_ms, 0.99)) if len(late_ms) else np.nan,
        })
    return pd.DataFrame(rows)


def per_config(runs: pd.DataFrame) -> pd.DataFrame:
    """Median and spread (min, max) over repeats of each configuration."""
    metrics = ["first_ready_s", "median_ready_s", "all_ready_s", "mean_cpu_s"]
    agg = runs.groupby(CONFIG, sort=True)[metrics].agg(["median", "min", "max", "count"])
    agg.columns = ["_".join(pair) for pair in agg.columns.to_flat_index()]
    return agg.reset_index()
