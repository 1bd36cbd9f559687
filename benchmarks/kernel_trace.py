"""Kernel tracepoints as an independent clock for boots: when each QEMU was exec'd and when its
guest wrote each byte to COM1 (kvm:kvm_pio), on CLOCK_MONOTONIC like the harness.

Used by the harness-accuracy and boot-phase benchmarks. Needs root and Debian's linux-perf.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

COM1 = 0x3F8
EXEC = re.compile(r"^\s*(\d+)\s+(\d+\.\d+):\s+sched:sched_process_exec:\s+filename=(\S+)")
PIO = re.compile(r"^\s*(\d+)\s+(\d+\.\d+):\s+kvm:kvm_pio:\s+pio_write at 0x([0-9a-f]+) "
                 r"size \d+ count \d+ val 0x([0-9a-f]+)")


@dataclass
class BootTrace:
    """What the kernel saw of one QEMU process (keyed by pid)."""

    exec_s: dict[str, float] = field(default_factory=dict)
    """Monotonic time of each exec, by program basename (chrt, setpriv, qemu-system-x86_64)."""
    serial: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time, byte) of each guest write to COM1, in order."""
    extra_ports: dict[int, list[tuple[float, int]]] = field(default_factory=dict)


def perf_available() -> str | None:
    """Why kernel tracing cannot run here, or None when it can."""
    if shutil.which("perf") is None:
        return "perf is not installed (apt-get install linux-perf)"
    probe = subprocess.run(["perf", "list", "kvm:kvm_pio"], capture_output=True, text=True)
    if "kvm_pio" not in probe.stdout:
        return "the kvm:kvm_pio tracepoint is not available"
    return None


@contextlib.contextmanager
def kernel_trace(ports: tuple[int, ...] = (COM1,)) -> Iterator[dict[int, BootTrace]]:
    """Record exec and port-write events system-wide while the block runs; the yielded dict is
    filled (pid -> BootTrace) when the block ends."""
    out = Path(tempfile.mkdtemp(prefix="bootstorm-perf-")) / "perf.data"
    port_filter = " || ".join(f"port == {p:#x}" for p in ports)
    proc = subprocess.Popen(
        ["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-m", "4096",
         "-e", "sched:sched_process_exec", "-e", "kvm:kvm_pio", "--filter", port_filter,
         "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # perf needs a moment to open its events on every CPU
    traces: dict[int, BootTrace] = {}
    try:
        yield traces
    finally:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        script = subprocess.run(["perf", "script", "-i", str(out), "-F", "pid,time,event,trace"],
                                capture_output=True, text=True, check=False)
        shutil.rmtree(out.parent, ignore_errors=True)
        for line in script.stdout.splitlines():
            if m := PIO.match(line):
                pid, t, port, val = int(m[1]), float(m[2]), int(m[3], 16), int(m[4], 16)
                trace = traces.setdefault(pid, BootTrace())
                if port == COM1:
                    trace.serial.append((t, val))
                else:
                    trace.extra_ports.setdefault(port, []).append((t, val))
            elif m := EXEC.match(line):
                pid, t, name = int(m[1]), float(m[2]), Path(m[3]).name
                traces.setdefault(pid, BootTrace()).exec_s.setdefault(name, t)


def ready_written_s(trace: BootTrace, ready: bytes) -> float | None:
    """When the guest wrote the last byte of the ready string (the moment it was ready)."""
    tail = ready[-1]
    seen = bytes(v for _, v in trace.serial)
    at = seen.find(ready)
    if at < 0:
        return None
    t, v = trace.serial[at + len(ready) - 1]
    assert v == tail
    return t
