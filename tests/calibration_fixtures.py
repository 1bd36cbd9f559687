"""Summary tables synthesised from a known node model, shared by the calibration tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.model.node_model import NodeModel, draw_work, ready_times
from sim.model.units import seconds

COUNTS = (8, 16, 32)
INTERVALS = (0.0, 40.0, 120.0)


def synthetic_table(
    path: Path,
    model: NodeModel,
    counts: tuple[int, ...] = COUNTS,
    intervals: tuple[float, ...] = INTERVALS,
    replicates: int = 2,
    seed: int = 7,
) -> Path:
    """One row per run, like the study's CSV: first and all-ready of iid lognormal works
    (independent of the fitter's stratified draws), averaged over 24 draws per run."""
    lines = ["count,interval_ms,memory_mb,first_ready_s,all_ready_s"]
    for count in counts:
        for interval in intervals:
            for rep in range(replicates):
                rng = np.random.default_rng([99, rep, seed, count, int(interval)])
                launches = seconds(np.arange(count) * interval)
                runs = [ready_times(model, launches, work=draw_work(model, count, rng))
                        for _ in range(24)]
                first = float(np.mean([r.min() for r in runs]))
                last = float(np.mean([r.max() for r in runs]))
                lines.append(f"{count},{interval:g},{16 * (rep + 1)},{first:.6f},{last:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


POST_READY_CPU_S = 0.0005
"""CPU an instance of the synthetic datasets still uses at its ready string."""


def synthetic_instances(
    path: Path,
    model: NodeModel,
    counts: tuple[int, ...] = (10, 20, 40),
    intervals: tuple[float, ...] = (1.0, 10.0, 30.0),
    replicates: int = 2,
    seed: int = 11,
) -> Path:
    """An instances.parquet (docs/data-format.md columns) of bursts the model produced, with
    the CPU each instance got as its measured cpu_s (its drawn work, grown with the residents
    at its launch), and the idle cost of ready instances in cpu_end_s up to end_s."""
    import pandas as pd

    rows = []
    for count in counts:
        for interval in intervals:
            for rep in range(replicates):
                rng = np.random.default_rng([98, rep, seed, count, int(interval)])
                launches = seconds(np.arange(count) * interval)
                works = draw_work(model, count, rng)
                ready = ready_times(model, launches, work=works)
                run_id = f"n{count}-i{interval:g}-r{rep}"
                cpu = works * (1.0 + model.work_growth * np.arange(count))
                end = float(ready.max()) + 0.5
                cpu_end = cpu + POST_READY_CPU_S + model.idle_load * (end - ready)
                for i in range(count):
                    rows.append({
                        "run_id": run_id, "boot": "firmware", "accel": "kvm", "count": count,
                        "interval_ms": interval, "memory_mb": 16, "repeat": rep, "instance": i,
                        "planned_launch_s": launches[i], "launch_s": launches[i], "pid": 1000 + i,
                        "marker_s": ready[i], "ready_s": ready[i], "cpu_s": cpu[i],
                        "status": "ready", "exit_code": None, "cpu_end_s": cpu_end[i],
                        "end_s": end,
                    })
    pd.DataFrame(rows).to_parquet(path)
    return path
