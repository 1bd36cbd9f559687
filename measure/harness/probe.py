"""`measure probe`: a few short bursts that tell how fast this host is today (CPU per boot,
effective cores, launcher lateness) and what fresh memory costs a boot here, written as a probe
file that carries a calibration here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from measure.harness.burst import (
    BurstResult,
    BurstSpec,
    default_timeout_s,
    fixed_interval,
    run_burst,
)
from measure.harness.guest import Accel, BootPath
from measure.harness.host import host_info, qemu_version
from measure.harness.memory import MAX_GB, anonymous_kib, memory_price
from measure.harness.records import InstanceRow
from sim.errors import UserError
from sim.model.burst_stats import quantile
from sim.model.probe import (
    PROBE_COUNT,
    PROBE_INTERVAL_MS,
    ProbeFile,
    burst_effective_cores,
    early_boot_cpu,
    host_speed,
)

PROBE_BURSTS = 5
"""Bursts per probe: the host's speed moves by several per cent between bursts a minute apart."""
SETTLE_S = 1.0


def burst_arrays(rows: Sequence[InstanceRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(launch_s, ready_s, cpu_s) of one burst in launch order."""
    ordered = sorted(rows, key=lambda r: r.instance)
    return (np.array([r.launch_s for r in ordered]), np.array([r.ready_s for r in ordered]),
            np.array([r.cpu_s for r in ordered]))


class _MemoryWatch:
    """The anonymous memory (zero-filled pages: the guest's RAM and QEMU's heap) of each
    instance of a burst when it is ready."""

    def __init__(self) -> None:
        self.kib: list[int] = []

    def __call__(self, kind: str, row: InstanceRow) -> None:
        if kind == "ready" and row.pid > 0:
            kib = anonymous_kib(row.pid)
            if kib is not None:
                self.kib.append(kib)


def probe_spec(boot: BootPath, accel: Accel, memory_mb: int, repeat: int) -> BurstSpec:
    """One burst of the probe's configuration (PROBE_COUNT instances PROBE_INTERVAL_MS apart)."""
    return BurstSpec(boot=boot, accel=accel, memory_mb=memory_mb,
                     planned_s=fixed_interval(PROBE_COUNT, PROBE_INTERVAL_MS),
                     interval_ms=PROBE_INTERVAL_MS, repeat=repeat,
                     timeout_s=default_timeout_s(boot, accel, PROBE_COUNT))


def run_probe(boot: BootPath, accel: Accel, memory_mb: int, out: Path, *,
              bursts: int = PROBE_BURSTS, memory_gb: float = MAX_GB,
              on_burst: Callable[[BurstResult], None] | None = None) -> ProbeFile:
    """Run the probe's bursts into dataset `out`, then price fresh memory (faulting in at most
    `memory_gb`; 0: not), and return the probe (not yet written)."""
    started = time.monotonic()
    results: list[BurstResult] = []
    watch = _MemoryWatch()
    for repeat in range(bursts):
        if repeat:
            time.sleep(SETTLE_S)
        result = run_burst(probe_spec(boot, accel, memory_mb, repeat), out, on_event=watch)
        not_ready = [r for r in result.rows if r.status != "ready"]
        if not_ready:
            raise UserError(f"probe burst {result.run_id}: {len(not_ready)} of {PROBE_COUNT} "
                            f"instances not ready ({not_ready[0].status}); see {out}")
        results.append(result)
        if on_burst is not None:
            on_burst(result)
    arrays = [burst_arrays(r.rows) for r in results]
    early = np.concatenate([early_boot_cpu(cpu) for _, _, cpu in arrays])
    cores = [burst_effective_cores(*a) for a in arrays]
    lateness = np.concatenate([
        np.array([r.launch_s - r.planned_launch_s for r in res.rows]) for res in results])
    first = results[0].manifest
    return ProbeFile(
        boot=boot, accel=accel, memory_mb=memory_mb,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        host=host_info().model_dump(), qemu_version=qemu_version(first.qemu_path),
        speed=host_speed(arrays),
        boot_cpu_quartiles_s=(float(quantile(early, 0.25)), float(quantile(early, 0.75))),
        effective_cores_range=(float(min(cores)), float(max(cores))),
        launch_lateness_p99_s=float(quantile(lateness, 0.99)),
        runs=[r.run_id for r in results],
        memory=memory_price(float(np.median(watch.kib)) / (1 << 20), memory_gb)
        if memory_gb > 0 and watch.kib else None,
        duration_s=time.monotonic() - started,
    )
