"""Does a calibration hold on this host today? Probe, then bursts no calibration saw, then the
errors and interval coverage of each calibration's predictions with and without the probe.

    .venv/bin/python benchmarks/transfer.py measure --out runs/transfer        # ~6 min, quiet host
    .venv/bin/python benchmarks/transfer.py analyse runs/transfer \\
        --calibration calibration/firmware.json [--json]

`measure` runs `measure probe` (5 bursts of 100 at 1 ms), then CONFIGS x 3 repeats in random
order (counts 60-1,000, intervals 2-16 ms, none on a calibration grid), then a second probe
(how far the host's speed moved meanwhile). Figures go to docs/calibration.md.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from measure.calibration.data import Burst, load_calibration_data
from measure.calibration.intervals import (
    FIGURES,
    burst_figures,
    predict_with_intervals,
    run_noise,
)
from measure.calibration.predict import burst_ready_times, planned_launches
from measure.harness.burst import BurstResult
from measure.harness.guest import BootPath
from measure.harness.probe import run_probe
from measure.harness.sweep import SWEEP_STREAM, SweepPoint, run_sweep
from sim.model.calibration import Calibration, load_calibration
from sim.model.node_model import NodeModel
from sim.model.probe import (
    PROBE_COUNT,
    PROBE_INTERVAL_MS,
    HostSpeed,
    ProbeFile,
    host_speed,
    transfer,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS: tuple[tuple[int, float], ...] = (
    (60, 3.0), (150, 16.0), (250, 9.0), (550, 2.0), (850, 11.0), (1000, 6.0))
"""(count, interval ms): off the grids of calibration/data/host-firmware (counts 50-300 x
1, 2, 5, 10, 20 ms) and the extended sweep (100-1,000 x 1, 4, 7, 13, 19 ms)."""
REPEATS = 3

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def measure(
    out: Annotated[Path, typer.Option(help="directory for the probes and the bursts")],
    seed: Annotated[int, typer.Option(help="seed of the random burst order")] = 0,
    boot: Annotated[str, typer.Option(help="firmware | bios")] = "firmware",
) -> None:
    """Probe, run the held-out bursts, probe again."""
    out.mkdir(parents=True, exist_ok=True)
    if boot not in ("firmware", "bios"):
        raise typer.BadParameter("--boot: firmware or bios")
    b: BootPath = "firmware" if boot == "firmware" else "bios"
    _probe(b, out, "probe-before")
    points = [SweepPoint(b, "kvm", n, i, 16, r) for n, i in CONFIGS for r in range(REPEATS)]
    rng = np.random.default_rng([SWEEP_STREAM, seed])
    points = [points[k] for k in rng.permutation(len(points))]
    t0 = time.monotonic()

    def done(p: SweepPoint, r: BurstResult | None) -> None:
        state = "done before" if r is None else f"all ready {r.manifest.all_ready_s:.2f} s"
        print(f"{p.count} at {p.interval_ms:g} ms, repeat {p.repeat}: {state}", file=sys.stderr)

    run_sweep(points, out / "bursts", settle_s=2.0, on_done=done)
    print(f"bursts: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    _probe(b, out, "probe-after")


def _probe(boot: BootPath, out: Path, name: str) -> None:
    path = out / f"{name}.json"
    if path.exists():
        return
    probe = run_probe(boot, "kvm", 16, out / f"{name}-runs")
    path.write_text(probe.model_dump_json(indent=1) + "\n")
    print(f"{name}: CPU per boot {probe.speed.boot_cpu_s * 1e3:.1f} ms, effective cores "
          f"{probe.speed.effective_cores:.2f}, {probe.duration_s:.0f} s", file=sys.stderr)


def calibration_runs(calibration: Calibration) -> list[Burst]:
    """The per-instance runs a calibration was fitted to (its data files, from the repository)."""
    paths = [ROOT / f.path for f in calibration.provenance.data_files]
    return list(load_calibration_data(paths).bursts)


def runs_figures(bursts: Sequence[Burst]) -> list[tuple[tuple[int, float], dict[str, float]]]:
    out = []
    for b in bursts:
        if b.ready_s is not None and np.all(np.isfinite(b.ready_s)):
            out.append((b.key, burst_figures(b.ready_s)))
    return out


def reference_speed(bursts: Sequence[Burst]) -> HostSpeed:
    probe_runs = [(b.launch_s, b.ready_s, b.cpu_s) for b in bursts
                  if b.key == (PROBE_COUNT, PROBE_INTERVAL_MS) and b.launch_s is not None
                  and b.ready_s is not None and b.cpu_s is not None]
    return host_speed(probe_runs)  # type: ignore[arg-type]


def model_figures(model: NodeModel, count: int, interval_ms: float, draws: int,
                  seed: int) -> dict[str, float]:
    times = burst_ready_times(model, planned_launches(count, interval_ms), interval_ms, draws,
                              seed)
    per_draw = [burst_figures(row) for row in times]
    return {k: float(np.mean([d[k] for d in per_draw])) for k in FIGURES}


def _unchanged(model: NodeModel) -> NodeModel:
    return model


@app.command()
def analyse(
    data: Annotated[Path, typer.Argument(help="what `measure` wrote")],
    calibration: Annotated[list[Path], typer.Option(help="calibration file(s)")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Errors and coverage of each calibration's predictions (with and without the probe)."""
    probe = ProbeFile.model_validate_json((data / "probe-before.json").read_text())
    measured = runs_figures(load_calibration_data([data / "bursts"]).bursts)
    configs = sorted({key for key, _ in measured})
    report: dict[str, object] = {"data": str(data), "probe": probe.speed.model_dump()}
    for path in calibration:
        cal = load_calibration(path)
        runs = calibration_runs(cal)
        noise = run_noise(runs_figures(runs))
        reference = reference_speed(runs)
        for mode in ("without probe", "with probe"):
            adapt = (partial(transfer, reference=reference, probed=probe.speed)
                     if mode == "with probe" else _unchanged)
            rows = []
            for count, interval in configs:
                t0 = time.process_time()
                figures = partial(model_figures, count=count, interval_ms=interval,
                                  draws=cal.settings.work_draws, seed=cal.settings.seed)
                central, bands = predict_with_intervals(cal, figures, noise, adapt)
                seconds = time.process_time() - t0
                reps = [f for key, f in measured if key == (count, interval)]
                row: dict[str, object] = {"count": count, "interval_ms": interval,
                                          "runs": len(reps), "predict_cpu_s": seconds}
                for name in FIGURES:
                    values = [r[name] for r in reps]
                    median = float(np.median(values))
                    low, high = bands[name]
                    row[name] = {"measured_median": median, "measured_min": min(values),
                                 "measured_max": max(values), "predicted": central[name],
                                 "interval": [low, high],
                                 "error": central[name] / median - 1.0,
                                 "covered": int(sum(low <= v <= high for v in values))}
                rows.append(row)
            summary = {}
            for name in FIGURES:
                errors = [abs(r[name]["error"]) for r in rows]  # type: ignore[index]
                covered = sum(r[name]["covered"] for r in rows)  # type: ignore[index]
                total = sum(r["runs"] for r in rows)  # type: ignore[misc]
                summary[name] = {"median_abs_error": float(np.median(errors)),
                                 "worst_abs_error": float(max(errors)),
                                 "coverage": covered / total}
            report[f"{path.name} {mode}"] = {"reference": reference.model_dump(),
                                            "run_noise": noise.sigma, "summary": summary,
                                            "configurations": rows}
    if json_out:
        print(json.dumps(report, indent=1))
        return
    for key, value in report.items():
        if not isinstance(value, dict) or "summary" not in value:
            continue
        print(f"## {key}")
        print("| figure | median error | worst error | 80 % interval coverage |")
        print("|---|---|---|---|")
        for name, s in value["summary"].items():
            print(f"| {name} | {s['median_abs_error']:.1%} | {s['worst_abs_error']:.1%} | "
                  f"{s['coverage']:.0%} |")
        print()
        print("| count | interval | figure | measured median [min-max] | predicted [80 %] |")
        print("|---|---|---|---|---|")
        for r in value["configurations"]:
            for name in ("first_ready_s", "median_ready_s", "all_ready_s"):
                f = r[name]
                print(f"| {r['count']} | {r['interval_ms']:g} | {name} | "
                      f"{f['measured_median']:.3f} [{f['measured_min']:.3f}-"
                      f"{f['measured_max']:.3f}] | {f['predicted']:.3f} "
                      f"[{f['interval'][0]:.3f}-{f['interval'][1]:.3f}] ({f['error']:+.1%}) |")
        print()


if __name__ == "__main__":
    app()
