"""Do a crowded burst's first instances wait for the kernel's workers? An intervention: the same
bursts with the kernel's workqueue threads (kworker/N:M and kworker/uN:M, the ones that run an
SRCU grace period's work for a memslot update or an ioeventfd) at their normal policy, and
raised to SCHED_FIFO priority 1 (above every QEMU thread, below the realtime harness),
interleaved. If the sleep of a crowded start-up is a wait for those workers to get a core, the
raised bursts' first instances come out earlier; if not, nothing moves.

A watcher process raises workers that appear during a burst too (in both arms it looks at the
processes new since its last look, every 20 ms, so both pay the same; until 2026-12-06 11:40 UTC
it read every process's name each time, some 2.6 ms of CPU per 20 ms, in both arms). Every
worker is put back on SCHED_OTHER afterwards.

Usage: .venv/bin/python -m benchmarks.kworker_priority [--count 100] [--interval-ms 6]
       [--repeat 4] [--lead-ms L] [--out benchmarks/results/launcher/kworker-DATE]
With --lead-ms, one more instance is launched L ms before the others: is an instance ahead of a
crowd the one that pays?
Writes bursts.csv (one row per burst) and prints the medians per arm. Needs root and KVM; run
it on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import multiprocessing
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from measure.harness.burst import BurstSpec, fixed_interval, run_burst
from sim.model.burst_stats import P10, first_ready, last_ready, median, quantile

WORKER = re.compile(r"^kworker/(\d+|u\d+):\d+")
"""A workqueue worker of a per-CPU pool or an unbound one (not a rescuer, R-, nor the
high-priority pools, already at nice -20, H)."""
FIFO_PRIORITY = 1


def is_worker(comm: str) -> bool:
    """Whether a thread named `comm` is a workqueue worker of a normal pool (per-CPU or
    unbound): kworker/0:2-events, kworker/u8:3-iou_exit, kworker/1:0, not kworker/0:1H-kblockd
    nor kworker/R-rcu_gp."""
    return (WORKER.match(comm) is not None
            and not comm.split(":", 1)[1].split("-", 1)[0].endswith("H"))


def pids() -> set[int]:
    """Every process now."""
    return {int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()}


def workers(among: Iterable[int] | None = None) -> list[int]:
    """The pids of the kernel's workqueue workers (normal pools) among `among` (default: every
    process now)."""
    found = []
    for pid in pids() if among is None else among:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if is_worker(comm):
            found.append(pid)
    return found


def set_policy(pids: list[int], raised: bool) -> int:
    """Put `pids` on SCHED_FIFO FIFO_PRIORITY (raised) or SCHED_OTHER; the number changed."""
    policy, priority = (os.SCHED_FIFO, FIFO_PRIORITY) if raised else (os.SCHED_OTHER, 0)
    done = 0
    for pid in pids:
        try:
            os.sched_setscheduler(pid, policy, os.sched_param(priority))
            done += 1
        except OSError:
            continue  # gone, or a kernel thread that refuses: left as it is
    return done


def watch(raised: bool, stop: Any) -> None:
    """Until `stop` is set, every 20 ms: raise the workers among the processes not seen before
    (raised), or only look for them (a worker keeps its pid, so each name is read once)."""
    seen: set[int] = set()
    while not stop.is_set():
        new = pids() - seen
        seen |= new
        found = workers(new)
        if raised:
            set_policy(found, True)
        time.sleep(0.02)


@contextlib.contextmanager
def workers_raised(raised: bool) -> Iterator[None]:
    """While inside: the watcher runs (raising the workers, or only scanning); on leaving every
    worker is back on SCHED_OTHER."""
    stop = multiprocessing.Event()
    watcher = multiprocessing.Process(target=watch, args=(raised, stop), daemon=True)
    watcher.start()
    time.sleep(0.2)
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)
        set_policy(workers(), False)


def planned(count: int, interval_ms: float, lead_ms: float | None) -> tuple[float, ...]:
    """`count` instances `interval_ms` apart; with a lead, one instance `lead_ms` before them."""
    crowd = fixed_interval(count, interval_ms)
    if lead_ms is None:
        return crowd
    return (0.0, *(lead_ms / 1e3 + t for t in crowd))


def burst(count: int, interval_ms: float, repeat: int, raised: bool, tmp: Path,
          lead_ms: float | None = None) -> dict[str, Any]:
    """One burst under the realtime harness with the workers raised or not: its figures (with a
    lead, also when the instance ahead of the others was ready)."""
    spec = BurstSpec(boot="firmware", accel="kvm", memory_mb=16,
                     planned_s=planned(count, interval_ms, lead_ms), interval_ms=interval_ms,
                     timeout_s=120.0, repeat=repeat)
    with workers_raised(raised):
        result = run_burst(spec, tmp / f"run-{repeat}-{int(raised)}", launcher="realtime")
    ready = np.array([r.ready_s for r in result.rows if math.isfinite(r.ready_s)])
    if not ready.size:
        raise SystemExit(f"error: no instance of {count} at {interval_ms:g} ms became ready; "
                         f"see `measure preflight` and the host's KVM")
    lead = {} if lead_ms is None else {
        "lead_ms": lead_ms, "lead_ready_s": min(r.ready_s for r in result.rows if r.instance == 0)}
    return {"raised": int(raised), "repeat": repeat, "count": count, "interval_ms": interval_ms,
            "first_ready_s": float(first_ready(ready)), "p10_ready_s": float(quantile(ready, P10)),
            "median_ready_s": float(median(ready)), "all_ready_s": float(last_ready(ready)),
            "failed": spec.count - len(ready), **lead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--lead-ms", type=float, default=None,
                        help="one more instance this long before the others (ahead of a crowd)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.count < 1 or args.interval_ms < 0 or args.repeat < 1:
        parser.error("--count and --repeat must be at least 1 and --interval-ms not negative")
    if args.lead_ms is not None and not args.lead_ms > 0:
        parser.error("--lead-ms must be positive")
    if os.geteuid() != 0:
        parser.error("raising the kernel's workers and the realtime harness need root; run as "
                     "root")
    stamp = datetime.now(UTC)
    lead = "" if args.lead_ms is None else f"-lead{args.lead_ms:g}"
    out = args.out or (Path(__file__).resolve().parent / "results" / "launcher"
                       / f"kworker-{stamp:%Y-%m-%d}-{args.count}at{args.interval_ms:g}{lead}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bootstorm-kworker-") as tmp:
        for k in range(args.repeat):
            for raised in (False, True) if k % 2 == 0 else (True, False):
                rows.append(burst(args.count, args.interval_ms, k, raised, Path(tmp),
                                  args.lead_ms))
                time.sleep(3)
    with (out / "bursts.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{args.count} at {args.interval_ms:g} ms, {args.repeat} bursts per arm, "
          f"{stamp:%Y-%m-%d %H:%M} UTC; medians [min-max] in s")
    keys: tuple[str, ...] = ("first_ready_s", "p10_ready_s", "median_ready_s", "all_ready_s")
    if args.lead_ms is not None:
        keys = ("lead_ready_s", *keys)
        print(f"one instance {args.lead_ms:g} ms ahead (lead)")
    print("| workers | " + " | ".join(k.removesuffix("_ready_s") for k in keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for raised in (False, True):
        mine = [r for r in rows if r["raised"] == int(raised)]
        cells = []
        for key in keys:
            v = [r[key] for r in mine]
            cells.append(f"{np.median(v):.3f} [{min(v):.3f}-{max(v):.3f}]")
        print(f"| {'SCHED_FIFO 1' if raised else 'normal'} | " + " | ".join(cells) + " |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
