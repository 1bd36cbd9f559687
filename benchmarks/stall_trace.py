"""Why some instances of a dense realtime-launched burst finish seconds after processor sharing
says they should: where their threads were while off a core.

Runs bursts under `perf record` with sched_switch (kernel call chains at each switch-out),
sched_wakeup / sched_wakeup_new, exec and the guest's ready string (kvm:kvm_pio). For every
instance it splits the time from launch to the ready string into running, waiting for a core after
a preemption, waiting for a core after a wake-up, and blocked (asleep until woken), and names the
kernel function each blocked interval slept in. An instance is *late* when the guest wrote its
ready string more than --late-s after processor sharing of its own measured CPU (all instances of
the burst on --cores cores, launched when they were) would have finished it.

Usage: .venv/bin/python benchmarks/stall_trace.py [--count 400] [--interval-ms 4]
       [--launchers realtime,fair] [--repeat 1] [--out benchmarks/results/launcher/stall-DATE]
       .venv/bin/python benchmarks/stall_trace.py --analyse DIR
Writes instances.csv.gz (one row per instance and run), blocked.csv.gz (per run, per late/on-time
class, per blocking function: total blocked seconds and count), waits.csv.gz (every wait of an
instance's main thread on a contended mutex: the lock, its caller, when it began and when the
lock was acquired) and summary.json. --analyse prints, per run, how many instances waited for
the VM-creation mutex (KVM_CREATE_VM, reached from kvm_dev_ioctl), how long, in what order the
lock went to them, its passes per second and the CPU per pass that processor sharing of the
instances not asleep on it implies.
Needs root and linux-perf; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.kernel_trace import COM1, perf_available
from benchmarks.launcher_trace import PIO, perf_burst, ready_written
from sim.model.node_model import NodeModel
from sim.model.ready_times import ready_times

HEAD = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+(\S+):\s+(.*)$")
SWITCH = re.compile(r"prev_comm=.* prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> "
                    r"next_comm=.* next_pid=(\d+) next_prio=\d+")
WAKE = re.compile(r"comm=.* pid=(\d+) prio=\d+ target_cpu=(\d+)")
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(\S+?)(?:\+0x[0-9a-f]+)?\s*$")
EXEC = re.compile(r"filename=(\S+) pid=(\d+)")
LOCK = re.compile(r"^(0x[0-9a-f]+|[0-9a-f]+) \((?:flags|ret)=([^)]*)\)")
# Frames that say only "this thread is switching out": the reason lies below them.
SCHED_FRAMES = ("__schedule", "schedule", "__traceiter_sched_switch", "preempt_schedule",
                "schedule_preempt_disabled", "io_schedule", "schedule_timeout",
                "schedule_hrtimeout_range", "schedule_hrtimeout_range_clock",
                "preempt_schedule_common", "preempt_schedule_irq", "__cond_resched",
                "_cond_resched", "do_nanosleep", "hrtimer_nanosleep")


@dataclass
class Thread:
    tgid: int
    runs: list[tuple[float, float]] = field(default_factory=list)
    """(on, off) of each time on a core."""
    offs: list[tuple[float, str, str]] = field(default_factory=list)
    """(time, state, blocking function) of each switch-out."""
    wakes: list[float] = field(default_factory=list)
    contended: list[tuple[float, float, str, str]] = field(default_factory=list)
    """(began, acquired, lock, caller) of each wait for a contended sleeping lock (mutex)."""


def record(command: list[str], out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-m", "16384",
         "-e", "sched:sched_switch", "--call-graph", "fp",
         "-e", "sched:sched_wakeup", "-e", "sched:sched_wakeup_new",
         "-e", "sched:sched_process_exec",
         "-e", "lock:contention_begin", "-e", "lock:contention_end",
         "-e", "kvm:kvm_pio", "--filter", f"port == {COM1:#x}", "-o", str(out), *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def blocking_function(frames: list[str], depth: int = 3) -> str:
    """The first `depth` kernel frames below the scheduler's own, innermost first: what the
    thread waited in and who asked."""
    own = [f for f in frames if f not in SCHED_FRAMES and not f.startswith("[unknown]")
           and not f.startswith("entry_SYSCALL") and f != "do_syscall_64"]
    return "<".join(own[:depth]) if own else "?"


def parse(perf_data: Path) -> tuple[dict[int, Thread], dict[int, list[tuple[float, int]]],
                                    dict[int, float]]:
    script = subprocess.Popen(
        ["perf", "script", "-i", str(perf_data), "-F", "comm,pid,tid,cpu,time,event,trace,ip,sym"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert script.stdout is not None
    threads: dict[int, Thread] = {}
    on_cpu: dict[int, tuple[int, float]] = {}
    serial: dict[int, list[tuple[float, int]]] = defaultdict(list)
    qemu_exec: dict[int, float] = {}
    pending: tuple[int, float, str] | None = None
    frames: list[str] = []
    waiting: dict[int, tuple[float, str]] = {}
    """tid -> (began, lock) of a mutex wait not yet over."""
    begun: tuple[int, float, str] | None = None
    """A contention_begin whose call chain is being read."""

    def thread(tid: int, tgid: int) -> Thread:
        th = threads.setdefault(tid, Thread(tgid))
        if th.tgid < 0:  # first seen as woken by its creator: its process is known now
            th.tgid = tgid
        return th

    def close() -> None:
        nonlocal pending, frames, begun
        if pending is not None:
            tid, t, state = pending
            threads[tid].offs.append((t, state, blocking_function(frames)))
        if begun is not None:
            tid, t, lock = begun
            waiting[tid] = (t, lock + "@" + blocking_function(frames, 2))
        pending, frames, begun = None, [], None

    for line in script.stdout:
        m = HEAD.match(line)
        if m is None:
            f = FRAME.match(line)
            if f is not None and (pending is not None or begun is not None):
                frames.append(f[1])
            continue
        close()
        pid, tid, cpu, t, event, rest = int(m[2]), int(m[3]), int(m[4]), float(m[5]), m[6], m[7]
        if event == "sched:sched_switch":
            s = SWITCH.search(rest)
            if s is None:
                continue
            prev, state, nxt = int(s[1]), s[2], int(s[3])
            started = on_cpu.get(cpu)
            if prev != 0:
                th = thread(prev, pid)
                if started is not None and started[0] == prev:
                    th.runs.append((started[1], t))
                pending = (prev, t, state)
            on_cpu[cpu] = (nxt, t)
        elif event in ("sched:sched_wakeup", "sched:sched_wakeup_new"):
            w = WAKE.search(rest)
            if w is not None and int(w[1]) in threads:
                threads[int(w[1])].wakes.append(t)
            elif w is not None and event == "sched:sched_wakeup_new":
                thread(int(w[1]), -1).wakes.append(t)
        elif event == "lock:contention_begin":
            lk = LOCK.match(rest)
            if lk is not None and "MUTEX" in lk[2]:
                thread(tid, pid)
                begun = (tid, t, lk[1])
        elif event == "lock:contention_end":
            lk = LOCK.match(rest)
            w0 = waiting.pop(tid, None)
            if lk is not None and w0 is not None and w0[1].startswith(lk[1] + "@"):
                lock, caller = w0[1].split("@", 1)
                thread(tid, pid).contended.append((w0[0], t, lock, caller))
        elif event == "sched:sched_process_exec":
            e = EXEC.search(rest)
            if e is not None and Path(e[1]).name.startswith("qemu-system"):
                qemu_exec.setdefault(pid, t)
        elif event == "kvm:kvm_pio":
            p = PIO.search(rest)
            if p is not None and int(p[1], 16) == COM1:
                serial[pid].append((t, int(p[2], 16)))
    close()
    script.wait()
    return threads, dict(serial), qemu_exec


@dataclass
class Split:
    running: float = 0.0
    preempted: float = 0.0
    """Runnable after being preempted, until back on a core."""
    woken: float = 0.0
    """Runnable after a wake-up, until on a core."""
    blocked: float = 0.0
    by_function: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    by_function_n: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def split(th: Thread, start: float, end: float, into: Split) -> None:
    """Add what thread `th` did in [start, end] to `into`. A thread's time before its first
    run (not yet created) counts for nothing."""
    wakes = np.array(sorted(th.wakes))
    offs = sorted(th.offs)
    runs = sorted(th.runs)
    for on, off in runs:
        into.running += max(0.0, min(off, end) - max(on, start))
    # Each switch-out to the next run: preempted (state R) or blocked until a wake-up, then
    # woken-waiting until it runs.
    ons = [on for on, _ in runs]
    if ons and len(wakes) and wakes[0] < ons[0]:  # created (or first woken), then waits to run
        into.woken += max(0.0, min(ons[0], end) - max(float(wakes[0]), start))
    for t_off, state, fn in offs:
        k = int(np.searchsorted(ons, t_off, side="right"))
        t_on = ons[k] if k < len(ons) else end
        a, b = max(t_off, start), min(t_on, end)
        if b <= a:
            continue
        if state.startswith("R"):
            into.preempted += b - a
            continue
        j = int(np.searchsorted(wakes, t_off, side="right"))
        t_wake = wakes[j] if j < len(wakes) and wakes[j] <= t_on else t_on
        blocked = max(0.0, min(t_wake, b) - a)
        into.blocked += blocked
        into.by_function[fn] += blocked
        into.by_function_n[fn] += 1
        into.woken += max(0.0, b - max(t_wake, a))


def processor_sharing(arrive: np.ndarray, work: np.ndarray, cores: float) -> np.ndarray:
    """When each instance would be ready under the node model's processor sharing of `cores`,
    launched when it was, with its own measured CPU as its work and no other term."""
    model = NodeModel(cores=cores, work_s=max(float(np.mean(work)), 1e-9))
    return ready_times(model, arrive, work=np.maximum(work, 1e-9))


@dataclass
class Row:
    launcher: str
    repeat: int
    instance: int
    launch_s: float
    ready_written_s: float
    ps_ready_s: float
    late: bool
    threads: int
    other_threads_running_ms: float
    """CPU of the instance's other threads (call_rcu, vCPU, workers) until ready."""
    running_ms: float
    """From here on, the main thread (the launched process: wrapper, exec, QEMU's start-up and
    main loop) only: its time from launch to ready is running + preempted + woken + blocked."""
    preempted_ms: float
    woken_ms: float
    blocked_ms: float
    top_blocking: str
    top_blocking_ms: float


def traced_burst(count: int, interval_ms: float, launcher: str, repeat: int, cores: float,
                 late_s: float, tmp: Path
                 ) -> tuple[list[Row], list[dict[str, object]], list[dict[str, object]]]:
    result, perf_data, t0 = perf_burst(record, count, interval_ms, launcher == "realtime",
                                       repeat, tmp, timeout_s=180)
    threads, serial, _ = parse(perf_data)
    perf_data.unlink()
    by_tgid: dict[int, list[tuple[int, Thread]]] = defaultdict(list)
    for tid, th in threads.items():
        by_tgid[th.tgid].append((tid, th))
    rows_in = [r for r in result.rows if r.pid in serial]
    launch = np.array([t0 + r.launch_s for r in rows_in])
    written = np.array([ready_written(serial[r.pid]) for r in rows_in])
    splits = []
    others = []
    for r, a, b in zip(rows_in, launch, written, strict=True):
        s, o = Split(), Split()
        for tid, th in by_tgid.get(r.pid, []):
            split(th, a, b, s if tid == r.pid else o)
        splits.append(s)
        others.append(o)
    work = np.array([s.running + o.running for s, o in zip(splits, others, strict=True)])
    ps = processor_sharing(launch, work, cores)
    rows: list[Row] = []
    blocked: dict[tuple[bool, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for r, a, b, p, s, o in zip(rows_in, launch, written, ps, splits, others, strict=True):
        late = bool(b - p > late_s)
        top = max(s.by_function.items(), key=lambda kv: kv[1], default=("-", 0.0))
        for fn, sec in s.by_function.items():
            blocked[(late, fn)][0] += sec
            blocked[(late, fn)][1] += s.by_function_n[fn]
        rows.append(Row(launcher, repeat, r.instance, a - t0, b - t0, p - t0, late,
                        len(by_tgid.get(r.pid, [])), 1e3 * o.running, 1e3 * s.running,
                        1e3 * s.preempted,
                        1e3 * s.woken, 1e3 * s.blocked, top[0], 1e3 * top[1]))
    waits = [{"launcher": launcher, "repeat": repeat, "instance": r.instance,
              "lock": lock, "caller": caller, "began_s": b0 - t0, "acquired_s": b1 - t0,
              "cpu_before_ms": 1e3 * cpu_until(threads.get(r.pid), t0 + r.launch_s, b0)}
             for r in rows_in for b0, b1, lock, caller in threads[r.pid].contended
             if r.pid in threads]
    table = [{"launcher": launcher, "repeat": repeat, "late": k[0], "function": k[1],
              "blocked_s": v[0], "count": v[1]} for k, v in blocked.items()]
    return rows, table, waits


def cpu_until(th: Thread | None, start: float, end: float) -> float:
    if th is None:
        return 0.0
    return sum(max(0.0, min(off, end) - max(on, start)) for on, off in th.runs)


def summarise(rows: list[Row]) -> dict[str, object]:
    out: dict[str, object] = {"instances": len(rows), "late": sum(r.late for r in rows)}
    for late in (False, True):
        rs = [r for r in rows if r.late == late]
        if not rs:
            continue
        key = "late" if late else "on_time"
        out[key] = {name: float(np.median([getattr(r, name) for r in rs]))
                    for name in ("running_ms", "other_threads_running_ms", "preempted_ms",
                                 "woken_ms", "blocked_ms", "threads")}
        out[key]["life_ms"] = float(np.median(  # type: ignore[index]
            [1e3 * (r.ready_written_s - r.launch_s) for r in rs]))
    return out


def analyse(out: Path, cores: float) -> None:
    """The VM-creation mutex in a results directory of this script (see the module's usage)."""
    import pandas as pd
    from scipy.stats import spearmanr

    waits = pd.read_csv(out / "waits.csv.gz")
    waits = waits[waits.caller.str.contains("kvm_dev_ioctl")]
    instances = pd.read_csv(out / "instances.csv.gz")
    for (launcher, repeat), g in instances.groupby(["launcher", "repeat"]):
        w = waits[(waits.launcher == launcher) & (waits["repeat"] == repeat)]
        wait = (w.acquired_s - w.began_s).to_numpy()
        print(f"{launcher} {repeat}: {w.instance.nunique()} of {len(g)} instances waited for "
              f"the VM-creation mutex ({w.lock.nunique()} lock address(es))")
        if len(w) < 2:
            continue
        began, acquired = w.began_s.to_numpy(), w.acquired_s.to_numpy()
        later = (began[None, :] > began[:, None]) & (began[None, :] < acquired[:, None])
        overtook = later & (acquired[None, :] < acquired[:, None])
        print(f"  wait median {np.median(wait):.3f} s, p90 {np.quantile(wait, 0.9):.3f} s, max "
              f"{wait.max():.3f} s, total {wait.sum():.1f} instance-s; rank correlation of "
              f"asking and getting {spearmanr(began, acquired)[0]:.2f} (first come first "
              f"served: 1); of the waiters that asked while one waited, "
              f"{overtook.sum() / max(later.sum(), 1):.0%} got it before it (FCFS 0 %, random "
              "50 %)")
        # Passes per half second against the instances sharing the cores (launched, not
        # ready, not asleep on the lock): cores / (sharers * passes) is the CPU per pass that
        # processor sharing implies.
        launch, ready = g.launch_s.to_numpy(), g.ready_written_s.to_numpy()
        rows = []
        for t in np.arange(0.25, ready.max(), 0.5):
            sharers = int(np.sum((launch <= t) & (ready > t))
                          - np.sum((began <= t) & (acquired > t)))
            passes = np.sum((acquired > t - 0.25) & (acquired <= t + 0.25)) / 0.5
            rows.append((t, sharers, passes,
                         1e3 * cores / (sharers * passes) if sharers and passes else np.nan))
        table = pd.DataFrame(rows, columns=["t_s", "sharers", "passes_per_s", "cpu_per_pass_ms"])
        drain = table[table.t_s > launch.max()]
        print(f"  passes per second while launching: median "
              f"{table[table.t_s <= launch.max()].passes_per_s.median():.0f}; after: "
              f"{drain.passes_per_s.median():.0f}; CPU per pass after the last launch: median "
              f"{drain.cpu_per_pass_ms.median():.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--interval-ms", type=float, default=4.0)
    parser.add_argument("--launchers", default="realtime,fair")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cores", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--late-s", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--analyse", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    if args.analyse is not None:
        analyse(args.analyse, args.cores)
        return
    if (why := perf_available()) is not None:
        raise SystemExit(f"error: {why}")
    stamp = datetime.now(UTC)
    out = args.out or (Path(__file__).resolve().parent / "results" / "launcher"
                       / f"stall-{stamp:%Y-%m-%d}-{args.count}at{args.interval_ms:g}")
    out.mkdir(parents=True, exist_ok=True)
    all_rows: list[Row] = []
    tables: list[dict[str, object]] = []
    all_waits: list[dict[str, object]] = []
    runs = []
    launchers = args.launchers.split(",")
    with tempfile.TemporaryDirectory(prefix="bootstorm-stall-") as tmp:
        for k in range(args.repeat):
            for launcher in launchers if k % 2 == 0 else launchers[::-1]:
                rows, table, waits = traced_burst(args.count, args.interval_ms, launcher, k,
                                           args.cores, args.late_s, Path(tmp))
                all_rows += rows
                tables += table
                all_waits += waits
                s = summarise(rows)
                runs.append({"launcher": launcher, "repeat": k, **s})
                print(json.dumps(runs[-1]), flush=True)
                time.sleep(3)
    with gzip.open(out / "instances.csv.gz", "wt", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(all_rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in all_rows)
    with gzip.open(out / "blocked.csv.gz", "wt", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["launcher", "repeat", "late", "function",
                                          "blocked_s", "count"])
        w.writeheader()
        w.writerows(sorted(tables, key=lambda r: -float(r["blocked_s"])))
    with gzip.open(out / "waits.csv.gz", "wt", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["launcher", "repeat", "instance", "lock", "caller",
                                          "began_s", "acquired_s", "cpu_before_ms"])
        w.writeheader()
        w.writerows(all_waits)
    (out / "summary.json").write_text(json.dumps(
        {"date": stamp.isoformat(timespec="seconds"), "count": args.count,
         "interval_ms": args.interval_ms, "cores": args.cores, "late_s": args.late_s,
         "host": os.uname().nodename, "runs": runs}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
