"""Is the realtime crowd's stall the VM-creation lock? Processor sharing of each instance's own
measured CPU, launched when it was, with and without the lock, against the measured ready times.

With every instance's real CPU as its work, what is left between the model and the measurement
is the discipline: how the cores and the lock are shared, not how much work there is. Run on
datasets with per-instance CPU (measure burst / sweep), both launchers.

Usage: .venv/bin/python benchmarks/lock_check.py DATASET... [--cores 2] [--delay-ms 17]
       [--lock-ms 0,0.2,0.4,0.8] [--lock-at 0.65]
Prints, per launcher and lock, the median and worst absolute relative error of p10, median and
all-ready over the runs, and the share of instances ready more than 1 s after the model says.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from measure.calibration.data import load_calibration_data
from sim.model.node_model import NodeModel
from sim.model.ready_times import ready_times

FIGURES = {"p10": 0.1, "median": 0.5, "all": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--cores", type=float, default=2.0)
    parser.add_argument("--delay-ms", type=float, default=17.0,
                        help="pure delay before the CPU phase (calibration/firmware.json's)")
    parser.add_argument("--lock-ms", default="0,0.2,0.4,0.8")
    parser.add_argument("--lock-at", type=float, default=0.65)
    args = parser.parse_args()
    data = load_calibration_data(args.datasets)
    print(f"{len(data.bursts)} runs; cores {args.cores:g}, delay {args.delay_ms:g} ms, "
          f"lock at {args.lock_at:g} of each instance's CPU")
    print("| launcher | lock (ms) | p10 median / worst | median-ready median / worst | "
          "all-ready median / worst | instances > 1 s late |")
    print("|---|---|---|---|---|---|")
    for launcher in ("realtime", "fair"):
        runs = [b for b in data.bursts if b.launcher == launcher and b.cpu_s is not None
                and b.ready_s is not None and np.all(np.isfinite(b.ready_s))]
        for lock_ms in (float(x) for x in args.lock_ms.split(",")):
            errors: dict[str, list[float]] = {name: [] for name in FIGURES}
            late = []
            for b in runs:
                assert b.cpu_s is not None and b.launch_s is not None and b.ready_s is not None
                work = np.maximum(b.cpu_s, 1e-6)
                model = NodeModel(cores=args.cores, work_s=float(work.mean()),
                                  delay_s=args.delay_ms / 1e3, lock_s=lock_ms / 1e3,
                                  lock_at=args.lock_at)
                predicted = ready_times(model, b.launch_s, work=work)
                for name, q in FIGURES.items():
                    m = float(np.quantile(b.ready_s, q))
                    errors[name].append(abs(float(np.quantile(predicted, q)) / m - 1.0))
                late.append(float(np.mean(b.ready_s - predicted > 1.0)))
            cells = " | ".join(f"{100 * np.median(e):.1f} % / {100 * max(e):.1f} %"
                               for e in errors.values())
            print(f"| {launcher} ({len(runs)} runs) | {lock_ms:g} | {cells} | "
                  f"{100 * np.mean(late):.1f} % |")


if __name__ == "__main__":
    main()
