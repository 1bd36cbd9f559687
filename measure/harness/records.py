"""What one burst produces: a flat row per launched instance and a manifest per run.

The format is documented in docs/data-format.md; everything downstream reads only these.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from measure.harness.host import HostInfo
from sim.errors import UserError
from sim.model.node_model import LauncherMode

Status = Literal["ready", "timeout", "crashed", "spawn_failed", "interrupted"]
STATUSES: tuple[Status, ...] = ("ready", "timeout", "crashed", "spawn_failed", "interrupted")
Outcome = Literal["running", "complete", "interrupted", "failed"]

NAN = math.nan


@dataclass(slots=True)
class InstanceRow:
    """One launched instance. Times are seconds from the burst start on CLOCK_MONOTONIC."""

    run_id: str
    boot: str
    accel: str
    count: int
    interval_ms: float
    memory_mb: int
    repeat: int
    instance: int
    """Launch order, 0-based."""
    planned_launch_s: float
    launch_s: float = NAN
    """Taken just before the process is spawned."""
    pid: int = -1
    marker_s: float = NAN
    """First byte of guest serial output seen by the harness."""
    ready_s: float = NAN
    """Complete ready string seen by the harness."""
    cpu_s: float = NAN
    """CPU time (all QEMU threads, schedstat) when ready was seen, or at the end."""
    wait_s: float = NAN
    """Run-queue wait (runnable, not running) of all QEMU threads when ready was seen."""
    status: Status = "timeout"
    exit_code: int | None = None
    stderr_tail: str = ""
    cpu_end_s: float = NAN
    """CPU time of the process at the end of the burst, just before it was killed."""
    end_s: float = NAN
    """When cpu_end_s was read."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        extra = row.pop("extra")
        row.update(extra)
        return row


LAUNCHERS: tuple[LauncherMode, ...] = ("realtime", "fair", "reserved")
"""The harness as a platform's launcher: realtime (SCHED_FIFO, launches on time), fair (normal
priority, sharing the cores with the boots it starts) or reserved (normal priority on a core
the boots do not use)."""


def parse_launcher(text: str, option: str = "--launcher") -> LauncherMode:
    """A launcher named on the command line, or a UserError naming the choices."""
    for mode in LAUNCHERS:
        if text == mode:
            return mode
    raise UserError(f"{option} must be one of {', '.join(LAUNCHERS)} (got {text!r})")


def launcher_mode(harness_sched: str) -> LauncherMode:
    """The launcher a run really had, from its manifest's harness_sched (a refused SCHED_FIFO is
    fair; runs from before the field existed were realtime, the only mode then)."""
    if harness_sched.startswith("SCHED_FIFO") or not harness_sched:
        return "realtime"
    return "reserved" if "reserved CPU" in harness_sched else "fair"


class Manifest(BaseModel):
    """Everything needed to trust and reproduce one run (one burst)."""

    model_config = ConfigDict(extra="forbid")
    run_id: str
    bootstorm_version: str
    started_at: str
    host: HostInfo
    qemu_path: str
    qemu_version: str
    qemu_argv: list[str]
    boot: str
    accel: str
    count: int
    interval_ms: float
    memory_mb: int
    repeat: int
    timeout_s: float
    schedule: str | None = None
    """Source of the launch plan when replaying a schedule; None for a fixed interval."""
    memory_estimate_mb: float | None = None
    t0_monotonic: float | None = None
    """The burst start on CLOCK_MONOTONIC, to line rows up with other clocks (perf -k monotonic)."""
    harness_sched: str = ""
    """Scheduling policy the harness ran under (SCHED_FIFO unless refused or turned off)."""
    reported_kib_start: int | None = None
    """What the host had taken back of the VM's free memory (free page reporting's count, KiB)
    when the burst began; None where the kernel does not count it (measure/harness/memory.py)."""
    reported_kib_end: int | None = None
    """The same count when the burst ended: the difference is what the host took back during it."""
    ended_at: str | None = None
    outcome: Outcome = "running"
    status_counts: dict[str, int] = {}
    first_ready_s: float | None = None
    all_ready_s: float | None = None
