"""A reserved launcher's time per launch (NodeModel.launch_alone_s), measured from its runs.

A reserved launcher runs alone on a core of its own and launches one instance at a time: a
launch that was due before the previous one ended begins when that one ends, so the gap between
the two launch ends is one whole launch (the spawn, the CPU-pinning wrapper's exec, QEMU's
exec), whatever the boots on the other cores do. Those gaps are read directly, not fitted: no
boot figure enters the estimate, so the runs' first-ready times stay free to judge the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from measure.calibration.data import Burst, CalibrationData
from sim.errors import UserError
from sim.model.calibration import (
    Calibration,
    Configuration,
    ParameterEstimate,
    ReservedLaunch,
)
from sim.model.probe import early_boot_cpu


def queued_gaps(launch_s: np.ndarray, interval_ms: float) -> np.ndarray:
    """Gaps between consecutive launch ends (launch order, burst start = 0) whose later launch
    was due by the time the earlier one ended (planned i * interval): each is one launch."""
    launch = np.asarray(launch_s, dtype=float)
    planned = np.arange(len(launch)) * interval_ms / 1e3
    queued = planned[1:] <= launch[:-1]
    gaps = np.diff(launch)[queued]
    return gaps[np.isfinite(gaps)]


def run_spacing(burst: Burst) -> float | None:
    """Mean time per queued launch of one run (None: fewer than 10 of its launches queued)."""
    if burst.launch_s is None:
        return None
    gaps = queued_gaps(burst.launch_s, burst.interval_ms)
    return float(np.mean(gaps)) if len(gaps) >= 10 else None


def with_reserved_launch(calibration: Calibration, data: CalibrationData,
                         runs: Sequence[Burst]) -> Calibration:
    """The calibration with launch_alone_s measured from the reserved-launcher `runs` of `data`:
    the median over runs of each run's mean queued launch, carried to the calibration's host
    terms by the runs' own CPU per boot (as work_s and launch_cpu_s are: transfer() scales all
    three alike)."""
    reference = calibration.host_reference
    fit = calibration.launcher_fit
    if reference is None or fit is None:
        raise UserError("a reserved launcher's launches are measured beside a fair-launcher fit "
                        "and a host reference; give fair-launcher runs too, or a calibration "
                        "that has both (measure calibrate-launcher)")
    measured = [(b, s) for b, s in ((b, run_spacing(b)) for b in runs) if s is not None]
    spacings = [s for _, s in measured]
    if not spacings:
        raise UserError("no reserved-launcher run has 10 or more launches that queued; measure "
                        "dense bursts (e.g. --interval-ms 0) with --launcher reserved")
    # The host's speed from the same runs as the launches (the others never queued).
    early = np.concatenate([early_boot_cpu(b.cpu_s) for b, _ in measured
                            if b.cpu_s is not None])
    if len(early) == 0:
        raise UserError("the reserved-launcher runs have no per-instance CPU time to read the "
                        "host's speed from; measure them with this version's harness")
    boot_cpu = float(np.median(early))
    on_host = float(np.median(spacings))
    scale = reference.boot_cpu_s / boot_cpu
    value = on_host * scale
    estimate = ParameterEstimate(
        value=value, source="measured", low=min(spacings) * scale, high=max(spacings) * scale,
        unit="s", meaning="time one launch takes on a reserved launcher's own core (spawn, "
                          "CPU-pinning wrapper, QEMU's exec): median over reserved runs of their "
                          "mean queued launch; range: least and most run")
    keys = sorted({b.key for b in runs})
    reserved = ReservedLaunch(
        data_files=list(data.files),
        configurations=[Configuration(count=k[0], interval_ms=k[1],
                                      runs=sum(b.key == k for b in runs)) for k in keys],
        boot_cpu_s=boot_cpu, launch_alone_s_on_data_host=on_host,
        runs_measured=len(spacings))
    return Calibration.model_validate({
        **dict(calibration),
        "model": calibration.model.model_copy(update={"launch_alone_s": value}),
        "parameters": {**calibration.parameters, "launch_alone_s": estimate},
        "launcher_fit": fit.model_copy(update={"reserved": reserved})})
