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
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from measure.calibration.validate import STATS, RunValidation, validate_dataset
from measure.harness.burst import run_burst
from measure.harness.dataset import load_instances, load_manifests
from measure.harness.probe import run_probe
from measure.harness.records import LAUNCHERS
from measure.harness.replay import replay_spec
from sim.entry import run_app
from sim.errors import UserError
from sim.model.node_model import LauncherMode
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


def _order(repeat: int, k: int, launchers: Sequence[LauncherMode]) -> Sequence[LauncherMode]:
    """The launchers of round `repeat` of the k-th policy, in the order `measure` runs them:
    which goes first alternates, so that none always follows another."""
    return launchers if (repeat + k) % 2 == 0 else launchers[::-1]


def _launchers_by_order(dataset: Path, k: int) -> dict[str, LauncherMode]:
    """Each run's launcher read off `measure`'s run order, for datasets committed without their
    run manifests (2026-12-01 and 2026-12-01b): in each round the runs, in time order (run ids
    begin with their start time), are the first n LAUNCHERS in _order() (n = runs per round:
    the 2026-12-01 replays had realtime and fair only)."""
    if load_manifests(dataset):
        return {}
    runs = sorted(str(r) for r in load_instances(dataset).run_id.unique())
    out: dict[str, LauncherMode] = {}
    for repeat in range(REPEATS):
        mine = [r for r in runs if f"-r{repeat}-" in r]
        if not 1 <= len(mine) <= len(LAUNCHERS):
            raise UserError(f"{dataset}: {len(mine)} runs in round {repeat} and no run "
                            "manifests; the launcher of each run is unknown")
        out.update(zip(mine, _order(repeat, k, LAUNCHERS[:len(mine)]), strict=True))
    print(f"note: {dataset} has no run manifests; each run's launcher is read off the order "
          "`measure` runs them in", file=sys.stderr)
    return out


def _round_probe(repeat: int) -> str:
    return "probe-before" if repeat == 0 else f"probe-round-{repeat}"


@app.command()
def measure(out: Annotated[Path, typer.Option(help="directory for the probes and replays")],
            repeats: Annotated[int, typer.Option(help="rounds (replays of each schedule under "
                                                      "each launcher)")] = REPEATS,
            ) -> None:
    """Probe before each round, replay every schedule under every launcher (interleaved),
    probe again."""
    if not 1 <= repeats <= 20:
        raise typer.BadParameter("--repeats: 1 to 20")
    out.mkdir(parents=True, exist_ok=True)
    for repeat in range(repeats):
        # A probe before each round: this host's speed moves within minutes (docs/calibration.md).
        _probe(out, _round_probe(repeat))
        for k, policy in enumerate(POLICIES):
            path = SCHEDULES / f"{policy}.json"
            plan = load_schedule(path)
            for launcher in _order(repeat, k, LAUNCHERS):
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
    for k, policy in enumerate(POLICIES):
        for r in _validations(data, policy, k, calibration, probe):
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


def _validations(data: Path, policy: str, k: int, calibration: Path,
                 probe: str) -> list[RunValidation]:
    launchers = _launchers_by_order(data / policy, k)
    if probe != "round":
        path = None if probe == "none" else data / f"probe-{probe}.json"
        return validate_dataset(data / policy, calibration, None, "model", path, launchers)
    runs = []
    rounds = sum(1 for _ in data.glob("probe-round-*.json")) + 1
    for repeat in range(rounds):
        path = data / f"{_round_probe(repeat)}.json"
        runs += [r for r in validate_dataset(data / policy, calibration, None, "model", path,
                                             launchers)
                 if f"-r{repeat}-" in r.run_id]
    return runs


if __name__ == "__main__":
    run_app(app)
