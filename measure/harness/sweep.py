"""Bursts one after the other: a grid like the study's (counts x intervals x memory sizes x
repeats), and the repeats of one burst or one replayed schedule.

Points run in a randomised order (so slow drifts of the host do not line up with an axis) into one
dataset; a point whose run completed is never redone, so an interrupted sweep resumes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure.harness.burst import (
    BurstResult,
    BurstSpec,
    default_timeout_s,
    fixed_interval,
    run_burst,
)
from measure.harness.dataset import load_manifests
from measure.harness.guest import Accel, BootPath
from measure.harness.memory import settle_reporting
from measure.harness.records import LauncherMode, launcher_mode
from measure.harness.summary import burst_summary
from sim.streams import MeasureStream, measure_rng


@dataclass(frozen=True, slots=True)
class SweepPoint:
    boot: BootPath
    accel: Accel
    count: int
    interval_ms: float
    memory_mb: int
    repeat: int
    launcher: LauncherMode = "realtime"

    def spec(self, timeout_s: float | None = None) -> BurstSpec:
        return BurstSpec(
            boot=self.boot, accel=self.accel, memory_mb=self.memory_mb,
            planned_s=fixed_interval(self.count, self.interval_ms),
            interval_ms=self.interval_ms, repeat=self.repeat,
            timeout_s=timeout_s or default_timeout_s(self.boot, self.accel, self.count),
        )


def grid(boots: Sequence[BootPath], accel: Accel, counts: Sequence[int],
         intervals_ms: Sequence[float], memories_mb: Sequence[int], repeats: int,
         seed: int, launchers: Sequence[LauncherMode] = ("realtime",)) -> list[SweepPoint]:
    """Every point of the grid, shuffled by a generator derived from the seed (one launcher:
    the same order as before launchers were an axis)."""
    points = [SweepPoint(b, accel, c, float(i), m, r, launcher)
              for b, c, i, m, r, launcher in itertools.product(
                  boots, counts, intervals_ms, memories_mb, range(repeats), launchers)]
    rng = measure_rng(MeasureStream.SWEEP_ORDER, seed)
    return [points[k] for k in rng.permutation(len(points))]


def completed(out: Path) -> set[SweepPoint]:
    """Points of this dataset whose run completed (interrupted or failed runs are redone)."""
    if not (out / "runs").is_dir():
        return set()
    return {SweepPoint(m.boot, m.accel, m.count, float(m.interval_ms), m.memory_mb,  # type: ignore[arg-type]
                       m.repeat, launcher_mode(m.harness_sched))
            for m in load_manifests(out) if m.outcome == "complete" and m.schedule is None}


def run_sweep(points: Sequence[SweepPoint], out: Path, *, settle_s: float,
              on_done: Callable[[SweepPoint, BurstResult | None], None],
              settle_memory: bool = False) -> int:
    """Run every point not yet completed; returns how many ran. `on_done(point, None)` reports a
    point skipped because it was already done. `settle_memory`: each burst starts once the
    host's free page reporting has settled (measure/harness/memory.py)."""
    done = completed(out)
    ran = 0
    for point in points:
        if point in done:
            on_done(point, None)
            continue
        if settle_memory:
            settle_reporting()
        result = run_burst(point.spec(), out, launcher=point.launcher)
        ran += 1
        on_done(point, result)
        # Let the previous burst's processes leave the scheduler and page cache settle.
        time.sleep(settle_s)
    return ran


def run_in_turn(specs: Iterable[BurstSpec], out: Path, *, settle_s: float,
                memory_estimate_mb: float | None = None, launcher: LauncherMode = "realtime",
                ) -> Iterator[tuple[BurstResult, dict[str, Any]]]:
    """Run bursts one after the other into dataset `out` (the repeats of `measure burst` and
    `measure replay`), pausing `settle_s` between two; yields each result and its summary."""
    for k, spec in enumerate(specs):
        if k:
            time.sleep(settle_s)
        result = run_burst(spec, out, memory_estimate_mb=memory_estimate_mb, launcher=launcher)
        yield result, {"run_id": result.run_id, **burst_summary(result.rows),
                       "status_counts": result.manifest.status_counts}
