"""Replaying a simulated launch schedule on the real host with the burst harness, so that the
simulator's predictions and its recommended policy can be checked against real boots."""

from __future__ import annotations

from pathlib import Path

from measure.harness.burst import BurstSpec, default_timeout_s
from measure.harness.guest import Accel, BootPath
from sim.model.schedule import LaunchSchedule
from sim.model.units import milliseconds


def replay_spec(schedule: LaunchSchedule, source: Path, boot: BootPath, accel: Accel,
                repeat: int = 0, timeout_s: float | None = None) -> BurstSpec:
    """A burst whose instances are launched at the schedule's times, in its order."""
    planned = schedule.planned_s
    span = planned[-1] - planned[0]
    mean_gap_ms = milliseconds(span) / (len(planned) - 1) if len(planned) > 1 else 0.0
    return BurstSpec(
        boot=boot, accel=accel, memory_mb=schedule.memory_mb, planned_s=planned,
        interval_ms=round(mean_gap_ms, 6), repeat=repeat,
        timeout_s=timeout_s or default_timeout_s(boot, accel, len(planned)),
        schedule=f"{source.name}: {schedule.policy} node {schedule.node} "
                 f"replication {schedule.replication} of {schedule.scenario}",
    )

