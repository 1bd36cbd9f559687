"""One burst's forecast as `measure predict` gives it: the five figures, each with an 80 %
interval for a single run, on the calibration's host or carried to a probed one, and the
sentences that say where the forecast leaves the calibration's data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial

from pydantic import BaseModel, ConfigDict, ValidationError

from sim.errors import UserError
from sim.model.calibration import Calibration
from sim.model.intervals import FIGURES, LEVEL, RunNoise, predict_with_intervals
from sim.model.node_model import NodeModel
from sim.model.predict import predict
from sim.model.probe import (
    HOST_DRIFT_RUNS,
    HOST_DRIFT_SIGMA,
    HOST_SPREAD_SIGMA,
    HostSpeed,
    MemoryPrice,
    ProbeFile,
    check_probe,
    drift_left,
    drifted,
    transfer,
    weighed,
)
from sim.model.ranges import data_range, extrapolations

Interval = tuple[float, float]


class ColdMemory(BaseModel):
    """A bound, not a forecast: the burst with every instance beyond the pool of free memory the
    host still backs paying the reclaimed price of its fresh memory (the probe's memory price,
    NodeModel.reclaimed_memory_s). Whether a burst pays it depends on what the host has taken
    back since the memory was last used, which no probe reads (docs/calibration.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    backed_instances: float
    """Instances whose fresh memory the backed pool holds."""
    extra_cpu_s: float
    """Extra CPU of each instance beyond it."""
    median_ready_s: float
    all_ready_s: float


class Forecast(BaseModel):
    """Seconds from the burst start (planned launch of instance 0). A figure is the mean over
    the calibration's work draws; its interval holds a single run with probability LEVEL."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    calibration: str
    count: int
    interval_ms: float
    first_ready_s: float
    p10_ready_s: float
    median_ready_s: float
    p95_ready_s: float
    all_ready_s: float
    first_ready_s_interval: Interval
    p10_ready_s_interval: Interval
    median_ready_s_interval: Interval
    p95_ready_s_interval: Interval
    all_ready_s_interval: Interval
    interval_level: float
    interval_parts: list[str]
    """What the intervals hold: run-to-run variability, parameter uncertainty, and with a probe
    the host's drift since it."""
    host: str
    """The calibration's host, or the probed host the model was carried to."""
    launcher: str
    """realtime (launches on time), fair (the launcher shares the cores: launch_cpu_s) or reserved
    (reserved_launch_s per launch on a core of its own; the instances share the others)."""
    work_s: float
    cores: float
    cold_memory: ColdMemory | None = None
    """What the burst would take if the host had taken back the free memory beyond what the
    probe found it still backs; None without a probe's memory price or when the burst's fresh
    memory fits in that pool."""
    extrapolation: list[str]
    """One sentence for each quantity outside the calibration's data; empty: interpolation."""


def model_figures(model: NodeModel, count: int, interval_ms: float, draws: int,
                  seed: int) -> dict[str, float]:
    """The five figures of `predict` as a mapping (what the interval code takes)."""
    return predict(model, count, interval_ms, draws, seed).model_dump()


def interval_parts(calibration: Calibration) -> tuple[list[str], list[str]]:
    """What the intervals of the calibration's forecasts hold, and what they lack (a part
    whose data the calibration does not record): an interval lacking a part is too narrow
    for a single run."""
    held, lacking = [], []
    noise = calibration.run_noise
    if noise is not None and noise.sigma:
        held.append(f"run-to-run variability ({noise.runs} runs in {noise.configurations} "
                    "replicated configurations)")
    else:
        lacking.append("no run-to-run variability: the calibration does not record it (refit)")
    if any(e.source == "fitted" and e.high > e.low for e in calibration.parameters.values()):
        held.append("parameter uncertainty (bootstrap intervals of the fitted parameters)")
    else:
        lacking.append("no parameter uncertainty: the calibration has no fitted parameter "
                       "with a bootstrap interval")
    return held, lacking


def cold_memory(model: NodeModel, memory: MemoryPrice | None, count: int, interval_ms: float,
                calibration: Calibration) -> ColdMemory | None:
    """The cold-memory bound of a burst on the probed host (`model` carried there already)."""
    if memory is None or memory.extra_s <= 0 or count <= memory.backed_instances:
        return None
    cold = model.model_copy(update={"reclaimed_memory_s": memory.extra_s,
                                    "backed_instances": memory.backed_instances})
    figures = model_figures(cold, count, interval_ms, calibration.settings.work_draws,
                            calibration.settings.seed)
    return ColdMemory(backed_instances=memory.backed_instances, extra_cpu_s=memory.extra_s,
                      median_ready_s=figures["median_ready_s"],
                      all_ready_s=figures["all_ready_s"])


def probe_parts(drift_sigma: float = HOST_DRIFT_SIGMA,
                spread_sigma: float = HOST_SPREAD_SIGMA) -> list[str]:
    """What a probe adds to the parts of an interval (interval_parts): the host's drift since
    it, what is left of it once the probe is weighed against the calibration."""
    if drift_sigma <= 0:
        return []
    source = (f", from {HOST_DRIFT_RUNS} transfer runs" if drift_sigma == HOST_DRIFT_SIGMA
              else "")
    left = drift_left(drift_sigma, spread_sigma)
    return [f"the host's drift since the probe (CPU per boot, log-scale sd {drift_sigma:.2f}"
            f"{source}; {left:.2f} once the probe is weighed against the calibration, hosts "
            f"spreading {spread_sigma:.2f})"]


def drift_part(model: NodeModel, reference: HostSpeed, probed: HostSpeed, sigma: float,
               figures: Callable[[NodeModel], Mapping[str, float]]) -> dict[str, float]:
    """Each figure's log-scale standard deviation from the host's drift since the probe: the
    probed CPU per boot moved sigma up and down (log scale), half the log ratio of the figure
    between the two (a dense burst's all-ready follows the CPU per boot, a sparse burst's
    first-ready hardly does)."""
    if sigma <= 0:
        return {}
    up = figures(transfer(model, reference, drifted(probed, sigma)))
    down = figures(transfer(model, reference, drifted(probed, -sigma)))
    return {name: abs(math.log(up[name] / down[name])) / 2.0 for name in FIGURES}


def forecast(calibration: Calibration, count: int, interval_ms: float,
             probe: ProbeFile | None = None, probe_name: str = "probe",
             drift_sigma: float = HOST_DRIFT_SIGMA,
             spread_sigma: float = HOST_SPREAD_SIGMA) -> Forecast:
    """The forecast of one burst, carried to the probed host when a probe is given: the probe's
    CPU per boot weighed against the calibration's by the host's drift since a probe and the
    spread of hosts (log scale; sim.model.probe.weighed), the intervals holding what is left
    of the drift. drift_sigma 0: the probe as it is, no drift part."""
    adapt = None
    extra: dict[str, float] = {}
    drift_note: list[str] = []
    host = calibration.provenance.host.description
    figures = partial(model_figures, count=count, interval_ms=interval_ms,
                      draws=calibration.settings.work_draws, seed=calibration.settings.seed)
    if probe is not None:
        reference = check_probe(probe, calibration.host_reference, calibration.provenance.boot,
                                probe_name)
        speed, error = weighed(probe.speed, reference, drift_sigma, spread_sigma)
        adapt = partial(transfer, reference=reference, probed=speed)
        try:
            adapt(calibration.model)
            extra = drift_part(calibration.model, reference, speed, error, figures)
        except UserError as exc:
            raise UserError(f"{probe_name}: {exc}") from None
        host = f"{probe.host.get('description', 'probed host')} (probe {probe.created_at})"
        drift_note = probe_parts(drift_sigma, spread_sigma)
    noise = calibration.run_noise or RunNoise(sigma={}, runs=0, configurations=0)
    central, bands = predict_with_intervals(
        calibration.model, calibration.parameters, calibration.settings.interval_level,
        calibration.settings.seed, figures, noise, adapt, extra=extra)
    held, lacking = interval_parts(calibration)
    used = calibration.model if adapt is None else adapt(calibration.model)
    cores = probe.host.get("cores") if probe is not None else None
    record = {
        "calibration": calibration.name, "count": count, "interval_ms": interval_ms,
        **{name: central[name] for name in FIGURES},
        **{f"{name}_interval": bands[name] for name in FIGURES},
        "interval_level": LEVEL, "interval_parts": held + drift_note + lacking, "host": host,
        "launcher": calibration.model.launcher,
        "work_s": used.work_s, "cores": used.cores,
        "cold_memory": None if probe is None else cold_memory(used, probe.memory, count,
                                                              interval_ms, calibration),
        "extrapolation": extrapolations(data_range(calibration), count, interval_ms,
                                        None if cores is None else float(cores)),
    }
    try:
        return Forecast.model_validate(record)
    except ValidationError:
        source = probe_name if probe is not None else calibration.name
        raise UserError(f"{source}: the forecast of {count} instances every {interval_ms:g} ms "
                        "is not finite: the model is carried out of range") from None
