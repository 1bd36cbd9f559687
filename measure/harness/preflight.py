"""Checks before any burst is launched (settings, host, dataset directory, memory) and the
summary of what this host can do that `measure info` prints.

Every refusal is a UserError that says how to fix it; nothing here launches a measured burst.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from measure.harness.dataset import check_writable
from measure.harness.guard import MemoryEstimate, check_memory, estimate_memory
from measure.harness.guest import ACCELS, BOOT_PATHS, Accel, BootPath, find_qemu
from measure.harness.host import host_info, qemu_version
from sim.errors import UserError

MAX_MEMORY_MB = 65536


def boot_path(value: str) -> BootPath:
    """A boot path by name."""
    if value not in BOOT_PATHS:
        raise UserError(f"unknown boot path {value!r}; use one of: {', '.join(BOOT_PATHS)}")
    return value


def accelerator(value: str) -> Accel:
    """An accelerator by name."""
    if value not in ACCELS:
        raise UserError(f"unknown accelerator {value!r}; use one of: {', '.join(ACCELS)}")
    return value


def check_host(accel: Accel) -> None:
    """QEMU is installed and, for KVM, /dev/kvm is usable."""
    find_qemu()
    if accel == "kvm":
        info = host_info()
        if not info.kvm_usable:
            raise UserError(f"/dev/kvm is not usable: {info.kvm_reason}; fix that or pass "
                            "--accel tcg")


def check_repeat(repeat: int) -> None:
    if repeat < 1:
        raise UserError(f"--repeat must be at least 1 (got {repeat})")


def check_memory_mb(memory_mb: int, where: str = "--memory-mb") -> None:
    if not 2 <= memory_mb <= MAX_MEMORY_MB:
        raise UserError(f"{where} must be between 2 and {MAX_MEMORY_MB} (got {memory_mb})")


def check_burst_settings(count: int, interval_ms: float, memory_mb: int, repeat: int) -> None:
    """The settings of a burst (or of every point of a sweep) make sense."""
    if count < 1:
        raise UserError(f"--count must be at least 1 (got {count})")
    if interval_ms < 0:
        raise UserError(f"--interval-ms must be 0 or more (got {interval_ms:g})")
    check_memory_mb(memory_mb)
    check_repeat(repeat)


def prepare(out: Path, accel: Accel, configs: Sequence[tuple[BootPath, int, int]],
            ) -> dict[tuple[BootPath, int], MemoryEstimate]:
    """Before the first launch: the host can run `accel`, `out` is writable, and the largest
    burst of each (boot path, count, guest memory) fits in memory. Returns the memory estimate
    of each (boot path, guest memory), which the manifests record."""
    check_host(accel)
    check_writable(out)
    largest: dict[tuple[BootPath, int], int] = {}
    for boot, count, memory_mb in configs:
        largest[boot, memory_mb] = max(count, largest.get((boot, memory_mb), 0))
    estimates = {}
    for (boot, memory_mb), count in largest.items():
        estimates[boot, memory_mb] = estimate_memory(boot, accel, memory_mb)
        check_memory(count, estimates[boot, memory_mb])
    return estimates


def capabilities() -> dict[str, Any]:
    """What this host can do: the host, QEMU, and the largest safe burst of each boot path."""
    host = host_info()
    data: dict[str, Any] = {"host": host.model_dump()}
    try:
        qemu = find_qemu()
        data["qemu"] = {"path": qemu, "version": qemu_version(qemu)}
        accel: Accel = "kvm" if host.kvm_usable else "tcg"
        for boot in BOOT_PATHS:
            est = estimate_memory(boot, accel, 16)
            data[f"largest_safe_burst_{boot}"] = est.largest_safe()
            data[f"memory_per_instance_mb_{boot}"] = round(est.per_instance_mb, 1)
    except UserError as err:
        data["qemu"] = {"error": str(err)}
    return data
