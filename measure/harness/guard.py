"""The memory guard: refuse a burst that would push the host into the OOM killer.

It boots two probe instances, measures what one holds once both are ready (its private pages and
page tables: QEMU's code is shared between instances and untouched guest RAM is never allocated),
and scales that by the count against MemAvailable.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure.harness.burst import BurstSpec, run_burst
from measure.harness.guest import Accel, BootPath
from measure.harness.host import meminfo_kb
from measure.harness.records import InstanceRow
from sim.errors import UserError

RESERVE_MB = 1024.0
"""Memory left for the host, the harness and the page cache."""
SAFETY = 1.25
"""Margin on the per-instance estimate: a busy instance may hold more than an idle probe."""
KERNEL_OVERHEAD_MB = 1.0
"""Per-process kernel memory not visible in smaps (KVM structures, task structs, pipes)."""


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    per_instance_mb: float
    shared_mb: float
    available_mb: float

    def largest_safe(self) -> int:
        usable = self.available_mb - RESERVE_MB - self.shared_mb
        return max(0, int(usable / (self.per_instance_mb * SAFETY)))

    def need_mb(self, count: int) -> float:
        return self.shared_mb + count * self.per_instance_mb * SAFETY + RESERVE_MB


def _smaps_mb(pid: int) -> tuple[float, float]:
    """(private, shared) resident memory of a process in MiB, page tables counted as private."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    pte = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmPTE:"):
                pte = int(line.split()[1])
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0) + pte
    shared = fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0)
    return private / 1024.0 + KERNEL_OVERHEAD_MB, shared / 1024.0


_cache: dict[tuple[str, str, int], tuple[float, float]] = {}


def estimate_memory(boot: BootPath, accel: Accel, memory_mb: int) -> MemoryEstimate:
    """Boot two probe instances and measure one (cached per configuration within a process)."""
    key = (boot, accel, memory_mb)
    if key not in _cache:
        seen: list[tuple[float, float]] = []
        ready: list[int] = []

        def on_event(kind: str, row: InstanceRow) -> None:
            if kind == "ready":
                ready.append(row.pid)
                if len(ready) == 2:  # both alive: shared pages now show as shared
                    seen.append(_smaps_mb(ready[0]))

        with tempfile.TemporaryDirectory(prefix="bootstorm-probe-") as tmp:
            spec = BurstSpec(boot=boot, accel=accel, memory_mb=memory_mb, planned_s=(0.0, 0.0),
                             interval_ms=0.0, timeout_s=60.0)
            result = run_burst(spec, Path(tmp), on_event=on_event)
        if not seen:
            row = result.rows[0]
            raise UserError(f"the probe instance did not boot ({row.status}): "
                            f"{row.stderr_tail.strip()[-200:] or 'no message'}; "
                            "check `measure info`")
        _cache[key] = seen[0]
    private, shared = _cache[key]
    return MemoryEstimate(per_instance_mb=private, shared_mb=shared,
                          available_mb=meminfo_kb("MemAvailable") / 1024.0)


def check_memory(count: int, est: MemoryEstimate) -> None:
    """Raise a UserError naming the largest safe count if `count` instances would not fit."""
    if est.need_mb(count) > est.available_mb:
        raise UserError(
            f"{count} instances need about {est.need_mb(count):.0f} MiB but only "
            f"{est.available_mb:.0f} MiB is available ({est.per_instance_mb:.1f} MiB each); "
            f"the largest safe burst here is {est.largest_safe()}"
        )
