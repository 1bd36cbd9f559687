"""Replays under each launcher: do the simulator's policies keep their gains when the platform's
launcher is a fair-share daemon, or has a core of its own, rather than a realtime one, and does the
node model (with its launcher term) predict each replay's first, median and all-ready?

    .venv/bin/python -m benchmarks.replay_launchers measure --out runs/replay-launchers  # ~6 min
    .venv/bin/python -m benchmarks.replay_launchers analyse runs/replay-launchers \\
        --calibration calibration/firmware.json --probe round

`measure` probes the host before each round, replays each of POLICIES' schedules
(benchmarks/results/replay/schedules, made by `sim schedule scenarios/replay-host.yaml`) under
every launcher (LAUNCHERS), REPEATS times, interleaved, into one dataset per schedule, then
probes again. `analyse` prints the real gains over `immediate` per launcher and the model's
error on every run (`measure validate`'s), with the calibration carried by a probe: the one
before the replays, the one after, or (`round`) the one taken just before each run's round.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from measure.calibration.validate import STATS, RunValidation, validate_dataset
from measure.harness.burst import run_burst
from measure.harness.probe import run_probe
from measure.harness.records import LAUNCHERS
from measure.harness.replay import replay_spec
from sim.model.schedule import load_schedule
from sim.model.units import milliseconds

SCHEDULES = Path(__file__).resolve().parent / "results" / "replay" / "schedules"
POLICIES = ("immediate", "interval_15_ms", "cap_4")
REPEATS = 3

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _probe(out: Path, name: str) -> None:
    path = out / f"{name}.json"
    if path.exists():
        return
    probe = run_probe("firmware", "kvm", 16, out / f"{name}-runs")
    path.write_text(probe.model_dump_json(indent=1) + "\n")
    print(f"{name}: CPU per boot {milliseconds(probe.speed.boot_cpu_s):.1f} ms, effective cores "
          f"{probe.speed.effective_cores:.2f}", file=sys.stderr)


def _round_probe(repeat: int) -> str:
    return "probe-before" if repeat == 0 else f"probe-round-{repeat}"


@app.command()
def measure(out: Annotated[Path, typer.Option(help="directory for the probes and replays")]
            ) -> None:
    """Probe before each round, replay every schedule under every launcher (interleaved),
    probe again."""
    out.mkdir(parents=True, exist_ok=True)
    for repeat in range(REPEATS):
        # A probe before each round: this host's speed moves within minutes (docs/calibration.md).
        _probe(out, _round_probe(repeat))
        for k, policy in enumerate(POLICIES):
            path = SCHEDULES / f"{policy}.json"
            plan = load_schedule(path)
            # Alternate which launcher goes first, so neither always follows the other.
            order = LAUNCHERS if (repeat + k) % 2 == 0 else LAUNCHERS[::-1]
            for launcher in order:
                spec = replay_spec(plan, path, "firmware", "kvm", repeat=repeat)
                result = run_burst(spec, out / policy, launcher=launcher)
                print(f"{policy} {launcher} {repeat}: first {result.manifest.first_ready_s} "
                      f"all {result.manifest.all_ready_s}", file=sys.stderr)
                time.sleep(2.0)
    _probe(out, "probe-after")


@app.command()
def analyse(
    data: Annotated[Path, typer.Argument(help="what `measure` wrote")],
    calibration: Annotated[Path, typer.Option(help="calibration JSON (with a launcher fit)")],
    probe: Annotated[str, typer.Option(help="before | after | none | round (each run with the "
                                            "probe taken just before its round)")] = "before",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Real gains over immediate per launcher, and the model's errors on each replay."""
    report: dict[str, Any] = {}
    for policy in POLICIES:
        for r in _validations(data, policy, calibration, probe):
            cell = report.setdefault(policy, {}).setdefault(r.launcher, {"real": [], "error": []})
            cell["real"].append(r.real)
            cell["error"].append(r.relative_error)
    summary: dict[str, Any] = {}
    for policy, by_launcher in report.items():
        for launcher, cell in by_launcher.items():
            summary[f"{policy} {launcher}"] = {
                **{f"real_{k}": float(np.median([x[k] for x in cell["real"]])) for k in STATS},
                **{f"error_{k}": float(np.median([x[k] for x in cell["error"]])) for k in STATS},
                **{f"error_{k}_range": [float(min(x[k] for x in cell["error"])),
                                        float(max(x[k] for x in cell["error"]))] for k in STATS},
                "runs": len(cell["real"])}
    if json_out:
        print(json.dumps(summary, indent=1))
        return
    print("| policy | launcher | first (s) | median | all | model error: first | median | all |")
    print("|---|---|---|---|---|---|---|---|")
    for key, s in summary.items():
        policy, launcher = key.rsplit(" ", 1)
        print(f"| {policy} | {launcher} | {s['real_first_ready_s']:.3f} | "
              f"{s['real_median_ready_s']:.2f} | {s['real_all_ready_s']:.2f} | "
              + " | ".join(f"{s[f'error_{k}']:+.0%} [{s[f'error_{k}_range'][0]:+.0%}, "
                           f"{s[f'error_{k}_range'][1]:+.0%}]"
                           for k in ("first_ready_s", "median_ready_s", "all_ready_s")) + " |")


def _validations(data: Path, policy: str, calibration: Path, probe: str) -> list[RunValidation]:
    if probe != "round":
        path = None if probe == "none" else data / f"probe-{probe}.json"
        return validate_dataset(data / policy, calibration, None, "model", path)
    runs = []
    for repeat in range(REPEATS):
        path = data / f"{_round_probe(repeat)}.json"
        runs += [r for r in validate_dataset(data / policy, calibration, None, "model", path)
                 if f"-r{repeat}-" in r.run_id]
    return runs


if __name__ == "__main__":
    app()
