"""A host probe: the two figures of a host that change between machines and days (the CPU one
boot needs, the CPU a saturating burst gets), and how they carry a calibration to another host.

The probe runs one short burst configuration that every host calibration's data also holds
(PROBE_COUNT instances PROBE_INTERVAL_MS apart); the same estimators read the probe's bursts and
the calibration's bursts of that configuration, so a host's speed is compared like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import UserError
from sim.files import FileError, load_yaml_model
from sim.model.node_model import NodeModel

PROBE_COUNT = 100
"""Instances in one probe burst: enough to saturate two cores for about a second."""
PROBE_INTERVAL_MS = 1.0
"""Launch interval of a probe burst (a configuration of every host calibration's grid)."""
EARLY_INSTANCES = 20
"""The boots whose CPU time measures the host's speed: the first of each burst, launched with
few instances already on the node (the growth of a boot's work with residents stays < 2 %)."""
HOST_DRIFT_SIGMA = 0.128
"""How far a host's speed moves between a probe and the bursts of the next quarter hour: the
root mean square over transfer runs of a run's drift (run_drift: log of its bursts' CPU per
boot over the probe's before them), estimated by `benchmarks/transfer.py drift` from the runs
under benchmarks/results/transfer/ (tests/test_probe_drift.py recomputes it). It weighs a probe
against the calibration (weighed), and what is left of it goes into the intervals of a forecast
carried to a probe (sim.model.forecast)."""
HOST_DRIFT_RUNS = 13
"""The transfer runs HOST_DRIFT_SIGMA comes from."""
HOST_SPREAD_SIGMA = 0.124
"""How far hosts of this kind, on their days, lie from the shipped firmware calibration's host:
the root mean square over the same transfer runs of log(the bursts' CPU per boot / the
calibration's reference) (run_drift against the reference; `benchmarks/transfer.py drift`).
With HOST_DRIFT_SIGMA it weighs a probe against the calibration (weighed); taken for every
calibration, as the spread of this machine kind's hosts and days."""


class HostSpeed(BaseModel):
    """What a host gives one boot, read off bursts of the probe configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    boot_cpu_s: float = Field(gt=0)
    """Median CPU time of the first EARLY_INSTANCES boots of each burst (a probe's bursts; for
    a calibration's reference, every run of its data)."""
    effective_cores: float = Field(gt=0)
    """CPU the instances of a probe-configuration burst get together: their total CPU time over
    the burst's span (first launch to last ready), median over bursts."""
    bursts: int = Field(ge=1)
    """How many bursts the CPU per boot comes from."""


class MemoryPrice(BaseModel):
    """What fresh memory costs a boot on the probed host (measure/harness/memory.py): the fault
    price on free memory the host still backs and on memory it took back, and how much free
    memory it still backs once its free page reporting has settled."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    per_instance_gb: float = Field(gt=0)
    """Fresh memory one instance takes: the median anonymous memory of the probe's instances
    when ready (the guest's RAM it touched and QEMU's heap)."""
    backed_s_per_gb: float = Field(gt=0)
    """CPU seconds to fault in a GB of free memory the host still backs."""
    reclaimed_s_per_gb: float = Field(gt=0)
    """CPU seconds to fault in a GB of memory the host took back (= backed_s_per_gb when the
    probe found no step: a host without reporting, or a pool larger than it faulted in)."""
    backed_gb: float = Field(ge=0)
    """Free memory the host still backs once reporting has settled."""
    chunk_s_per_gb: list[float]
    """The price of each quarter GB the probe faulted in, in order (the evidence)."""
    settle_s: float = Field(ge=0)
    """How long the probe waited for the reporting to settle first."""
    reporting: bool
    """Whether the kernel counts reported memory (its free page reporting was seen)."""

    @property
    def extra_s(self) -> float:
        """Extra CPU of a boot whose fresh memory is all reclaimed (reclaimed_memory_s)."""
        return self.per_instance_gb * max(0.0, self.reclaimed_s_per_gb - self.backed_s_per_gb)

    @property
    def backed_instances(self) -> float:
        """Instances whose fresh memory the backed pool holds (NodeModel.backed_instances)."""
        return self.backed_gb / self.per_instance_gb


class ProbeFile(BaseModel):
    """What `measure probe` writes: the host's speed, the host, and the runs it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1
    boot: str
    accel: str
    memory_mb: int
    created_at: str
    host: dict[str, Any]
    qemu_version: str
    duration_s: float
    speed: HostSpeed
    boot_cpu_quartiles_s: tuple[float, float]
    """25th and 75th percentile of the early boots' CPU time (spread within the probe)."""
    effective_cores_range: tuple[float, float]
    """Least and most effective cores over the probe's bursts."""
    launch_lateness_p99_s: float
    """99th percentile of actual minus planned launch time: the launcher's speed."""
    runs: list[str]
    memory: MemoryPrice | None = None
    """What fresh memory costs here (None: a probe written before it was measured)."""


def early_boot_cpu(cpu_s: Sequence[float] | np.ndarray) -> np.ndarray:
    """CPU times of the first EARLY_INSTANCES boots of one burst (in launch order, NaN dropped)."""
    cpu = np.asarray(cpu_s, dtype=float)[:EARLY_INSTANCES]
    return cpu[np.isfinite(cpu)]


def run_boot_cpu(cpu_s: Sequence[float] | np.ndarray) -> float:
    """A run's CPU per boot as the probe reads its own: the median of its first boots'."""
    return float(np.median(early_boot_cpu(cpu_s)))


def burst_effective_cores(launch_s: np.ndarray, ready_s: np.ndarray, cpu_s: np.ndarray) -> float:
    """Total CPU time of one burst's instances until ready over its span (first launch to last
    ready): the CPU the boots got together while the burst lasted."""
    span = float(np.nanmax(ready_s) - np.nanmin(launch_s))
    return float(np.nansum(cpu_s)) / span


def host_speed(bursts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> HostSpeed:
    """The host's speed from probe-configuration bursts, each (launch_s, ready_s, cpu_s) in
    launch order with every instance ready."""
    if not bursts:
        raise ValueError("no burst of the probe configuration")
    early = np.concatenate([early_boot_cpu(cpu) for _, _, cpu in bursts])
    cores = [burst_effective_cores(*b) for b in bursts]
    return HostSpeed(boot_cpu_s=float(np.median(early)),
                     effective_cores=float(np.median(cores)), bursts=len(bursts))


def own_speed(probe: ProbeFile, cpu_s: Sequence[float] | np.ndarray) -> ProbeFile:
    """The probe with its CPU per boot read off one run's own first boots, as the probe reads
    its own bursts (early_boot_cpu): the host's speed at that run's moment, which no user has
    before the run (benchmarks/transfer.py `--probe own`: what is left is the model's error, not
    the host's drift since the probe)."""
    boot = run_boot_cpu(cpu_s)
    return probe.model_copy(update={"speed": probe.speed.model_copy(
        update={"boot_cpu_s": boot})})


def run_drift(probe: HostSpeed, runs_cpu_s: Sequence[Sequence[float] | np.ndarray]) -> float:
    """How far the host moved from a probe to the runs after it: the median over runs of
    log(the run's CPU per boot, read as the probe reads its own / the probe's)."""
    if not runs_cpu_s:
        raise ValueError("no run after the probe")
    own = [run_boot_cpu(cpu) for cpu in runs_cpu_s]
    return float(np.median(np.log(np.asarray(own) / probe.boot_cpu_s)))


def drift_sigma(drifts: Sequence[float]) -> float:
    """The root mean square of runs' drifts (a shift of every run in one direction counts)."""
    if not drifts:
        raise ValueError("no drift")
    return float(np.sqrt(np.mean(np.square(drifts))))


def drifted(probed: HostSpeed, log_factor: float) -> HostSpeed:
    """The probed speed with its CPU per boot moved by exp(log_factor)."""
    return probed.model_copy(update={"boot_cpu_s": probed.boot_cpu_s * float(np.exp(log_factor))})


def drift_left(drift_sigma: float, spread_sigma: float) -> float:
    """The log-scale sd of a probe's error once weighed against the calibration (weighed)."""
    return float(spread_sigma * drift_sigma / np.hypot(spread_sigma, drift_sigma))


def weighed(probed: HostSpeed, reference: HostSpeed, drift_sigma: float = HOST_DRIFT_SIGMA,
            spread_sigma: float = HOST_SPREAD_SIGMA) -> tuple[HostSpeed, float]:
    """The probed host's CPU per boot weighed against the calibration's by their spreads, and
    the standard deviation of its log error.

    Two readings of the host's speed at the bursts' moment: the calibration's reference, off
    by the spread of hosts and days (spread_sigma), and the probe, off by the host's drift
    since it (drift_sigma). On a log scale the best combination takes the fraction
    w = spread^2 / (spread^2 + drift^2) of the probe's distance from the reference; its error
    has sd spread * drift / sqrt(spread^2 + drift^2). No drift: the probe as it is."""
    if drift_sigma <= 0:
        return probed, 0.0
    total = spread_sigma ** 2 + drift_sigma ** 2
    weight = spread_sigma ** 2 / total
    boot = reference.boot_cpu_s * (probed.boot_cpu_s / reference.boot_cpu_s) ** weight
    return (probed.model_copy(update={"boot_cpu_s": float(boot)}),
            drift_left(drift_sigma, spread_sigma))


def transfer(model: NodeModel, reference: HostSpeed, probed: HostSpeed) -> NodeModel:
    """The calibrated node model carried to the probed host.

    A boot's CPU work (and a launch's, and the hold of the VM-creation lock) scales with the
    host's CPU time per boot, and the cores the boots share with the CPU a saturating burst
    gets: every other term (delay, warm-up, CV, floor, relative growth, where the lock is taken)
    is a property of the guest and the hypervisor, kept as calibrated. The probe's memory price
    is not charged here: it gives a bound (sim.model.forecast.cold_memory)."""
    try:
        return NodeModel.model_validate({
            **model.model_dump(),
            "work_s": model.work_s * probed.boot_cpu_s / reference.boot_cpu_s,
            "launch_cpu_s": model.launch_cpu_s * probed.boot_cpu_s / reference.boot_cpu_s,
            "launch_alone_s": model.launch_alone_s * probed.boot_cpu_s / reference.boot_cpu_s,
            "lock_s": model.lock_s * probed.boot_cpu_s / reference.boot_cpu_s,
            "cores": model.cores * probed.effective_cores / reference.effective_cores,
        })
    except ValidationError:
        raise UserError(f"a probe of {probed.boot_cpu_s:g} s per boot and "
                        f"{probed.effective_cores:g} cores carries the model out of range; "
                        "probe again") from None


class ProbeFileError(FileError):
    """A probe file that cannot be read or does not validate (a user's mistake)."""


def load_probe(path: Path) -> ProbeFile:
    """Read and validate a probe file; any defect raises ProbeFileError (file:line:col)."""
    return load_yaml_model(path, ProbeFile, error=ProbeFileError)


def check_probe(probe: ProbeFile, reference: HostSpeed | None, boot: str | None,
                where: str) -> HostSpeed:
    """The reference a probe is compared with, or a UserError saying why it cannot be."""
    if reference is None:
        raise UserError(f"{where}: the calibration holds no host reference (its data have no "
                        f"{PROBE_COUNT}-at-{PROBE_INTERVAL_MS:g}-ms burst); refit it from "
                        "per-instance data that do, or predict without --probe")
    if boot is not None and probe.boot != boot:
        raise UserError(f"{where}: the probe booted `{probe.boot}` but the calibration is of "
                        f"`{boot}`; probe with --boot {boot}")
    return reference
