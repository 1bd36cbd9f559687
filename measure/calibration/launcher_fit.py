"""The fair launcher's CPU per launch (NodeModel.launch_cpu_s), fitted to fair-launcher runs.

A fair-share launcher spawns each instance and waits for the child's exec while the child shares
the cores with the boots already running: its launches fall behind as the crowd grows, and the
first instances meet fewer rivals (docs/findings.md, "The launcher"). The node model's launcher
term turns that into one parameter, the CPU a launch needs, served as one more sharer of the
node's processor sharing. Every other parameter is the calibration's (fitted to realtime runs),
carried to the speed of the fair runs' host by the realtime runs measured beside them.

Fitted by least squares on the log of four figures (first, p10, median and all-ready: medians of
the replicate runs of each configuration), one bounded scalar search. Judged on configurations it
did not see (leave one configuration out) against the same model without the launcher term and
against a straight line of each figure in count and interval fitted to the same folds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from measure.calibration.baseline import design, fit_line
from measure.calibration.data import Burst, CalibrationData, ConfigKey
from measure.calibration.host_costs import figures_of, host_reference
from measure.calibration.reserved_launch import with_reserved_launch
from sim.errors import UserError
from sim.model.calibration import (
    Calibration,
    Configuration,
    LauncherErrors,
    LauncherFit,
    ParameterEstimate,
)
from sim.model.forecast import model_figures
from sim.model.node_model import NodeModel
from sim.model.probe import transfer

FIGURES = ("first_ready_s", "p10_ready_s", "median_ready_s", "all_ready_s")
BOUNDS_S = (2e-5, 2e-2)
"""Search range of the CPU per launch: 20 us (a bare vfork) to 20 ms (a heavy daemon)."""

Figures = Mapping[str, float]


def measured_medians(bursts: Sequence[Burst]) -> dict[ConfigKey, dict[str, float]]:
    """Per configuration, the median over its whole runs of each figure."""
    runs: dict[ConfigKey, list[dict[str, float]]] = {}
    for burst in bursts:
        if burst.ready_s is None or not np.all(np.isfinite(burst.ready_s)):
            continue
        runs.setdefault(burst.key, []).append(figures_of(burst))
    return {key: {name: float(np.median([r[name] for r in rs])) for name in FIGURES}
            for key, rs in sorted(runs.items())}


def fair(model: NodeModel, launch_cpu_s: float) -> NodeModel:
    """The model with a fair launcher needing `launch_cpu_s` of CPU per launch."""
    return model.model_copy(update={"launcher": "fair", "launch_cpu_s": launch_cpu_s})


class _Predictions:
    """Model figures per (launch CPU, configuration), computed once."""

    def __init__(self, model: NodeModel, draws: int, seed: int) -> None:
        self.model, self.draws, self.seed = model, draws, seed
        self._cache: dict[tuple[float, ConfigKey], dict[str, float]] = {}

    def __call__(self, launch_cpu_s: float, key: ConfigKey) -> dict[str, float]:
        cached = self._cache.get((launch_cpu_s, key))
        if cached is None:
            model = fair(self.model, launch_cpu_s) if launch_cpu_s > 0 else self.model
            cached = model_figures(model, key[0], key[1], self.draws, self.seed)
            self._cache[(launch_cpu_s, key)] = cached
        return cached


def _loss(predict: Callable[[float, ConfigKey], Figures], launch_cpu_s: float,
          measured: Mapping[ConfigKey, Figures]) -> float:
    return float(sum(np.log(predict(launch_cpu_s, key)[name] / figures[name]) ** 2
                     for key, figures in measured.items() for name in FIGURES))


def fit_launch_cpu(predict: Callable[[float, ConfigKey], Figures],
                   measured: Mapping[ConfigKey, Figures]) -> float:
    """The CPU per launch that best explains the measured figures (bounded search on its log,
    started from the best of a coarse log grid so that a local dip cannot hold it)."""
    grid = np.geomspace(*BOUNDS_S, 13)
    losses = [_loss(predict, float(c), measured) for c in grid]
    best = int(np.argmin(losses))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = minimize_scalar(lambda x: _loss(predict, float(np.exp(x)), measured),
                             bounds=(np.log(low), np.log(high)), method="bounded",
                             options={"xatol": 0.02})
    found = float(np.exp(result.x))
    return found if result.fun <= losses[best] else float(grid[best])


def _errors(pairs: Sequence[tuple[Figures, Figures]]) -> LauncherErrors:
    """Median absolute relative error of each figure over (predicted, measured) pairs."""
    return LauncherErrors.model_validate({
        name.removesuffix("_s"): float(np.median([abs(p[name] / m[name] - 1.0)
                                                  for p, m in pairs]))
        for name in FIGURES})


def fit_launcher(calibration: Calibration, data: CalibrationData) -> Calibration:
    """The calibration with its launcher terms from `data`: launch_cpu_s fitted to its
    fair-launcher runs (which need realtime runs of the probe's configuration beside them, to
    carry the calibration to the speed of their host), and launch_alone_s measured from its
    reserved-launcher runs (reserved_launch.py). Data without fair runs keep the calibration's
    fair fit."""
    fair_runs = [b for b in data.bursts if b.launcher == "fair"]
    reserved_runs = [b for b in data.bursts if b.launcher == "reserved"]
    if not fair_runs and not reserved_runs:
        raise UserError("the data hold no fair- or reserved-launcher run; measure them with "
                        "`measure sweep --launchers realtime,fair` or `--launchers reserved`")
    fitted = _fit_fair(calibration, data, fair_runs) if fair_runs else calibration
    return with_reserved_launch(fitted, data, reserved_runs) if reserved_runs else fitted


def _fit_fair(calibration: Calibration, data: CalibrationData,
              fair_runs: Sequence[Burst]) -> Calibration:
    """The calibration with launch_cpu_s fitted to `fair_runs` (fit_launcher)."""
    measured = measured_medians(fair_runs)
    if len(measured) < 3:
        raise UserError(f"{len(measured)} configurations of whole fair-launcher runs; the "
                        "launcher fit needs at least 3 (measure sweep --launchers realtime,fair)")
    speed = host_reference([b for b in data.bursts if b.launcher == "realtime"])
    reference = calibration.host_reference
    if speed is None or reference is None:
        raise UserError("the launcher fit carries the calibration to the fair runs' host by "
                        "realtime runs of 100 instances at 1 ms in the same data, and the "
                        "calibration's host reference; one of them is missing (measure them "
                        "with --launchers realtime,fair, or refit the calibration)")
    host_model = transfer(calibration.model, reference, speed)
    predict = _Predictions(host_model, calibration.settings.work_draws, calibration.settings.seed)
    launch_cpu = fit_launch_cpu(predict, measured)
    keys = list(measured)
    model_pairs, plain_pairs, line_pairs, folds = [], [], [], []
    for key in keys:
        rest = {k: v for k, v in measured.items() if k != key}
        c = fit_launch_cpu(predict, rest)
        folds.append(c)
        model_pairs.append((predict(c, key), measured[key]))
        plain_pairs.append((predict(0.0, key), measured[key]))
        terms = design([key])
        line_pairs.append(({name: float((terms @ fit_line(list(rest), [rest[k][name]
                                                                        for k in rest]))[0])
                            for name in FIGURES}, measured[key]))
    # Stored in the calibration's host terms, as work_s is: transfer() scales both alike.
    scale = reference.boot_cpu_s / speed.boot_cpu_s
    value = launch_cpu * scale
    estimate = ParameterEstimate(
        value=value, source="fitted", low=min(min(folds) * scale, value),
        high=max(max(folds) * scale, value), unit="CPU s",
        meaning="CPU one launch needs from a fair-share launcher (spawn and the child's exec), "
                "served as one more sharer of the node's cores; range: leave-one-configuration-"
                "out refits")
    fit = LauncherFit(
        configurations=[Configuration(count=k[0], interval_ms=k[1],
                                      runs=sum(b.key == k for b in fair_runs)) for k in keys],
        data_files=list(data.files), host_speed=speed, launch_cpu_s_on_data_host=launch_cpu,
        heldout=_errors(model_pairs), heldout_without_launcher=_errors(plain_pairs),
        heldout_line=_errors(line_pairs),
        reserved=None if calibration.launcher_fit is None else calibration.launcher_fit.reserved)
    return Calibration.model_validate({
        **dict(calibration),
        "model": calibration.model.model_copy(update={"launch_cpu_s": value}),
        "parameters": {**calibration.parameters, "launch_cpu_s": estimate},
        "launcher_fit": fit})

