"""Summary tables synthesised from a known node model, shared by the calibration tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.node_model import NodeModel, draw_work, ready_times

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
                launches = np.arange(count) * interval / 1000.0
                runs = [ready_times(model, launches, work=draw_work(model, count, rng))
                        for _ in range(24)]
                first = float(np.mean([r.min() for r in runs]))
                last = float(np.mean([r.max() for r in runs]))
                lines.append(f"{count},{interval:g},{16 * (rep + 1)},{first:.6f},{last:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path
