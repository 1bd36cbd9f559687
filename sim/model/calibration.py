"""The calibration file: a fitted node model with its intervals, provenance and fit quality.

Pure data validated by pydantic; `load_calibration` reads it with sim.files' loader and turns any
defect into a CalibrationFileError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import UserError
from sim.files import FileError, load_yaml_model
from sim.model.intervals import RunNoise
from sim.model.node_model import LauncherMode, NodeModel
from sim.model.probe import HostSpeed, ProbeFile, check_probe, transfer, weighed

SCHEMA_VERSION: Literal[1] = 1

InputKind = Literal["summary_table", "instances"]


class CalibrationFileError(FileError):
    """A calibration file that cannot be read or does not validate (a user's mistake)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParameterEstimate(_Frozen):
    """One node-model parameter: the fitted (or fixed) value and its bootstrap interval."""

    value: float
    source: Literal["fitted", "measured", "fixed"]
    """fitted by the calibration; measured directly (work from per-instance CPU time); or fixed
    by the family (its interval is then the value itself)."""
    low: float
    """Lower end of the percentile bootstrap interval (level in FitSettings.interval_level)."""
    high: float
    unit: str
    meaning: str

    @model_validator(mode="after")
    def _interval_contains_value(self) -> ParameterEstimate:
        if not self.low <= self.high:
            raise ValueError(f"interval low {self.low} is above high {self.high}")
        return self


class HostInfo(_Frozen):
    """The machine the data came from, as its manifests (or the study's text) describe it."""

    source: Literal["manifests", "stated"]
    """manifests: read from the runs; stated: given by the user (for a table, its source text)."""
    description: str
    cpu_model: str | None = None
    cores: int | None = Field(default=None, ge=1)
    """Logical CPUs the host's scheduler sees."""
    memory_mb: int | None = None
    kernel: str | None = None


class DataFile(_Frozen):
    """An input of the fit, named as given on the command line and pinned by its hash."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: InputKind
    rows: int = Field(ge=1)


class Configuration(_Frozen):
    """One (count, interval) configuration used in the fit and how many runs it holds."""

    count: int = Field(ge=1)
    interval_ms: float = Field(ge=0)
    runs: int = Field(ge=1)


class Provenance(_Frozen):
    host: HostInfo
    data_files: list[DataFile] = Field(min_length=1)
    configurations: list[Configuration] = Field(min_length=1)
    boot: str | None = None
    """Boot path of the instances (`firmware`, `bios`) when the manifests say; None for tables."""
    accel: str | None = None


class Errors(_Frozen):
    """Median relative errors over runs (fractions, not percent)."""

    first_ready: float = Field(ge=0)
    all_ready: float = Field(ge=0)
    ready_w1: float | None = Field(default=None, ge=0)
    """Per-instance only: median over runs of W1(predicted, measured ready times) / makespan."""


class Scores(_Frozen):
    """Errors of one predictor in training and under the two cross-validation schemes."""

    training: Errors
    leave_one_count_out: Errors
    leave_one_interval_out: Errors


class FamilyScore(_Frozen):
    """One candidate family tried during model selection."""

    family: str
    free: list[str]
    measured_work: bool
    scores: Scores
    heldout_loss: float
    """Robust objective summed over both CV schemes' held-out predictions: the selection key."""


class ConfigurationFit(_Frozen):
    """Measured vs predicted for one configuration (measured = median over its runs)."""

    count: int
    interval_ms: float
    runs: int
    measured_first_ready_s: float
    measured_all_ready_s: float
    fitted_first_ready_s: float
    fitted_all_ready_s: float
    count_heldout_first_ready_s: float
    """Predicted by the fit that never saw this configuration's count."""
    count_heldout_all_ready_s: float
    interval_heldout_first_ready_s: float
    interval_heldout_all_ready_s: float
    baseline_count_heldout_first_ready_s: float
    baseline_count_heldout_all_ready_s: float
    count_heldout_ready_w1: float | None = None
    """Per-instance data: median over runs of W1(forecast, measured ready times) / makespan."""
    count_heldout_quantiles_s: list[float] | None = None
    """Per-instance data: the held-out forecast's ready-time quantiles at levels (i + 1/2) / n."""


class FitQuality(_Frozen):
    model: Scores
    baseline: Scores
    """The straight-line regression (see measure/calibration/baseline.py) on the same folds."""
    families: list[FamilyScore]
    configurations: list[ConfigurationFit]


class FitSettings(_Frozen):
    loss: Literal["soft_l1", "huber", "linear", "cauchy"]
    seed: int
    work_draws: int = Field(ge=1)
    """Replications of the per-instance work drawn for each configuration (common to all fits)."""
    bootstrap: int = Field(ge=0)
    interval_level: float = Field(gt=0, lt=1)
    noise_first_ready: float = Field(gt=0)
    """Relative noise scale of first-ready used to weigh its residuals (from replicate runs)."""
    noise_all_ready: float = Field(gt=0)
    noise_ready_w1: float = Field(gt=0)
    selection: str


class LauncherErrors(_Frozen):
    """Median absolute relative error of each figure over held-out configurations."""

    first_ready: float = Field(ge=0)
    p10_ready: float = Field(ge=0)
    median_ready: float = Field(ge=0)
    all_ready: float = Field(ge=0)


class ReservedLaunch(_Frozen):
    """How model.launch_alone_s was measured: from the queued launches of reserved-launcher runs
    (measure/calibration/reserved_launch.py), read directly, not fitted."""

    data_files: list[DataFile] = Field(min_length=1)
    configurations: list[Configuration] = Field(min_length=1)
    """The reserved-launcher runs' configurations."""
    boot_cpu_s: float = Field(gt=0)
    """The runs' host speed: the median CPU time of their first boots (early_boot_cpu)."""
    launch_alone_s_on_data_host: float = Field(gt=0)
    """The measurement before it is carried to the calibration's host terms."""
    runs_measured: int = Field(ge=1)
    """Runs with 10 or more queued launches (the others' launches never waited)."""


class LauncherFit(_Frozen):
    """How the fair launcher's CPU per launch (model.launch_cpu_s) was fitted: to fair-launcher
    runs, the rest of the model carried to their host by realtime runs measured beside them
    (measure/calibration/launcher_fit.py)."""

    data_files: list[DataFile] = Field(min_length=1)
    configurations: list[Configuration] = Field(min_length=1)
    host_speed: HostSpeed
    """The speed of the fair runs' host (its realtime runs, read as a probe reads a host)."""
    launch_cpu_s_on_data_host: float = Field(gt=0)
    """The fit before it is carried back to the calibration's host terms."""
    heldout: LauncherErrors
    """Leave one configuration out: the model with its launcher term."""
    heldout_without_launcher: LauncherErrors
    """The same model with launches on time (no launcher term)."""
    heldout_line: LauncherErrors
    """A straight line of each figure in count, interval and their product, same folds."""
    reserved: ReservedLaunch | None = None
    """How model.launch_alone_s was measured (None: no reserved-launcher runs)."""


class Calibration(_Frozen):
    """A fitted node model ready for `measure predict` and the simulator."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    family: str
    family_version: int = Field(ge=1)
    model: NodeModel
    parameters: dict[str, ParameterEstimate]
    provenance: Provenance
    fit: FitQuality
    settings: FitSettings
    host_reference: HostSpeed | None = None
    """The data's host speed, read as `measure probe` reads a host (None: the data hold no
    burst of the probe's configuration): what a probe of another host is compared with."""
    run_noise: RunNoise | None = None
    """Run-to-run variability of each figure between replicate runs of the data: the
    run-to-run part of prediction intervals."""
    launcher_fit: LauncherFit | None = None
    """How model.launch_cpu_s was fitted (None: no fair-launcher data; launch_cpu_s 0)."""

    @model_validator(mode="after")
    def _parameters_match_model(self) -> Calibration:
        model = self.model.model_dump()
        unknown = sorted(set(self.parameters) - set(model))
        if unknown:
            raise ValueError(f"parameters {unknown} are not node-model parameters")
        for name, estimate in self.parameters.items():
            if estimate.value != model[name]:
                raise ValueError(
                    f"parameter {name} = {estimate.value} differs from model.{name} = {model[name]}"
                )
        return self


def calibration_json(calibration: Calibration) -> str:
    """Canonical text of a calibration: same calibration, same bytes."""
    return json.dumps(calibration.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def write_calibration(calibration: Calibration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration_json(calibration), encoding="utf-8")


def load_calibration(path: Path) -> Calibration:
    """Read and validate a calibration file; any defect raises CalibrationFileError, whose
    lines say `file:line:col: path: message`."""
    return load_yaml_model(path, Calibration, error=CalibrationFileError)


def with_launcher(model: NodeModel, launcher: LauncherMode | None, where: str) -> NodeModel:
    """The model with the launcher `launcher` (None: as it is); a fair or reserved launcher
    needs the launcher term a fit of fair-launcher runs gives (`measure calibrate-launcher`),
    and a reserved one a core to spare."""
    if launcher is None or launcher == model.launcher:
        return model
    if launcher != "realtime" and not (model.launch_cpu_s > 0 or (
            launcher == "reserved" and model.launch_alone_s > 0)):
        raise UserError(f"{where}: no fair-launcher fit (launch_cpu_s is 0); fit one with "
                        "`measure calibrate-launcher`, or use the realtime launcher")
    try:  # (validated: NodeModel checks that a reserved launcher leaves the instances a core)
        return NodeModel.model_validate({**model.model_dump(), "launcher": launcher})
    except ValidationError as exc:
        raise UserError(f"{where}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}; "
                        "use the realtime or fair launcher") from None


def calibration_with_launcher(calibration: Calibration, launcher: LauncherMode | None,
                              where: str) -> Calibration:
    """The calibration with its model's launcher set by with_launcher()."""
    return calibration.model_copy(update={"model": with_launcher(calibration.model, launcher,
                                                                 where)})


def carried_model(calibration: Calibration, probe: ProbeFile, where: str) -> NodeModel:
    """The calibration's node model carried to the host `probe` measured, its CPU per boot
    weighed against the calibration's (sim.model.probe.weighed; `where` names the probe in the
    error a user gets when it cannot be)."""
    reference = check_probe(probe, calibration.host_reference, calibration.provenance.boot, where)
    return transfer(calibration.model, reference, weighed(probe.speed, reference)[0])
