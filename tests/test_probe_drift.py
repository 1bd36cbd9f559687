"""The host's drift between a probe and the bursts after it: how it is read off a transfer
dataset, what the committed datasets give (the constant in code), and how a forecast carried to
a probe holds it in its intervals (checked against the theory of a dense and a sparse burst)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchmarks.transfer import RESULTS, run_drifts, transfer_runs
from sim.model.calibration import carried_model, load_calibration
from sim.model.forecast import drift_part, forecast, model_figures
from sim.model.intervals import FIGURES
from sim.model.node_model import NodeModel
from sim.model.probe import (
    EARLY_INSTANCES,
    HOST_DRIFT_RUNS,
    HOST_DRIFT_SIGMA,
    HOST_SPREAD_SIGMA,
    HostSpeed,
    drift_sigma,
    drifted,
    load_probe,
    run_drift,
    weighed,
)

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "calibration" / "firmware.json"
PROBE = RESULTS / "2026-12-06c" / "probe-before.json"
SPEED = HostSpeed(boot_cpu_s=0.030, effective_cores=1.8, bursts=5)


def test_a_runs_drift_is_the_log_of_its_early_boots_over_the_probes() -> None:
    # Three runs at 0.8, 0.9 and 1.5 times the probe's CPU per boot in their first boots, and
    # dearer later boots that the drift must not read (they are the burst's, not the host's).
    runs = [np.r_[np.full(EARLY_INSTANCES, 0.030 * f), np.full(50, 0.090)]
            for f in (0.8, 0.9, 1.5)]
    assert run_drift(SPEED, runs) == pytest.approx(math.log(0.9))
    assert drift_sigma([0.3, -0.4]) == pytest.approx(math.sqrt((0.09 + 0.16) / 2))
    assert drifted(SPEED, math.log(2.0)).boot_cpu_s == pytest.approx(0.060)
    with pytest.raises(ValueError):
        run_drift(SPEED, [])


def test_the_drift_in_code_is_what_the_committed_transfer_runs_give() -> None:
    drifts = run_drifts(transfer_runs(RESULTS))
    assert len(drifts) == HOST_DRIFT_RUNS
    assert drift_sigma(list(drifts.values())) == pytest.approx(HOST_DRIFT_SIGMA, abs=5e-4)
    # Held out, a dataset's own drift is not among those that widen its intervals.
    one = next(iter(drifts))
    assert one not in run_drifts(transfer_runs(RESULTS, exclude=RESULTS / one))


def test_the_spread_in_code_is_how_far_the_committed_runs_lay_from_the_calibration() -> None:
    reference = load_calibration(FIRMWARE).host_reference
    assert reference is not None
    spreads = run_drifts(transfer_runs(RESULTS), reference=reference)
    assert len(spreads) == HOST_DRIFT_RUNS
    assert drift_sigma(list(spreads.values())) == pytest.approx(HOST_SPREAD_SIGMA, abs=5e-4)


def test_a_probe_is_weighed_against_the_calibration_by_their_spreads() -> None:
    reference = HostSpeed(boot_cpu_s=0.032, effective_cores=1.8, bursts=3)
    probed = SPEED.model_copy(update={"boot_cpu_s": 0.024})
    # Equal spreads: the geometric mean of the two readings, its error sd / sqrt(2).
    speed, error = weighed(probed, reference, drift_sigma=0.1, spread_sigma=0.1)
    assert speed.boot_cpu_s == pytest.approx(math.sqrt(0.024 * 0.032))
    assert error == pytest.approx(0.1 / math.sqrt(2))
    assert speed.effective_cores == probed.effective_cores  # only the CPU per boot is weighed
    # A probe without drift is taken as it is; hosts that never differ keep the calibration's.
    assert weighed(probed, reference, drift_sigma=0.0) == (probed, 0.0)
    assert weighed(probed, reference, 0.1, spread_sigma=0.0)[0].boot_cpu_s == pytest.approx(0.032)
    # Three times the spread of the drift: nine tenths of the way to the probe (log scale).
    assert math.log(weighed(probed, reference, 0.1, 0.3)[0].boot_cpu_s / 0.032) == pytest.approx(
        0.9 * math.log(0.024 / 0.032))


def test_every_carried_model_takes_the_weighed_speed() -> None:
    calibration, probe = load_calibration(FIRMWARE), load_probe(PROBE)
    reference = calibration.host_reference
    assert reference is not None
    speed, _ = weighed(probe.speed, reference)
    expected = calibration.model.work_s * speed.boot_cpu_s / reference.boot_cpu_s
    assert carried_model(calibration, probe, "probe").work_s == pytest.approx(expected)
    assert forecast(calibration, 200, 5.0, probe).work_s == pytest.approx(expected)
    # Without the drift (a probe read at the burst's moment) it is the probe's own reading.
    own = forecast(calibration, 200, 5.0, probe, drift_sigma=0.0).work_s
    assert own == pytest.approx(calibration.model.work_s * probe.speed.boot_cpu_s
                                / reference.boot_cpu_s)


def test_a_dense_bursts_all_ready_follows_the_cpu_per_boot_and_a_sparse_first_ready_less() -> None:
    model = NodeModel(cores=1.8, work_s=0.030, work_cv=0.0, delay_s=0.010, warmup_s=0.0)

    def figures(count: int, interval_ms: float) -> Callable[[NodeModel], dict[str, float]]:
        return lambda m: model_figures(m, count, interval_ms, draws=1, seed=0)

    sigma = 0.2
    # 400 at once: all-ready = total work / cores, proportional to the CPU per boot.
    dense = drift_part(model, SPEED, SPEED, sigma, figures(400, 0.0))
    assert dense["all_ready_s"] == pytest.approx(sigma, rel=0.02)
    # One instance alone: ready at delay + work, of which only the work moves.
    alone = drift_part(model, SPEED, SPEED, sigma, figures(1, 0.0))
    up, down = 0.010 + 0.030 * math.exp(sigma), 0.010 + 0.030 * math.exp(-sigma)
    assert alone["first_ready_s"] == pytest.approx(math.log(up / down) / 2, rel=1e-6)
    assert alone["first_ready_s"] < sigma
    assert drift_part(model, SPEED, SPEED, 0.0, figures(400, 0.0)) == {}


def test_a_carried_forecast_holds_the_drift_and_says_so() -> None:
    calibration, probe = load_calibration(FIRMWARE), load_probe(PROBE)
    without = forecast(calibration, 400, 3.0, probe, drift_sigma=0.0)
    held = forecast(calibration, 400, 3.0, probe, drift_sigma=0.25)
    for name in FIGURES:
        low0, high0 = getattr(without, f"{name}_interval")
        low, high = getattr(held, f"{name}_interval")
        assert math.log(high / low) >= math.log(high0 / low0)
    low0, high0 = without.all_ready_s_interval
    low, high = held.all_ready_s_interval
    assert math.log(high / low) > math.log(high0 / low0) * 1.2
    assert any("drift since the probe" in part and "0.25" in part for part in held.interval_parts)
    assert not any("drift" in part for part in without.interval_parts)
    # Without a probe there is no drift to hold.
    here = forecast(calibration, 400, 3.0)
    assert not any("drift" in part for part in here.interval_parts)
