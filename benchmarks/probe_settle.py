"""Does a probe burst read the host's speed as a settled burst would? The probe runs its bursts
2 s apart, while the transfer bursts (and `measure sweep --settle-memory`) each start once the
host's free page reporting has settled. Pairs, in turn: settle, a burst of the probe's
configuration, 2 s, the same burst again; per burst the CPU per boot read as the probe reads it
(the median of the first boots') and all-ready.

Usage: .venv/bin/python -m benchmarks.probe_settle [--pairs 12]
       [--out benchmarks/results/probe-config/DATE-settle]
Writes pairs.json and prints the paired log ratio settled / 2 s after. Needs root and KVM; run
it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from measure.harness.burst import run_burst
from measure.harness.memory import settle_reporting
from measure.harness.probe import probe_spec
from sim.model.probe import run_boot_cpu

ARMS = ("settled", "after_2s")


def pair(k: int, tmp: Path) -> dict[str, float]:
    """One pair: a settled burst, then the same 2 s later; their CPU per boot and all-ready."""
    row: dict[str, float] = {"pair": k, "settle_s": settle_reporting()}
    for arm in ARMS:
        if arm == "after_2s":
            time.sleep(2.0)
        result = run_burst(probe_spec("firmware", "kvm", 16, k), tmp / f"{k}-{arm}")
        ready = [r.ready_s for r in result.rows if math.isfinite(r.ready_s)]
        if len(ready) < len(result.rows):
            raise SystemExit(f"error: pair {k}, {arm}: {len(result.rows) - len(ready)} "
                             f"instances not ready; see `measure preflight`")
        row[f"{arm}_boot_cpu_s"] = run_boot_cpu([r.cpu_s for r in result.rows])
        row[f"{arm}_all_ready_s"] = max(ready)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.pairs < 2:
        parser.error("--pairs must be at least 2")
    if os.geteuid() != 0:
        parser.error("the realtime harness needs root; run as root")
    stamp = datetime.now(UTC)
    out = args.out or (Path(__file__).resolve().parent / "results" / "probe-config"
                       / f"{stamp:%Y-%m-%d}-settle")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bootstorm-settle-") as tmp:
        rows = [pair(k, Path(tmp)) for k in range(args.pairs)]
    (out / "pairs.json").write_text(json.dumps(rows, indent=1) + "\n")
    for figure in ("boot_cpu_s", "all_ready_s"):
        a = np.array([r[f"settled_{figure}"] for r in rows])
        b = np.array([r[f"after_2s_{figure}"] for r in rows])
        d = np.log(a / b)
        print(f"{figure}: settled {np.median(a):.4f}, 2 s after {np.median(b):.4f} (medians); "
              f"paired log ratio median {np.median(d):+.3f}, settled higher in "
              f"{int((d > 0).sum())} of {len(d)}")
    print(f"wrote {out} ({stamp:%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
