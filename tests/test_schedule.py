"""Launch plans: the study's fixed interval, and sweeps that shuffle and resume."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from measure.harness import sweep
from measure.harness.burst import BurstSpec, fixed_interval
from measure.harness.dataset import RunWriter
from measure.harness.host import host_info
from measure.harness.records import Manifest, launcher_mode
from measure.harness.signals import instance_cpus
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


def test_launchers_are_an_axis_and_one_launcher_keeps_the_order_of_old_sweeps() -> None:
    old = grid(["firmware"], "kvm", [10, 20], [1.0, 5.0], [16], 3, seed=1)
    assert grid(["firmware"], "kvm", [10, 20], [1.0, 5.0], [16], 3, seed=1,
                launchers=["realtime"]) == old
    both = grid(["firmware"], "kvm", [10, 20], [1.0, 5.0], [16], 3, seed=1,
                launchers=["realtime", "fair"])
    assert len(both) == len(set(both)) == 24
    assert {p.launcher for p in both} == {"realtime", "fair"}
    assert {dataclasses.replace(p, launcher="realtime") for p in both} == set(old)


def test_a_run_counts_as_done_for_the_launcher_it_really_had(tmp_path: Path) -> None:
    def manifest(run_id: str, sched: str) -> Manifest:
        return Manifest(run_id=run_id, bootstorm_version="t", started_at="now",
                        host=host_info(), qemu_path="q", qemu_version="v", qemu_argv=[],
                        boot="firmware", accel="kvm", count=10, interval_ms=5.0,
                        memory_mb=16, repeat=0, timeout_s=1.0, outcome="complete",
                        harness_sched=sched)

    RunWriter(tmp_path, manifest("a", "SCHED_FIFO priority 10")).close()
    RunWriter(tmp_path, manifest("b", "SCHED_OTHER (SCHED_FIFO refused: denied)")).close()
    reserved = "SCHED_OTHER on reserved CPU 0; instances on CPUs 1,2,3"
    RunWriter(tmp_path, manifest("c", reserved)).close()
    done = completed(tmp_path)
    assert {p.launcher for p in done} == {"realtime", "fair", "reserved"}
    assert launcher_mode("") == "realtime"  # runs from before the field: the only mode then
    assert instance_cpus(reserved) == "1,2,3"
    assert instance_cpus("SCHED_FIFO priority 10; instances SCHED_OTHER via chrt") is None


def test_only_completed_runs_count_as_done(tmp_path: Path) -> None:
    def manifest(run_id: str, outcome: str, count: int) -> Manifest:
        return Manifest(run_id=run_id, bootstorm_version="t", started_at="now",
                        host=host_info(), qemu_path="q", qemu_version="v", qemu_argv=[],
                        boot="firmware", accel="kvm", count=count, interval_ms=5.0,
                        memory_mb=16, repeat=0, timeout_s=1.0, outcome=outcome)  # type: ignore[arg-type]

    RunWriter(tmp_path, manifest("a", "complete", 10)).close()
    RunWriter(tmp_path, manifest("b", "interrupted", 20)).close()
    assert completed(tmp_path) == {SweepPoint("firmware", "kvm", 10, 5.0, 16, 0)}


@pytest.mark.parametrize("settle_memory", [False, True])
def test_a_sweep_can_start_each_burst_once_the_reporting_has_settled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settle_memory: bool) -> None:
    # What the sweep does, in order (the bursts themselves are not the point here).
    calls: list[str] = []

    def settle() -> float:
        calls.append("settle")
        return 0.0

    def burst(spec: BurstSpec, out: Path, launcher: str) -> None:
        calls.append(f"burst {spec.count}")

    monkeypatch.setattr(sweep, "settle_reporting", settle)
    monkeypatch.setattr(sweep, "run_burst", burst)
    points = grid(["firmware"], "kvm", [10, 20], [1.0], [16], 1, seed=1)
    ran = sweep.run_sweep(points, tmp_path, settle_s=0.0, on_done=lambda p, r: None,
                          settle_memory=settle_memory)
    bursts = [f"burst {p.count}" for p in points]
    assert ran == 2
    assert calls == ([c for b in bursts for c in ("settle", b)] if settle_memory else bursts)
