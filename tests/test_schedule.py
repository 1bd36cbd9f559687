"""Launch plans: the study's fixed interval, and sweeps that shuffle and resume."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from measure.harness.burst import fixed_interval
from measure.harness.dataset import RunWriter
from measure.harness.host import host_info
from measure.harness.records import Manifest
from measure.harness.sweep import SweepPoint, completed, grid


def test_fixed_interval_plans_absolute_offsets_without_drift() -> None:
    plan = fixed_interval(1000, 3.0)
    assert plan[0] == 0.0
    assert plan[999] == pytest.approx(2.997, abs=1e-12)  # i * I, not a running sum
    assert all(b > a for a, b in itertools.pairwise(plan))


def test_grid_covers_every_point_once_in_a_seeded_random_order() -> None:
    pts = grid(["firmware"], "kvm", [10, 20], [1.0, 5.0], [16], 3, seed=1)
    assert len(pts) == len(set(pts)) == 12
    assert pts == grid(["firmware"], "kvm", [10, 20], [1.0, 5.0], [16], 3, seed=1)
    assert pts != grid(["firmware"], "kvm", [10, 20], [1.0, 5.0], [16], 3, seed=2)
    in_grid_order = sorted(pts, key=lambda p: (p.count, p.interval_ms, p.repeat))
    assert pts != in_grid_order


def test_only_completed_runs_count_as_done(tmp_path: Path) -> None:
    def manifest(run_id: str, outcome: str, count: int) -> Manifest:
        return Manifest(run_id=run_id, bootstorm_version="t", started_at="now",
                        host=host_info(), qemu_path="q", qemu_version="v", qemu_argv=[],
                        boot="firmware", accel="kvm", count=count, interval_ms=5.0,
                        memory_mb=16, repeat=0, timeout_s=1.0, outcome=outcome)  # type: ignore[arg-type]

    RunWriter(tmp_path, manifest("a", "complete", 10)).close()
    RunWriter(tmp_path, manifest("b", "interrupted", 20)).close()
    assert completed(tmp_path) == {SweepPoint("firmware", "kvm", 10, 5.0, 16, 0)}
