"""Where a crowded boot sleeps: the time each of a burst's first instances spends inside KVM
ioctls (by command) and futex waits, from its launch to its ready string, read off the
syscall tracepoints (sys_enter/sys_exit of ioctl, futex and ppoll) under the realtime harness,
and how many calls of the ioctls that wait for an SRCU grace period it made.

Time inside a syscall is wall time: running in the kernel, or asleep there (a memslot update
waits for an SRCU grace period; a futex wait for another thread of the same QEMU).

Usage: .venv/bin/python -m benchmarks.ioctl_trace [--count 100] [--intervals-ms 6,19]
       [--repeat 2] [--first 5] [--raise-workers] [--out benchmarks/results/launcher/ioctl-DATE]
Writes instances.csv.gz (one row per instance and run) and prints the medians per interval.
Needs root and linux-perf; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.kernel_trace import perf_available
from benchmarks.kworker_priority import workers_raised
from benchmarks.launcher_trace import SAMPLE, perf_burst

SYSCALLS = ("ioctl", "futex", "ppoll")
KVM_IOCTLS = {0xAE01: "create_vm", 0xAE41: "create_vcpu", 0xAE80: "run",
              0x4020AE46: "set_user_memory_region", 0x4040AE79: "ioeventfd",
              0x4008AE6A: "set_gsi_routing", 0x4188AEC6: "set_msr_filter"}
"""The KVM ioctls a firmware boot spends time in (include/uapi/linux/kvm.h); others by number."""
COLUMNS = ("set_user_memory_region", "ioeventfd", "other_ioctl", "futex", "ppoll")
COUNTED = ("set_user_memory_region", "ioeventfd")
"""The ioctls that wait for an SRCU grace period: their calls are counted too (`<name>_calls`)."""
CMD = re.compile(r"cmd: (0x[0-9a-f]+)")


def record(command: list[str], out: Path) -> subprocess.Popen[bytes]:
    events = [f"syscalls:sys_{edge}_{name}" for name in SYSCALLS for edge in ("enter", "exit")]
    return subprocess.Popen(
        ["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-m", "8192",
         *[arg for e in events for arg in ("-e", e)], "-o", str(out), *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kind(name: str, rest: str) -> str:
    """The column a syscall's time goes to."""
    if name != "ioctl":
        return name
    found = CMD.search(rest)
    label = KVM_IOCTLS.get(int(found[1], 16) & 0xFFFFFFFF) if found else None
    return label if label in COLUMNS else "other_ioctl"


def traced(count: int, interval_ms: float, repeat: int, first: int, raised: bool,
           tmp: Path) -> list[dict[str, float]]:
    """One burst: per instance of the first `first`, ms inside each kind of syscall from its
    launch to its ready string (the harness's), and its launch-to-ready time; the kernel's
    workers raised to SCHED_FIFO or not (benchmarks/kworker_priority.py)."""
    with workers_raised(raised):
        result, perf_data, t0 = perf_burst(record, count, interval_ms, True, repeat, tmp)
    script = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "pid,tid,cpu,time,event,trace"],
        capture_output=True, text=True, check=False).stdout
    perf_data.unlink()
    rows = {r.pid: r for r in result.rows if r.instance < first}
    spent: dict[int, dict[str, float]] = {pid: defaultdict(float) for pid in rows}
    calls: dict[int, dict[str, int]] = {pid: defaultdict(int) for pid in rows}
    inside: dict[int, tuple[str, float]] = {}
    for line in script.splitlines():
        m = SAMPLE.match(line)
        if m is None or int(m[1]) not in rows:
            continue
        pid, tid, t, event, rest = int(m[1]), int(m[2]), float(m[4]), m[5], m[6]
        if "sys_enter_" in event:
            inside[tid] = (kind(event.split("sys_enter_")[1], rest), t)
        elif tid in inside:
            what, since = inside.pop(tid)
            row = rows[pid]
            lo, hi = t0 + row.launch_s, t0 + row.ready_s
            if since < hi and t > lo:
                spent[pid][what] += min(t, hi) - max(since, lo)
                calls[pid][what] += 1
    return [{"interval_ms": interval_ms, "workers_raised": int(raised), "repeat": repeat,
             "instance": r.instance,
             "launch_s": r.launch_s, "launch_to_ready_ms": 1e3 * (r.ready_s - r.launch_s),
             **{c: 1e3 * spent[pid][c] for c in COLUMNS},
             **{f"{c}_calls": calls[pid][c] for c in COUNTED}} for pid, r in rows.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--intervals-ms", default="6,19")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--first", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--raise-workers", action="store_true",
                        help="each burst twice, the kernel's workers normal and at SCHED_FIFO 1")
    args = parser.parse_args()
    if (why := perf_available()) is not None:
        raise SystemExit(f"error: {why}")
    try:
        intervals = [float(v) for v in args.intervals_ms.split(",")]
    except ValueError:
        raise SystemExit("error: --intervals-ms: comma-separated numbers, e.g. 6,19") from None
    stamp = datetime.now(UTC)
    out = args.out or (Path(__file__).resolve().parent / "results" / "launcher"
                       / f"ioctl-{stamp:%Y-%m-%d}-{args.count}")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bootstorm-ioctl-") as tmp:
        arms = (False, True) if args.raise_workers else (False,)
        for k in range(args.repeat):
            for interval in intervals if k % 2 == 0 else intervals[::-1]:
                for raised in arms if k % 2 == 0 else arms[::-1]:
                    rows += traced(args.count, interval, k, args.first, raised, Path(tmp))
                    time.sleep(3)
    with gzip.open(out / "instances.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"| interval ms | workers | launch to ready | {' | '.join(COLUMNS)} |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for interval in intervals:
        for raised in arms:
            mine = [r for r in rows
                    if r["interval_ms"] == interval and r["workers_raised"] == int(raised)]
            cells = [np.quantile([r[c] for r in mine], [0.25, 0.5, 0.75])
                     for c in ("launch_to_ready_ms", *COLUMNS)]
            print(f"| {interval:g} | {'SCHED_FIFO 1' if raised else 'normal'} | "
                  + " | ".join(f"{q[1]:.1f} [{q[0]:.1f}-{q[2]:.1f}]" for q in cells) + " |")
    print(f"wrote {out} ({stamp:%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
