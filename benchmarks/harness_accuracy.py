"""How accurate is the harness? Launch lateness, and how late it sees the ready string compared
with the kernel's own record of the guest writing it (kvm:kvm_pio via perf, CLOCK_MONOTONIC).

Runs 200-instance firmware bursts at 1 ms and 10 ms with bootstorm's harness (one epoll loop,
timerfd deadlines, SCHED_FIFO) and with a thread-per-instance reader like the 2016 study's.
Usage: .venv/bin/python benchmarks/harness_accuracy.py [--count 200] [--repeat 3]
Writes benchmarks/results/harness_accuracy.json and prints a Markdown table for docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.kernel_trace import BootTrace, kernel_trace, perf_available, ready_written_s
from measure.harness.burst import BurstSpec, fixed_interval, run_burst
from measure.harness.guest import READY, find_qemu, qemu_argv
from measure.harness.process import kill_and_reap
from sim.model.units import milliseconds, seconds

RESULTS = Path(__file__).resolve().parent / "results" / "harness_accuracy.json"


def _stats(values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms, dtype=float)
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def bootstorm_burst(count: int, interval_ms: float, out: Path) -> list[dict[str, Any]]:
    """bootstorm's harness; rows with absolute monotonic times."""
    spec = BurstSpec(boot="firmware", accel="kvm", memory_mb=16,
                     planned_s=fixed_interval(count, interval_ms), interval_ms=interval_ms,
                     timeout_s=60)
    result = run_burst(spec, out)
    t0 = result.manifest.t0_monotonic
    assert t0 is not None
    return [{"pid": r.pid, "planned": t0 + r.planned_launch_s, "launch": t0 + r.launch_s,
             "ready": t0 + r.ready_s, "status": r.status} for r in result.rows]


def threaded_burst(count: int, interval_ms: float) -> list[dict[str, Any]]:
    """The study's design: fork+exec each instance, a sleep between launches, one blocking
    reader thread per instance timestamping the ready string."""
    argv = qemu_argv(find_qemu(), "firmware", "kvm", 16)
    rows: list[dict[str, Any]] = []
    procs: list[subprocess.Popen[bytes]] = []
    threads = []

    def watch(proc: subprocess.Popen[bytes], row: dict[str, Any]) -> None:
        buf = b""
        assert proc.stdout is not None
        while READY not in buf:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return
            buf += chunk
        row["ready"] = time.monotonic()
        row["status"] = "ready"

    t0 = time.monotonic()
    try:
        for i in range(count):
            row: dict[str, Any] = {"planned": t0 + seconds(i * interval_ms), "status": "timeout",
                                   "ready": float("nan")}
            row["launch"] = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            row["pid"] = proc.pid
            procs.append(proc)
            rows.append(row)
            th = threading.Thread(target=watch, args=(proc, row), daemon=True)
            th.start()
            threads.append(th)
            time.sleep(seconds(interval_ms))  # a relative sleep, as a simple launcher does
        for th in threads:
            th.join(timeout=60)
    finally:
        kill_and_reap([proc.pid for proc in procs])
        for proc in procs:
            if proc.stdout:
                proc.stdout.close()
    return rows


def errors(rows: list[dict[str, Any]], traces: dict[int, BootTrace]) -> dict[str, Any]:
    late = [milliseconds(r["launch"] - r["planned"]) for r in rows]
    ready_err, exec_delay, missing = [], [], 0
    for r in rows:
        tr = traces.get(r["pid"])
        t_guest = ready_written_s(tr, READY) if tr else None
        if t_guest is None or r["status"] != "ready":
            missing += 1
            continue
        ready_err.append(milliseconds(r["ready"] - t_guest))
        qemu_exec = tr.exec_s.get("qemu-system-x86_64") if tr else None
        if qemu_exec is not None:
            exec_delay.append(milliseconds(qemu_exec - r["launch"]))
    return {"launch_lateness_ms": _stats(late), "ready_error_ms": _stats(ready_err),
            "spawn_to_qemu_exec_ms": _stats(exec_delay) if exec_delay else None,
            "unmatched": missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--intervals", default="1,10")
    args = parser.parse_args()
    why = perf_available()
    if why:
        raise SystemExit(f"error: {why}")
    results: list[dict[str, Any]] = []
    for interval in [float(x) for x in args.intervals.split(",")]:
        for rep in range(args.repeat):
            for harness in ("bootstorm", "thread-per-instance"):
                with tempfile.TemporaryDirectory() as tmp, kernel_trace() as traces:
                    if harness == "bootstorm":
                        rows = bootstorm_burst(args.count, interval, Path(tmp))
                    else:
                        rows = threaded_burst(args.count, interval)
                res = {"harness": harness, "count": args.count, "interval_ms": interval,
                       "repeat": rep, **errors(rows, traces)}
                results.append(res)
                print(json.dumps(res), flush=True)
                time.sleep(2)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print("\n| harness | interval | launch lateness p50 / p99 / max (ms) | "
          "ready error p50 / p99 / max (ms) |")
    print("|---|---|---|---|")
    for harness in ("bootstorm", "thread-per-instance"):
        for interval in sorted({r["interval_ms"] for r in results}):
            rs = [r for r in results if r["harness"] == harness and r["interval_ms"] == interval]
            def med(key: str, q: str, rs: list[dict[str, Any]] = rs) -> float:
                return float(np.median([r[key][q] for r in rs]))
            print(f"| {harness} | {interval:g} ms | "
                  f"{med('launch_lateness_ms', 'p50'):.2f} / {med('launch_lateness_ms', 'p99'):.2f}"
                  f" / {med('launch_lateness_ms', 'max'):.2f} | "
                  f"{med('ready_error_ms', 'p50'):.2f} / {med('ready_error_ms', 'p99'):.2f} / "
                  f"{med('ready_error_ms', 'max'):.2f} |")
    print(f"(medians over {args.repeat} runs of each figure)")


if __name__ == "__main__":
    main()
