"""The tables of docs/validation.md: real gains of each replayed policy over `immediate`, and the
calibrated model's error on every replay (work from the model, and each instance's measured CPU
time), and the idle cost of a ready instance on the replay day against the calibration's.

Usage: .venv/bin/python -m benchmarks.validation_report \
    [--calibration calibration/firmware-2026-11-26.json]
Reads the committed replays in benchmarks/results/replay/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from measure.calibration.data import Burst
from measure.calibration.host_costs import measured_idle_load
from measure.calibration.validate import STATS, validate_run
from measure.harness.dataset import load_instances
from sim.model.calibration import Calibration, load_calibration
from sim.model.units import milliseconds

REPLAYS = Path(__file__).resolve().parent / "results" / "replay"
POLICIES = ["immediate", "interval_5_ms", "interval_15_ms", "count_interval__study_", "cap_2",
            "cap_4", "model_based"]


def replay_idle_load(instances: pd.DataFrame) -> float:
    """CPU a ready (halted) instance keeps using on the replay day, in cores, measured the way
    `measure calibrate` measures it (measure/calibration/host_costs.py)."""
    bursts = [
        Burst(run_id=str(run_id), count=len(g), interval_ms=0.0,
              first_ready_s=float(g.ready_s.min()), all_ready_s=float(g.ready_s.max()),
              idle_cpu_s=(g.cpu_end_s - g.cpu_s).to_numpy(dtype=float),
              idle_s=(g.end_s - g.ready_s).to_numpy(dtype=float))
        for run_id, g in instances.groupby("run_id")
    ]
    measured = measured_idle_load(bursts)
    assert measured is not None, "the replays carry no cpu_end_s / end_s"
    return measured[0]


def gains() -> None:
    rows = []
    for p in POLICIES:
        for run_id, g in load_instances(REPLAYS / p).groupby("run_id"):
            rows.append({"policy": p, "run": run_id, "first": g.ready_s.min(),
                         "mean": g.ready_s.mean(), "all": g.ready_s.max()})
    df = pd.DataFrame(rows).groupby("policy")[["first", "mean", "all"]].median()
    base = df.loc["immediate"]
    print("| policy | first | mean | all | first x lower | mean x lower | all vs immediate |")
    print("|---|---|---|---|---|---|---|")
    for p in POLICIES:
        r = df.loc[p]
        print(f"| {p} | {r['first']:.3f} | {r['mean']:.3f} | {r['all']:.3f} | "
              f"{base['first'] / r['first']:.1f} | {base['mean'] / r['mean']:.2f} | "
              f"{(r['all'] / base['all'] - 1) * 100:+.1f} % |")


def errors(calibration: Calibration, work: str, title: str) -> None:
    print(f"\n{title}\n")
    print("| policy | first | median | p95 | all | W1 / makespan |")
    print("|---|---|---|---|---|---|")
    for p in POLICIES:
        results = [validate_run(g, calibration, work=work)[0]
                   for _, g in load_instances(REPLAYS / p).groupby("run_id")]
        cells = []
        for key in STATS:
            e = [100 * r.relative_error[key] for r in results]
            cells.append(f"{np.median(e):+.0f} % [{min(e):+.0f}, {max(e):+.0f}]")
        w = [100 * r.wasserstein_over_makespan for r in results]
        cells.append(f"{np.median(w):.1f} % [{min(w):.1f}, {max(w):.1f}]")
        print(f"| {p} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path,
                        default=Path("calibration/firmware-2026-11-26.json"))
    args = parser.parse_args()
    calibration = load_calibration(args.calibration)
    gains()
    errors(calibration, "model", f"{args.calibration}, work drawn from the calibration")
    errors(calibration, "measured", f"{args.calibration}, each instance's measured CPU time")
    all_rows = pd.concat([load_instances(REPLAYS / p) for p in POLICIES])
    idle = replay_idle_load(all_rows)
    print(f"\nidle cost of a ready instance: {calibration.model.idle_load:.6f} cores in the "
          f"calibration, {idle:.6f} cores measured on the replays")
    cpu = all_rows[all_rows.status == "ready"].cpu_s
    print(f"CPU time per ready instance on the replays: mean {milliseconds(cpu.mean()):.1f} ms")

if __name__ == "__main__":
    main()
