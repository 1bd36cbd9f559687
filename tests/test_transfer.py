"""Carrying a calibration to another host: the probe's estimators read a host's speed off bursts
of the probe configuration, and a calibration carried by them predicts the other host's bursts.
The other host here is the node model itself with other parameters (the reality the test knows)."""

from __future__ import annotations

import numpy as np
import pytest

from measure.calibration.data import Burst
from measure.calibration.host_costs import host_reference, measured_work
from sim.model import burst_stats
from sim.model.node_model import NodeModel, work_from_normal
from sim.model.predict import DEFAULT_SEED, burst_ready_times, planned_launches
from sim.model.probe import (
    EARLY_INSTANCES,
    PROBE_COUNT,
    PROBE_INTERVAL_MS,
    HostSpeed,
    ProbeFile,
    burst_effective_cores,
    host_speed,
    own_speed,
    transfer,
)
from sim.model.ready_times import ready_times
from sim.model.units import seconds

CALIBRATED = NodeModel(cores=1.8, work_s=0.030, work_cv=0.15, delay_s=0.004, warmup_s=0.02)
"""The host a calibration was made on."""
OTHER = CALIBRATED.model_copy(update={"work_s": 0.030 * 0.72, "cores": 1.9})
"""A machine of the same kind, another day: boots cost 28 % less CPU, a little more CPU free."""


def probe_bursts(model: NodeModel, bursts: int,
                 seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Bursts of the probe configuration on `model`'s host: (launch, ready, cpu) each, the CPU
    of an instance being the work it drew, as the harness measures it."""
    out = []
    for b in range(bursts):
        rng = np.random.default_rng([seed, b])
        launch = planned_launches(PROBE_COUNT, PROBE_INTERVAL_MS)
        work = work_from_normal(model, rng.standard_normal(PROBE_COUNT))
        out.append((launch, ready_times(model, launch, work=work), work))
    return out


def test_the_probe_figures_are_the_median_early_boot_and_cpu_over_span() -> None:
    launch = seconds(np.arange(30.0))
    cpu = np.linspace(0.010, 0.040, 30)
    ready = launch + 0.5
    speed = host_speed([(launch, ready, cpu)])
    assert speed.boot_cpu_s == pytest.approx(float(np.median(cpu[:EARLY_INSTANCES])))
    assert speed.effective_cores == pytest.approx(cpu.sum() / (ready.max() - launch.min()))
    assert burst_effective_cores(launch, ready, cpu) == speed.effective_cores


def test_the_probe_reads_the_ratio_of_two_hosts_speeds() -> None:
    reference = host_speed(probe_bursts(CALIBRATED, 5, seed=1))
    probed = host_speed(probe_bursts(OTHER, 5, seed=2))
    assert probed.boot_cpu_s / reference.boot_cpu_s == pytest.approx(0.72, rel=0.06)
    # A saturated burst gets all its cores for most of its span: the ratio follows the cores.
    assert probed.effective_cores / reference.effective_cores == pytest.approx(
        1.9 / 1.8, rel=0.04)


@pytest.mark.parametrize(("count", "interval_ms"), [(600, 2.0), (250, 9.0), (1000, 6.0)])
def test_a_carried_calibration_predicts_the_other_hosts_bursts(count: int,
                                                               interval_ms: float) -> None:
    reference = host_speed(probe_bursts(CALIBRATED, 5, seed=1))
    probed = host_speed(probe_bursts(OTHER, 5, seed=2))
    launches = planned_launches(count, interval_ms)

    def figures(model: NodeModel) -> tuple[float, float]:
        times = burst_ready_times(model, launches, interval_ms, 4, DEFAULT_SEED)
        return float(np.mean(burst_stats.median(times))), float(
            np.mean(burst_stats.last_ready(times)))

    real = figures(OTHER)
    carried = figures(transfer(CALIBRATED, reference, probed))
    uncarried = figures(CALIBRATED)
    for got, want in zip(carried, real, strict=True):
        assert got == pytest.approx(want, rel=0.06), (count, interval_ms)
    # Without the probe the calibration's host is predicted instead: a third too slow.
    assert uncarried[1] / real[1] > 1.2


def test_transfer_scales_work_and_cores_only() -> None:
    ref = HostSpeed(boot_cpu_s=0.03, effective_cores=1.8, bursts=3)
    probe = HostSpeed(boot_cpu_s=0.015, effective_cores=0.9, bursts=3)
    carried = transfer(CALIBRATED, ref, probe)
    assert carried.work_s == pytest.approx(CALIBRATED.work_s / 2)
    assert carried.cores == pytest.approx(CALIBRATED.cores / 2)
    kept = {k: v for k, v in carried.model_dump().items() if k not in ("work_s", "cores")}
    assert kept == {k: v for k, v in CALIBRATED.model_dump().items()
                    if k not in ("work_s", "cores")}
    # Theory: a saturated burst's makespan is work / cores, so halving both changes nothing
    # but the warm-up and delay, which do not scale.
    launches = seconds(np.zeros(200))
    work = np.full(200, CALIBRATED.work_s)
    plain = ready_times(CALIBRATED.model_copy(update={"work_cv": 0.0}), launches, work=work)
    halved = ready_times(carried.model_copy(update={"work_cv": 0.0}), launches, work=work / 2)
    assert halved.max() == pytest.approx(plain.max(), rel=1e-9)


def _burst(count: int, interval_ms: float, cpu: np.ndarray, ready: np.ndarray) -> Burst:
    launch = planned_launches(count, interval_ms)
    return Burst(run_id=f"n{count}-i{interval_ms:g}-{cpu[0]:.4f}", count=count,
                 interval_ms=interval_ms, first_ready_s=float(ready.min()),
                 all_ready_s=float(ready.max()), launch_s=launch, ready_s=ready, cpu_s=cpu)


def test_the_reference_is_every_runs_early_boots_and_the_probe_runs_cores() -> None:
    rng = np.random.default_rng(4)
    runs = []
    for count, interval in ((PROBE_COUNT, PROBE_INTERVAL_MS), (300, 10.0), (50, 5.0)):
        cpu = rng.uniform(0.02, 0.04, count)
        runs.append(_burst(count, interval, cpu, planned_launches(count, interval) + 0.6))
    reference = host_reference(runs)
    assert reference is not None and reference.bursts == 3
    early = np.concatenate([r.cpu_s[:EARLY_INSTANCES] for r in runs if r.cpu_s is not None])
    assert reference.boot_cpu_s == pytest.approx(float(np.median(early)))
    probe_run = runs[0]
    assert probe_run.launch_s is not None and probe_run.ready_s is not None
    assert reference.effective_cores == pytest.approx(burst_effective_cores(
        probe_run.launch_s, probe_run.ready_s, probe_run.cpu_s))  # type: ignore[arg-type]
    # Without a run of the probe's configuration there is nothing to compare a probe with.
    assert host_reference(runs[1:]) is None


def test_host_drift_between_runs_does_not_pass_for_growth() -> None:
    # No growth at all, but the host is slower during the larger bursts (as when a sweep's
    # long bursts meet a slow spell): pooled CPU times rise with the residents, each run's do not.
    rng = np.random.default_rng(8)
    runs = []
    for count in (50, 200, 800):
        speed = 0.025 * (1 + count / 1000)
        cpu = speed * np.exp(rng.normal(0, 0.08, count))
        runs.append(_burst(count, 5.0, cpu, planned_launches(count, 5.0) + 0.1))
    _, growth, _ = measured_work(runs)
    assert growth == 0.0


def test_a_runs_own_speed_is_the_probe_read_at_that_runs_moment() -> None:
    # The probe was taken while the host ran at CALIBRATED's speed; the burst ran after the host
    # sped up to OTHER's. Read off the run's own first boots (as the probe reads its bursts),
    # the speed is OTHER's; the cores stay the probe's (one run's span mixes its ramp with them).
    speed = host_speed(probe_bursts(CALIBRATED, 5, seed=1))
    probe = ProbeFile(boot="firmware", accel="kvm", memory_mb=16, created_at="now", host={},
                      qemu_version="x", duration_s=12.0, speed=speed,
                      boot_cpu_quartiles_s=(0.02, 0.03), effective_cores_range=(1.7, 1.9),
                      launch_lateness_p99_s=1e-4, runs=[])
    _, _, cpu = probe_bursts(OTHER, 1, seed=3)[0]
    own = own_speed(probe, cpu)
    assert own.speed.boot_cpu_s == float(np.median(cpu[:EARLY_INSTANCES]))
    assert own.speed.boot_cpu_s / speed.boot_cpu_s == pytest.approx(0.72, rel=0.1)
    assert own.speed.effective_cores == speed.effective_cores
    assert own.model_dump(exclude={"speed"}) == probe.model_dump(exclude={"speed"})
