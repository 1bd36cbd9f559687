"""A reserved launcher's time per launch: read back from bursts the model itself launched, carried
to the calibration's host terms by the runs' own CPU per boot, and refused with one line where
the runs cannot tell it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from measure.calibration.data import Burst, CalibrationData, load_calibration_data
from measure.calibration.launcher_fit import fit_launcher
from measure.calibration.reserved_launch import queued_gaps, run_spacing, with_reserved_launch
from sim.errors import UserError
from sim.model.calibration import DataFile, HostInfo, load_calibration, with_launcher
from sim.model.node_model import NodeModel, draw_work
from sim.model.ready_times import launched_and_ready_times

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "calibration" / "firmware.json"


def _reserved(launch_alone_s: float, count: int, interval_ms: float, seed: int,
              boot_cpu_s: float = 0.03) -> Burst:
    """One reserved-launcher burst launched by the model, its boots of CPU time boot_cpu_s."""
    model = NodeModel(cores=2, work_s=boot_cpu_s, delay_s=0.017, work_cv=0.2,
                      launcher="reserved", launch_alone_s=launch_alone_s)
    planned = np.arange(count) * interval_ms / 1e3
    work = draw_work(model, count, np.random.default_rng(seed))
    launched, ready = launched_and_ready_times(model, planned, work)
    return Burst(run_id=f"{count}-{interval_ms}-{seed}", count=count, interval_ms=interval_ms,
                 first_ready_s=float(ready.min()), all_ready_s=float(ready.max()),
                 launch_s=launched, ready_s=ready, cpu_s=np.full(count, boot_cpu_s),
                 launcher="reserved")


@pytest.mark.parametrize("interval_ms", [0.0, 1.0])
def test_queued_launches_are_one_launch_apart(interval_ms: float) -> None:
    # 1.3 ms per launch and launches due every 0 or 1 ms: every launch after the first waits
    # for the one before, so every gap is one launch.
    burst = _reserved(0.0013, 300, interval_ms, seed=1)
    assert len(queued_gaps(burst.launch_s, interval_ms)) == 299  # type: ignore[arg-type]
    assert run_spacing(burst) == pytest.approx(0.0013, rel=1e-9)


def test_launches_that_never_wait_tell_nothing() -> None:
    # Due every 2 ms, a 1.3 ms launch never waits: the gaps are the plan's, not the launcher's.
    assert run_spacing(_reserved(0.0013, 300, 2.0, seed=2)) is None
    # A burst that pauses: only the gaps after a queued launch count (here the planned gaps of
    # 50 ms between two dense halves are left out).
    launch = np.concatenate([np.arange(20) * 0.001, 1.0 + np.arange(20) * 0.001])
    assert len(queued_gaps(launch, 0.0)) == 39
    assert len(queued_gaps(launch, 50.0)) == 0


def _data(bursts: list[Burst]) -> CalibrationData:
    return CalibrationData(kind="instances", bursts=tuple(bursts),
                           files=(DataFile(path="runs", sha256="0" * 64, kind="instances",
                                           rows=max(1, sum(b.count for b in bursts))),),
                           host=HostInfo(source="stated", description="the model"))


def test_reserved_runs_give_a_launch_time_in_the_calibrations_host_terms() -> None:
    base = load_calibration(FIRMWARE)
    assert base.host_reference is not None and base.launcher_fit is not None
    # Runs on a host 30 % faster than the calibration's (CPU per boot x0.7): their 1.3 ms per
    # launch is 1.3 / 0.7 ms in the calibration's terms, which a probe of that host carries
    # back to 1.3 ms (sim.model.probe.transfer).
    boot = 0.7 * base.host_reference.boot_cpu_s
    runs = [_reserved(0.0013, 200, 0.0, seed=s, boot_cpu_s=boot) for s in range(3)]
    cal = fit_launcher(base, _data(runs))  # no fair runs: the fair fit is kept
    assert cal.model.launch_alone_s == pytest.approx(0.0013 / 0.7, rel=1e-9)
    assert cal.parameters["launch_alone_s"].source == "measured"
    assert cal.model == base.model.model_copy(update={"launch_alone_s": cal.model.launch_alone_s})
    assert cal.launcher_fit is not None and cal.launcher_fit.reserved is not None
    assert (cal.launcher_fit.model_copy(update={"reserved": None})
            == base.launcher_fit.model_copy(update={"reserved": None}))
    assert cal.launcher_fit.reserved.runs_measured == 3
    assert cal.launcher_fit.reserved.boot_cpu_s == pytest.approx(boot)
    reserved = with_launcher(cal.model, "reserved", "here")
    assert reserved.reserved_launch_s == cal.model.launch_alone_s != cal.model.launch_cpu_s
    fair = with_launcher(cal.model, "fair", "here")
    assert fair.launch_cpu_s == base.model.launch_cpu_s  # the fair launcher is not changed


def test_reserved_runs_that_cannot_tell_are_refused() -> None:
    base = load_calibration(FIRMWARE)
    with pytest.raises(UserError, match="queued"):
        fit_launcher(base, _data([_reserved(0.0013, 100, 5.0, seed=3)]))
    bios = load_calibration(FIRMWARE.parent / "bios.json")  # no fair-launcher fit to go beside
    with pytest.raises(UserError, match="fair-launcher fit"):
        with_reserved_launch(bios, _data([_reserved(0.0013, 100, 0.0, seed=4)]),
                             [_reserved(0.0013, 100, 0.0, seed=4)])
    with pytest.raises(UserError, match="no fair- or reserved-launcher run"):
        fit_launcher(base, _data([]))


RESERVED_DATA = ROOT / "calibration" / "data" / "host-reserved-2026-12-06"


def test_the_shipped_launch_time_is_what_its_runs_give(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = load_calibration(FIRMWARE)
    assert shipped.launcher_fit is not None and shipped.launcher_fit.reserved is not None
    monkeypatch.chdir(ROOT)  # (the data files are named as measure calibrate-launcher ran)
    data = load_calibration_data([RESERVED_DATA.relative_to(ROOT)])
    assert {b.launcher for b in data.bursts} == {"reserved"}
    again = fit_launcher(shipped, data)
    assert again.model.launch_alone_s == shipped.model.launch_alone_s > 0
    assert again.launcher_fit == shipped.launcher_fit
    # A launch alone on its core is quicker than the fair fit's CPU per launch, which also pays
    # for the rivals the fair launcher shares its cores with (docs/model.md).
    assert shipped.model.launch_alone_s < shipped.model.launch_cpu_s


def test_the_measured_launch_time_predicts_a_replay_it_never_saw_better(tmp_path: Path) -> None:
    # The reserved replays of `immediate` (300 at once; 2026-12-01b: another machine and day
    # than the reserved runs), each against the calibration carried by the probe of its round:
    # first-ready with the measured launch time against launches at the fair fit's CPU per
    # launch (docs/validation.md: -54 % -> -24 %).
    shipped = load_calibration(FIRMWARE)
    fair_cost = tmp_path / "fair-cost.json"
    assert shipped.launcher_fit is not None
    fair_cost.write_text(shipped.model_copy(update={
        "model": shipped.model.model_copy(update={"launch_alone_s": 0.0}),
        "parameters": {k: v for k, v in shipped.parameters.items() if k != "launch_alone_s"},
        "launcher_fit": shipped.launcher_fit.model_copy(update={"reserved": None}),
    }).model_dump_json())
    worst = {}
    for name, path in (("measured", FIRMWARE), ("fair cost", fair_cost)):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.replay_launchers", "analyse",
             "benchmarks/results/replay-launchers/2026-12-01b", "--calibration", str(path),
             "--probe", "round", "--json"], capture_output=True, text=True, cwd=ROOT,
            timeout=600)
        assert done.returncode == 0, done.stderr
        cell = json.loads(done.stdout)["immediate reserved"]
        assert cell["runs"] == 3
        worst[name] = max(abs(e) for e in cell["error_first_ready_s_range"])
    assert worst["measured"] < worst["fair cost"]
