"""What fresh memory costs a boot on this host: the price of a page fault on memory the host
still backs and on memory it has taken back, and how much free memory it still backs.

On a nested VM with free page reporting (this machine kind's kernel reports free 2-8 MB blocks
to the host, `/sys/module/page_reporting/parameters/reported_kib` counts them), a fault on a
page the host took back costs it a fault and a zeroing of its own: 2.6-3.2 s of CPU per GB
against 0.41-0.51 s on memory still backed, measured here 2026-12-06. Once the reporting has
settled, the host still backs 6.5-9.5 GB of the free memory (docs/findings.md, "Where a boot's
CPU goes"). `measure probe` reads both prices and that pool by faulting in fresh memory a chunk
at a time until the price steps up; `measure predict --probe` charges the difference to the
boots whose memory lies beyond the pool for its cold-memory bound (NodeModel.reclaimed_memory_s),
not in the forecast itself: bursts of QEMUs paid less than the chunks say.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sim.model.probe import MemoryPrice

REPORTED_KIB = Path("/sys/module/page_reporting/parameters/reported_kib")
"""The free page reporting's count of memory handed back to the host (this machine kind's
kernel; absent elsewhere)."""
PAGE = 4096
CHUNK_GB = 0.25
"""Memory faulted in at a time: small enough to place the step within a quarter GB."""
STEP = 2.5
"""A chunk is on reclaimed memory when it costs STEP times the first chunks' price or more
(measured: 5.5-6.5 times)."""
RECLAIMED_CHUNKS = 4
"""Chunks on reclaimed memory that give its price (then the probe stops)."""
MAX_GB = 14.0
"""Most fresh memory the probe faults in (then the pool is at least that)."""
HEADROOM_GB = 2.0
"""Memory left available to the host however much the probe may fault in."""


def reported_kib() -> int | None:
    """Memory handed back to the host so far, if this kernel counts it."""
    try:
        return int(REPORTED_KIB.read_text())
    except (OSError, ValueError):
        return None


def meminfo_kib(field: str) -> int:
    """A /proc/meminfo field in KiB (MemFree, MemAvailable)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise RuntimeError(f"/proc/meminfo has no {field}")


def anonymous_kib(pid: int) -> int | None:
    """A process's anonymous memory (pages it faulted in fresh), None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1])
    return None


def settle_reporting(*, quiet_s: float = 5.0, max_s: float = 60.0,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until the free page reporting has handed back what it will (its count moves by
    less than 64 MB a second for `quiet_s`), at most `max_s`; seconds waited. Without the
    count there is nothing to wait for."""
    before = reported_kib()
    if before is None:
        return 0.0
    start = clock()
    quiet_since = start
    while clock() - quiet_since < quiet_s and clock() - start < max_s:
        sleep(1.0)
        now = reported_kib() or before
        if now - before > 64 * 1024:
            quiet_since = clock()
        before = now
    return clock() - start


def fault_in(gb: float) -> tuple[mmap.mmap, float]:
    """Map `gb` of anonymous memory and write one byte per page: (the mapping, CPU seconds)."""
    area = mmap.mmap(-1, int(gb * (1 << 30)), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    pages = np.frombuffer(area, dtype=np.uint8)
    start = time.process_time()
    pages[::PAGE] = 1
    cpu = time.process_time() - start
    del pages
    return area, cpu


def chunk_prices(max_gb: float, chunk_gb: float = CHUNK_GB, *,
                 until_step: bool = True) -> list[float]:
    """CPU seconds per GB of each `chunk_gb` of fresh memory faulted in, one after the other
    and all held until the end, until `max_gb` is reached or (`until_step`) RECLAIMED_CHUNKS
    chunks cost STEP times the first ones; everything is freed before this returns."""
    areas: list[mmap.mmap] = []
    prices: list[float] = []
    try:
        while len(prices) * chunk_gb < max_gb - 1e-9:
            area, cpu = fault_in(chunk_gb)
            areas.append(area)
            prices.append(cpu / chunk_gb)
            if until_step and len(prices) > 4:
                first = float(np.median(prices[:4]))
                if sum(p >= STEP * first for p in prices) >= RECLAIMED_CHUNKS:
                    break
    finally:
        for area in areas:
            area.close()
    return prices


def price_of(prices: list[float], chunk_gb: float = CHUNK_GB) -> tuple[float, float, float]:
    """(price on backed memory, price on reclaimed memory, GB still backed) from chunk prices in
    fault order: the backed price is the median of the chunks before the first that costs STEP
    times the first four, the reclaimed one the median from the one after it on, and the pool
    ends in that chunk, where its price sits between the two. Without a step the pool is at
    least everything faulted in, and both prices are the backed one."""
    first = float(np.median(prices[:4]))
    dear = [k for k, p in enumerate(prices) if k >= 4 and p >= STEP * first]
    if not dear:
        return first, first, len(prices) * chunk_gb
    k = dear[0]
    backed = float(np.median(prices[:k]))
    after = prices[k + 1:] or prices[k:]
    reclaimed = float(np.median(after))
    share = min(1.0, max(0.0, (reclaimed - prices[k]) / (reclaimed - backed)))
    return backed, reclaimed, (k + share) * chunk_gb


def memory_price(per_instance_gb: float, max_gb: float = MAX_GB) -> MemoryPrice:
    """Settle the reporting, then fault in fresh memory until its price steps up: the host's
    two prices and its pool of backed free memory (faulting in at most `max_gb`), with
    `per_instance_gb` (the anonymous memory of one instance when ready, measured by the
    caller)."""
    waited = settle_reporting()
    available = meminfo_kib("MemAvailable") / (1 << 20)
    prices = chunk_prices(max(CHUNK_GB, min(max_gb, available - HEADROOM_GB)))
    backed, reclaimed, pool = price_of(prices)
    return MemoryPrice(per_instance_gb=per_instance_gb, backed_s_per_gb=backed,
                       reclaimed_s_per_gb=reclaimed, backed_gb=pool,
                       chunk_s_per_gb=prices, settle_s=waited,
                       reporting=reported_kib() is not None)
