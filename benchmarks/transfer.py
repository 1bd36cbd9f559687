"""Does a calibration hold on this host today? Probe, then bursts no calibration saw, then the
errors and interval coverage of each calibration's predictions with and without the probe, and
each run's CPU rise (its mean CPU per boot over its first boots').

    .venv/bin/python benchmarks/transfer.py measure --out runs/transfer        # ~6 min, quiet host
    .venv/bin/python benchmarks/transfer.py analyse runs/transfer \\
        --calibration calibration/firmware.json [--json]
    .venv/bin/python benchmarks/transfer.py drift      # the committed runs' host drift

`measure` runs `measure probe` (5 bursts of 100 at 1 ms and the price of fresh memory), then
CONFIGS x 3 repeats in random order (counts 60-1,000, intervals 2-16 ms, none on a calibration
grid), each started once the host's free page reporting has settled, then a second probe (how
far the host's speed moved meanwhile). `analyse` prints each forecast's cold-memory bound
(all-ready if the host had taken back the free memory beyond what the probe found backed);
the intervals with the probe hold the host's drift since it, estimated from the other datasets
beside the one analysed (`drift`: every dataset's drift from its probe to its bursts).
Figures go to docs/calibration.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from measure.calibration.data import CalibrationData, load_calibration_data
from measure.calibration.host_costs import figures_of
from measure.harness.burst import BurstResult
from measure.harness.dataset import load_manifests
from measure.harness.guest import BootPath
from measure.harness.probe import run_probe
from measure.harness.records import LAUNCHERS, LauncherMode, parse_launcher
from measure.harness.sweep import SweepPoint, run_sweep
from sim.entry import run_app
from sim.errors import UserError
from sim.model.calibration import calibration_with_launcher, load_calibration
from sim.model.forecast import forecast
from sim.model.intervals import FIGURES
from sim.model.probe import (
    HOST_DRIFT_RUNS,
    HOST_DRIFT_SIGMA,
    HOST_SPREAD_SIGMA,
    HostSpeed,
    drift_sigma,
    load_probe,
    own_speed,
    run_boot_cpu,
    run_drift,
)
from sim.model.units import milliseconds
from sim.streams import MeasureStream, measure_rng

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "transfer"
FIRMWARE = ROOT / "calibration" / "firmware.json"
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
    launchers: Annotated[str, typer.Option(help="comma-separated: realtime, fair (each "
                                                "configuration under each, interleaved)")
                         ] = "realtime",
) -> None:
    """Probe, run the held-out bursts, probe again."""
    try:
        modes = [parse_launcher(v.strip(), "--launchers") for v in launchers.split(",")]
    except UserError as exc:
        raise typer.BadParameter(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    if boot not in ("firmware", "bios"):
        raise typer.BadParameter("--boot: firmware or bios")
    b: BootPath = "firmware" if boot == "firmware" else "bios"
    _probe(b, out, "probe-before")
    points = [SweepPoint(b, "kvm", n, i, 16, r, m) for n, i, r, m in _order(modes, seed)]
    t0 = time.monotonic()

    def done(p: SweepPoint, r: BurstResult | None) -> None:
        state = "done before" if r is None else f"all ready {r.manifest.all_ready_s:.2f} s"
        print(f"{p.count} at {p.interval_ms:g} ms, {p.launcher}, repeat {p.repeat}: {state}",
              file=sys.stderr)

    # Every burst starts once the host has taken back what it will of the memory the last one
    # freed (the state the probe prices, docs/findings.md).
    run_sweep(points, out / "bursts", settle_s=2.0, on_done=done, settle_memory=True)
    print(f"bursts: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    _probe(b, out, "probe-after")


def cpu_rise(cpu_s: np.ndarray) -> float:
    """A run's mean CPU per boot over that of its first boots (run_boot_cpu): 1 when the
    boots cost alike; well above 1 when the burst's later boots got dearer, as where its memory
    ran past what the VM had used (docs/findings.md, "Where a boot's CPU goes"), which no
    reading taken before or at the start of the burst can see."""
    return float(np.nanmean(cpu_s) / run_boot_cpu(cpu_s))


def _order(modes: Sequence[LauncherMode], seed: int) -> list[tuple[int, float, int, LauncherMode]]:
    """(count, interval, repeat, launcher) of every burst, in the random order `measure` runs
    them."""
    points = [(n, i, r, m) for n, i in CONFIGS for r in range(REPEATS) for m in modes]
    rng = measure_rng(MeasureStream.TRANSFER_ORDER, seed)
    return [points[k] for k in rng.permutation(len(points))]


def _with_launchers_by_order(data: CalibrationData, bursts: Path) -> CalibrationData:
    """The data, each run's launcher read off `measure`'s random order where the run manifests
    were not kept (2026-11-30 a and b, 2026-12-01 c): the seed whose order of (count, interval,
    repeat) is the runs' order in time (run ids begin with their start time) tells which of the
    two launchers each run had. Data with manifests, or of one launcher, are returned as they
    are."""
    if load_manifests(bursts):
        return data
    runs = sorted(data.bursts, key=lambda b: b.run_id)
    keys = [(b.count, b.interval_ms, _repeat(b.run_id)) for b in runs]
    if len(set(keys)) == len(keys):  # (each configuration once: one launcher)
        return data
    modes: tuple[LauncherMode, ...] = ("realtime", "fair")
    for seed in range(100):
        order = _order(modes, seed)
        if [(n, i, r) for n, i, r, _ in order] == keys:
            print(f"note: {bursts} has no run manifests; each run's launcher is read off "
                  f"`measure`'s order (seed {seed})", file=sys.stderr)
            found = {b.run_id: m for b, (*_, m) in zip(runs, order, strict=True)}
            return dataclasses.replace(data, bursts=tuple(
                dataclasses.replace(b, launcher=found[b.run_id]) for b in data.bursts))
    raise UserError(f"{bursts}: runs of two launchers and no run manifests, and no seed of "
                    "`measure` gives their order; the launcher of each run is unknown")


def _repeat(run_id: str) -> int:
    """The repeat a run id names (new_run_id: ...-m<MB>-r<repeat>-<hex>)."""
    found = re.search(r"-r(\d+)-[0-9a-f]+$", run_id)
    return int(found.group(1)) if found else -1


def _probe(boot: BootPath, out: Path, name: str) -> None:
    path = out / f"{name}.json"
    if path.exists():
        return
    probe = run_probe(boot, "kvm", 16, out / f"{name}-runs")
    path.write_text(probe.model_dump_json(indent=1) + "\n")
    print(f"{name}: CPU per boot {milliseconds(probe.speed.boot_cpu_s):.1f} ms, effective cores "
          f"{probe.speed.effective_cores:.2f}, {probe.duration_s:.0f} s", file=sys.stderr)


def measured_figures(data: CalibrationData
                     ) -> list[tuple[tuple[int, float], dict[str, float], np.ndarray]]:
    """(configuration, figures, CPU time of each instance) of every whole run of the data."""
    return [(b.key, figures_of(b), np.asarray(b.cpu_s, dtype=float)) for b in data.bursts
            if b.ready_s is not None and np.all(np.isfinite(b.ready_s))]



TransferRuns = dict[str, tuple[HostSpeed, list[np.ndarray]]]
"""Dataset name -> (its probe before, each whole run's CPU time per instance)."""


def transfer_runs(results: Path, exclude: Path | None = None) -> TransferRuns:
    """Every transfer dataset under `results` with a probe before its bursts, but `exclude`."""
    runs: TransferRuns = {}
    for data in sorted(p.parent for p in results.glob("*/probe-before.json")):
        if exclude is not None and data.resolve() == exclude.resolve():
            continue
        cpu = [c for _, _, c in measured_figures(load_calibration_data([data / "bursts"]))]
        if cpu:
            runs[data.name] = (load_probe(data / "probe-before.json").speed, cpu)
    return runs


def run_drifts(runs: TransferRuns, reference: HostSpeed | None = None) -> dict[str, float]:
    """Each dataset's drift (run_drift) from its probe, or from a calibration's `reference`
    (how far the bursts' host lay from the calibration's)."""
    return {name: run_drift(reference or probe, cpu) for name, (probe, cpu) in runs.items()}


@app.command()
def drift(
    results: Annotated[Path, typer.Argument(help="directory of transfer datasets")] = RESULTS,
) -> None:
    """How far the host's CPU per boot moved from each dataset's probe to its bursts, and the
    root mean square over datasets (sim.model.probe.HOST_DRIFT_SIGMA), with each dataset's
    held-out estimate (from the others: what `analyse` uses)."""
    runs = transfer_runs(results)
    if not runs:
        raise typer.BadParameter(f"{results}: no dataset with a probe-before.json")
    reference = load_calibration(FIRMWARE).host_reference
    assert reference is not None
    drifts, spreads = run_drifts(runs), run_drifts(runs, reference)
    print("| dataset | drift (log) | bursts / probe | RMS of the others | bursts / calibration |")
    print("|---|---|---|---|---|")
    for name, d in drifts.items():
        others = drift_sigma([v for k, v in drifts.items() if k != name])
        print(f"| {name} | {d:+.3f} | {np.exp(d):.2f} | {others:.3f} | "
              f"{np.exp(spreads[name]):.2f} |")
    sigma = drift_sigma(list(drifts.values()))
    spread = drift_sigma(list(spreads.values()))
    print(f"\nRMS over {len(drifts)} datasets: drift {sigma:.3f} (in code: "
          f"{HOST_DRIFT_SIGMA:.3f} from {HOST_DRIFT_RUNS}), spread from {FIRMWARE.name} "
          f"{spread:.3f} (in code: {HOST_SPREAD_SIGMA:.3f})")


def _drift_option(value: str) -> float | None:
    """--drift-sigma: a log-scale sd >= 0, or None for `held-out`."""
    if value == "held-out":
        return None
    try:
        sigma = float(value)
    except ValueError:
        raise typer.BadParameter("--drift-sigma: a number >= 0 or held-out") from None
    if not sigma >= 0:
        raise typer.BadParameter("--drift-sigma: a number >= 0 or held-out")
    return sigma


def _rms(drifts: dict[str, float], default: float) -> float:
    return drift_sigma(list(drifts.values())) if drifts else default


def _bound(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.3f}"


@app.command()
def analyse(
    data: Annotated[Path, typer.Argument(help="what `measure` wrote")],
    calibration: Annotated[list[Path], typer.Option(help="calibration file(s)")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
    probe_name: Annotated[str, typer.Option("--probe", help="before (a user's case) | after "
                                                           "(the probe run after the bursts) | "
                                                           "own (each run's own speed)")
                          ] = "before",
    drift_sigma_option: Annotated[str, typer.Option(
        "--drift-sigma", help="the host drift the intervals hold with a probe: held-out (from "
                              "the other datasets beside DATA), or a log-scale sd (0: none)")
                                  ] = "held-out",
) -> None:
    """Errors and coverage of each calibration's forecasts, with and without a probe (by default
    the one taken before the bursts). `--probe own` forecasts each run with the probe taken
    before, its CPU per boot replaced by that run's own first boots': a probe taken at the
    burst's moment, which no user has; what it leaves is the model's error, not the drift of
    the host between the probe and the burst (so its intervals hold no drift)."""
    if probe_name not in ("before", "after", "own"):
        raise typer.BadParameter("--probe: before, after or own")
    probe = load_probe(data / f"probe-{'before' if probe_name == 'own' else probe_name}.json")
    # Held out: the drift and, for each calibration, the spread of the hosts come from the
    # other datasets beside DATA (read once), so no run's own reading enters its forecast.
    fixed = _drift_option(drift_sigma_option)
    others = transfer_runs(data.resolve().parent, exclude=data) if fixed is None else {}
    if probe_name == "own":
        sigma = 0.0
    elif fixed is None:
        sigma = _rms(run_drifts(others), 0.0)
    else:
        sigma = fixed
    report: dict[str, Any] = {"data": str(data), "probe": probe_name,
                              "probe_speed": probe.speed.model_dump(), "drift_sigma": sigma}
    bursts = _with_launchers_by_order(load_calibration_data([data / "bursts"]), data / "bursts")
    calibrations = {path: load_calibration(path) for path in calibration}
    spreads = {path: HOST_SPREAD_SIGMA if fixed is not None or cal.host_reference is None
               else _rms(run_drifts(others, cal.host_reference), HOST_SPREAD_SIGMA)
               for path, cal in calibrations.items()}
    for path, launcher in itertools.product(calibration, LAUNCHERS):
        measured = measured_figures(bursts.of_launcher(launcher))
        configs = sorted({key for key, _, _ in measured})
        cal = calibrations[path]
        if not measured or (launcher != "realtime" and not cal.model.launch_cpu_s > 0):
            continue
        spread = spreads[path]
        cal = calibration_with_launcher(cal, launcher, str(path))
        for mode, probed in (("without probe", None), ("with probe", probe)):
            rows = []
            for count, interval in configs:
                t0 = time.process_time()
                reps = [(f, cpu) for key, f, cpu in measured if key == (count, interval)]
                own = probe_name == "own" and probed is not None
                results = [forecast(cal, count, interval,
                                    own_speed(probe, cpu) if own else probed,
                                    drift_sigma=sigma, spread_sigma=spread)
                           for _, cpu in (reps if own else reps[:1])]
                seconds = (time.process_time() - t0) / len(results)
                row: dict[str, Any] = {"count": count, "interval_ms": interval,
                                       "runs": len(reps), "predict_cpu_s": seconds,
                                       "extrapolation": results[0].extrapolation,
                                       "cpu_rise": [cpu_rise(cpu) for _, cpu in reps],
                                       "cold_memory_all_ready_s": (
                                           None if results[0].cold_memory is None
                                           else results[0].cold_memory.all_ready_s)}
                for name in FIGURES:
                    values = [f[name] for f, _ in reps]
                    median = float(np.median(values))
                    predicted = float(np.median([getattr(r, name) for r in results]))
                    bands = [getattr(r, f"{name}_interval") for r in results]
                    each = bands if own else bands * len(values)
                    row[name] = {"measured_median": median, "measured_min": min(values),
                                 "measured_max": max(values), "predicted": predicted,
                                 "interval": list(np.median(bands, axis=0)),
                                 "error": predicted / median - 1.0,
                                 "covered": int(sum(low <= v <= high
                                                    for v, (low, high) in zip(values, each,
                                                                               strict=True)))}
                rows.append(row)
            summary = {}
            for name in FIGURES:
                errors = [abs(r[name]["error"]) for r in rows]
                summary[name] = {
                    "median_abs_error": float(np.median(errors)),
                    "worst_abs_error": float(max(errors)),
                    "coverage": sum(r[name]["covered"] for r in rows) / sum(
                        r["runs"] for r in rows)}
            report[f"{path.name}, {launcher} launcher, {mode}"] = {
                "summary": summary, "configurations": rows,
                "predict_cpu_s_max": max(r["predict_cpu_s"] for r in rows)}
    if json_out:
        print(json.dumps(report, indent=1))
        return
    print(f"Intervals with the probe hold a host drift of {sigma:.3f} (log-scale sd).\n")
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
        print("| count | interval | figure | measured median [min-max] | predicted [80 %] | "
              "CPU rise | cold-memory bound |")
        print("|---|---|---|---|---|---|---|")
        for r in value["configurations"]:
            rise = ", ".join(f"{x:.2f}" for x in r["cpu_rise"])
            for name in ("first_ready_s", "median_ready_s", "all_ready_s"):
                f = r[name]
                print(f"| {r['count']} | {r['interval_ms']:g} | {name} | "
                      f"{f['measured_median']:.3f} [{f['measured_min']:.3f}-"
                      f"{f['measured_max']:.3f}] | {f['predicted']:.3f} "
                      f"[{f['interval'][0]:.3f}-{f['interval'][1]:.3f}] ({f['error']:+.1%}) | "
                      f"{rise if name == 'first_ready_s' else ''} | "
                      f"{_bound(r['cold_memory_all_ready_s']) if name == 'all_ready_s' else ''} |")
        print()


if __name__ == "__main__":
    run_app(app)
