"""Where the time of a boot goes, alone and inside a burst: spawn -> QEMU exec -> firmware's
first port write -> guest's first COM1 byte -> ready string written -> harness sees it, from
kernel tracepoints (perf, CLOCK_MONOTONIC), plus each instance's CPU time and run-queue wait.

Usage: .venv/bin/python -m benchmarks.boot_phases [--boot firmware|bios] [--count 100]
       [--interval-ms 1] [--isolated 5]
Writes benchmarks/results/boot_phases-BOOT.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.kernel_trace import COM1, kernel_trace, perf_available, ready_written_s
from measure.harness.burst import BurstSpec, fixed_interval, run_burst
from measure.harness.guest import READY
from sim.model.units import milliseconds

FW_CFG = 0x510
"""SeaBIOS selects fw_cfg entries through this port from its first milliseconds."""


def traced_burst(boot: str, count: int, interval_ms: float) -> list[dict[str, float]]:
    ports = (COM1, FW_CFG) if boot == "bios" else (COM1,)
    with tempfile.TemporaryDirectory() as tmp, kernel_trace(ports) as traces:
        spec = BurstSpec(boot=boot, accel="kvm", memory_mb=16,  # type: ignore[arg-type]
                         planned_s=fixed_interval(count, interval_ms), interval_ms=interval_ms,
                         timeout_s=600)
        result = run_burst(spec, Path(tmp))
    t0 = result.manifest.t0_monotonic
    assert t0 is not None
    phases = []
    for r in result.rows:
        tr = traces.get(r.pid)
        if r.status != "ready" or tr is None or not tr.serial:
            continue
        launch = t0 + r.launch_s
        qemu_exec = tr.exec_s.get("qemu-system-x86_64", float("nan"))
        first_out = tr.serial[0][0]
        fw_start = tr.extra_ports[FW_CFG][0][0] if FW_CFG in tr.extra_ports else first_out
        ready_w = ready_written_s(tr, READY) or float("nan")
        phases.append({
            "spawn_to_exec_s": qemu_exec - launch,
            "qemu_init_s": fw_start - qemu_exec,
            "firmware_s": first_out - fw_start,
            "guest_s": ready_w - first_out,
            "harness_s": t0 + r.ready_s - ready_w,
            "init_s": r.ready_s - r.launch_s,
            "ready_s": r.ready_s,
            "cpu_s": r.cpu_s,
            "wait_s": r.wait_s,
        })
    return phases


def summary(phases: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in phases[0]:
        a = np.array([p[key] for p in phases])
        out[key] = {"p5": float(np.nanpercentile(a, 5)), "p50": float(np.nanpercentile(a, 50)),
                    "p95": float(np.nanpercentile(a, 95))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boot", default="firmware", choices=["firmware", "bios"])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=1.0)
    parser.add_argument("--isolated", type=int, default=5, help="isolated boots to trace")
    args = parser.parse_args()
    why = perf_available()
    if why:
        raise SystemExit(f"error: {why}")
    isolated: list[dict[str, float]] = []
    for _ in range(args.isolated):
        isolated += traced_burst(args.boot, 1, 0.0)
        time.sleep(1)
    burst = traced_burst(args.boot, args.count, args.interval_ms)
    result: dict[str, Any] = {
        "boot": args.boot, "count": args.count, "interval_ms": args.interval_ms,
        "isolated": summary(isolated), "burst": summary(burst), "burst_instances": burst,
    }
    path = Path(__file__).resolve().parent / "results" / f"boot_phases-{args.boot}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"| phase ({args.boot}) | isolated p50 (ms) | burst of {args.count} at "
          f"{args.interval_ms:g} ms: p5 / p50 / p95 (ms) |")
    print("|---|---|---|")
    for key in result["burst"]:
        if key == "ready_s":
            continue
        iso, b = result["isolated"][key], result["burst"][key]
        print(f"| {key} | {milliseconds(iso['p50']):.1f} | {milliseconds(b['p5']):.1f} / "
              f"{milliseconds(b['p50']):.1f} / {milliseconds(b['p95']):.1f} |")


if __name__ == "__main__":
    main()
