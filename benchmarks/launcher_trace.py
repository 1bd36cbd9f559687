"""Who runs when during a burst: the scheduler's own record (sched_switch, fork, exec) and the
guest's ready string on COM1 (kvm:kvm_pio), under the realtime harness and a fair-share one.

Per instance: when it was launched, when QEMU was exec'd, when the guest wrote its ready string
(the kernel's clock, not the harness's read), the CPU its threads ran until then, the time they
spent runnable but preempted (waiting for a core), and how late the harness read the string.
For the launcher (this process): its CPU and its runnable wait during the burst.

Usage: .venv/bin/python benchmarks/launcher_trace.py [--count 120] [--interval-ms 2]
       [--repeat 2] [--out benchmarks/results/launcher/trace-DATE]
Writes instances.csv.gz (one row per instance and run) and summary.json; prints a Markdown table.
Needs root and linux-perf; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.kernel_trace import COM1, perf_available
from measure.harness.burst import BurstResult, BurstSpec, fixed_interval, run_burst
from measure.harness.guest import READY

SAMPLE = re.compile(r"^\s*(\d+)/(\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+(\S+):\s+(.*)$")
SWITCH = re.compile(r"prev_comm=(.*) prev_pid=(\d+) prev_prio=(\d+) prev_state=(\S+) ==> "
                    r"next_comm=.* next_pid=(\d+) next_prio=(\d+)")
EXEC = re.compile(r"filename=(\S+) pid=(\d+)")
PIO = re.compile(r"pio_write at 0x([0-9a-f]+) size \d+ count \d+ val 0x([0-9a-f]+)")


@dataclass
class Slice:
    tid: int
    start: float
    end: float
    preempted: bool
    """Switched out still runnable (state R): it then waits for a core."""


@dataclass
class Trace:
    slices: dict[int, list[Slice]]
    """tgid -> its threads' run slices, in time order."""
    tgid: dict[int, int]
    exec_s: dict[int, dict[str, float]]
    serial: dict[int, list[tuple[float, int]]]
    comm: dict[int, str]
    """tid -> its last name."""


def record(command: list[str], out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-m", "8192",
         "-e", "sched:sched_switch", "-e", "sched:sched_process_exec",
         "-e", "kvm:kvm_pio", "--filter", f"port == {COM1:#x}", "-o", str(out), *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def parse(perf_data: Path) -> Trace:
    script = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "pid,tid,cpu,time,event,trace"],
        capture_output=True, text=True, check=False)
    on_cpu: dict[int, tuple[int, float]] = {}
    slices: dict[int, list[Slice]] = defaultdict(list)
    tgid: dict[int, int] = {}
    exec_s: dict[int, dict[str, float]] = defaultdict(dict)
    serial: dict[int, list[tuple[float, int]]] = defaultdict(list)
    comm: dict[int, str] = {}
    for line in script.stdout.splitlines():
        m = SAMPLE.match(line)
        if m is None:
            continue
        pid, tid, cpu, t, event, rest = (int(m[1]), int(m[2]), int(m[3]), float(m[4]), m[5],
                                         m[6])
        tgid[tid] = pid
        if event == "sched:sched_switch":
            s = SWITCH.search(rest)
            if s is None:
                continue
            comm[int(s[2])] = s[1]
            prev, state, nxt = int(s[2]), s[4], int(s[5])
            started = on_cpu.get(cpu)
            if started is not None and started[0] == prev and prev != 0:
                slices[pid].append(Slice(prev, started[1], t, state.startswith("R")))
            on_cpu[cpu] = (nxt, t)
        elif event == "sched:sched_process_exec":
            e = EXEC.search(rest)
            if e is not None:
                exec_s[pid].setdefault(Path(e[1]).name, t)
        elif event == "kvm:kvm_pio":
            p = PIO.search(rest)
            if p is not None and int(p[1], 16) == COM1:
                serial[pid].append((t, int(p[2], 16)))
    return Trace(dict(slices), tgid, dict(exec_s), dict(serial), comm)


def ready_written(serial: list[tuple[float, int]]) -> float:
    seen = bytes(v for _, v in serial)
    at = seen.find(READY)
    return serial[at + len(READY) - 1][0] if at >= 0 else float("nan")


def cpu_and_wait(slices: list[Slice], start: float, end: float) -> tuple[float, float, int]:
    """CPU run in [start, end], time runnable-but-preempted in it, and the number of slices."""
    cpu = wait = 0.0
    n = 0
    last_out: dict[int, float] = {}
    for s in slices:
        if s.end <= start or s.start >= end:
            if s.preempted and s.end <= end:
                last_out[s.tid] = s.end
            else:
                last_out.pop(s.tid, None)
            continue
        cpu += min(s.end, end) - max(s.start, start)
        n += 1
        if s.tid in last_out:
            wait += s.start - max(last_out.pop(s.tid), start)
        if s.preempted:
            last_out[s.tid] = s.end
    for out in last_out.values():
        wait += end - out
    return cpu, wait, n


@dataclass
class Row:
    launcher: str
    repeat: int
    instance: int
    planned_s: float
    launch_s: float
    qemu_exec_s: float
    ready_written_s: float
    harness_ready_s: float
    cpu_ms: float
    vcpu_cpu_ms: float
    """Of cpu_ms, what the vCPU thread ran (the guest); the rest is QEMU's other threads and the
    wrappers before it (exec, start-up)."""
    wait_ms: float
    slices: int
    vcpu_start_s: float
    """When the vCPU thread first ran: QEMU's start-up is over."""
    startup_cpu_ms: float
    """CPU of the instance (wrappers, exec, QEMU's start-up) from launch to the vCPU's first run."""
    startup_wait_ms: float
    """Of that start-up, the time spent runnable but preempted."""


def perf_burst(record_with: Callable[[list[str], Path], subprocess.Popen[bytes]], count: int,
               interval_ms: float, realtime: bool, repeat: int, tmp: Path,
               timeout_s: float = 120.0) -> tuple[BurstResult, Path, float]:
    """One burst of the firmware guest while `record_with(command, perf.data)` records the
    whole machine: the burst's result, the perf data (the caller parses and deletes it) and the
    burst's t0 on CLOCK_MONOTONIC."""
    perf_data = tmp / "perf.data"
    proc = record_with(["sleep", "600"], perf_data)
    time.sleep(1.5)
    try:
        spec = BurstSpec(boot="firmware", accel="kvm", memory_mb=16,
                         planned_s=fixed_interval(count, interval_ms), interval_ms=interval_ms,
                         timeout_s=timeout_s, repeat=repeat)
        result = run_burst(spec, tmp / "run", launcher="realtime" if realtime else "fair")
    finally:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=600)
    shutil.rmtree(tmp / "run", ignore_errors=True)
    t0 = result.manifest.t0_monotonic
    assert t0 is not None
    return result, perf_data, t0


def traced_burst(count: int, interval_ms: float, realtime: bool, repeat: int,
                 tmp: Path) -> tuple[list[Row], dict[str, float]]:
    result, perf_data, t0 = perf_burst(record, count, interval_ms, realtime, repeat, tmp)
    trace = parse(perf_data)
    perf_data.unlink()
    name = "realtime" if realtime else "fair"
    rows = []
    for r in result.rows:
        written = ready_written(trace.serial.get(r.pid, []))
        launch = t0 + r.launch_s
        slices = trace.slices.get(r.pid, [])
        cpu, wait, n = cpu_and_wait(slices, launch, written)
        # QEMU 7.2 names no thread (without -name debug-threads=on): its threads are the main
        # one (tid = pid), call_rcu, then the vCPU, in creation (tid) order; KVM's own
        # kvm-nx-lpage-re worker is named.
        qemu_tids = sorted({x.tid for x in slices
                            if not trace.comm.get(x.tid, "").startswith("kvm")})
        vcpu_tid = qemu_tids[2] if len(qemu_tids) > 2 else -1
        vcpu = [x for x in slices if x.tid == vcpu_tid]
        vcpu_cpu, _, _ = cpu_and_wait(vcpu, launch, written)
        vcpu_start = min((x.start for x in vcpu), default=float("nan"))
        startup_cpu, startup_wait, _ = cpu_and_wait(slices, launch, vcpu_start)
        qemu = trace.exec_s.get(r.pid, {}).get("qemu-system-x86_64", float("nan"))
        rows.append(Row(name, repeat, r.instance, r.planned_launch_s, r.launch_s, qemu - t0,
                        written - t0, r.ready_s, 1e3 * cpu, 1e3 * vcpu_cpu, 1e3 * wait, n,
                        vcpu_start - t0, 1e3 * startup_cpu, 1e3 * startup_wait))
    end = t0 + max(r.ready_s for r in result.rows)
    cpu, wait, n = cpu_and_wait(trace.slices.get(os.getpid(), []), t0, end)
    launcher = {"cpu_ms": 1e3 * cpu, "wait_ms": 1e3 * wait, "slices": n, "span_s": end - t0}
    return rows, launcher


def summary(rows: list[Row], launcher: dict[str, float]) -> dict[str, float]:
    ready = np.sort([r.ready_written_s for r in rows])
    read_late = np.array([r.harness_ready_s - r.ready_written_s for r in rows])
    late = np.array([r.launch_s - r.planned_s for r in rows])
    by_ready = sorted(rows, key=lambda r: r.ready_written_s)
    first = by_ready[0]
    return {
        "first_ready_s": float(ready[0]), "p10_ready_s": float(np.quantile(ready, 0.1)),
        "median_ready_s": float(np.median(ready)), "all_ready_s": float(ready[-1]),
        "harness_first_ready_s": float(min(r.harness_ready_s for r in rows)),
        "harness_median_ready_s": float(np.median([r.harness_ready_s for r in rows])),
        "read_late_p50_ms": float(1e3 * np.median(read_late)),
        "read_late_p99_ms": float(1e3 * np.quantile(read_late, 0.99)),
        "launch_late_p99_ms": float(1e3 * np.quantile(late, 0.99)),
        "first_instance": first.instance, "first_cpu_ms": first.cpu_ms,
        "first_wait_ms": first.wait_ms, "first_slices": first.slices,
        "first_launch_s": first.launch_s,
        "cpu_ms_median": float(np.median([r.cpu_ms for r in rows])),
        "vcpu_cpu_ms_median": float(np.median([r.vcpu_cpu_ms for r in rows])),
        "startup_s_median": float(np.median([r.vcpu_start_s - r.launch_s for r in rows])),
        "startup_cpu_ms_median": float(np.median([r.startup_cpu_ms for r in rows])),
        "startup_wait_ms_median": float(np.median([r.startup_wait_ms for r in rows])),
        "wait_ms_median": float(np.median([r.wait_ms for r in rows])),
        "launcher_cpu_ms": launcher["cpu_ms"], "launcher_wait_ms": launcher["wait_ms"],
        "launcher_slices": launcher["slices"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if (why := perf_available()) is not None:
        raise SystemExit(f"error: {why}")
    stamp = datetime.now(UTC)
    out = args.out or (Path(__file__).resolve().parent / "results" / "launcher"
                       / f"trace-{stamp:%Y-%m-%d}-{args.count}at{args.interval_ms:g}")
    out.mkdir(parents=True, exist_ok=True)
    all_rows: list[Row] = []
    runs = []
    with tempfile.TemporaryDirectory(prefix="bootstorm-trace-") as tmp:
        for k in range(args.repeat):
            for realtime in (True, False) if k % 2 == 0 else (False, True):
                rows, launcher = traced_burst(args.count, args.interval_ms, realtime, k,
                                              Path(tmp))
                all_rows += rows
                s = summary(rows, launcher)
                runs.append({"launcher": rows[0].launcher, "repeat": k, **s})
                print(rows[0].launcher, k, {key: round(v, 3) for key, v in s.items()},
                      flush=True)
                time.sleep(3)
    with gzip.open(out / "instances.csv.gz", "wt", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(all_rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in all_rows)
    (out / "summary.json").write_text(json.dumps(
        {"date": stamp.isoformat(timespec="seconds"), "count": args.count,
         "interval_ms": args.interval_ms, "host": os.uname().nodename, "runs": runs},
        indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
