"""Real against predicted: the per-instance ready times of a replayed (or any measured) burst
compared with what the calibrated node model predicts for the same launches: the actual launch
times under the realtime launcher; under a fair launcher with a launcher fit, the planned times,
the model's launcher making them late as the real one did."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy.stats import wasserstein_distance

from measure.calibration.host_costs import works_from_cpu
from measure.harness.dataset import incomplete_runs, load_instances, load_manifests
from measure.harness.records import launcher_mode
from sim.errors import UserError
from sim.model.burst_stats import burst_figures
from sim.model.calibration import Calibration, carried_model, load_calibration
from sim.model.node_model import LauncherMode
from sim.model.predict import burst_ready_times
from sim.model.probe import load_probe
from sim.model.ready_times import ready_times

STATS = ("first_ready_s", "median_ready_s", "p95_ready_s", "all_ready_s")


class RunValidation(BaseModel):
    """One measured run against the model's prediction for its launches."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    run_id: str
    schedule: str | None
    launcher: str
    """The run's launcher (its manifest); a fair one is modelled when the calibration has a fit."""
    count: int
    ready: int
    real: dict[str, float]
    predicted: dict[str, float]
    relative_error: dict[str, float]
    """(predicted - real) / real for each statistic."""
    wasserstein_s: float
    """W1 distance between real and predicted per-instance ready times (seconds)."""
    wasserstein_over_makespan: float
    mean_ready_real_s: float
    mean_ready_predicted_s: float


def _stats(ready: np.ndarray) -> dict[str, float]:
    """The burst's figures; its all-ready is the last ready time (unready instances aside)."""
    return {k: float(v) for k, v in burst_figures(ready).items() if v is not None}


def validate_run(rows: pd.DataFrame, calibration: Calibration, schedule: str | None = None,
                 work: str = "model", launcher: LauncherMode = "realtime",
                 ) -> tuple[RunValidation, np.ndarray, np.ndarray]:
    """Compare one run; also returns (real ready times, predicted ready times of every draw).

    work="model": instances draw their work from the calibration, as the simulator does (the
    prediction a platform would have made beforehand). work="measured": each instance's work is
    the CPU time its QEMU really used, which takes the host's speed on the day out of the
    comparison and tests the contention model alone."""
    if work not in ("model", "measured"):
        raise UserError(f"work must be 'model' or 'measured' (got {work!r})")
    rows = rows.sort_values("instance")
    launched = rows[rows.launch_s.notna()]
    if launched.empty:
        raise UserError(f"run {rows.run_id.iloc[0]} launched nothing; nothing to validate")
    ready = launched[launched.status == "ready"].ready_s.to_numpy(dtype=float)
    if ready.size == 0:
        raise UserError(f"run {rows.run_id.iloc[0]} has no ready instance; nothing to validate")
    model = calibration.model.model_copy(update={"launcher": launcher})
    if model.launches_queue:
        launch = launched.planned_launch_s.to_numpy(dtype=float)
    else:
        launch = launched.launch_s.to_numpy(dtype=float)
    interval = float(rows.interval_ms.iloc[0])
    if work == "measured":
        cpu = launched.cpu_s.to_numpy(dtype=float)
        if np.isnan(cpu).any():
            raise UserError(f"run {rows.run_id.iloc[0]} lacks CPU times; use --work model")
        works = works_from_cpu(model, launch, cpu)
        draws = ready_times(model, launch, work=works)[None, :]
    else:
        draws = burst_ready_times(model, launch, interval,
                                  calibration.settings.work_draws, calibration.settings.seed)
    real = _stats(ready)
    per_draw = [_stats(d) for d in draws]
    predicted = {k: float(np.mean([p[k] for p in per_draw])) for k in STATS}
    w1 = float(np.mean([wasserstein_distance(ready, d) for d in draws]))
    makespan = real["all_ready_s"]
    result = RunValidation(
        run_id=str(rows.run_id.iloc[0]), schedule=schedule, launcher=launcher, count=len(rows),
        ready=int(ready.size),
        real=real, predicted=predicted,
        relative_error={k: (predicted[k] - real[k]) / real[k] for k in STATS},
        wasserstein_s=w1, wasserstein_over_makespan=w1 / makespan,
        mean_ready_real_s=float(ready.mean()), mean_ready_predicted_s=float(draws.mean()),
    )
    return result, ready, draws


def validate_dataset(dataset: Path, calibration_path: Path, plot_dir: Path | None = None,
                     work: str = "model", probe: Path | None = None,
                     launchers: Mapping[str, LauncherMode] | None = None) -> list[RunValidation]:
    """Every run of a dataset against the calibration (carried to the host a probe measured,
    when one is given); optional CDF overlay plots. A run's launcher is its manifest's, else
    `launchers`' (by run id), else realtime."""
    calibration = load_calibration(calibration_path)
    if probe is not None:
        # Only the node model changes; the fit settings (work draws, seed) stay the calibration's.
        carried = carried_model(calibration, load_probe(probe), str(probe))
        calibration = calibration.model_copy(update={"model": carried})
    instances = load_instances(dataset)
    manifests = load_manifests(dataset) if dataset.is_dir() else []
    schedules = {m.run_id: m.schedule for m in manifests}
    launchers = {**(launchers or {}),
                 **{m.run_id: launcher_mode(m.harness_sched) for m in manifests}}
    cut = incomplete_runs(instances)
    for cut_id, (have, count) in cut.items():
        print(f"warning: {dataset}: run {cut_id} has {have} of its {count} instance rows (cut "
              "short by an interruption); not validated", file=sys.stderr)
    if len(cut) == instances.run_id.nunique():
        raise UserError(f"{dataset}: every run is cut short (fewer rows than instances); "
                        "nothing whole to validate")
    results = []
    for run_id, rows in instances.groupby("run_id", sort=True):
        if str(run_id) in cut:
            continue
        result, real, draws = validate_run(rows, calibration, schedules.get(str(run_id)), work,
                                           launchers.get(str(run_id), "realtime"))
        results.append(result)
        if plot_dir is not None:
            plot_overlay(result, real, draws, plot_dir / f"validate-{run_id}.png")
    return results


def plot_overlay(result: RunValidation, real: np.ndarray, draws: np.ndarray, path: Path) -> None:
    """CDF of real per-instance ready times over the model's, one faint line per draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, d in enumerate(draws):
        xs = np.sort(d)
        ax.plot(xs, np.arange(1, xs.size + 1) / xs.size, color="tab:orange", alpha=0.3, lw=1,
                label="model (each work draw)" if i == 0 else None)
    xs = np.sort(real)
    ax.plot(xs, np.arange(1, xs.size + 1) / result.count, color="tab:blue", lw=2, label="real")
    ax.set_xlabel("ready time from burst start (s)")
    ax.set_ylabel("fraction of instances ready")
    title = result.schedule or result.run_id
    ax.set_title(f"{title[:70]}\nW1/makespan {result.wasserstein_over_makespan:.1%}", fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
