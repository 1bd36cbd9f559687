"""What a page fault on fresh memory costs on this host, and does it move with the CPU a boot
takes? A firmware boot faults in about 16 MB (4 KB pages: the guest's RAM and QEMU's own), and on
a nested VM with free page reporting (this machine's kernel command line has
page_reporting.page_reporting_order=11 and nested_pvm=1) memory that sat free is handed back to
the host and faulted in again at a cost that varies.

    .venv/bin/python -m benchmarks.fault_cost touch --gb 8 --idle-s 0,0,0,5,0,20,0,60,0
    .venv/bin/python -m benchmarks.fault_cost chunks --gb 20 --idle-s 0,0,30 [--settle]
    .venv/bin/python -m benchmarks.fault_cost drain --gb 16 --seconds 40
    .venv/bin/python -m benchmarks.fault_cost cycles --out runs/fault-cost   # ~5 min, quiet host

`touch` maps GB of anonymous memory, writes one byte per 4 KB page and prints the CPU per GB,
after each idle time. `cycles` runs CYCLES x (touch 2 GB, a burst of 100 at 1 ms, touch 2 GB),
idle 3 s or 40 s between cycles, counts the kernel's page faults (/proc/vmstat pgfault) over each
burst, and prints each burst's median CPU per boot beside the two touch costs, and their
correlation (docs/findings.md, "Where a boot's CPU goes"). The cold / warm pairs of that section
were shell loops: `sleep 90; perf record -a -F 499 -- measure burst --count 1000 --interval-ms 6
...` (cold), then `touch --gb 18 --idle-s 0` and the same burst (warm); `perf report --sort
comm,dso,sym` gives QEMU's share in `clear_page_erms`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from measure.harness.burst import BurstSpec, fixed_interval, run_burst
from measure.harness.memory import chunk_prices, fault_in, reported_kib, settle_reporting
from sim.entry import run_app

CYCLES = 10
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def touch_cost(gb: float) -> float:
    """CPU seconds per GB to fault in `gb` of fresh anonymous memory, one write per page."""
    area, cpu = fault_in(gb)
    area.close()
    return cpu / gb


def page_faults() -> int:
    """The kernel's count of page faults since boot (every process)."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("pgfault "):
            return int(line.split()[1])
    raise RuntimeError("/proc/vmstat has no pgfault line")


@app.command()
def touch(gb: Annotated[float, typer.Option(help="GB to fault in")] = 8.0,
          idle_s: Annotated[str, typer.Option(help="comma-separated idle times before each")]
          = "0,0,0,5,0,20,0,60,0") -> None:
    """Fault cost per GB after each idle time."""
    for idle in (float(x) for x in idle_s.split(",")):
        time.sleep(idle)
        cost = touch_cost(gb)
        print(f"after {idle:5.1f} s idle: {1e3 * cost:7.1f} ms CPU / GB "
              f"({1e3 * cost / 64:.2f} ms per 16 MB)")


@app.command()
def cycles(out: Annotated[Path, typer.Option(help="dataset directory for the bursts")]) -> None:
    """Touch, burst, touch, CYCLES times; the bursts' CPU per boot against the touch costs."""
    rows: list[dict[str, float | str | int]] = []
    touch_mean: list[float] = []
    cpu_median: list[float] = []
    for cycle in range(CYCLES):
        time.sleep(40.0 if cycle % 2 else 3.0)
        before = touch_cost(2.0)
        faults = page_faults()
        spec = BurstSpec(boot="firmware", accel="kvm", memory_mb=16,
                         planned_s=fixed_interval(100, 1.0), interval_ms=1.0, timeout_s=60)
        result = run_burst(spec, out)
        faults = page_faults() - faults
        after = touch_cost(2.0)
        cpu = [r.cpu_s for r in result.rows if np.isfinite(r.cpu_s)]
        rows.append({"run_id": result.run_id, "touch_before_s_per_gb": before,
                     "touch_after_s_per_gb": after, "page_faults": faults,
                     "median_cpu_per_boot_s": float(np.median(cpu))})
        touch_mean.append((before + after) / 2)
        cpu_median.append(float(np.median(cpu)))
        print(json.dumps(rows[-1]))
    print(f"correlation of the bursts' CPU per boot with the touch cost: "
          f"{np.corrcoef(touch_mean, cpu_median)[0, 1]:.2f} over {len(rows)} bursts")


@app.command()
def chunks(gb: Annotated[float, typer.Option(help="GB to fault in, held until the end")] = 20.0,
           chunk_gb: Annotated[float, typer.Option(help="GB per step")] = 1.0,
           idle_s: Annotated[str, typer.Option(help="comma-separated idle times before each")]
           = "0,0,30",
           settle: Annotated[bool, typer.Option(help="first wait for the free page reporting "
                                                     "to settle")] = False) -> None:
    """CPU ms per GB of each chunk of fresh memory in fault order: where the memory the host
    still backs ends, the price steps up (docs/findings.md, "What the host still backs")."""
    for idle in (float(x) for x in idle_s.split(",")):
        time.sleep(idle)
        waited = settle_reporting() if settle else 0.0
        prices = chunk_prices(gb, chunk_gb, until_step=False)
        print(f"after {idle:g} s idle (settled {waited:.0f} s): "
              + " ".join(f"{1e3 * p:.0f}" for p in prices), flush=True)


@app.command()
def drain(gb: Annotated[float, typer.Option(help="GB to fault in, then free")] = 16.0,
          seconds: Annotated[int, typer.Option(help="how long to follow the count")] = 40
          ) -> None:
    """Fault in and free GB, then print each second what the free page reporting has handed
    back to the host since."""
    if reported_kib() is None:
        raise typer.BadParameter("this kernel does not count reported memory")
    area, cpu = fault_in(gb)
    print(f"faulted in {gb:g} GB at {cpu / gb:.2f} s CPU per GB", flush=True)
    start = reported_kib() or 0
    area.close()
    t0 = time.monotonic()
    for _ in range(seconds):
        time.sleep(1.0)
        print(f"{time.monotonic() - t0:5.1f} s: {((reported_kib() or 0) - start) / 2**20:6.2f} "
              "GB handed back", flush=True)


if __name__ == "__main__":
    run_app(app)
